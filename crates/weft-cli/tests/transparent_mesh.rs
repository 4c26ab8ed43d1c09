//! Transparent proxying across hosts: five network namespaces on a bridge
//! (a control plane, a client and three backends), each application under
//! another uid than its proxy, none of them configured for the mesh. Needs
//! root: fails, never skips, without it (see `weft_testkit::netns::require`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod transparent_support;

use std::time::{Duration, Instant};

use transparent_support::Cluster;
use weft_testkit::netns::pcap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_reach_mesh_services_by_name_over_mtls_and_fail_over_within_a_second() {
    let mut c = Cluster::start().await;
    let client = c.net.host(2).clone();

    // Every request through the mesh, captured on the bridge: only TLS.
    let capture_file = c.dir.join("bridge.pcap");
    let mut capture = c.net.capture(&capture_file, &c.dir).await.unwrap();
    let mut served = Vec::new();
    for i in 0..9 {
        let body = c
            .curl_ok(&client, &format!("http://backend.mesh/tp-secret-{i}"))
            .await;
        assert!(
            body.contains(&format!("\"path\":\"/tp-secret-{i}\"")),
            "{body}"
        );
        served.push(body);
    }
    for backend in ["backend-3", "backend-4", "backend-5"] {
        assert!(
            served.iter().any(|b| b.contains(backend)),
            "{backend} never answered: {served:?}"
        );
    }
    // Names outside the mesh go to the host's resolver, through the proxy.
    let forwarded = "weft_dns_queries_total{answer=\"forwarded\"}";
    let before = c.counter(2, forwarded).await;
    let out = c
        .net
        .exec(
            &client,
            Some(transparent_support::APP_UID),
            &["getent", "ahostsv4", "outside.example"],
        )
        .await
        .unwrap();
    let resolved = String::from_utf8_lossy(&out.stdout);
    assert!(
        resolved.contains(&transparent_support::RESOLVER_ANSWER.to_string()),
        "{resolved}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(c.counter(2, forwarded).await > before);

    // Each request was captured on both ends.
    let captured = "weft_redirect_connections_total{direction=\"outbound\",outcome=\"mesh\",protocol=\"http1\"}";
    assert!(c.counter(2, captured).await >= 9);
    let arrived = "weft_redirect_connections_total{direction=\"inbound\",outcome=\"mesh\",protocol=\"undetected\"}";
    for backend in 3..=5 {
        assert!(c.counter(backend, arrived).await >= 1, "host {backend}");
    }
    // The addresses the client used before the mesh lead into it too: a
    // backend's proxy port (strict mTLS, so plaintext would be refused) and
    // a backend application's own port.
    let body = c
        .curl_ok(&client, "http://10.77.0.3:20001/tp-secret-endpoint")
        .await;
    assert!(body.contains("backend-"), "{body}");
    let body = c
        .curl_ok(&client, "http://10.77.0.4:8080/tp-secret-app-port")
        .await;
    assert!(body.contains("backend-"), "{body}");
    // Detection: HTTP/2 with prior knowledge is HTTP too; TLS to an HTTP
    // service cannot go through its stack and is closed.
    let body = c
        .curl_ok_with(
            &client,
            &["--http2-prior-knowledge"],
            "http://backend.mesh/tp-secret-h2",
        )
        .await;
    assert!(body.contains("/tp-secret-h2"), "{body}");
    let out = c.curl(&client, "https://backend.mesh/").await;
    assert!(!out.status.success(), "TLS to an HTTP service went through");
    assert!(
        c.client_proxy_log().contains("something other than HTTP"),
        "{}",
        c.client_proxy_log()
    );
    capture.terminate(Duration::from_secs(5)).await;
    let bytes = std::fs::read(&capture_file).unwrap();
    let checked = pcap::tls_only(&bytes).unwrap();
    assert!(checked.flows >= 4 && checked.records > 20, "{checked:?}");
    assert!(
        !bytes.windows(10).any(|w| w == b"tp-secret-"),
        "a request path crossed the bridge in plaintext"
    );

    // A destination outside the mesh passes through (outsideMesh: passthrough).
    let body = c.curl_ok(&client, "http://10.77.0.4:9090/outside").await;
    assert!(body.contains("\"service\":\"plain\""), "{body}");

    // IPv6 is captured too, on both ends: nothing leaves the proxies' sight
    // over the other family.
    let passthrough = |direction: &str| {
        format!(
            "weft_redirect_connections_total{{direction=\"{direction}\",outcome=\"passthrough\",protocol=\"undetected\"}}"
        )
    };
    let (out_before, in_before) = (
        c.counter(2, &passthrough("outbound")).await,
        c.counter(4, &passthrough("inbound")).await,
    );
    let body = c.curl_ok(&client, "http://[fd77::4]:9090/outside-v6").await;
    assert!(body.contains("\"service\":\"plain6\""), "{body}");
    assert_eq!(c.counter(2, &passthrough("outbound")).await, out_before + 1);
    assert_eq!(c.counter(4, &passthrough("inbound")).await, in_before + 1);

    // Redirected inbound traffic passes the backends' authorization: a
    // TrafficPermission denying the client is enforced, and lifted.
    let deny = c.file(
        "deny.yaml",
        "type: TrafficPermission\nmesh: default\nname: client-not-to-backend\n\
         selector: { from: { service: client }, to: { service: backend } }\n\
         spec: { action: deny }\n",
    );
    c.cli(&["apply", "-f", &deny.display().to_string()]).await;
    c.wait_for_status(&client, "http://backend.mesh/denied", "403")
        .await;
    c.cli(&[
        "delete",
        "traffic-permission",
        "client-not-to-backend",
        "-m",
        "default",
    ])
    .await;
    c.wait_for_status(&client, "http://backend.mesh/allowed", "200")
        .await;

    // One backend's host vanishes: within a second, its traffic goes to
    // the other two.
    let gone = c.net.host(3).clone();
    c.net.set_link(&gone, false).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..8 {
        // Each request is answered at once: none waits on the vanished host.
        let sent = Instant::now();
        let body = c
            .curl_ok(&client, &format!("http://backend.mesh/after-{i}"))
            .await;
        assert!(!body.contains("backend-3"), "{body}");
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "request {i} took {:?}",
            sent.elapsed()
        );
    }

    // The mesh refuses what leaves it, once told to.
    c.apply_mesh("refuse").await;
    c.wait_for_client_config(|config| config["transparent"]["outsideMesh"] == "refuse")
        .await;
    let out = c.curl(&client, "http://10.77.0.4:9090/outside").await;
    assert!(!out.status.success(), "passed through although refused");

    // Back to passthrough, which also applies to ports of the backend
    // hosts that no inbound declares (the plain server's).
    c.apply_mesh("passthrough").await;
    c.wait_for_client_config(|config| config["transparent"]["outsideMesh"] == "passthrough")
        .await;
    c.wait_until_ok(&client, "http://10.77.0.4:9090/outside-again")
        .await;

    // Uninstalling the rules gives the client host its plain network back:
    // the mesh's strict port refuses a plaintext caller, and a server
    // outside the mesh is reached directly (the proxy is stopped).
    c.uninstall(&client).await;
    let out = c.curl(&client, "http://10.77.0.3:20001/plain").await;
    assert!(
        !out.status.success(),
        "reached a strict mTLS port in plaintext"
    );
    c.stop_client_proxy().await;
    let body = c.curl_ok(&client, "http://10.77.0.4:9090/direct").await;
    assert!(body.contains("\"service\":\"plain\""), "{body}");
}
