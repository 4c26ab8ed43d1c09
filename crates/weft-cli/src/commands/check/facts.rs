//! What `weft check` learns from the control plane, gathered once, so the
//! evaluation is a pure function of it.

use weft_api::rest::{DataplaneStatus, Health, MeshCaResponse};

use crate::client::ApiClient;

/// Everything the checks look at.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The API's URL, for messages.
    pub api_url: String,
    /// `/healthz`, or why it could not be had.
    pub health: Probe<Health>,
    /// Our clock (unix ms) halfway through the `/healthz` call, and how
    /// long the call took: the control plane's clock is compared with it.
    pub local_mid_ms: i64,
    pub round_trip_ms: i64,
    /// The meshes looked at, or why they could not be listed (e.g. a
    /// refused admin token).
    pub meshes: Result<Vec<MeshFacts>, String>,
    pub dataplanes: Result<Vec<DataplaneStatus>, String>,
}

/// An API call's outcome: answered, answered with an error, or not reached.
#[derive(Debug, Clone)]
pub enum Probe<T> {
    Ok(T),
    /// The API answered this error (e.g. 503 `unhealthy: ...`).
    Answered(String),
    /// Nothing answered (connection refused, timeout, TLS).
    Unreachable(String),
}

#[derive(Debug, Clone)]
pub struct MeshFacts {
    pub name: String,
    /// `None` with mTLS off; else the CA endpoint's answer.
    pub ca: Option<Result<MeshCaResponse, String>>,
}

/// This host's wall clock in unix milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Asks the control plane; `mesh` limits meshes and dataplanes to one.
pub async fn gather(client: &ApiClient, mesh: Option<&str>) -> Facts {
    let before = now_unix_ms();
    let health = client.probe::<Health>("/healthz").await;
    let after = now_unix_ms();
    let mut facts = Facts {
        api_url: client.base().to_owned(),
        health: match health {
            Ok(Ok(h)) => Probe::Ok(h),
            Ok(Err(answered)) => Probe::Answered(format!("{answered:#}")),
            Err(unreachable) => Probe::Unreachable(format!("{unreachable:#}")),
        },
        local_mid_ms: before + (after - before) / 2,
        round_trip_ms: after - before,
        meshes: Err("not asked: the control plane is unreachable".to_owned()),
        dataplanes: Err("not asked: the control plane is unreachable".to_owned()),
    };
    if matches!(facts.health, Probe::Unreachable(_)) {
        return facts;
    }
    facts.meshes = meshes(client, mesh).await;
    let path = match mesh {
        Some(m) => format!("/status/dataplanes?mesh={m}"),
        None => "/status/dataplanes".to_owned(),
    };
    facts.dataplanes = client.get(&path).await.map_err(|e| format!("{e:#}"));
    facts
}

async fn meshes(client: &ApiClient, only: Option<&str>) -> Result<Vec<MeshFacts>, String> {
    let values: Vec<serde_json::Value> = match only {
        Some(m) => vec![
            client
                .get(&format!("/meshes/{m}"))
                .await
                .map_err(|e| format!("{e:#}"))?,
        ],
        None => {
            let list: weft_api::rest::ListResponse =
                client.get("/meshes").await.map_err(|e| format!("{e:#}"))?;
            list.items
        }
    };
    let mut meshes = Vec::with_capacity(values.len());
    for value in values {
        let name = value["name"].as_str().unwrap_or_default().to_owned();
        let mode = value["mtls"]["mode"].as_str().unwrap_or("off");
        let ca = if mode == "off" {
            None
        } else {
            Some(
                client
                    .get::<MeshCaResponse>(&format!("/meshes/{name}/ca"))
                    .await
                    .map_err(|e| format!("{e:#}")),
            )
        };
        meshes.push(MeshFacts { name, ca });
    }
    Ok(meshes)
}
