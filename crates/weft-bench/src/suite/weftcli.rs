//! What the `weft` binary under test supports, read from its `--help`, so
//! the harness runs against older and newer Weft alike: an admin token for
//! the REST API, dataplane authentication, the plaintext switches of the
//! control-plane stream, and the mesh CA key that mTLS needs.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;

/// Flags of `weft control-plane` and `weft proxy` the harness may pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `control-plane --admin-token-file`: the API wants a bearer token.
    pub admin_token_file: bool,
    /// `control-plane --dp-auth`: proxies need tokens unless `none`.
    pub dp_auth: bool,
    /// `control-plane --ca-key-file`: meshes can have a builtin CA (mTLS).
    pub ca_key_file: bool,
    /// `control-plane --dp-tls`: the stream may be TLS; the bench asks `off`.
    pub dp_tls: bool,
    /// `control-plane --insecure-plaintext-dp`.
    pub insecure_plaintext_dp: bool,
    /// `proxy --insecure-plaintext-cp`: needed for an `http://` control plane.
    pub insecure_plaintext_cp: bool,
}

impl Capabilities {
    /// Reads both `--help` texts of `weft`.
    pub fn probe(weft: &Path) -> anyhow::Result<Self> {
        let help = |sub: &str| -> anyhow::Result<String> {
            let out = Command::new(weft)
                .args([sub, "--help"])
                .output()
                .with_context(|| format!("cannot run {}", weft.display()))?;
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        Ok(Self::from_help(&help("control-plane")?, &help("proxy")?))
    }

    pub fn from_help(control_plane: &str, proxy: &str) -> Self {
        let has = |text: &str, flag: &str| {
            text.split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                .any(|w| w == flag)
        };
        Self {
            admin_token_file: has(control_plane, "--admin-token-file"),
            dp_auth: has(control_plane, "--dp-auth"),
            ca_key_file: has(control_plane, "--ca-key-file"),
            dp_tls: has(control_plane, "--dp-tls"),
            insecure_plaintext_dp: has(control_plane, "--insecure-plaintext-dp"),
            insecure_plaintext_cp: has(proxy, "--insecure-plaintext-cp"),
        }
    }

    /// Extra `weft control-plane` arguments; files go in `dir`. A plaintext,
    /// unauthenticated stream: what is measured is the data path and the
    /// config distribution, not the stream's security.
    pub fn control_plane_args(&self, dir: &Path) -> anyhow::Result<Vec<String>> {
        let mut args = Vec::new();
        if self.admin_token_file {
            args.extend(["--admin-token-file".into(), path(&admin_token_path(dir))]);
        }
        if self.dp_auth {
            args.extend(["--dp-auth".into(), "none".into()]);
        }
        if self.dp_tls {
            args.extend(["--dp-tls".into(), "off".into()]);
        }
        if self.insecure_plaintext_dp {
            args.push("--insecure-plaintext-dp".into());
        }
        if self.ca_key_file {
            let key = dir.join("ca.key");
            std::fs::write(&key, base64(&random_bytes::<32>()?))?;
            args.extend(["--ca-key-file".into(), path(&key)]);
        }
        Ok(args)
    }

    /// Extra `weft proxy` arguments.
    pub fn proxy_args(&self) -> Vec<String> {
        if self.insecure_plaintext_cp {
            vec!["--insecure-plaintext-cp".into()]
        } else {
            Vec::new()
        }
    }
}

/// Where the control plane started in `dir` writes its admin token.
pub fn admin_token_path(dir: &Path) -> PathBuf {
    dir.join("admin-token")
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    use std::io::Read;
    let mut buf = [0_u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(buf)
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff; 32]).len(), 44);
    }

    #[test]
    fn reads_flags_from_help() {
        let cp = "Options:\n      --store <STORE>\n      --dp-auth <DP_AUTH>  How proxies...\n      \
                  --admin-token-file <ADMIN_TOKEN_FILE>\n      --dp-tls <DP_TLS>  [default: off]\n";
        let proxy = "      --insecure-plaintext-cp  Allow an `http://` control plane\n";
        let caps = Capabilities::from_help(cp, proxy);
        assert!(caps.dp_auth && caps.admin_token_file && caps.dp_tls && caps.insecure_plaintext_cp);
        assert!(!caps.ca_key_file && !caps.insecure_plaintext_dp);
        assert_eq!(Capabilities::from_help("", ""), Capabilities::default());
        assert!(
            caps.proxy_args()
                .contains(&"--insecure-plaintext-cp".to_owned())
        );
    }
}
