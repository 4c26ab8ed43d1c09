//! Response heads: fields, framing, keep-alive, limits, and heads that
//! arrive cut short or malformed.

use super::*;

fn parse(bytes: &[u8], method: &Method) -> (Result<Option<ResponseHead>, CodecError>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let parsed = parse_response_head(&mut buf, method);
    (parsed, buf)
}

fn head(bytes: &[u8]) -> ResponseHead {
    head_for(bytes, &Method::GET)
}

fn head_for(bytes: &[u8], method: &Method) -> ResponseHead {
    let (parsed, _) = parse(bytes, method);
    parsed.unwrap().unwrap()
}

fn head_error(bytes: &[u8]) -> CodecError {
    let (parsed, _) = parse(bytes, &Method::GET);
    parsed.unwrap_err()
}

#[test]
fn simple_response_with_length() {
    let (parsed, rest) = parse(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        &Method::GET,
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
    let head = parse_response_head(&mut buf, &Method::GET)
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
    let first = parse_response_head(&mut buf, &Method::POST)
        .unwrap()
        .unwrap();
    assert_eq!(first.parts.status, StatusCode::CONTINUE);
    assert_eq!(first.body, BodyKind::Empty);
    let second = parse_response_head(&mut buf, &Method::POST)
        .unwrap()
        .unwrap();
    assert_eq!(second.parts.status.as_u16(), 103);
    assert_eq!(second.body, BodyKind::Empty);
    assert_eq!(
        values(&second.parts.headers, "link"),
        ["</a.css>; rel=preload"]
    );
    let last = parse_response_head(&mut buf, &Method::POST)
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
        let (parsed, rest) = parse(prefix, &Method::GET);
        assert!(
            matches!(parsed, Ok(None)),
            "prefix of {len} bytes: {parsed:?}"
        );
        assert_eq!(&rest[..], prefix, "prefix of {len} bytes was consumed");
    }
    let (parsed, rest) = parse(full, &Method::GET);
    assert_eq!(parsed.unwrap().unwrap().body, BodyKind::Length(3));
    assert!(rest.is_empty());
}

#[test]
fn a_head_completed_by_later_reads_parses() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
    assert!(
        parse_response_head(&mut buf, &Method::GET)
            .unwrap()
            .is_none()
    );
    buf.extend_from_slice(b"ngth: 1\r\n\r\nZ");
    let head = parse_response_head(&mut buf, &Method::GET)
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
    let (parsed, rest) = parse(&oversized_partial_head(MAX_HEAD_BYTES), &Method::GET);
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
        let (parsed, rest) = parse(raw, &Method::GET);
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
        let (_, rest) = parse(&raw, &Method::GET);
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
