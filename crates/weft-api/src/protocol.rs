//! The application protocols an inbound can declare in its `protocol` tag.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::proto;

/// How a proxy handles a service's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Opaque bytes, copied as they come.
    #[default]
    Tcp,
    /// HTTP/1.1 (and HTTP/2 from peers that speak it).
    Http,
    /// HTTP/2 with prior knowledge.
    Http2,
    /// gRPC: HTTP/2 with trailers.
    Grpc,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::Tcp,
        Protocol::Http,
        Protocol::Http2,
        Protocol::Grpc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Http => "http",
            Protocol::Http2 => "http2",
            Protocol::Grpc => "grpc",
        }
    }

    /// Whether requests are parsed (HTTP) rather than copied as bytes.
    pub fn is_http(self) -> bool {
        !matches!(self, Protocol::Tcp)
    }

    /// Whether the service must be spoken to in HTTP/2.
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc)
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a protocol (tcp, http, http2, grpc)"))
    }
}

impl From<Protocol> for proto::Protocol {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => proto::Protocol::Tcp,
            Protocol::Http => proto::Protocol::Http,
            Protocol::Http2 => proto::Protocol::Http2,
            Protocol::Grpc => proto::Protocol::Grpc,
        }
    }
}

impl From<proto::Protocol> for Protocol {
    fn from(p: proto::Protocol) -> Self {
        match p {
            proto::Protocol::Tcp => Protocol::Tcp,
            proto::Protocol::Http => Protocol::Http,
            proto::Protocol::Http2 => Protocol::Http2,
            proto::Protocol::Grpc => Protocol::Grpc,
        }
    }
}
