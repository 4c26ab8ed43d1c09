//! How the proxy trusts the control plane: an `https://` control plane is
//! verified against the CA certificate the operator gives (only that CA,
//! never the system roots), for the host name or IP in the URL. A plain
//! `http://` one is accepted only when the caller allowed it (tests of
//! other concerns), with a warning.

use anyhow::{Context as _, bail};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::warn;

/// `endpoint` with TLS verified against `ca_pem` when its scheme is https.
pub(crate) fn secure(endpoint: Endpoint, ca_pem: Option<&str>) -> anyhow::Result<Endpoint> {
    let uri = endpoint.uri().clone();
    match (uri.scheme_str(), ca_pem) {
        (Some("https"), Some(pem)) => {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                bail!("the control plane's CA file holds no PEM certificate");
            }
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint
                .tls_config(tls)
                .with_context(|| format!("cannot set up TLS to the control plane {uri}"))
        }
        (Some("https"), None) => bail!(
            "the control plane {uri} is https but no CA certificate to verify it was given \
             (--cp-ca-file or WEFT_CP_CA_FILE)"
        ),
        (Some("http"), _) => {
            warn!(control_plane = %uri, "talking to the control plane in plaintext: it is not verified and the stream is not encrypted");
            Ok(endpoint)
        }
        _ => bail!("control-plane URL {uri}: expected https://HOST:PORT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_needs_a_ca() {
        let ep = || Endpoint::from_static("https://127.0.0.1:5678");
        let err = secure(ep(), None).unwrap_err().to_string();
        assert!(err.contains("--cp-ca-file"), "{err}");
        let err = secure(ep(), Some("junk")).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        assert!(secure(Endpoint::from_static("http://127.0.0.1:5678"), None).is_ok());
    }
}
