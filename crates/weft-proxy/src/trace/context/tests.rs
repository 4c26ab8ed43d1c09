//! Propagation headers: good ones are joined, bad ones start a new trace,
//! and the next hop gets the formats the request came with.

use http::{HeaderMap, HeaderValue};

use super::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN: &str = "00f067aa0ba902b7";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn parent() -> Parent {
    Parent {
        trace_id: decode(TRACE).unwrap(),
        span_id: decode(SPAN).unwrap(),
    }
}

#[test]
fn w3c_traceparent_is_joined() {
    let tp = format!("00-{TRACE}-{SPAN}-01");
    let incoming = extract(&headers(&[("traceparent", &tp)]));
    assert_eq!(incoming.parent, Some(parent()));
    assert_eq!(incoming.sampled, Some(true));
    assert!(!incoming.b3_single && !incoming.b3_multi);

    let tp = format!("00-{TRACE}-{SPAN}-00");
    assert_eq!(
        extract(&headers(&[("traceparent", &tp)])).sampled,
        Some(false)
    );
    // A future version may add fields.
    let tp = format!("01-{TRACE}-{SPAN}-01-extra");
    assert_eq!(
        extract(&headers(&[("traceparent", &tp)])).parent,
        Some(parent())
    );
}

#[test]
fn bad_traceparents_are_ignored() {
    let zero_trace = format!("00-{}-{SPAN}-01", "0".repeat(32));
    let zero_span = format!("00-{TRACE}-{}-01", "0".repeat(16));
    let upper = format!("00-{}-{SPAN}-01", TRACE.to_uppercase());
    let short = format!("00-{}-{SPAN}-01", &TRACE[1..]);
    let extra_v0 = format!("00-{TRACE}-{SPAN}-01-x");
    let version_ff = format!("ff-{TRACE}-{SPAN}-01");
    let bad_flags = format!("00-{TRACE}-{SPAN}-zz");
    for bad in [
        "",
        "garbage",
        "00-abc",
        &zero_trace,
        &zero_span,
        &upper,
        &short,
        &extra_v0,
        &version_ff,
        &bad_flags,
    ] {
        let incoming = extract(&headers(&[("traceparent", bad)]));
        assert_eq!(incoming, Incoming::default(), "{bad:?}");
    }
    // Not even UTF-8.
    let mut map = HeaderMap::new();
    map.insert(TRACEPARENT, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
    assert_eq!(extract(&map), Incoming::default());
}

#[test]
fn b3_single_header_is_joined() {
    let incoming = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}-1-{SPAN}"))]));
    assert_eq!(incoming.parent, Some(parent()));
    assert_eq!(incoming.sampled, Some(true));
    assert!(incoming.b3_single);

    let deferred = extract(&headers(&[("b3", &format!("{TRACE}-{SPAN}"))]));
    assert_eq!(deferred.parent, Some(parent()));
    assert_eq!(deferred.sampled, None);

    let deny = extract(&headers(&[("b3", "0")]));
    assert_eq!((deny.parent, deny.sampled), (None, Some(false)));

    // A 64-bit trace id is padded on the left.
    let short = extract(&headers(&[("b3", &format!("{}-{SPAN}-d", &TRACE[16..]))]));
    let id = short.parent.unwrap().trace_id;
    assert_eq!(hex(&id), format!("{}{}", "0".repeat(16), &TRACE[16..]));
    assert_eq!(short.sampled, Some(true));
}

#[test]
fn bad_b3_single_headers_are_ignored() {
    for bad in [
        "x".to_owned(),
        TRACE.to_owned(),
        format!("{TRACE}-{SPAN}-7"),
        format!("{TRACE}-{SPAN}-1-nothex"),
        format!("{TRACE}-{SPAN}-1-{SPAN}-more"),
        format!("{}-{SPAN}", "0".repeat(32)),
        format!("{TRACE}-{}", &SPAN[2..]),
    ] {
        let incoming = extract(&headers(&[("b3", &bad)]));
        assert_eq!(incoming.parent, None, "{bad:?}");
        assert_eq!(incoming.sampled, None, "{bad:?}");
    }
}

#[test]
fn b3_multi_headers_are_joined() {
    let incoming = extract(&headers(&[
        ("X-B3-TraceId", TRACE),
        ("X-B3-SpanId", SPAN),
        ("X-B3-ParentSpanId", "1111111111111111"),
        ("X-B3-Sampled", "0"),
    ]));
    assert_eq!(incoming.parent, Some(parent()));
    assert_eq!(incoming.sampled, Some(false));
    assert!(incoming.b3_multi && !incoming.b3_single);

    let debug = extract(&headers(&[
        ("X-B3-TraceId", TRACE),
        ("X-B3-SpanId", SPAN),
        ("X-B3-Flags", "1"),
    ]));
    assert_eq!(debug.sampled, Some(true));

    let bad = extract(&headers(&[("X-B3-TraceId", TRACE), ("X-B3-SpanId", "zz")]));
    assert_eq!(bad.parent, None);
}

#[test]
fn w3c_wins_over_b3() {
    let other = "11111111111111111111111111111111";
    let incoming = extract(&headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("b3", &format!("{other}-{SPAN}-0")),
    ]));
    assert_eq!(incoming.parent, Some(parent()));
    assert_eq!(incoming.sampled, Some(true));
    assert!(incoming.b3_single, "b3 is still written for the next hop");
}

fn outgoing() -> Outgoing {
    Outgoing {
        trace_id: parent().trace_id,
        span_id: [0xab; 8],
        parent_span_id: Some(parent().span_id),
        sampled: true,
    }
}

#[test]
fn inject_writes_traceparent_and_the_b3_forms_that_came_in() {
    let mut map = headers(&[
        ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
        ("tracestate", "vendor=x"),
        ("X-B3-TraceId", TRACE),
        ("X-B3-SpanId", SPAN),
        ("X-B3-Sampled", "1"),
    ]);
    let incoming = extract(&map);
    inject(&mut map, &outgoing(), &incoming);
    let get = |n: &str| map.get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        get("traceparent").unwrap(),
        format!("00-{TRACE}-abababababababab-01")
    );
    assert_eq!(get("tracestate").unwrap(), "vendor=x");
    assert_eq!(get("x-b3-traceid").unwrap(), TRACE);
    assert_eq!(get("x-b3-spanid").unwrap(), "abababababababab");
    assert_eq!(get("x-b3-parentspanid").unwrap(), SPAN);
    assert_eq!(get("x-b3-sampled").unwrap(), "1");
    assert_eq!(get("b3"), None, "b3 single did not come in");

    let mut map = headers(&[("b3", &format!("{TRACE}-{SPAN}-1"))]);
    let incoming = extract(&map);
    let unsampled = Outgoing {
        sampled: false,
        ..outgoing()
    };
    inject(&mut map, &unsampled, &incoming);
    assert_eq!(
        map.get("b3").unwrap(),
        &format!("{TRACE}-abababababababab-0-{SPAN}")
    );
    assert_eq!(
        map.get("traceparent").unwrap(),
        &format!("00-{TRACE}-abababababababab-00")
    );
}

#[test]
fn a_stray_tracestate_is_dropped_with_a_new_trace() {
    let mut map = headers(&[("traceparent", "junk"), ("tracestate", "vendor=x")]);
    let incoming = extract(&map);
    let root = Outgoing {
        parent_span_id: None,
        ..outgoing()
    };
    inject(&mut map, &root, &incoming);
    assert!(map.get("tracestate").is_none());
    assert_eq!(map.get_all("traceparent").iter().count(), 1);
}
