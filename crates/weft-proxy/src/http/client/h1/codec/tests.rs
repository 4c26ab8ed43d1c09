//! The client codec's framing decisions and wire bytes, checked against
//! hand-written messages, including every way a response head can arrive
//! cut short.

use http::{
    HeaderMap, HeaderValue, Method, StatusCode, Version,
    header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING},
};

use super::*;

fn header_map(fields: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect()
}

fn framing_11(
    fields: &[(&'static str, &'static str)],
    empty: bool,
    exact: Option<u64>,
) -> (Result<RequestFraming, CodecError>, HeaderMap) {
    framing_with(Method::POST, Version::HTTP_11, fields, empty, exact)
}

fn framing_with(
    method: Method,
    version: Version,
    fields: &[(&'static str, &'static str)],
    empty: bool,
    exact: Option<u64>,
) -> (Result<RequestFraming, CodecError>, HeaderMap) {
    let mut headers = header_map(fields);
    let framing = request_framing(&method, version, &mut headers, empty, exact);
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
    for method in [Method::GET, Method::POST, Method::DELETE] {
        let (framing, headers) = framing_with(method, Version::HTTP_11, &[], true, None);
        assert_eq!(framing.unwrap(), RequestFraming::Empty);
        assert!(headers.is_empty());
    }
}

#[test]
fn empty_body_wins_over_http10_rules() {
    let (framing, headers) = framing_with(
        Method::POST,
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
        Method::POST,
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
    let (framing, headers) = framing_with(Method::PUT, Version::HTTP_10, &[], false, Some(42));
    assert_eq!(framing.unwrap(), RequestFraming::Length(42));
    assert_eq!(values(&headers, "content-length"), ["42"]);
}

#[test]
fn http10_rejects_a_body_of_unknown_length() {
    let (framing, headers) = framing_with(
        Method::POST,
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
        Method::POST,
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
        Method::POST,
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
        let framing = request_framing(&Method::POST, Version::HTTP_11, &mut headers, false, None);
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
fn an_unknown_length_is_sent_chunked_for_every_method() {
    for method in [Method::GET, Method::HEAD, Method::POST, Method::OPTIONS] {
        let (framing, headers) = framing_with(method.clone(), Version::HTTP_11, &[], false, None);
        assert_eq!(framing.unwrap(), RequestFraming::Chunked, "{method}");
        assert_eq!(values(&headers, "transfer-encoding"), ["chunked"]);
        assert!(!headers.contains_key(CONTENT_LENGTH));
    }
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

// --- parse_response_head ---

fn parse(
    bytes: &[u8],
    method: &Method,
    keep_alive: bool,
) -> (Result<Option<ResponseHead>, CodecError>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let parsed = parse_response_head(&mut buf, method, keep_alive);
    (parsed, buf)
}

fn head(bytes: &[u8]) -> ResponseHead {
    head_for(bytes, &Method::GET)
}

fn head_for(bytes: &[u8], method: &Method) -> ResponseHead {
    let (parsed, _) = parse(bytes, method, true);
    parsed.unwrap().unwrap()
}

fn head_error(bytes: &[u8]) -> CodecError {
    let (parsed, _) = parse(bytes, &Method::GET, true);
    parsed.unwrap_err()
}

#[test]
fn simple_response_with_length() {
    let (parsed, rest) = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        &Method::GET,
        true,
    );
    let head = parsed.unwrap().unwrap();
    assert_eq!(head.parts.status, StatusCode::OK);
    assert_eq!(head.parts.version, Version::HTTP_11);
    assert_eq!(values(&head.parts.headers, "content-length"), ["5"]);
    assert_eq!(values(&head.parts.headers, "content-type"), ["text/plain"]);
    assert_eq!(head.parts.headers.len(), 2);
    assert_eq!(head.body, BodyKind::Length(5));
    assert!(head.keep_alive);
    assert_eq!(&rest[..], b"hello");
}

#[test]
fn header_values_share_the_read_buffer() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nX-Long: a-value-long-enough\r\n\r\n"[..]);
    let start = buf.as_ptr().addr();
    let end = start + buf.len();
    let head = parse_response_head(&mut buf, &Method::GET, true)
        .unwrap()
        .unwrap();
    let value = head.parts.headers.get("x-long").unwrap();
    assert_eq!(value, "a-value-long-enough");
    let at = value.as_bytes().as_ptr().addr();
    assert!(
        (start..end).contains(&at),
        "value was copied out of the buffer"
    );
}

#[test]
fn repeated_fields_and_empty_values_are_kept_in_order() {
    let head = head(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Empty:\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(values(&head.parts.headers, "set-cookie"), ["a=1", "b=2"]);
    assert_eq!(values(&head.parts.headers, "x-empty"), [""]);
    assert_eq!(head.body, BodyKind::Length(0));
}

#[test]
fn reason_phrase_may_be_missing_or_unusual() {
    assert_eq!(
        head(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")
            .parts
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        head(b"HTTP/1.1 599 Whatever You Like\r\nContent-Length: 0\r\n\r\n")
            .parts
            .status
            .as_u16(),
        599
    );
}

#[test]
fn chunked_response() {
    let head = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(head.body, BodyKind::Chunked);
    assert!(head.keep_alive);
}

#[test]
fn chunked_must_be_the_last_coding() {
    for value in ["gzip, chunked", "gzip,CHUNKED ", "Chunked"] {
        let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {value}\r\n\r\n");
        assert_eq!(head(raw.as_bytes()).body, BodyKind::Chunked, "{value}");
    }
    let head =
        head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n");
    assert_eq!(head.body, BodyKind::UntilClose);
    assert!(!head.keep_alive);
}

#[test]
fn transfer_encoding_and_length_together_drop_the_length_and_the_connection() {
    let head = head(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(head.body, BodyKind::Chunked);
    assert!(!head.parts.headers.contains_key(CONTENT_LENGTH));
    assert!(!head.keep_alive);
}

#[test]
fn responses_to_head_have_no_body() {
    let (parsed, rest) = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        &Method::HEAD,
        true,
    );
    let head = parsed.unwrap().unwrap();
    assert_eq!(head.body, BodyKind::Empty);
    assert!(head.keep_alive);
    assert_eq!(values(&head.parts.headers, "content-length"), ["100"]);
    assert_eq!(&rest[..], b"HTTP/1.1 204 No Content\r\n\r\n");

    let chunked = head_for(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        &Method::HEAD,
    );
    assert_eq!(chunked.body, BodyKind::Empty);
    assert!(chunked.keep_alive);
}

#[test]
fn no_content_and_not_modified_have_no_body() {
    for raw in [
        &b"HTTP/1.1 204 No Content\r\n\r\n"[..],
        b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 512\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let head = head(raw);
        assert_eq!(head.body, BodyKind::Empty);
        assert!(head.keep_alive);
    }
}

#[test]
fn a_bad_length_does_not_matter_when_there_is_no_body() {
    let head = head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n");
    assert_eq!(head.body, BodyKind::Empty);
}

#[test]
fn informational_heads_come_back_one_at_a_time() {
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\n\
           HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n\
           HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"[..],
    );
    let first = parse_response_head(&mut buf, &Method::POST, true)
        .unwrap()
        .unwrap();
    assert_eq!(first.parts.status, StatusCode::CONTINUE);
    assert_eq!(first.body, BodyKind::Empty);
    let second = parse_response_head(&mut buf, &Method::POST, true)
        .unwrap()
        .unwrap();
    assert_eq!(second.parts.status.as_u16(), 103);
    assert_eq!(second.body, BodyKind::Empty);
    assert_eq!(
        values(&second.parts.headers, "link"),
        ["</a.css>; rel=preload"]
    );
    let last = parse_response_head(&mut buf, &Method::POST, true)
        .unwrap()
        .unwrap();
    assert_eq!(last.parts.status, StatusCode::CREATED);
    assert_eq!(last.body, BodyKind::Length(2));
    assert_eq!(&buf[..], b"ok");
}

#[test]
fn processing_is_informational_too() {
    let head = head(b"HTTP/1.1 102 Processing\r\nContent-Length: 9\r\n\r\n");
    assert_eq!(head.body, BodyKind::Empty);
}

#[test]
fn body_without_framing_lasts_until_close() {
    let head = head(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
    assert_eq!(head.body, BodyKind::UntilClose);
    assert!(!head.keep_alive);
}

#[test]
fn connection_close_ends_keep_alive() {
    for connection in [
        &["close"][..],
        &["Close"][..],
        &["keep-alive, CLOSE"][..],
        &[" upgrade ,close "][..],
        &["keep-alive", "close"][..],
    ] {
        let mut raw = String::from("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
        for value in connection {
            raw.push_str(&format!("Connection: {value}\r\n"));
        }
        raw.push_str("\r\n");
        let head = head(raw.as_bytes());
        assert!(!head.keep_alive, "{connection:?}");
        assert_eq!(head.body, BodyKind::Length(0));
    }
}

#[test]
fn other_connection_tokens_keep_the_connection() {
    for value in ["keep-alive", "closed", "x-close, upgrade", ""] {
        let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: {value}\r\n\r\n");
        assert!(head(raw.as_bytes()).keep_alive, "{value:?}");
    }
}

#[test]
fn a_request_that_closes_closes_the_connection() {
    let (parsed, _) = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        &Method::GET,
        false,
    );
    assert!(!parsed.unwrap().unwrap().keep_alive);
}

#[test]
fn http10_responses_never_keep_the_connection() {
    let head = head(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(head.parts.version, Version::HTTP_10);
    assert_eq!(head.body, BodyKind::Length(3));
    assert!(!head.keep_alive);

    let until_close = self::head(b"HTTP/1.0 200 OK\r\n\r\n");
    assert_eq!(until_close.body, BodyKind::UntilClose);
    assert!(!until_close.keep_alive);
}

#[test]
fn every_prefix_of_a_head_is_incomplete_and_untouched() {
    let full: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\n";
    for len in 0..full.len() {
        let prefix = full.get(..len).unwrap();
        let (parsed, rest) = parse(prefix, &Method::GET, true);
        assert!(
            matches!(parsed, Ok(None)),
            "prefix of {len} bytes: {parsed:?}"
        );
        assert_eq!(&rest[..], prefix, "prefix of {len} bytes was consumed");
    }
    let (parsed, rest) = parse(full, &Method::GET, true);
    assert_eq!(parsed.unwrap().unwrap().body, BodyKind::Length(3));
    assert!(rest.is_empty());
}

#[test]
fn a_head_completed_by_later_reads_parses() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
    assert!(
        parse_response_head(&mut buf, &Method::GET, true)
            .unwrap()
            .is_none()
    );
    buf.extend_from_slice(b"ngth: 1\r\n\r\nZ");
    let head = parse_response_head(&mut buf, &Method::GET, true)
        .unwrap()
        .unwrap();
    assert_eq!(head.body, BodyKind::Length(1));
    assert_eq!(&buf[..], b"Z");
}

#[test]
fn bytes_after_the_head_stay_in_the_buffer() {
    let (parsed, rest) = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        &Method::GET,
        true,
    );
    assert_eq!(parsed.unwrap().unwrap().body, BodyKind::Chunked);
    assert_eq!(&rest[..], b"5\r\nhello\r\n0\r\n\r\n");
}

fn head_with_fields(count: usize) -> Vec<u8> {
    let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..count {
        raw.extend_from_slice(format!("x-field-{i}: {i}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw
}

#[test]
fn the_most_fields_allowed_parse() {
    let head = head(&head_with_fields(MAX_HEADERS));
    assert_eq!(head.parts.headers.len(), MAX_HEADERS);
}

#[test]
fn too_many_fields_are_rejected() {
    let err = head_error(&head_with_fields(MAX_HEADERS + 1));
    assert!(matches!(err, CodecError::TooManyHeaders), "{err:?}");
    assert_eq!(err.to_string(), "more than 128 header fields");
}

fn oversized_partial_head(len: usize) -> Vec<u8> {
    let mut raw = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    raw.resize(len, b'a');
    raw
}

#[test]
fn an_incomplete_head_up_to_the_limit_waits_for_more() {
    let (parsed, rest) = parse(&oversized_partial_head(MAX_HEAD_BYTES), &Method::GET, true);
    assert!(matches!(parsed, Ok(None)), "{parsed:?}");
    assert_eq!(rest.len(), MAX_HEAD_BYTES);
}

#[test]
fn an_incomplete_head_past_the_limit_is_rejected() {
    let err = head_error(&oversized_partial_head(MAX_HEAD_BYTES + 1));
    assert!(matches!(err, CodecError::HeadTooLarge), "{err:?}");
    assert_eq!(err.to_string(), "response head larger than 262144 bytes");
}

#[test]
fn a_complete_head_past_the_limit_is_rejected() {
    let mut raw = oversized_partial_head(MAX_HEAD_BYTES);
    raw.extend_from_slice(b"\r\n\r\n");
    let err = head_error(&raw);
    assert!(matches!(err, CodecError::HeadTooLarge), "{err:?}");
}

#[test]
fn invalid_status_codes_are_rejected() {
    let err = head_error(b"HTTP/1.1 099 Too Low\r\n\r\n");
    assert!(matches!(err, CodecError::InvalidStatus(99)), "{err:?}");
    assert_eq!(err.to_string(), "invalid status code 99");
    let err = head_error(b"HTTP/1.1 2000 OK\r\n\r\n");
    assert!(matches!(err, CodecError::MalformedHead(_)), "{err:?}");
}

#[test]
fn malformed_heads_are_rejected() {
    for raw in [
        &b"garbage\r\n\r\n"[..],
        b"\x00\x01\x02\x03\r\n\r\n",
        b"HTTP/2.0 200 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\r\n continued\r\n\r\n",
    ] {
        let (parsed, rest) = parse(raw, &Method::GET, true);
        let err = parsed.unwrap_err();
        assert!(
            err.to_string().starts_with("malformed response head: "),
            "{:?}: {err}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(&rest[..], raw, "an error consumed bytes");
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A fixed xorshift stream: reproducible, and with a valid prefix half
    // the time so the header parsing is reached too.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000 {
        let mut raw = if round % 2 == 0 {
            b"HTTP/1.1 200 OK\r\n".to_vec()
        } else {
            Vec::new()
        };
        let len = usize::try_from(next() % 64).unwrap();
        let alphabet = b"\r\n :,aZ0\x00\xff\t-";
        raw.extend((0..len).map(|_| alphabet[usize::try_from(next()).unwrap() % alphabet.len()]));
        let (_, rest) = parse(&raw, &Method::GET, true);
        assert!(rest.len() <= raw.len());
    }
}

#[test]
fn agreeing_duplicate_lengths_are_accepted() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n",
    ] {
        assert_eq!(head(raw).body, BodyKind::Length(4));
    }
}

#[test]
fn differing_lengths_are_rejected() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 4, 5\r\n\r\n",
    ] {
        let err = head_error(raw);
        assert!(
            matches!(err, CodecError::ConflictingContentLength),
            "{err:?}"
        );
    }
}

#[test]
fn malformed_lengths_in_responses_are_rejected() {
    for value in ["-4", "+4", "4.0", "four", "99999999999999999999"] {
        let raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {value}\r\n\r\n");
        let err = head_error(raw.as_bytes());
        assert!(
            matches!(err, CodecError::InvalidContentLength),
            "{value}: {err:?}"
        );
    }
}

#[test]
fn connection_header_is_kept_for_the_caller() {
    let head = head(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(values(&head.parts.headers, CONNECTION.as_str()), ["close"]);
}
