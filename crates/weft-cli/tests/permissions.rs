//! TrafficPermissions end to end, with real proxies and strict mTLS:
//! zero trust once `allow-all` is deleted, HTTP rules with a JWT (RS256,
//! keys and tokens made with openssl), a TCP service closed to callers,
//! and denials counted in `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::{path::Path, time::Duration};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_testkit::{DataplaneSpec, TestMesh, free_port, servers, wait};

const BIN: &str = env!("CARGO_BIN_EXE_weft");

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

/// An RSA issuer: its key file and a JWKS file next to it.
struct Issuer {
    key: String,
}

impl Issuer {
    fn new(dir: &Path) -> (Self, String) {
        let key = dir.join("issuer.pem").to_string_lossy().into_owned();
        openssl(&["genrsa", "-out", &key, "2048"], None);
        let modulus =
            String::from_utf8(openssl(&["rsa", "-in", &key, "-noout", "-modulus"], None)).unwrap();
        let hex = modulus.trim().trim_start_matches("Modulus=");
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
            "n": b64url(&n), "e": b64url(&[1, 0, 1])}]});
        let jwks_path = dir.join("jwks.json").to_string_lossy().into_owned();
        std::fs::write(&jwks_path, jwks.to_string()).unwrap();
        (Self { key }, jwks_path)
    }

    fn token(&self, claims: serde_json::Value) -> String {
        let header = b64url(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
        let input = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
        let sig = openssl(
            &["dgst", "-sha256", "-sign", &self.key],
            Some(input.as_bytes()),
        );
        format!("{input}.{}", b64url(&sig))
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `(status, body)` of a curl request with `method` and optional bearer token.
async fn curl(method: &str, url: &str, token: Option<&str>) -> (u16, String) {
    let mut args = vec![
        "-s".to_owned(),
        "-X".into(),
        method.into(),
        "-w".into(),
        "\n%{http_code}".into(),
        url.into(),
    ];
    if let Some(t) = token {
        args.extend(["-H".into(), format!("Authorization: Bearer {t}")]);
    }
    let out = tokio::process::Command::new("curl")
        .args(&args)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_http_jwt_and_tcp() {
    let mesh = TestMesh::new(BIN);
    let cp = mesh.control_plane().await.unwrap();
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    ok(mesh
        .apply(
            &cp,
            "type: Mesh\nname: default\nmtls: { mode: strict, ca: { type: builtin } }\n",
        )
        .await
        .unwrap());

    let app = servers::http_server("backend-app").await;
    let echo = servers::tcp_echo_server().await;
    let _backend = mesh
        .proxy(
            &cp,
            &DataplaneSpec::new("backend-1", "backend", "http", app.port),
        )
        .await
        .unwrap();
    let _db = mesh
        .proxy(&cp, &DataplaneSpec::new("db-1", "db", "tcp", echo.port))
        .await
        .unwrap();
    let mut web = DataplaneSpec::new("web-1", "web", "http", free_port());
    let http_port = web.outbound("backend");
    let tcp_port = web.outbound("db");
    let web = mesh.proxy(&cp, &web).await.unwrap();
    let url = format!("http://127.0.0.1:{http_port}/orders");
    wait::until(
        "allow-all lets web call backend",
        Duration::from_secs(10),
        || async {
            servers::http_get(&url)
                .await
                .ok()
                .filter(|(s, _)| *s == 200)
        },
    )
    .await
    .unwrap();

    ok(mesh
        .cli(
            &cp,
            &["delete", "traffic-permission", "allow-all", "-m", "default"],
        )
        .await
        .unwrap());
    let (_, body) = wait::until("zero trust", Duration::from_secs(10), || async {
        servers::http_get(&url)
            .await
            .ok()
            .filter(|(s, _)| *s == 403)
    })
    .await
    .unwrap();
    assert_eq!(body.trim(), "no TrafficPermission allows web → backend");

    // TCP: no permission, so the connection is closed without an answer.
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", tcp_port))
        .await
        .unwrap();
    let _ = conn.write_all(b"hello").await;
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "denied TCP must be closed: {read:?}"
    );

    let (issuer, jwks) = Issuer::new(&mesh.dir);
    let yaml = format!(
        "type: TrafficPermission\nmesh: default\nname: web-to-backend\nselector:\n  from: {{ service: web }}\n  to: {{ service: backend }}\nspec:\n  action: allow\n  rules:\n    - methods: [POST]\n      paths: [{{ exact: /orders }}]\n      jwt:\n        issuer: https://issuer.example\n        jwks: {{ file: {jwks} }}\n        scopes: [orders:write]\n"
    );
    ok(mesh.apply(&cp, &yaml).await.unwrap());
    let claims = |scope: &str, iss: &str, exp: u64| serde_json::json!({"iss": iss, "exp": exp, "scope": scope});
    let good = issuer.token(claims(
        "orders:write",
        "https://issuer.example",
        now() + 300,
    ));
    wait::until(
        "the rule allows POST /orders with a good token",
        Duration::from_secs(10),
        || async { Some(curl("POST", &url, Some(&good)).await).filter(|(s, _)| *s == 200) },
    )
    .await
    .unwrap();
    let denied = "denied by TrafficPermission \"web-to-backend\"";
    let cases = [
        (
            "GET",
            Some(good.clone()),
            format!("{denied}: no rule matched"),
        ),
        (
            "POST",
            Some(issuer.token(claims("orders:read", "https://issuer.example", now() + 300))),
            format!("{denied}: JWT: missing scope orders:write"),
        ),
        (
            "POST",
            Some(issuer.token(claims(
                "orders:write",
                "https://issuer.example",
                now() - 120,
            ))),
            format!("{denied}: JWT: expired"),
        ),
        (
            "POST",
            Some(issuer.token(claims("orders:write", "https://evil.example", now() + 300))),
            format!("{denied}: JWT: wrong issuer"),
        ),
        ("POST", None, format!("{denied}: JWT: missing token")),
    ];
    for (method, token, reason) in cases {
        let (status, body) = curl(method, &url, token.as_deref()).await;
        assert_eq!((status, body.trim()), (403, reason.as_str()));
    }

    let (_, metrics) = servers::http_get(&_backend.admin_url("/metrics"))
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "weft_authz_denied_total{direction=\"inbound\",service=\"backend\",reason=\"jwt\"} 4"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("reason=\"no_rule_matched\"} 1"),
        "{metrics}"
    );
    let (_, metrics) = servers::http_get(&_db.admin_url("/metrics")).await.unwrap();
    assert!(
        metrics.contains("service=\"db\",reason=\"no_permission\"} 1"),
        "{metrics}"
    );
    drop(web);
}
