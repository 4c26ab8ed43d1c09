//! Request framing (length, chunked, or none, and the headers that go
//! with it) and the bytes of request heads and chunks.

use super::*;

fn framing_11(
    fields: &[(&'static str, &'static str)],
    empty: bool,
    exact: Option<u64>,
) -> (Result<RequestFraming, CodecError>, HeaderMap) {
    framing_with(Version::HTTP_11, fields, empty, exact)
}

fn framing_with(
    version: Version,
    fields: &[(&'static str, &'static str)],
    empty: bool,
    exact: Option<u64>,
) -> (Result<RequestFraming, CodecError>, HeaderMap) {
    let mut headers = header_map(fields);
    let framing = request_framing(version, &mut headers, empty, exact);
    (framing, headers)
}

// --- request_framing: empty bodies ---

#[test]
fn empty_body_drops_transfer_encoding_and_nonzero_length() {
    let (framing, headers) = framing_11(
        &[
            ("transfer-encoding", "chunked"),
            ("content-length", "12"),
            ("x-other", "kept"),
        ],
        true,
        Some(0),
    );
    assert_eq!(framing.unwrap(), RequestFraming::Empty);
    assert!(!headers.contains_key(TRANSFER_ENCODING));
    assert!(!headers.contains_key(CONTENT_LENGTH));
    assert_eq!(values(&headers, "x-other"), ["kept"]);
}

#[test]
fn empty_body_keeps_a_lone_zero_length() {
    let (framing, headers) = framing_11(&[("content-length", "0")], true, None);
    assert_eq!(framing.unwrap(), RequestFraming::Empty);
    assert_eq!(values(&headers, "content-length"), ["0"]);
}

#[test]
fn empty_body_drops_repeated_or_padded_zero_lengths() {
    for fields in [
        &[("content-length", "0"), ("content-length", "0")][..],
        &[("content-length", "00")][..],
        &[("content-length", "0, 0")][..],
    ] {
        let (framing, headers) = framing_11(fields, true, None);
        assert_eq!(framing.unwrap(), RequestFraming::Empty);
        assert!(!headers.contains_key(CONTENT_LENGTH), "{fields:?}");
    }
}

#[test]
fn empty_body_adds_no_length() {
    let (framing, headers) = framing_with(Version::HTTP_11, &[], true, None);
    assert_eq!(framing.unwrap(), RequestFraming::Empty);
    assert!(headers.is_empty());
}

#[test]
fn empty_body_wins_over_http10_rules() {
    let (framing, headers) = framing_with(
        Version::HTTP_10,
        &[("transfer-encoding", "chunked")],
        true,
        None,
    );
    assert_eq!(framing.unwrap(), RequestFraming::Empty);
    assert!(headers.is_empty());
}

// --- request_framing: HTTP/1.0 ---

#[test]
fn http10_uses_the_declared_length_and_drops_transfer_encoding() {
    let (framing, headers) = framing_with(
        Version::HTTP_10,
        &[("content-length", "7"), ("transfer-encoding", "chunked")],
        false,
        None,
    );
    assert_eq!(framing.unwrap(), RequestFraming::Length(7));
    assert_eq!(values(&headers, "content-length"), ["7"]);
    assert!(!headers.contains_key(TRANSFER_ENCODING));
}

#[test]
fn http10_announces_a_known_length() {
    let (framing, headers) = framing_with(Version::HTTP_10, &[], false, Some(42));
    assert_eq!(framing.unwrap(), RequestFraming::Length(42));
    assert_eq!(values(&headers, "content-length"), ["42"]);
}

#[test]
fn http10_rejects_a_body_of_unknown_length() {
    let (framing, headers) = framing_with(
        Version::HTTP_10,
        &[("transfer-encoding", "chunked")],
        false,
        None,
    );
    let err = framing.unwrap_err();
    assert!(matches!(err, CodecError::Http10UnknownLength), "{err:?}");
    assert_eq!(
        err.to_string(),
        "an HTTP/1.0 request cannot carry a body of unknown length"
    );
    assert!(!headers.contains_key(TRANSFER_ENCODING));
}

#[test]
fn http10_replaces_an_unusable_length_when_the_real_one_is_known() {
    let (framing, headers) = framing_with(
        Version::HTTP_10,
        &[("content-length", "nope")],
        false,
        Some(3),
    );
    assert_eq!(framing.unwrap(), RequestFraming::Length(3));
    assert_eq!(values(&headers, "content-length"), ["3"]);
}

#[test]
fn http10_reports_an_unusable_length_when_the_real_one_is_unknown() {
    let (framing, _) = framing_with(
        Version::HTTP_10,
        &[("content-length", "1"), ("content-length", "2")],
        false,
        None,
    );
    assert!(matches!(framing, Err(CodecError::ConflictingContentLength)));
}

// --- request_framing: HTTP/1.1 ---

#[test]
fn transfer_encoding_chunked_wins_over_content_length() {
    let (framing, headers) = framing_11(
        &[("content-length", "5"), ("transfer-encoding", "chunked")],
        false,
        Some(5),
    );
    assert_eq!(framing.unwrap(), RequestFraming::Chunked);
    assert!(!headers.contains_key(CONTENT_LENGTH));
    assert_eq!(values(&headers, "transfer-encoding"), ["chunked"]);
}

#[test]
fn chunked_is_appended_to_a_transfer_encoding_without_it() {
    let (framing, headers) = framing_11(&[("transfer-encoding", "gzip")], false, None);
    assert_eq!(framing.unwrap(), RequestFraming::Chunked);
    assert_eq!(values(&headers, "transfer-encoding"), ["gzip, chunked"]);
}

#[test]
fn chunked_is_appended_to_the_last_of_several_transfer_encoding_fields() {
    let (framing, headers) = framing_11(
        &[("transfer-encoding", "gzip"), ("transfer-encoding", "br ,")],
        false,
        None,
    );
    assert_eq!(framing.unwrap(), RequestFraming::Chunked);
    assert_eq!(
        values(&headers, "transfer-encoding"),
        ["gzip", "br, chunked"]
    );
}

#[test]
fn chunked_not_last_gets_chunked_appended() {
    let (framing, headers) = framing_11(&[("transfer-encoding", "chunked, gzip")], false, None);
    assert_eq!(framing.unwrap(), RequestFraming::Chunked);
    assert_eq!(
        values(&headers, "transfer-encoding"),
        ["chunked, gzip, chunked"]
    );
}

#[test]
fn an_empty_transfer_encoding_becomes_chunked() {
    let (framing, headers) = framing_11(&[("transfer-encoding", "")], false, None);
    assert_eq!(framing.unwrap(), RequestFraming::Chunked);
    assert_eq!(values(&headers, "transfer-encoding"), ["chunked"]);
}

#[test]
fn a_final_chunked_coding_is_left_alone_whatever_its_case() {
    for (fields, expected) in [
        (&[("transfer-encoding", "CHUNKED")][..], &["CHUNKED"][..]),
        (
            &[("transfer-encoding", "gzip,  Chunked ")][..],
            &["gzip,  Chunked "][..],
        ),
        (
            &[
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "chunked"),
            ][..],
            &["gzip", "chunked"][..],
        ),
        (
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", " ,"),
            ][..],
            &["chunked", " ,"][..],
        ),
    ] {
        let (framing, headers) = framing_11(fields, false, None);
        assert_eq!(framing.unwrap(), RequestFraming::Chunked);
        assert_eq!(values(&headers, "transfer-encoding"), expected);
    }
}

#[test]
fn declared_length_is_used() {
    let (framing, headers) = framing_11(&[("content-length", "1234")], false, Some(99));
    assert_eq!(framing.unwrap(), RequestFraming::Length(1234));
    assert_eq!(values(&headers, "content-length"), ["1234"]);
}

#[test]
fn agreeing_repeated_lengths_are_collapsed_into_one() {
    for fields in [
        &[("content-length", "5, 5")][..],
        &[("content-length", "5"), ("content-length", "5")][..],
        &[("content-length", "5"), ("content-length", "5,5")][..],
    ] {
        let (framing, headers) = framing_11(fields, false, None);
        assert_eq!(framing.unwrap(), RequestFraming::Length(5), "{fields:?}");
        assert_eq!(values(&headers, "content-length"), ["5"]);
    }
}

#[test]
fn conflicting_lengths_are_rejected() {
    for fields in [
        &[("content-length", "5, 6")][..],
        &[("content-length", "5"), ("content-length", "6")][..],
    ] {
        let (framing, _) = framing_11(fields, false, Some(5));
        let err = framing.unwrap_err();
        assert!(
            matches!(err, CodecError::ConflictingContentLength),
            "{fields:?}: {err:?}"
        );
    }
}

#[test]
fn malformed_lengths_are_rejected() {
    for value in [
        "",
        "abc",
        "+5",
        "-1",
        "5,",
        "0x10",
        "1 2",
        "18446744073709551616",
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_str(value).unwrap());
        let framing = request_framing(Version::HTTP_11, &mut headers, false, None);
        let err = framing.unwrap_err();
        assert!(
            matches!(err, CodecError::InvalidContentLength),
            "{value:?}: {err:?}"
        );
    }
}

#[test]
fn the_largest_length_is_accepted() {
    let (framing, _) = framing_11(&[("content-length", "18446744073709551615")], false, None);
    assert_eq!(framing.unwrap(), RequestFraming::Length(u64::MAX));
}

#[test]
fn a_known_length_is_announced() {
    let (framing, headers) = framing_11(&[], false, Some(17));
    assert_eq!(framing.unwrap(), RequestFraming::Length(17));
    assert_eq!(values(&headers, "content-length"), ["17"]);
}

#[test]
fn a_known_zero_length_of_a_non_empty_body_is_announced() {
    let (framing, headers) = framing_11(&[], false, Some(0));
    assert_eq!(framing.unwrap(), RequestFraming::Length(0));
    assert_eq!(values(&headers, "content-length"), ["0"]);
}

#[test]
fn an_unknown_length_is_sent_chunked() {
    let (framing, headers) = framing_with(Version::HTTP_11, &[], false, None);
    assert_eq!(framing.unwrap(), RequestFraming::Chunked);
    assert_eq!(values(&headers, "transfer-encoding"), ["chunked"]);
    assert!(!headers.contains_key(CONTENT_LENGTH));
}

// --- request head and chunk encoding ---

#[test]
fn request_head_bytes() {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("svc.local:8080"));
    headers.append("accept", HeaderValue::from_static("text/plain"));
    headers.append("accept", HeaderValue::from_static("*/*"));
    headers.insert("X-Custom", HeaderValue::from_static(""));
    let mut out = Vec::new();
    encode_request_head(
        &Method::GET,
        "/a/b?c=d",
        Version::HTTP_11,
        &headers,
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /a/b?c=d HTTP/1.1\r\n\
         host: svc.local:8080\r\n\
         accept: text/plain\r\n\
         accept: */*\r\n\
         x-custom: \r\n\
         \r\n"
    );
}

#[test]
fn request_head_versions() {
    for (version, line) in [
        (Version::HTTP_10, "PATCH * HTTP/1.0\r\n\r\n"),
        (Version::HTTP_11, "PATCH * HTTP/1.1\r\n\r\n"),
        (Version::HTTP_2, "PATCH * HTTP/1.1\r\n\r\n"),
    ] {
        let mut out = Vec::new();
        encode_request_head(&Method::PATCH, "*", version, &HeaderMap::new(), &mut out);
        assert_eq!(out, line.as_bytes());
    }
}

#[test]
fn request_head_appends_to_what_is_there() {
    let mut out = BytesMut::from(&b"previous"[..]);
    encode_request_head(
        &Method::from_bytes(b"PURGE").unwrap(),
        "/x",
        Version::HTTP_11,
        &header_map(&[("content-length", "0")]),
        &mut out,
    );
    assert_eq!(
        &out[..],
        b"previousPURGE /x HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
    );
}

#[test]
fn chunk_prefix_is_hex_length_and_crlf() {
    for len in [1, 9, 10, 15, 16, 255, 256, 4096, 65535, 1 << 20, usize::MAX] {
        let mut out = Vec::new();
        encode_chunk_prefix(len, &mut out);
        assert_eq!(out, format!("{len:X}\r\n").as_bytes());
    }
}

#[test]
fn chunk_prefix_of_nothing_writes_nothing() {
    let mut out = Vec::new();
    encode_chunk_prefix(0, &mut out);
    assert!(out.is_empty());
}

#[test]
fn last_chunk_without_trailers() {
    let mut out = Vec::new();
    encode_last_chunk(None, &mut out);
    assert_eq!(out, b"0\r\n\r\n");
    let mut out = Vec::new();
    encode_last_chunk(Some(&HeaderMap::new()), &mut out);
    assert_eq!(out, b"0\r\n\r\n");
}

#[test]
fn last_chunk_with_trailers() {
    let trailers = header_map(&[
        ("grpc-status", "0"),
        ("grpc-message", "fine"),
        ("x-sum", "a"),
        ("x-sum", "b"),
    ]);
    let mut out = Vec::new();
    encode_last_chunk(Some(&trailers), &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "0\r\ngrpc-status: 0\r\ngrpc-message: fine\r\nx-sum: a\r\nx-sum: b\r\n\r\n"
    );
}

#[test]
fn chunk_suffix_is_crlf() {
    assert_eq!(CHUNK_SUFFIX, b"\r\n");
}
