//! Self-signed certificates made at run time with the `openssl` command: a
//! CA, a server certificate for `localhost`/127.0.0.1 and a client
//! certificate, all ECDSA P-256, for the TLS pairs of other proxies.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;

/// PEM files; `server.pem` and `client.pem` hold certificate then key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub server: PathBuf,
    pub client: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run openssl")?;
    anyhow::ensure!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// Makes the CA and both leaf certificates in `dir` (overwriting).
pub fn generate(dir: &Path) -> anyhow::Result<TlsFiles> {
    std::fs::create_dir_all(dir)?;
    let mut ca = vec![
        "req",
        "-x509",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=weft-bench-ca",
    ];
    ca.extend(EC);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca)?;
    for (name, cn, ext) in [
        (
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "bench-client",
            "subjectAltName=DNS:bench-client\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        let (key, csr, crt, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(dir.join(&extfile), ext)?;
        let subj = format!("/CN={cn}");
        let mut req = vec!["req", "-nodes", "-subj", &subj];
        req.extend(EC);
        req.extend(["-keyout", &key, "-out", &csr]);
        openssl(dir, &req)?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        )?;
        let pem = [
            std::fs::read_to_string(dir.join(&crt))?,
            std::fs::read_to_string(dir.join(&key))?,
        ]
        .concat();
        std::fs::write(dir.join(format!("{name}.pem")), pem)?;
    }
    Ok(TlsFiles {
        ca: dir.join("ca.pem"),
        server: dir.join("server.pem"),
        client: dir.join("client.pem"),
    })
}
