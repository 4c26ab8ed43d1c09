//! The chunked decoder against hand-written bodies, bodies cut at every
//! byte, and bodies written by the codec's own chunk encoder.

use bytes::BytesMut;
use http::{HeaderMap, HeaderValue};

use super::super::codec::{CHUNK_SUFFIX, encode_chunk_prefix, encode_last_chunk};
use super::*;

/// What decoding produced until it stopped.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
    ended: bool,
}

/// Decodes until `End` or `NeedMore`, adding to `outcome`. Checks the
/// promises every step makes: data is never empty, trailers come once and
/// are non-empty, and `End` is final.
fn drain(
    decoder: &mut ChunkedDecoder,
    buf: &mut BytesMut,
    outcome: &mut Outcome,
) -> Result<(), CodecError> {
    loop {
        match decoder.decode(buf)? {
            Decoded::Data(data) => {
                assert!(!data.is_empty(), "empty Data");
                assert!(!outcome.ended && outcome.trailers.is_none());
                outcome.data.extend_from_slice(&data);
            }
            Decoded::Trailers(trailers) => {
                assert!(!trailers.is_empty(), "empty Trailers");
                assert!(outcome.trailers.is_none(), "Trailers twice");
                outcome.trailers = Some(trailers);
            }
            Decoded::End => {
                assert!(decoder.is_done());
                outcome.ended = true;
                return Ok(());
            }
            Decoded::NeedMore => {
                assert!(!decoder.is_done());
                return Ok(());
            }
        }
    }
}

/// Decodes all of `body` handed over in one piece; returns the outcome and
/// what was left in the buffer.
fn decode_whole(body: &[u8]) -> (Result<Outcome, CodecError>, BytesMut) {
    let mut decoder = ChunkedDecoder::new();
    let mut buf = BytesMut::from(body);
    let mut outcome = Outcome::default();
    let result = drain(&mut decoder, &mut buf, &mut outcome).map(|()| outcome);
    (result, buf)
}

/// Decodes `body` handed over in pieces of the given lengths (the rest in
/// a last piece).
fn decode_in_pieces(body: &[u8], cuts: &[usize]) -> (Outcome, BytesMut) {
    let mut decoder = ChunkedDecoder::new();
    let mut buf = BytesMut::new();
    let mut outcome = Outcome::default();
    let mut rest = body;
    for &cut in cuts {
        let (piece, after) = rest.split_at(cut.min(rest.len()));
        buf.extend_from_slice(piece);
        rest = after;
        drain(&mut decoder, &mut buf, &mut outcome).unwrap();
    }
    buf.extend_from_slice(rest);
    drain(&mut decoder, &mut buf, &mut outcome).unwrap();
    (outcome, buf)
}

fn trailer_map(fields: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        map.append(*name, HeaderValue::from_static(value));
    }
    map
}

fn decode_error(body: &[u8]) -> CodecError {
    let (result, _) = decode_whole(body);
    result.unwrap_err()
}

#[test]
fn single_chunk() {
    let (outcome, rest) = decode_whole(b"5\r\nhello\r\n0\r\n\r\n");
    let outcome = outcome.unwrap();
    assert_eq!(outcome.data, b"hello");
    assert_eq!(outcome.trailers, None);
    assert!(outcome.ended);
    assert!(rest.is_empty());
}

#[test]
fn data_is_split_off_the_buffer_without_copying() {
    let mut buf = BytesMut::from(&b"5\r\nhello\r\n0\r\n\r\n"[..]);
    let start = buf.as_ptr().addr();
    let mut decoder = ChunkedDecoder::new();
    let Decoded::Data(data) = decoder.decode(&mut buf).unwrap() else {
        panic!("expected data");
    };
    assert_eq!(data.as_ptr().addr(), start + 3);
}

#[test]
fn several_chunks() {
    let (outcome, rest) = decode_whole(b"3\r\nabc\r\n1\r\nd\r\nA\r\n0123456789\r\n0\r\n\r\n");
    let outcome = outcome.unwrap();
    assert_eq!(outcome.data, b"abcd0123456789");
    assert!(outcome.ended);
    assert!(rest.is_empty());
}

#[test]
fn hex_sizes_of_either_case() {
    let data = [b'x'; 0xAB];
    for size in ["ab", "AB", "aB", "00ab"] {
        let mut body = format!("{size}\r\n").into_bytes();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\r\n0\r\n\r\n");
        let (outcome, _) = decode_whole(&body);
        assert_eq!(outcome.unwrap().data, data, "{size}");
    }
}

#[test]
fn a_data_step_returns_what_is_there() {
    let mut decoder = ChunkedDecoder::new();
    let mut buf = BytesMut::from(&b"10\r\n0123"[..]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"0123"))
    );
    assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::NeedMore);
    buf.extend_from_slice(b"456789abcdefXYZ");
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"456789abcdef"))
    );
    assert_eq!(&buf[..], b"XYZ");
    assert_eq!(
        decoder.decode(&mut buf).unwrap_err().to_string(),
        "missing CRLF after chunk data"
    );
}

#[test]
fn extensions_and_whitespace_are_ignored() {
    for line in [
        "5;name=value",
        "5;a;b=\"quoted ; \\\" text\"",
        "5 ;ext",
        "5\t; ext = x",
        "5 \t ",
        "5;",
    ] {
        let body = format!("{line}\r\nhello\r\n0;last=yes\r\n\r\n");
        let (outcome, rest) = decode_whole(body.as_bytes());
        let outcome = outcome.unwrap_or_else(|err| panic!("{line:?}: {err}"));
        assert_eq!(outcome.data, b"hello", "{line:?}");
        assert!(outcome.ended);
        assert!(rest.is_empty());
    }
}

#[test]
fn trailers_come_after_the_data_then_the_end() {
    let mut decoder = ChunkedDecoder::new();
    let mut buf =
        BytesMut::from(&b"2\r\nhi\r\n0\r\nGrpc-Status: 0\r\nX-Sum: a\r\nX-Sum: b\r\n\r\nNEXT"[..]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"hi"))
    );
    let expected = trailer_map(&[("grpc-status", "0"), ("x-sum", "a"), ("x-sum", "b")]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Trailers(expected)
    );
    assert!(!decoder.is_done());
    assert_eq!(&buf[..], b"NEXT");
    assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::End);
    assert!(decoder.is_done());
    assert_eq!(&buf[..], b"NEXT");
}

#[test]
fn nothing_after_the_end_is_touched() {
    let mut decoder = ChunkedDecoder::new();
    let mut buf = BytesMut::from(&b"1\r\nx\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"[..]);
    let mut outcome = Outcome::default();
    drain(&mut decoder, &mut buf, &mut outcome).unwrap();
    assert!(outcome.ended);
    assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n");
    for _ in 0..3 {
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::End);
        assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n");
    }
}

#[test]
fn an_empty_body_is_just_the_last_chunk() {
    let (outcome, rest) = decode_whole(b"0\r\n\r\n");
    assert_eq!(
        outcome.unwrap(),
        Outcome {
            ended: true,
            ..Outcome::default()
        }
    );
    assert!(rest.is_empty());
}

#[test]
fn new_and_default_start_the_same() {
    assert!(!ChunkedDecoder::new().is_done());
    assert!(!ChunkedDecoder::default().is_done());
    let mut buf = BytesMut::new();
    assert_eq!(
        ChunkedDecoder::default().decode(&mut buf).unwrap(),
        Decoded::NeedMore
    );
}

const SPLIT_BODY: &[u8] = b"4;ext=1\r\nWiki\r\n\
    6 \r\npedia \r\n\
    E\r\nin \r\n\r\nchunks.\r\n\
    0\r\nX-Checksum: abc123\r\nGrpc-Status: 0\r\n\r\n";

fn split_body_outcome() -> Outcome {
    Outcome {
        data: b"Wikipedia in \r\n\r\nchunks.".to_vec(),
        trailers: Some(trailer_map(&[
            ("x-checksum", "abc123"),
            ("grpc-status", "0"),
        ])),
        ended: true,
    }
}

#[test]
fn every_two_piece_split_decodes_the_same() {
    let mut body = SPLIT_BODY.to_vec();
    body.extend_from_slice(b"TAIL");
    for at in 0..=body.len() {
        let (outcome, rest) = decode_in_pieces(&body, &[at]);
        assert_eq!(outcome, split_body_outcome(), "split at {at}");
        assert_eq!(&rest[..], b"TAIL", "split at {at}");
    }
}

#[test]
fn byte_by_byte_decodes_the_same() {
    let cuts = vec![1; SPLIT_BODY.len()];
    let (outcome, rest) = decode_in_pieces(SPLIT_BODY, &cuts);
    assert_eq!(outcome, split_body_outcome());
    assert!(rest.is_empty());
}

#[test]
fn incomplete_framing_is_not_consumed() {
    for (body, left) in [
        (&b"1"[..], &b"1"[..]),
        (b"1;ext", b"1;ext"),
        (b"1\r", b"1\r"),
        (b"1\r\nx", b""),
        (b"1\r\nx\r", b"\r"),
        (b"1\r\nx\r\n0\r", b"0\r"),
        (b"1\r\nx\r\n0\r\n\r", b"\r"),
        (b"1\r\nx\r\n0\r\nA: b\r\n", b"A: b\r\n"),
        (b"1\r\nx\r\n0\r\nA: b\r\n\r", b"A: b\r\n\r"),
    ] {
        let (outcome, rest) = decode_whole(body);
        assert!(!outcome.unwrap().ended, "{body:?}");
        assert_eq!(&rest[..], left, "{body:?}");
    }
}

#[test]
fn malformed_size_lines_are_rejected() {
    for line in [
        &b"\r\n"[..],
        b"g\r\n",
        b" 5\r\n",
        b";ext\r\n",
        b"5x\r\n",
        b"-1\r\n",
        b"0x5\r\n",
        b"5 5\r\n",
        b"5 x\r\n",
        b"5\n",
        b"5\rX",
        b"5;ext\nhello",
        b"\n",
    ] {
        let err = decode_error(line);
        assert!(
            matches!(err, CodecError::InvalidChunkSize),
            "{:?}: {err:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(err.to_string(), "invalid chunk size line");
    }
}

#[test]
fn a_bad_size_line_fails_before_its_end_arrives() {
    for partial in [&b"z"[..], b"5z", b" ", b"5 z", b"\n"] {
        let err = decode_error(partial);
        assert!(matches!(err, CodecError::InvalidChunkSize), "{partial:?}");
    }
}

#[test]
fn missing_crlf_after_data_is_rejected() {
    for body in [
        &b"5\r\nhelloX\r\n0\r\n\r\n"[..],
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\rX",
        b"5\r\nhello0\r\n\r\n",
    ] {
        let err = decode_error(body);
        assert!(
            matches!(err, CodecError::MissingChunkCrlf),
            "{body:?}: {err:?}"
        );
    }
}

#[test]
fn sizes_past_sixty_four_bits_are_rejected() {
    for line in [
        &b"10000000000000000\r\n"[..],
        b"00000000000000001\r\n",
        b"FFFFFFFFFFFFFFFFF",
    ] {
        let err = decode_error(line);
        assert!(
            matches!(err, CodecError::ChunkSizeOverflow),
            "{line:?}: {err:?}"
        );
    }
}

#[test]
fn the_largest_size_is_accepted() {
    let mut decoder = ChunkedDecoder::new();
    let mut buf = BytesMut::from(&b"FFFFFFFFFFFFFFFF\r\nsome data"[..]);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from_static(b"some data"))
    );
    assert!(buf.is_empty());
}

fn size_line_of(len: usize) -> Vec<u8> {
    let mut line = b"5;".to_vec();
    line.resize(len, b'e');
    line
}

#[test]
fn a_size_line_up_to_the_limit_is_accepted() {
    let mut body = size_line_of(MAX_SIZE_LINE);
    let (outcome, rest) = decode_whole(&body);
    assert!(!outcome.unwrap().ended);
    assert_eq!(rest.len(), MAX_SIZE_LINE);
    body.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    let (outcome, _) = decode_whole(&body);
    assert_eq!(outcome.unwrap().data, b"hello");
}

#[test]
fn a_size_line_past_the_limit_is_rejected() {
    for tail in [&b""[..], b"\r\nhello\r\n0\r\n\r\n"] {
        let mut body = size_line_of(MAX_SIZE_LINE + 1);
        body.extend_from_slice(tail);
        let err = decode_error(&body);
        assert!(matches!(err, CodecError::ChunkSizeLineTooLong), "{err:?}");
        assert_eq!(err.to_string(), "chunk size line too long");
    }
}

#[test]
fn framing_and_connection_trailers_are_dropped() {
    for field in [
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        "Host: example.com",
        "Connection: close",
        "Keep-Alive: timeout=5",
        "Trailer: x",
    ] {
        let body = format!("0\r\nX-Fine: 1\r\n{field}\r\n\r\n");
        let (outcome, rest) = decode_whole(body.as_bytes());
        let trailers = outcome.unwrap().trailers.unwrap();
        assert_eq!(trailers.len(), 1, "{field}: {trailers:?}");
        assert_eq!(trailers["x-fine"], "1");
        assert!(rest.is_empty());
    }
    // Only dropped fields: the body just ends.
    let (outcome, _) = decode_whole(b"0\r\nConnection: close\r\n\r\n");
    let outcome = outcome.unwrap();
    assert_eq!(outcome.trailers, None);
    assert!(outcome.ended);
}

#[test]
fn malformed_trailers_are_rejected() {
    for body in [
        &b"0\r\nbad name: x\r\n\r\n"[..],
        b"0\r\nX: a\x00b\r\n\r\n",
        b"0\r\n: empty name\r\n\r\n",
        b"0\r\nX: a\r\n continued\r\n\r\n",
        b"0\r\n\n",
        b"0\r\n\rX",
    ] {
        let err = decode_error(body);
        assert!(
            matches!(err, CodecError::MalformedTrailers(_)),
            "{:?}: {err:?}",
            String::from_utf8_lossy(body)
        );
        assert!(err.to_string().starts_with("malformed trailer section: "));
    }
}

#[test]
fn too_many_trailers_are_rejected() {
    let mut body = b"0\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        body.extend_from_slice(format!("x-t{i}: {i}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    let err = decode_error(&body);
    assert!(matches!(err, CodecError::TooManyHeaders), "{err:?}");
}

#[test]
fn an_oversized_trailer_section_is_rejected() {
    let mut body = b"0\r\nX-Big: ".to_vec();
    body.resize(3 + MAX_TRAILER_BYTES + 1, b'a');
    let err = decode_error(&body);
    assert!(matches!(err, CodecError::TrailersTooLarge), "{err:?}");
    assert_eq!(err.to_string(), "trailer section too large");

    body.extend_from_slice(b"\r\n\r\n");
    let err = decode_error(&body);
    assert!(matches!(err, CodecError::TrailersTooLarge), "{err:?}");
}

#[test]
fn an_incomplete_trailer_section_up_to_the_limit_waits() {
    let mut body = b"0\r\nX-Big: ".to_vec();
    body.resize(3 + MAX_TRAILER_BYTES, b'a');
    let (outcome, rest) = decode_whole(&body);
    assert!(!outcome.unwrap().ended);
    assert_eq!(rest.len(), MAX_TRAILER_BYTES);
}

/// Encodes `chunks` and `trailers` with the codec's chunk writers.
fn encode(chunks: &[&[u8]], trailers: Option<&HeaderMap>) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks.iter().filter(|chunk| !chunk.is_empty()) {
        encode_chunk_prefix(chunk.len(), &mut out);
        out.extend_from_slice(chunk);
        out.extend_from_slice(CHUNK_SUFFIX);
    }
    encode_last_chunk(trailers, &mut out);
    out
}

#[test]
fn round_trip_through_the_codec_encoder() {
    let big: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let trailers = trailer_map(&[("grpc-status", "0"), ("grpc-message", "all%20good")]);
    let cases: [(&[&[u8]], Option<&HeaderMap>); 4] = [
        (&[b"a"], None),
        (&[b"0\r\n\r\n", b"", b"\r\n", &[0, 255, 13, 10]], None),
        (&[b"x", &big, b"yz"], Some(&trailers)),
        (&[], Some(&trailers)),
    ];
    for (chunks, trailers) in cases {
        let encoded = encode(chunks, trailers);
        let expected = Outcome {
            data: chunks.concat(),
            trailers: trailers.filter(|map| !map.is_empty()).cloned(),
            ended: true,
        };
        let (whole, rest) = decode_whole(&encoded);
        assert_eq!(whole.unwrap(), expected);
        assert!(rest.is_empty());
        // Cuts at a few hundred places, near the framing and in the data.
        for at in (0..=encoded.len()).step_by(encoded.len() / 200 + 1) {
            let (outcome, rest) = decode_in_pieces(&encoded, &[at]);
            assert_eq!(outcome, expected, "split at {at}");
            assert!(rest.is_empty());
        }
    }
}

#[test]
fn round_trip_byte_by_byte() {
    let trailers = trailer_map(&[("x-digest", "sha-256=abc")]);
    let encoded = encode(&[b"first", b"\r\n", b"third chunk"], Some(&trailers));
    let (outcome, rest) = decode_in_pieces(&encoded, &vec![1; encoded.len()]);
    assert_eq!(
        outcome,
        Outcome {
            data: b"first\r\nthird chunk".to_vec(),
            trailers: Some(trailers),
            ended: true,
        }
    );
    assert!(rest.is_empty());
}
