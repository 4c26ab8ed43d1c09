//! Zipkin v2 JSON (`POST /api/v2/spans`): a list of spans with hex ids,
//! microsecond times, the local and remote endpoints and string tags.

use serde_json::{Map, Value as Json, json};

use super::{
    context::hex,
    span::{SpanData, SpanKind, Value},
};

/// The JSON body for `spans`.
pub fn encode(spans: &[SpanData]) -> Vec<u8> {
    let list: Vec<Json> = spans.iter().map(span_json).collect();
    // Serializing a Value built from strings and numbers cannot fail.
    serde_json::to_vec(&list).unwrap_or_default()
}

fn span_json(span: &SpanData) -> Json {
    let mut tags = Map::new();
    for (key, value) in &span.attributes {
        let text = match value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
        };
        tags.insert((*key).to_owned(), Json::String(text));
    }
    for (key, value) in span.tags.iter() {
        tags.insert(key.clone(), Json::String(value.clone()));
    }
    if span.error {
        tags.insert("error".into(), Json::String("true".into()));
    }
    let mut remote = Map::new();
    if !span.remote_service.is_empty() {
        remote.insert("serviceName".into(), Json::from(&*span.remote_service));
    }
    if let Some(addr) = span.remote_address {
        let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
        remote.insert(family.into(), Json::from(addr.ip().to_string()));
        remote.insert("port".into(), Json::from(addr.port()));
    }
    let mut object = json!({
        "traceId": hex(&span.trace_id),
        "id": hex(&span.span_id),
        "name": span.name,
        "kind": match span.kind { SpanKind::Server => "SERVER", SpanKind::Client => "CLIENT" },
        "timestamp": span.start_unix_nanos() / 1000,
        // Zipkin drops spans with a zero duration.
        "duration": (span.duration.as_micros().max(1)).min(u128::from(u64::MAX)) as u64,
        "localEndpoint": { "serviceName": &*span.local_service },
        "tags": tags,
    });
    if let Some(parent) = span.parent_span_id {
        object["parentId"] = Json::from(hex(&parent));
    }
    if !remote.is_empty() {
        object["remoteEndpoint"] = Json::Object(remote);
    }
    object
}
