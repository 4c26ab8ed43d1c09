//! How `weft tap` shows a request, and the query encoding of its filters.

use std::{
    fmt::Write,
    time::{Duration, UNIX_EPOCH},
};

use weft_api::rest::TapRequest;

/// `time direction source -> destination METHOD authority path status latency`;
/// unknown parts show as `-`.
pub fn request_line(r: &TapRequest) -> String {
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let start = UNIX_EPOCH + Duration::from_millis(u64::try_from(r.start_unix_ms).unwrap_or(0));
    let stamp = humantime::format_rfc3339_millis(start).to_string();
    // "2026-11-22T08:30:01.123Z" -> "08:30:01.123"
    let time = stamp.get(11..23).unwrap_or(&stamp);
    let status = if r.status == 0 {
        "-".to_owned()
    } else {
        r.status.to_string()
    };
    format!(
        "{time} {} {} -> {} {} {} {} {status} {}",
        r.direction,
        dash(&r.source_service),
        dash(&r.destination_service),
        r.method,
        dash(&r.authority),
        r.path,
        latency(r.duration_us)
    )
}

/// `850µs`, `12.3ms`, `1.24s`.
pub fn latency(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..1_000_000 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// What the filters are, for the "tapping" note.
pub fn filter_note(path: Option<&str>, method: Option<&str>) -> String {
    match (path, method) {
        (None, None) => String::new(),
        (Some(p), None) => format!(", paths starting with {p}"),
        (None, Some(m)) => format!(", {} requests", m.to_ascii_uppercase()),
        (Some(p), Some(m)) => format!(
            ", {} requests to paths starting with {p}",
            m.to_ascii_uppercase()
        ),
    }
}

/// Percent-encodes everything but unreserved characters and `/`.
pub fn encode_query(s: &str) -> String {
    s.bytes()
        .fold(String::with_capacity(s.len()), |mut out, b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "%{b:02X}");
            }
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_line_with_dashes_for_what_is_unknown() {
        let r = TapRequest {
            start_unix_ms: 1_700_000_001_234,
            direction: "inbound".into(),
            source_service: String::new(),
            destination_service: "backend".into(),
            method: "GET".into(),
            authority: "127.0.0.1:20001".into(),
            path: "/api/x".into(),
            status: 200,
            head_latency_us: 900,
            duration_us: 12_345,
            bytes_in: 0,
            bytes_out: 5,
            upstream: None,
            trace_id: None,
            route: None,
        };
        assert_eq!(
            request_line(&r),
            "22:13:21.234 inbound - -> backend GET 127.0.0.1:20001 /api/x 200 12.3ms"
        );
    }

    #[test]
    fn latencies_and_queries() {
        assert_eq!(latency(850), "850µs");
        assert_eq!(latency(1_240_000), "1.24s");
        assert_eq!(encode_query("/a b&c=d"), "/a%20b%26c%3Dd");
        assert_eq!(
            filter_note(Some("/api"), Some("post")),
            ", POST requests to paths starting with /api"
        );
    }
}
