//! Hop-by-hop headers: they describe one connection, so a proxy must drop
//! them instead of passing them to the next one (RFC 9110 §7.6.1).

use http::{
    HeaderMap, HeaderName, HeaderValue,
    header::{CONNECTION, TE, UPGRADE},
};

/// Fixed hop-by-hop headers, besides `Connection`, `Upgrade` and `TE`,
/// which need more care.
const HOP_BY_HOP: [&str; 3] = ["keep-alive", "proxy-connection", "transfer-encoding"];

/// Whether `Connection` lists `token` (case-insensitively).
pub fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers: the fixed list, `Connection` and every
/// header it names, and `TE` unless it is `trailers` (which gRPC needs end
/// to end). With `keep_upgrade`, `Upgrade` and `Connection: upgrade` stay,
/// so an upgrade handshake can pass through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Most messages carry none: one pass over the names (standard ones
    // compare as enums) spares the lookups below, each of which hashes.
    if !keep_upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    // The common case is one Connection value: take it by value (no copy)
    // and remove what it names by `&str` (no allocation). Several values
    // are rare enough to pay for a Vec.
    match headers.get_all(CONNECTION).iter().count() {
        0 => {}
        1 => {
            if let Some(value) = headers.remove(CONNECTION) {
                remove_named(headers, &value, keep_upgrade);
            }
        }
        _ => {
            let values: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
            headers.remove(CONNECTION);
            for value in &values {
                remove_named(headers, value, keep_upgrade);
            }
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    keep_only_te_trailers(headers);
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
}

/// Whether a header with this name is (or may be) removed: `Connection`
/// names its own, and `TE: trailers` alone stays, so both need a closer look.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION || name == TE || name == UPGRADE || HOP_BY_HOP.contains(&name.as_str())
}

/// HTTP/2 allows `TE` only as `trailers`, and other codings are hop-by-hop:
/// any `trailers` token (in any of several lines, any case) becomes one
/// `te: trailers`; anything else is dropped.
fn keep_only_te_trailers(headers: &mut HeaderMap) {
    let mut lines = headers.get_all(TE).iter();
    let Some(first) = lines.next() else { return };
    if first == "trailers" && lines.next().is_none() {
        return;
    }
    let wants_trailers = headers
        .get_all(TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("trailers")
        });
    headers.remove(TE);
    if wants_trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
}

fn remove_named(headers: &mut HeaderMap, connection: &HeaderValue, keep_upgrade: bool) {
    // A value that is not visible ASCII names no valid header.
    let Ok(names) = connection.to_str() else {
        return;
    };
    for name in names.split(',').map(str::trim) {
        let keep = (keep_upgrade && name.eq_ignore_ascii_case("upgrade"))
            // `Connection: te` is how HTTP/1.1 clients send `te: trailers`.
            || name.eq_ignore_ascii_case("te");
        if !keep && !name.is_empty() {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn te_keeps_only_trailers_across_lines_and_case() {
        let mut h = HeaderMap::new();
        h.append(TE, HeaderValue::from_static("Trailers"));
        h.append(TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut h, false);
        let te: Vec<_> = h.get_all(TE).iter().collect();
        assert_eq!(te, ["trailers"]);

        let mut h = HeaderMap::new();
        h.append(TE, HeaderValue::from_static("gzip, deflate;q=0.5"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.get(TE).is_none());
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<_> = map.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn strips_fixed_and_named_headers() {
        let mut map = headers(&[
            ("connection", "keep-alive, x-private"),
            ("connection", "X-Other"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-private", "1"),
            ("x-other", "2"),
            ("x-end-to-end", "3"),
            ("host", "backend"),
        ]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(names(&map), ["host", "x-end-to-end"]);
    }

    #[test]
    fn each_hop_by_hop_header_alone_is_removed() {
        for name in [
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
            "connection",
            "te",
        ] {
            let mut map = headers(&[(name, "x"), ("host", "backend")]);
            strip_hop_by_hop(&mut map, false);
            assert_eq!(names(&map), ["host"], "{name} should be removed");
        }
    }

    #[test]
    fn end_to_end_headers_are_left_alone() {
        let pairs = [
            ("host", "backend"),
            ("accept", "*/*"),
            ("x-b3-traceid", "1"),
        ];
        let mut map = headers(&pairs);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(map, headers(&pairs));
    }

    #[test]
    fn keeps_te_trailers_only() {
        let mut map = headers(&[("te", "trailers"), ("connection", "te")]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(map.get(TE).unwrap(), "trailers");
        let mut map = headers(&[("te", "gzip")]);
        strip_hop_by_hop(&mut map, false);
        assert!(map.get(TE).is_none());
    }

    #[test]
    fn keeps_the_upgrade_handshake() {
        let mut map = headers(&[
            ("connection", "Upgrade, x-private"),
            ("upgrade", "websocket"),
            ("x-private", "1"),
            ("sec-websocket-key", "abc"),
        ]);
        assert!(connection_has(&map, "upgrade"));
        strip_hop_by_hop(&mut map, true);
        assert_eq!(names(&map), ["connection", "sec-websocket-key", "upgrade"]);
        assert_eq!(map.get(CONNECTION).unwrap(), "upgrade");
    }

    #[test]
    fn ignores_garbage_in_connection() {
        let mut map = HeaderMap::new();
        map.insert(CONNECTION, HeaderValue::from_bytes(b"\xff, ,,").unwrap());
        map.insert("x-a", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut map, false);
        assert_eq!(names(&map), ["x-a"]);
    }
}
