//! The ConfigMap's defaults for the annotations: what an Ingress that sets
//! no annotation of its own gets (address lists, `limit-*` status codes,
//! global authentication, the global rate limit's store), and the
//! protective settings. Read by the ConfigMap reader (above this module),
//! applied when annotations are parsed.

use gateway::policy::access::Cidr;
use gateway::policy::external_auth::ExternalAuthConfig;
use gateway::policy::global_limit::MemcachedConfig;
use http::StatusCode;

use super::AnnotationError;

/// `no-auth-locations`' default, ingress-nginx's.
pub const DEFAULT_NO_AUTH_LOCATIONS: &str = "/.well-known/acme-challenge";

/// ConfigMap defaults of the admission annotations, and the protective
/// settings that deny routes when they cannot be enforced (each `Err` or
/// denial names the key; the ConfigMap reader's `protective` module
/// reads them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionDefaults {
    /// `whitelist-source-range`: the allow list of Ingresses that set none.
    pub allowlist: Option<Result<Vec<Cidr>, AnnotationError>>,
    /// `denylist-source-range`: the deny list of Ingresses that set none.
    pub denylist: Option<Result<Vec<Cidr>, AnnotationError>>,
    /// `limit-req-status-code` (503).
    pub limit_req_status: StatusCode,
    /// `limit-conn-status-code` (503).
    pub limit_conn_status: StatusCode,
    /// `global-auth-url` and its companions.
    pub global_auth: Option<Result<ExternalAuthConfig, AnnotationError>>,
    /// `no-auth-locations`: Ingress paths starting with one of these skip
    /// authentication.
    pub no_auth_locations: Vec<String>,
    /// The key that turns the WAF on for every Ingress, if any.
    pub waf: Option<AnnotationError>,
    /// `edge-gateway.io/serve-without-waf`: serve what asks for a WAF.
    pub serve_without_waf: bool,
    /// A client-address key that cannot be used: routes with an address
    /// list are denied.
    pub client_address: Option<AnnotationError>,
    /// A block list that cannot be used: every route is denied.
    pub everywhere: Option<AnnotationError>,
    /// `global-rate-limit-memcached-*` and `global-rate-limit-status-code`;
    /// `None` without a memcached host (global limits are off).
    pub global_rate_limit: Option<GlobalStoreSettings>,
}

impl Default for AdmissionDefaults {
    fn default() -> Self {
        Self {
            allowlist: None,
            denylist: None,
            limit_req_status: StatusCode::SERVICE_UNAVAILABLE,
            limit_conn_status: StatusCode::SERVICE_UNAVAILABLE,
            global_auth: None,
            no_auth_locations: vec![DEFAULT_NO_AUTH_LOCATIONS.to_owned()],
            waf: None,
            serve_without_waf: false,
            client_address: None,
            everywhere: None,
            global_rate_limit: None,
        }
    }
}

/// Where the counters are, and the refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalStoreSettings {
    /// The memcached and how it is used.
    pub memcached: MemcachedConfig,
    /// `global-rate-limit-status-code` (429).
    pub status: StatusCode,
}
