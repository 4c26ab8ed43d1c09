//! `weft token dataplane|revoke|rotate-signing-key`: the credentials proxies
//! present to the control plane.

use base64::Engine;
use serde_json::{Value, json};

use crate::cli::{TokenCommand, TokenDataplaneArgs, TokenRevokeArgs};

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Dataplane(args) => dataplane(args).await,
        TokenCommand::Revoke(args) => revoke(args).await,
        TokenCommand::RotateSigningKey(args) => {
            let client = args.cp.client()?;
            let _: Value = client
                .post("/tokens/signing-key/rotate", &json!({}))
                .await?;
            eprintln!("signing key rotated: every dataplane token issued before now is refused");
            Ok(())
        }
    }
}

/// Prints only the token on stdout, so `weft token dataplane ... > FILE` works.
async fn dataplane(args: TokenDataplaneArgs) -> anyhow::Result<()> {
    let client = args.cp.client()?;
    let body = json!({ "mesh": args.mesh, "services": args.services, "validFor": args.valid_for });
    let reply: Value = client.post("/tokens/dataplane", &body).await?;
    let token = reply
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("the control plane's reply has no token: {reply}"))?;
    println!("{token}");
    if let (Some(id), Some(expires)) = (reply.get("id"), reply.get("expiresAt")) {
        eprintln!(
            "token {id} for mesh {:?}, services {:?}, expires {expires}",
            args.mesh, args.services
        );
    }
    Ok(())
}

async fn revoke(args: TokenRevokeArgs) -> anyhow::Result<()> {
    let id = token_id(&args.token)?;
    let client = args.cp.client()?;
    let _: Value = client.post("/tokens/revoke", &json!({ "id": id })).await?;
    println!("token {id} revoked");
    Ok(())
}

/// Accepts a token id, or a whole token whose `jti` claim is read (not
/// verified: the control plane does that).
fn token_id(arg: &str) -> anyhow::Result<String> {
    let arg = arg.trim();
    let Some(rest) = arg.strip_prefix("weft1.") else {
        return Ok(arg.to_owned());
    };
    let claims = rest
        .split('.')
        .next()
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .ok_or_else(|| {
            anyhow::anyhow!("the argument starts like a token but its claims cannot be read")
        })?;
    claims
        .get("jti")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the token has no `jti` claim"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_accepts_an_id_or_a_token() {
        assert_eq!(token_id(" abc123 ").unwrap(), "abc123");
        let claims =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"jti":"f00d","mesh":"m"}"#);
        assert_eq!(token_id(&format!("weft1.{claims}.sig")).unwrap(), "f00d");
        assert!(token_id("weft1.!!!.sig").is_err());
    }
}
