//! What a compile needs besides the objects: the controller's flags and
//! the defaults the ConfigMap layers over them ([`CompileOptions`]), with
//! the Gateway API's and the regex paths' own options. Plain data, below
//! the annotation and ConfigMap readers, the Gateway API compile and
//! `compile()`, which all read it.

use gateway::policy::{Globals, Policy};
use gateway::settings::ProxySettings;

use crate::class::ClassOptions;
use crate::objects::NsName;
use crate::selector::LabelSelector;

/// Everything `compile()` needs besides the objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// Which Ingresses are ours.
    pub class: ClassOptions,
    /// `--watch-namespace`: only Ingresses of this namespace (all if `None`).
    pub watch_namespace: Option<String>,
    /// `--watch-namespace-selector`: only Ingresses of the Namespaces whose
    /// labels it selects (a Namespace not in the snapshot is not selected).
    pub namespace_selector: Option<LabelSelector>,
    /// `--annotations-prefix` when it is not the default: the prefix the
    /// annotations are read under, ending in `/` (see the annotations'
    /// `prefix` module).
    pub annotations_prefix: Option<String>,
    /// `--disable-catch-all`: Ingresses with a `spec.defaultBackend` are
    /// ignored.
    pub disable_catch_all: bool,
    /// Proxy settings every route starts from.
    pub proxy: ProxySettings,
    /// Policy every route starts from.
    pub policy: Policy,
    /// Gateway-wide settings.
    pub globals: Globals,
    /// `--default-ssl-certificate`: the Secret served to names no Ingress covers.
    pub default_ssl_certificate: Option<NsName>,
    /// `--configmap`: the controller ConfigMap, whose settings replace the
    /// defaults above while it exists (see the `config_map` module).
    pub configmap: Option<NsName>,
    /// Balancing and admission every backend starts from (ConfigMap
    /// `load-balance` and friends).
    pub traffic: gateway::BackendPolicy,
    /// `--default-backend-service`: the Service (its first port) answering
    /// requests that match no rule, and the error pages of
    /// `custom-http-errors` without a `default-backend` annotation.
    pub default_backend_service: Option<NsName>,
    /// How many regex paths an Ingress and a host may have (ConfigMap).
    pub regex_limits: RegexLimits,
    /// ConfigMap `edge-gateway.io/allow-cross-namespace-canary`: a canary
    /// Ingress may split the route of another namespace's Ingress.
    pub allow_cross_namespace_canary: bool,
    /// `--enable-gateway-api`: serve Gateway API objects too (see
    /// the `gateway_api` module); `None`: off.
    pub gateway_api: Option<GatewayApiOptions>,
    /// `--tcp-services-configmap`: port → TCP service.
    pub tcp_services: Option<NsName>,
    /// `--udp-services-configmap`: port → UDP service.
    pub udp_services: Option<NsName>,
    /// The gateway's own listening ports, which stream services may not take.
    pub reserved_ports: Vec<u16>,
    /// `--enable-ssl-passthrough`: the `ssl-passthrough` annotation applies.
    pub ssl_passthrough: bool,
    /// `global-allowed-response-headers` (from the ConfigMap): what
    /// `custom-headers` may set.
    pub allowed_response_headers: Vec<String>,
}

/// The regex limits (ConfigMap `edge-gateway.io/max-regex-paths-per-ingress`,
/// `edge-gateway.io/max-regex-paths-per-host`,
/// `edge-gateway.io/max-regex-memory-per-ingress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegexLimits {
    /// Regex paths of one Ingress that asks for regex mode.
    pub per_ingress: usize,
    /// Regex paths of one host in regex mode, every Ingress's.
    pub per_host: usize,
    /// Bytes the compiled regex paths of one such Ingress may hold.
    pub memory_per_ingress: usize,
}

impl Default for RegexLimits {
    fn default() -> Self {
        Self {
            per_ingress: 1000,
            per_host: 2000,
            memory_per_ingress: 32 << 20,
        }
    }
}

/// The controller name written in GatewayClasses this gateway manages,
/// by default.
pub const DEFAULT_CONTROLLER_NAME: &str = "edge-gateway.io/gateway-controller";

/// What the Gateway API compile needs besides the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayApiOptions {
    /// `--gateway-controller-name`: GatewayClasses with this
    /// `spec.controllerName` are ours.
    pub controller_name: String,
    /// Ports an `HTTP` listener may name (80 and `--http-port`).
    pub http_ports: Vec<u16>,
    /// Ports an `HTTPS` listener may name (443 and `--https-port`).
    pub https_ports: Vec<u16>,
}

impl GatewayApiOptions {
    /// The options for a gateway listening on `http_port` and `https_port`.
    pub fn new(controller_name: &str, http_port: u16, https_port: u16) -> Self {
        let ports = |well_known: u16, port: u16| {
            let mut ports = vec![well_known, port];
            ports.dedup();
            ports
        };
        Self {
            controller_name: controller_name.to_owned(),
            http_ports: ports(80, http_port),
            https_ports: ports(443, https_port),
        }
    }
}

impl Default for GatewayApiOptions {
    fn default() -> Self {
        Self::new(DEFAULT_CONTROLLER_NAME, 30080, 30443)
    }
}
