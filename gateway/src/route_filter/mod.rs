//! Gateway API route filters, compiled by the control plane into a
//! route's [`RouteFilters`] and applied by the proxy at named points of
//! its phases (see the `proxy` module):
//!
//! - route phase: [`redirect`] (`RequestRedirect`) answers at once;
//!   [`rewrite`] (`URLRewrite`'s path) makes the upstream path;
//! - before admission: [`cors`] answers preflight requests;
//! - backend choice: [`split`] draws one of the rule's weighted
//!   `backendRefs` (an invalid one answers 500);
//! - after the upstream request is built: [`headers`]
//!   (`RequestHeaderModifier`, the rule's then the backend's), then
//!   [`mirror`] (`RequestMirror`) copies the request as forwarded;
//! - on the response: `ResponseHeaderModifier` (the rule's then the
//!   backend's) and the CORS headers.
//!
//! `URLRewrite`'s hostname is the route policy's upstream Host, and the
//! rule's timeouts and session persistence are the route's proxy
//! settings and its backend's affinity: nothing here. An Ingress route
//! has no filters; the proxy checks one `Option` per point.

pub mod cors;
pub mod headers;
pub mod mirror;
pub mod redirect;
pub mod rewrite;
pub mod split;

pub use cors::CorsFilter;
pub use headers::HeaderEdits;
pub use mirror::RequestMirror;
pub use redirect::RequestRedirect;
pub use rewrite::PathModifier;
pub use split::{Slot, Split};

/// A Gateway API route's filters (see the module docs for when each runs).
#[derive(Clone, Debug, Default)]
pub struct RouteFilters {
    /// `RequestHeaderModifier`.
    pub request_headers: Option<HeaderEdits>,
    /// `ResponseHeaderModifier`.
    pub response_headers: Option<HeaderEdits>,
    /// `RequestRedirect`: answer with a redirect instead of proxying.
    pub redirect: Option<RequestRedirect>,
    /// `URLRewrite`'s path.
    pub rewrite: Option<PathModifier>,
    /// `CORS`.
    pub cors: Option<CorsFilter>,
    /// Weighted `backendRefs` (with their own filters), when the rule has
    /// more than one or one with filters or an invalid one.
    pub split: Option<Split>,
    /// `RequestMirror`s whose backends resolved (an unresolved one is
    /// left out, as the spec requires).
    pub mirrors: Vec<RequestMirror>,
}
