//! Trace context propagation headers: W3C `traceparent`/`tracestate` and
//! B3, both the single `b3` header and the multi `X-B3-*` headers.
//!
//! A header that does not parse is ignored (the request starts a new
//! trace); it never fails a request. Whatever came in, the next hop gets a
//! `traceparent`, plus the B3 form(s) the request came with, so
//! applications that only speak B3 keep working.

use http::{HeaderMap, HeaderValue, header::HeaderName};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub const B3: HeaderName = HeaderName::from_static("b3");
pub const B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
pub const B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
pub const B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
pub const B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
pub const B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// The span a request says it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

/// What the incoming headers carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// The caller's span, if a propagation header named one.
    pub parent: Option<Parent>,
    /// The caller's sampling decision, if it made one (B3 may defer it, and
    /// `b3: 0` decides without naming a span).
    pub sampled: Option<bool>,
    /// Which B3 forms to keep writing for the next hop.
    pub b3_single: bool,
    pub b3_multi: bool,
}

/// This hop's span, as written for the next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub sampled: bool,
}

/// Reads the propagation headers; W3C wins over B3 single over B3 multi
/// when several are present and valid.
pub fn extract(headers: &HeaderMap) -> Incoming {
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let b3_single = text(&B3).map(parse_b3_single);
    let b3_multi = parse_b3_multi(headers);
    let w3c = text(&TRACEPARENT).and_then(parse_traceparent);
    let mut incoming = Incoming {
        b3_single: b3_single.is_some(),
        b3_multi: headers.contains_key(B3_TRACE_ID) || headers.contains_key(B3_SAMPLED),
        ..Incoming::default()
    };
    let (parent, sampled) = match (w3c, b3_single.flatten(), b3_multi) {
        (Some((parent, sampled)), _, _) => (Some(parent), Some(sampled)),
        (None, Some(single), _) => single,
        (None, None, Some(multi)) => multi,
        (None, None, None) => (None, None),
    };
    incoming.parent = parent;
    incoming.sampled = sampled;
    incoming
}

/// Replaces the propagation headers with this hop's span. `tracestate`
/// is kept as the caller sent it: this proxy adds no vendor entry.
pub fn inject(headers: &mut HeaderMap, span: &Outgoing, incoming: &Incoming) {
    for name in [
        &TRACEPARENT,
        &B3,
        &B3_TRACE_ID,
        &B3_SPAN_ID,
        &B3_PARENT_SPAN_ID,
        &B3_SAMPLED,
        &B3_FLAGS,
    ] {
        headers.remove(name);
    }
    if incoming.parent.is_none() {
        // A tracestate belongs to the traceparent it came with.
        headers.remove(&TRACESTATE);
    }
    let trace = hex(&span.trace_id);
    let id = hex(&span.span_id);
    let flag = if span.sampled { "1" } else { "0" };
    insert(headers, TRACEPARENT, format!("00-{trace}-{id}-0{flag}"));
    if incoming.b3_single {
        let value = match span.parent_span_id {
            Some(parent) => format!("{trace}-{id}-{flag}-{}", hex(&parent)),
            None => format!("{trace}-{id}-{flag}"),
        };
        insert(headers, B3, value);
    }
    if incoming.b3_multi {
        insert(headers, B3_TRACE_ID, trace);
        insert(headers, B3_SPAN_ID, id);
        if let Some(parent) = span.parent_span_id {
            insert(headers, B3_PARENT_SPAN_ID, hex(&parent));
        }
        insert(headers, B3_SAMPLED, flag.to_owned());
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: String) {
    // Hex digits and dashes only, so always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(name, value);
    }
}

/// `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; later versions
/// may append fields after another dash, which are ignored.
pub fn parse_traceparent(value: &str) -> Option<(Parent, bool)> {
    let value = value.trim();
    let mut parts = value.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let version = u8::from_str_radix(lower_hex(version, 2)?, 16).ok()?;
    if version == 0xff || (version == 0 && parts.next().is_some()) {
        return None;
    }
    let flags = u8::from_str_radix(lower_hex(flags, 2)?, 16).ok()?;
    let parent = Parent {
        trace_id: nonzero(decode(lower_hex(trace, 32)?)?)?,
        span_id: nonzero(decode(lower_hex(span, 16)?)?)?,
    };
    Some((parent, flags & 1 == 1))
}

/// `b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, or only a
/// sampling decision (`0`, `1`, `d`). `None`: not valid; `Some((None,
/// None))` never happens.
type Decision = (Option<Parent>, Option<bool>);

fn parse_b3_single(value: &str) -> Option<Decision> {
    let value = value.trim();
    let parts: Vec<&str> = value.split('-').collect();
    match parts.as_slice() {
        [flag] => Some((None, Some(b3_sampled(flag)?))),
        [trace, span, rest @ ..] if rest.len() <= 2 => {
            let sampled = match rest.first() {
                Some(flag) => Some(b3_sampled(flag)?),
                None => None,
            };
            if let Some(parent) = rest.get(1) {
                // Checked for well-formedness only: the caller's parent is
                // not this hop's business.
                decode::<8>(lower_hex(parent, 16)?)?;
            }
            Some((Some(b3_parent(trace, span)?), sampled))
        }
        _ => None,
    }
}

fn parse_b3_multi(headers: &HeaderMap) -> Option<Decision> {
    let text = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let sampled = match (text(&B3_FLAGS), text(&B3_SAMPLED)) {
        (Some("1"), _) => Some(true),
        (_, Some(flag)) => match flag {
            "true" => Some(true),
            "false" => Some(false),
            flag => b3_sampled(flag),
        },
        _ => None,
    };
    match (text(&B3_TRACE_ID), text(&B3_SPAN_ID)) {
        (Some(trace), Some(span)) => Some((Some(b3_parent(trace, span)?), sampled)),
        _ => sampled.map(|s| (None, Some(s))),
    }
}

fn b3_sampled(flag: &str) -> Option<bool> {
    match flag {
        "1" | "d" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// A B3 trace id is 32 or 16 hex digits; a short one is left-padded with
/// zeros, as Zipkin does.
fn b3_parent(trace: &str, span: &str) -> Option<Parent> {
    let trace = match trace.len() {
        32 => decode::<16>(lower_hex(trace, 32)?)?,
        16 => {
            let low = decode::<8>(lower_hex(trace, 16)?)?;
            let mut id = [0; 16];
            id[8..].copy_from_slice(&low);
            id
        }
        _ => return None,
    };
    Some(Parent {
        trace_id: nonzero(trace)?,
        span_id: nonzero(decode(lower_hex(span, 16)?)?)?,
    })
}

/// `text` if it is exactly `len` lowercase hex digits.
fn lower_hex(text: &str, len: usize) -> Option<&str> {
    (text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(text)
}

fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0; N];
    if text.len() != N * 2 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn nonzero<const N: usize>(id: [u8; N]) -> Option<[u8; N]> {
    (id != [0; N]).then_some(id)
}

/// Lowercase hex, as every propagation format writes ids.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests;
