//! A fake control plane: a real tonic server whose sessions the test
//! drives by hand.

use std::net::SocketAddr;

use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};
use weft_api::proto::{
    DeregisterRequest, DeregisterResponse, Hello, ProxyConfig, ProxyMessage,
    dataplane_discovery_server::{DataplaneDiscovery, DataplaneDiscoveryServer},
    proxy_message::Kind,
};

use super::support::listen;

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
        self.replies.message().await.unwrap().unwrap().kind.unwrap()
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
    sessions: mpsc::UnboundedReceiver<Session>,
    deregistered: mpsc::UnboundedReceiver<DeregisterRequest>,
}

struct Service {
    sessions: mpsc::UnboundedSender<Session>,
    deregistered: mpsc::UnboundedSender<DeregisterRequest>,
}

impl FakeControlPlane {
    pub async fn start() -> Self {
        let (listener, addr) = listen().await;
        Self::serve(listener, addr)
    }

    fn serve(listener: tokio::net::TcpListener, addr: SocketAddr) -> Self {
        let (sessions_tx, sessions) = mpsc::unbounded_channel();
        let (deregistered_tx, deregistered) = mpsc::unbounded_channel();
        let service = Service {
            sessions: sessions_tx,
            deregistered: deregistered_tx,
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(DataplaneDiscoveryServer::new(service))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self {
            url: format!("http://{addr}"),
            sessions,
            deregistered,
        }
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
        _request: tonic::Request<weft_api::proto::CertificateRequest>,
    ) -> Result<tonic::Response<weft_api::proto::CertificateResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not needed by these tests"))
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

    async fn deregister(
        &self,
        request: Request<DeregisterRequest>,
    ) -> Result<Response<DeregisterResponse>, Status> {
        let _ = self.deregistered.send(request.into_inner());
        Ok(Response::new(DeregisterResponse {}))
    }
}
