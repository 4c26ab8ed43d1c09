//! `weft get KIND [NAME] [-m MESH] [-o table|yaml|json]`.

use std::collections::HashMap;

use serde_json::Value;
use weft_api::{
    Kind,
    rest::{DataplaneStatus, ListResponse},
};

use crate::{
    cli::GetArgs,
    client::ApiClient,
    commands::resource_path,
    output::{print_structured, table::Table},
};

pub async fn run(args: GetArgs) -> anyhow::Result<()> {
    let kind: Kind = args.kind.parse().map_err(anyhow::Error::msg)?;
    let client = args.cp.client()?;
    let items = match &args.name {
        Some(name) => {
            let mesh = args.mesh.as_deref().unwrap_or("default");
            vec![
                client
                    .get::<Value>(&resource_path(kind, mesh, name))
                    .await?,
            ]
        }
        None => {
            client
                .get::<ListResponse>(&list_path(kind, args.mesh.as_deref()))
                .await?
                .items
        }
    };
    if print_structured(args.output, &items, args.name.is_some())?.is_some() {
        return Ok(());
    }
    let table = match kind {
        Kind::Mesh => mesh_table(&client, &items).await,
        Kind::Dataplane => dataplane_table(&client, &items, args.mesh.as_deref()).await,
        Kind::TrafficPermission => permission_table(&items),
        _ => policy_table(&items),
    };
    if items.is_empty() {
        eprintln!("no {} found", kind.plural());
    } else {
        print!("{}", table.render());
    }
    Ok(())
}

fn list_path(kind: Kind, mesh: Option<&str>) -> String {
    match mesh {
        Some(m) if kind.is_mesh_scoped() => format!("/meshes/{m}/{}", kind.plural()),
        _ => format!("/{}", kind.plural()),
    }
}

fn text(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_owned()
}

/// A selector side as `service=web`, `*` for any.
fn side(p: &Value, side: &str) -> String {
    let tags: Vec<String> = p
        .pointer(&format!("/selector/{side}"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default();
    if tags.is_empty() {
        "*".to_owned()
    } else {
        tags.join(",")
    }
}

/// `MESH NAME FROM TO SPEC AGE` for the traffic policy kinds; the spec as
/// compact JSON (`-o yaml` shows it in full).
fn policy_table(policies: &[Value]) -> Table {
    let mut table = Table::new(&["MESH", "NAME", "FROM", "TO", "SPEC", "AGE"]);
    for p in policies {
        let spec = p.get("spec").map_or("-".to_owned(), Value::to_string);
        table.row(vec![
            text(p, "mesh"),
            text(p, "name"),
            side(p, "from"),
            side(p, "to"),
            spec,
            age(p),
        ]);
    }
    table
}

/// `MESH NAME FROM TO ACTION RULES AGE`.
fn permission_table(permissions: &[Value]) -> Table {
    let mut table = Table::new(&["MESH", "NAME", "FROM", "TO", "ACTION", "RULES", "AGE"]);
    for p in permissions {
        let rules = p
            .pointer("/spec/rules")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        table.row(vec![
            text(p, "mesh"),
            text(p, "name"),
            side(p, "from"),
            side(p, "to"),
            p.pointer("/spec/action")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned(),
            rules.to_string(),
            age(p),
        ]);
    }
    table
}

async fn mesh_table(client: &ApiClient, meshes: &[Value]) -> Table {
    // Counting is a convenience: a failure leaves the column blank rather than failing `get`.
    let dataplanes = client
        .get::<ListResponse>("/dataplanes")
        .await
        .map(|l| l.items)
        .ok();
    let mut table = Table::new(&["NAME", "DATAPLANES", "AGE"]);
    for m in meshes {
        let name = text(m, "name");
        let count = dataplanes.as_ref().map_or("-".to_owned(), |dps| {
            dps.iter()
                .filter(|d| text(d, "mesh") == name)
                .count()
                .to_string()
        });
        table.row(vec![name, count, age(m)]);
    }
    table
}

async fn dataplane_table(client: &ApiClient, dataplanes: &[Value], mesh: Option<&str>) -> Table {
    let path = match mesh {
        Some(m) => format!("/status/dataplanes?mesh={m}"),
        None => "/status/dataplanes".to_owned(),
    };
    let statuses: HashMap<(String, String), bool> = client
        .get::<Vec<DataplaneStatus>>(&path)
        .await
        .map(|list| {
            list.into_iter()
                .map(|s| ((s.mesh, s.name), s.online))
                .collect()
        })
        .unwrap_or_default();
    let mut table = Table::new(&["MESH", "NAME", "ADDRESS", "SERVICES", "STATUS", "AGE"]);
    for dp in dataplanes {
        let key = (text(dp, "mesh"), text(dp, "name"));
        let status = match statuses.get(&key) {
            Some(true) => "online",
            Some(false) => "offline",
            None => "unknown",
        };
        let networking = dp.get("networking");
        let address = networking.map_or("-".into(), |n| text(n, "address"));
        let services = networking
            .and_then(|n| n.get("inbound"))
            .and_then(Value::as_array)
            .map(|ins| {
                ins.iter()
                    .map(|i| {
                        let tags = i.get("tags");
                        let service = tags.map_or("-".into(), |t| text(t, "service"));
                        let port = i.get("port").and_then(Value::as_u64).unwrap_or(0);
                        format!("{service}:{port}")
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        table.row(vec![
            key.0,
            key.1,
            address,
            services,
            status.into(),
            age(dp),
        ]);
    }
    table
}

/// How long ago the resource was created, e.g. `42s`, `5m`, `3h`, `2d`.
pub fn age(resource: &Value) -> String {
    let Some(created) = resource.get("creationTime").and_then(Value::as_str) else {
        return "-".into();
    };
    let Ok(t) = humantime::parse_rfc3339(created) else {
        return "-".into();
    };
    let secs = std::time::SystemTime::now()
        .duration_since(t)
        .map_or(0, |d| d.as_secs());
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}
