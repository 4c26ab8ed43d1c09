//! What the compiler needs for transparently proxied Dataplanes, read once
//! per pass: each such mesh's settings and its services' virtual IPs
//! (assigned on first sight, stored).

use std::{
    collections::{BTreeMap, HashMap},
    net::Ipv4Addr,
};

use weft_api::{Dataplane, Resource, ResourceKey, mesh::transparent::MeshTransparentProxying};

use crate::{
    compiler::transparent::mesh_services,
    store::{Store, StoreError},
};

/// One mesh's share.
#[derive(Debug, Default)]
pub(super) struct MeshTransparent {
    pub settings: Option<MeshTransparentProxying>,
    pub virtual_ips: BTreeMap<String, Ipv4Addr>,
}

/// For every mesh with at least one Dataplane that declares
/// `transparentProxying`; other meshes need no virtual IPs.
pub(super) async fn load(
    store: &dyn Store,
    by_mesh: &HashMap<String, Vec<Dataplane>>,
) -> Result<HashMap<String, MeshTransparent>, StoreError> {
    let mut out = HashMap::new();
    for (mesh, dataplanes) in by_mesh {
        if !dataplanes
            .iter()
            .any(|d| d.networking.transparent_proxying.is_some())
        {
            continue;
        }
        let virtual_ips = store.virtual_ips(mesh, &mesh_services(dataplanes)).await?;
        let settings = match store
            .get(&ResourceKey::mesh(mesh.clone()))
            .await?
            .map(|s| s.resource)
        {
            Some(Resource::Mesh(m)) => m.transparent_proxying,
            _ => None,
        };
        out.insert(
            mesh.clone(),
            MeshTransparent {
                settings,
                virtual_ips,
            },
        );
    }
    Ok(out)
}
