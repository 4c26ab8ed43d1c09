//! Registration, ACK/NACK, disconnects, deregistration and refusals.

use super::*;

#[tokio::test]
async fn a_caller_gets_the_backend_and_acks_show_in_status() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut backend_a = h.connect(backend("backend-a", 20010)).await.unwrap();
    let first = backend_a.next_config().await;
    assert_eq!(first.dataplane, "backend-a");
    assert_eq!(first.inbounds[0].port, 20010);
    assert!(
        h.store
            .get(&ResourceKey::in_mesh(
                Kind::Dataplane,
                "default",
                "backend-a"
            ))
            .await
            .unwrap()
            .is_some(),
        "registration stores the Dataplane"
    );

    let mut web = h.connect(caller()).await.unwrap();
    let config = web.next_config().await;
    assert_eq!(config.dataplane, "web-1");
    assert_eq!(endpoint_names(&config), ["backend-a"]);
    assert_eq!(config.outbounds[0].endpoints[0].port, 20010);
    assert!(
        config.version > first.version,
        "one counter for every proxy"
    );

    web.send(proxy_message::Kind::Ack(Ack {
        version: config.version,
    }))
    .await;
    let sessions = h.distributor.sessions().clone();
    let acked = wait_for(|| {
        let s = sessions.status("default", "web-1");
        (s.config_version_acked == Some(config.version)).then_some(s)
    })
    .await;
    assert!(acked.online);
    assert_eq!(acked.config_version_sent, Some(config.version));
    assert_eq!(acked.proxy_version.as_deref(), Some("0.1.0-test"));
    assert_eq!(acked.outbounds[0].endpoints[0].dataplane, "backend-a");

    web.send(proxy_message::Kind::Nack(Nack {
        version: config.version,
        reason: "port in use".into(),
    }))
    .await;
    let nacked = wait_for(|| sessions.status("default", "web-1").last_nack).await;
    assert_eq!(nacked.reason, "port in use");
}

#[tokio::test]
async fn a_dropped_backend_leaves_the_callers_config_promptly() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut a = h.connect(backend("backend-a", 20010)).await.unwrap();
    a.next_config().await;
    let mut b = h.connect(backend("backend-b", 20020)).await.unwrap();
    b.next_config().await;
    let mut web = h.connect(caller()).await.unwrap();
    let config = web.config_where(|c| endpoint_names(c).len() == 2).await;
    assert_eq!(endpoint_names(&config), ["backend-a", "backend-b"]);

    drop(a);
    let config = web
        .config_where(|c| endpoint_names(c) == ["backend-b"])
        .await;
    assert_eq!(
        config.outbounds[0].protocol(),
        weft_api::proto::Protocol::Http
    );
    let status = h.distributor.sessions().status("default", "backend-a");
    assert!(!status.online && status.disconnected_at.is_some());

    // The Dataplane stays stored, so its proxy can come back.
    let mut again = h.connect(backend("backend-a", 20010)).await.unwrap();
    again.next_config().await;
    web.config_where(|c| endpoint_names(c).len() == 2).await;
}

fn deregister_request(name: &str) -> DeregisterRequest {
    DeregisterRequest {
        token: String::new(),
        mesh: "default".into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn deregister_deletes_the_dataplane_everywhere() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut a = h.connect(backend("backend-a", 20010)).await.unwrap();
    a.next_config().await;
    let mut web = h.connect(caller()).await.unwrap();
    web.config_where(|c| endpoint_names(c) == ["backend-a"])
        .await;

    // As a stopping proxy does: close the stream, deregister at once (the
    // control plane may not have seen the stream end yet).
    drop(a);
    let request = deregister_request("backend-a");
    h.client().await.deregister(request.clone()).await.unwrap();
    let key = ResourceKey::in_mesh(Kind::Dataplane, "default", "backend-a");
    assert!(h.store.get(&key).await.unwrap().is_none());
    assert!(
        h.distributor
            .sessions()
            .status("default", "backend-a")
            .disconnected_at
            .is_none(),
        "forgotten"
    );
    web.config_where(|c| endpoint_names(c).is_empty()).await;
    // Deregistering again (or something unknown) is fine.
    h.client().await.deregister(request).await.unwrap();
}

#[tokio::test]
async fn a_late_deregister_leaves_a_new_instance_alone() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut old = h.connect(backend("backend-a", 20010)).await.unwrap();
    old.next_config().await;
    let mut web = h.connect(caller()).await.unwrap();
    web.config_where(|c| endpoint_names(c) == ["backend-a"])
        .await;
    drop(old);
    web.config_where(|c| endpoint_names(c).is_empty()).await;
    let mut new = h.connect(backend("backend-a", 20010)).await.unwrap();
    new.next_config().await;
    web.config_where(|c| endpoint_names(c) == ["backend-a"])
        .await;

    // The old instance's Deregister arrives after the new one registered.
    h.client()
        .await
        .deregister(deregister_request("backend-a"))
        .await
        .unwrap();
    let key = ResourceKey::in_mesh(Kind::Dataplane, "default", "backend-a");
    assert!(
        h.store.get(&key).await.unwrap().is_some(),
        "still registered"
    );
    assert!(
        h.distributor
            .sessions()
            .status("default", "backend-a")
            .online
    );
    // Neither the new instance's stream nor the callers' configs change.
    for proxy in [&mut new, &mut web] {
        let quiet = tokio::time::timeout(Duration::from_millis(300), proxy.configs.message()).await;
        assert!(quiet.is_err(), "unexpected: {quiet:?}");
    }
}

#[tokio::test]
async fn a_second_stream_for_an_online_dataplane_is_refused() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut a = h.connect(backend("backend-a", 20010)).await.unwrap();
    a.next_config().await;
    let err = h.connect(backend("backend-a", 20010)).await.err().unwrap();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(
        err.message(),
        "dataplane default/backend-a is already connected"
    );
    // The first session is untouched.
    assert!(
        h.distributor
            .sessions()
            .status("default", "backend-a")
            .online
    );
}

#[tokio::test]
async fn bad_hellos_are_refused_with_the_reason() {
    let h = Harness::start(Duration::ZERO, vec![]).await;
    let mut missing_mesh = backend("backend-a", 20010);
    missing_mesh["mesh"] = "nope".into();
    let err = h.connect(missing_mesh).await.err().unwrap();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "mesh \"nope\" does not exist");

    let mut invalid = backend("backend-a", 20010);
    invalid["networking"]["inbound"][0]["port"] = 70000.into();
    let err = h.connect(invalid).await.err().unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("networking.inbound[0].port: 70000 is not a port (1-65535)"),
        "{}",
        err.message()
    );

    let err = h
        .connect(json!({"type": "Mesh", "name": "m"}))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("must be a Dataplane"),
        "{}",
        err.message()
    );

    // Not a Hello first.
    let (tx, rx) = mpsc::channel(1);
    tx.send(ProxyMessage {
        kind: Some(proxy_message::Kind::Ack(Ack { version: 1 })),
    })
    .await
    .unwrap();
    let err = h
        .client()
        .await
        .stream(ReceiverStream::new(rx))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "the first message must be Hello");

    // None of these registered anything or took a slot.
    assert!(
        h.store
            .list(Kind::Dataplane, None)
            .await
            .unwrap()
            .is_empty()
    );
    let mut a = h.connect(backend("backend-a", 20010)).await.unwrap();
    a.next_config().await;
}
