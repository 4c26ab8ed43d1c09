//! Dataplane tokens on the proxy service: which token a request carries,
//! what it must allow, and the gRPC status of a refusal.

use std::collections::BTreeSet;

use tonic::Status;
use weft_api::{Dataplane, rest::now_unix, token::Claims};

use crate::{
    identity::{AuthError, Identity},
    sessions::StreamAuth,
};

/// The services a Dataplane's inbounds serve, each once, sorted.
pub(super) fn services_of(dataplane: &Dataplane) -> BTreeSet<&str> {
    dataplane
        .networking
        .inbound
        .iter()
        .map(|i| i.service())
        .collect()
}

/// Checks `token` for `dataplane` (its mesh and every service it serves).
/// `Ok(None)` when tokens are not required.
pub(super) fn authenticate(
    identity: &Identity,
    token: &str,
    dataplane: &Dataplane,
    call: &str,
) -> Result<Option<StreamAuth>, Status> {
    check(
        identity,
        token,
        &dataplane.mesh,
        &dataplane.name,
        services_of(dataplane),
        call,
    )
    .map(|claims| {
        claims.map(|c| StreamAuth {
            jti: c.jti,
            kid: c.kid,
        })
    })
}

/// Checks `token` for Dataplane `name` of `mesh` serving `services`; a
/// refusal is logged (never the token) and returned as its gRPC status.
pub(super) fn check<'a>(
    identity: &Identity,
    token: &str,
    mesh: &str,
    name: &str,
    services: impl IntoIterator<Item = &'a str>,
    call: &str,
) -> Result<Option<Claims>, Status> {
    identity
        .check(token, mesh, services, now_unix())
        .map_err(|e| {
            tracing::warn!(%mesh, dataplane = %name, call, error = %e, "dataplane token refused");
            status(e)
        })
}

/// `Unauthenticated` for a token that is not valid, `PermissionDenied` for
/// one that does not cover the request.
pub(super) fn status(e: AuthError) -> Status {
    match e {
        AuthError::Token(e) => Status::unauthenticated(e.to_string()),
        AuthError::Denied(e) => Status::permission_denied(e.to_string()),
    }
}
