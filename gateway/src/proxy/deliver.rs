//! Phase 7, deliver: the upstream's response on its way to the client. Its
//! head is cleaned and completed (`hide-headers`, `limit-rate`'s pace,
//! a new session cookie, CORS, Gateway API `ResponseHeaderModifier`s), the
//! `limit-connections` slot is held until its body ends, and an upgraded
//! connection is spliced (see [`super::upgrade`]). What goes on every
//! response, the gateway's own included (`add-headers`, HSTS, compression),
//! is added by [`super::Proxy::handle`].

use http::Response;
use http::header::HeaderMap;

use crate::route_filter::{RouteFilters, Slot};

use super::admit::Passed;
use super::body::ResponseBody;
use super::outbound::Carried;
use super::pick::Picked;
use super::{Scope, headers, upgrade};

/// Phase 7: readies the upstream's response for the client.
#[inline]
pub(super) fn deliver(
    scope: &Scope<'_>,
    mut response: Response<ResponseBody>,
    passed: Passed,
    picked: &Picked<'_>,
    carried: Carried,
) -> Response<ResponseBody> {
    let route = scope.found.route;
    let filters = scope.filters();
    headers::to_client(response.headers_mut(), &scope.table.globals().headers);
    if let Some(rules) = &route.policy.response
        && let Some(rate) = rules.apply(&mut response)
    {
        response.body_mut().pace(rate);
    }
    carried.sticky.to_client(response.headers_mut());
    if let Some(admission) = &route.admission {
        admission.to_client(passed.admitted.cors_origin, response.headers_mut());
    }
    edit_response_headers(filters, picked.slot, response.headers_mut());
    let gateway_cors = filters.and_then(|f| f.cors.as_ref());
    if let (Some(cors), Some(origin)) = (gateway_cors, passed.gateway_origin) {
        cors.apply(origin, response.headers_mut());
    }
    if let Some(permit) = passed.admitted.permit {
        response.body_mut().hold(permit);
    }
    upgrade::splice(carried.upgrade, &mut response, &route.settings);
    response
}

/// A Gateway API rule's `ResponseHeaderModifier`, then its drawn backend's.
fn edit_response_headers(
    filters: Option<&RouteFilters>,
    slot: Option<&Slot>,
    headers: &mut HeaderMap,
) {
    let rule = filters.and_then(|f| f.response_headers.as_ref());
    let backend = slot.and_then(|s| s.response_headers.as_ref());
    for edits in rule.into_iter().chain(backend) {
        edits.apply(headers);
    }
}
