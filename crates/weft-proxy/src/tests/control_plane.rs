//! A fake control plane: a real tonic server whose sessions the test
//! drives by hand, and which issues certificates from a test CA.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};
use weft_api::proto::{
    CertificateRequest, CertificateResponse, DeregisterRequest, DeregisterResponse, Hello,
    ProxyConfig, ProxyMessage,
    dataplane_discovery_server::{DataplaneDiscovery, DataplaneDiscoveryServer},
    proxy_message::Kind,
};

use super::{ca::TestCa, support::listen};

/// One proxy stream, as the control plane sees it.
pub struct Session {
    pub hello: Hello,
    configs: mpsc::Sender<Result<ProxyConfig, Status>>,
    replies: Streaming<ProxyMessage>,
}

impl Session {
    pub async fn push(&self, config: ProxyConfig) {
        self.configs.send(Ok(config)).await.unwrap();
    }

    /// The proxy's next ACK or NACK.
    pub async fn reply(&mut self) -> Kind {
        // Traffic reports come in between; they answer nothing.
        loop {
            match self.replies.message().await.unwrap().unwrap().kind.unwrap() {
                Kind::StatsReport(_) => continue,
                answer => return answer,
            }
        }
    }

    /// The proxy's next traffic report, skipping any other message.
    pub async fn report(&mut self) -> weft_api::proto::StatsReport {
        loop {
            if let Kind::StatsReport(r) =
                self.replies.message().await.unwrap().unwrap().kind.unwrap()
            {
                return r;
            }
        }
    }

    /// Pushes `config` and waits for the answer.
    pub async fn reply_to(&mut self, config: ProxyConfig) -> Kind {
        self.push(config).await;
        self.reply().await
    }

    /// Ends the stream with an error status.
    pub async fn fail(self, status: Status) {
        self.configs.send(Err(status)).await.unwrap();
    }
}

pub struct FakeControlPlane {
    pub url: String,
    pub ca: Arc<TestCa>,
    issuing: Arc<Issuing>,
    sessions: mpsc::UnboundedReceiver<Session>,
    deregistered: mpsc::UnboundedReceiver<DeregisterRequest>,
    requests: mpsc::UnboundedReceiver<CertificateRequest>,
}

/// How the fake CA answers, changed by the test as it goes.
struct Issuing {
    ca: Arc<TestCa>,
    lifetime: Mutex<Duration>,
    failing: AtomicBool,
    requests: mpsc::UnboundedSender<CertificateRequest>,
}

struct Service {
    sessions: mpsc::UnboundedSender<Session>,
    deregistered: mpsc::UnboundedSender<DeregisterRequest>,
    issuing: Arc<Issuing>,
}

impl FakeControlPlane {
    pub async fn start() -> Self {
        let (listener, addr) = listen().await;
        Self::serve(listener, addr)
    }

    fn serve(listener: tokio::net::TcpListener, addr: SocketAddr) -> Self {
        let (sessions_tx, sessions) = mpsc::unbounded_channel();
        let (deregistered_tx, deregistered) = mpsc::unbounded_channel();
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let ca = TestCa::new("weft test CA");
        let issuing = Arc::new(Issuing {
            ca: ca.clone(),
            lifetime: Mutex::new(Duration::from_secs(3600)),
            failing: AtomicBool::new(false),
            requests: requests_tx,
        });
        let service = Service {
            sessions: sessions_tx,
            deregistered: deregistered_tx,
            issuing: issuing.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(DataplaneDiscoveryServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self {
            url: format!("http://{addr}"),
            ca,
            issuing,
            sessions,
            deregistered,
            requests,
        }
    }

    /// Lifetime of the certificates issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        *self.issuing.lifetime.lock().unwrap() = lifetime;
    }

    /// While failing, `IssueCertificate` answers UNAVAILABLE.
    pub fn set_failing(&self, failing: bool) {
        self.issuing.failing.store(failing, Ordering::SeqCst);
    }

    /// The next `IssueCertificate` request (answered or failed).
    pub async fn certificate_request(&mut self) -> CertificateRequest {
        self.requests.recv().await.unwrap()
    }

    /// Whether a certificate was requested and not yet taken.
    pub fn has_certificate_request(&mut self) -> bool {
        !self.requests.is_empty()
    }

    /// The next proxy stream, after its Hello.
    pub async fn session(&mut self) -> Session {
        self.sessions.recv().await.unwrap()
    }

    pub async fn deregistered(&mut self) -> DeregisterRequest {
        self.deregistered.recv().await.unwrap()
    }
}

#[tonic::async_trait]
impl DataplaneDiscovery for Service {
    async fn issue_certificate(
        &self,
        request: Request<CertificateRequest>,
    ) -> Result<Response<CertificateResponse>, Status> {
        let request = request.into_inner();
        let _ = self.issuing.requests.send(request.clone());
        if self.issuing.failing.load(Ordering::SeqCst) {
            return Err(Status::unavailable("CA offline"));
        }
        let lifetime = *self.issuing.lifetime.lock().unwrap();
        self.issuing
            .ca
            .sign(&request.csr_pem, lifetime, None)
            .map(Response::new)
            .map_err(Status::invalid_argument)
    }

    type StreamStream = ReceiverStream<Result<ProxyConfig, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<ProxyMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut replies = request.into_inner();
        let Some(ProxyMessage {
            kind: Some(Kind::Hello(hello)),
        }) = replies.message().await?
        else {
            return Err(Status::invalid_argument("the first message must be Hello"));
        };
        if hello.dataplane_json.contains("\"refused\"") {
            return Err(Status::already_exists(
                "dataplane \"refused\" is already connected",
            ));
        }
        let (configs, rx) = mpsc::channel(4);
        let _ = self.sessions.send(Session {
            hello,
            configs,
            replies,
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type TapStream = ReceiverStream<Result<weft_api::proto::TapCommand, Status>>;

    /// Tapping is tested against the real control plane
    /// (`weft-cli/tests/observability_views.rs`); this one answers like a
    /// control plane without it, which a proxy must shrug off.
    async fn tap(
        &self,
        _request: Request<Streaming<weft_api::proto::TapEvent>>,
    ) -> Result<Response<Self::TapStream>, Status> {
        Err(Status::unimplemented(
            "no tapping in the fake control plane",
        ))
    }

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let _ = self.deregistered.send(request.into_inner());
        Ok(Response::new(DeregisterResponse {}))
    }
}
