//! Phase 4b, pick: the backend the request goes to, once, after admission
//! (as nginx's balancer runs after the access phase): a Gateway API rule's
//! weighted draw (see [`crate::route_filter`]), or the route's backend
//! unless a canary takes the request (see [`crate::canary`]); then
//! `default-backend` when that backend has no endpoint.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use crate::backend::Backend;
use crate::canary::Canary;
use crate::ids::BackendId;
use crate::refusal::Refusal;
use crate::route_filter::Slot;
use crate::table::{Route, RouteTable};

use super::Scope;
use super::error::ProxyError;
use super::exchange::Trace;
use super::respond::Early;

/// The backend picked for a request.
pub(super) struct Picked<'t> {
    /// The backend whose endpoints the request goes to.
    pub(super) backend: &'t Arc<Backend>,
    /// The Gateway API rule's backend entry that was drawn, with its
    /// header filters.
    pub(super) slot: Option<&'t Slot>,
}

/// Phase 4b: picks the backend for `main` (the route's own), reading the
/// canary's headers from `headers`.
pub(super) fn backend<'t>(
    scope: &Scope<'t>,
    headers: &HeaderMap,
    main: BackendId,
    trace: &mut Trace,
) -> Result<Picked<'t>, Early> {
    let (table, route) = (scope.table, scope.found.route);
    let mut slot = None;
    let backend = match scope.filters().and_then(|f| f.split.as_ref()) {
        // A Gateway API rule's weighted backends; an invalid one answers
        // its share with 500.
        Some(split) => {
            let drawn = split.draw();
            slot = Some(drawn);
            trace.backend = drawn.backend;
            match drawn.backend.and_then(|id| table.backend(id)) {
                Some(backend) => backend,
                None => return Err(Refusal::error_page(StatusCode::INTERNAL_SERVER_ERROR).into()),
            }
        }
        None => {
            let (backend, canary) =
                crate::canary::pick(table.backend(main), canary_of(table, route), headers);
            trace.canary = canary;
            backend.ok_or(ProxyError::NoRoute)?
        }
    };
    // `default-backend`: its Service answers when the route's has no pod.
    let backend = match route.fallback.and_then(|id| table.backend(id)) {
        Some(fallback) if backend.endpoints().endpoints().is_empty() => fallback,
        _ => backend,
    };
    // `--default-backend-service` without a ready endpoint: the built-in
    // 404, as ingress-nginx falls back to its own default endpoint.
    if table.is_default_route(scope.found.id) && backend.endpoints().endpoints().is_empty() {
        return Err(ProxyError::NoRoute.into());
    }
    Ok(Picked { backend, slot })
}

/// The route's canary and its backend, if it has one that exists.
fn canary_of<'t>(
    table: &'t RouteTable,
    route: &'t Route,
) -> Option<(&'t Canary, &'t Arc<Backend>)> {
    let canary = route.canary.as_ref()?;
    Some((canary, table.backend(canary.backend)?))
}
