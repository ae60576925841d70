//! The serving command's options (also those of `demo`), and the class
//! options it shares with `check`. Names, defaults and value syntax are
//! ingress-nginx's where it has the flag; [`super::ingress_nginx`] lists
//! every ingress-nginx flag and what it does here.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};
use controller::annotations::prefix;
use controller::class::ClassOptions;
use controller::selector::LabelSelector;
use controller::{CompileOptions, NsName};

use super::values::{self, ListenAddr};
use super::{AccessLog, LogFormat};

/// Options of the serving commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Folder of Kubernetes YAML/JSON manifests to serve instead of watching
    /// the Kubernetes API (watched; changes apply within a second). Every
    /// *.yaml, *.yml and *.json file below it is read; multi-document YAML
    /// and `kind: List` are accepted.
    #[arg(long, value_name = "DIR")]
    pub(crate) manifests: Option<PathBuf>,

    /// Kubeconfig for the Kubernetes API source (default: $KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account). Used when
    /// --manifests is not given.
    #[arg(long, value_name = "PATH")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// The API server's URL (protocol://address:port), used instead of the
    /// kubeconfig's or the in-cluster one, with their credentials.
    #[arg(long, value_name = "URL")]
    pub(crate) apiserver_host: Option<String>,

    /// A CA certificate file (PEM) to trust for --apiserver-host.
    #[arg(long, value_name = "PATH")]
    pub(crate) certificate_authority: Option<PathBuf>,

    /// List every watched kind again this often (Go duration; 0 never): a
    /// fresh list replaces what the watches delivered.
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = values::duration)]
    pub(crate) sync_period: Duration,

    /// Which Ingresses are ours, and the controller ConfigMap.
    #[command(flatten)]
    pub(crate) class: ClassArgs,

    /// The Secret (namespace/name, type kubernetes.io/tls) served on HTTPS
    /// to names no Ingress covers; without it a self-signed certificate is
    /// generated at start-up, as ingress-nginx does.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = values::ns_name)]
    pub(crate) default_ssl_certificate: Option<(String, String)>,

    /// Publish this Service's address (namespace/name) in Ingress status.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = values::ns_name)]
    pub(crate) publish_service: Option<(String, String)>,

    /// Publish these addresses (comma-separated IPs or host names) in Ingress
    /// status; takes priority over --publish-service.
    #[arg(long, value_name = "ADDRESSES", value_delimiter = ',')]
    pub(crate) publish_status_address: Vec<String>,

    /// Name of the Lease used for leader election (in POD_NAMESPACE).
    #[arg(long, default_value = "ingress-controller-leader", value_name = "NAME")]
    pub(crate) election_id: String,

    /// How long a leader's Lease lasts without renewal (Go duration: 30s, 1m).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = values::duration)]
    pub(crate) election_ttl: Duration,

    /// edge-gateway only: how long one Kubernetes API call may take (leader
    /// election calls, status writes, Events, each page of a list) before
    /// it is given up and retried (Go duration).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = values::duration)]
    pub(crate) api_call_timeout: Duration,

    /// Every replica acts as the leader and writes Ingress status.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) disable_leader_election: bool,

    /// Without --publish-service or --publish-status-address, publish the
    /// node's InternalIP rather than its ExternalIP.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) report_node_internal_ip_address: bool,

    /// Write the load-balancer address into the status of served Ingresses.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) update_status: bool,

    /// Clear Ingress status when the last replica shuts down.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) update_status_on_shutdown: bool,

    /// Seconds between checks that Ingress status is up to date.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub(crate) status_update_interval: u64,

    /// Port of the plain HTTP listener.
    #[arg(long, default_value_t = 30080, value_name = "PORT")]
    pub(crate) http_port: u16,

    /// Port of the HTTPS listener (TLS 1.2/1.3, HTTP/2 and HTTP/1.1 by ALPN).
    #[arg(long, default_value_t = 30443, value_name = "PORT")]
    pub(crate) https_port: u16,

    /// Port of the admin listener (ingress-nginx's --healthz-port): the
    /// health check is 200 once the first full configuration load is done,
    /// 503 before and while shutting down; /metrics.
    #[arg(
        long,
        alias = "healthz-port",
        default_value_t = 10254,
        value_name = "PORT"
    )]
    pub(crate) metrics_port: u16,

    /// The address the admin listener binds (default: --bind-address).
    #[arg(long, value_name = "IP", value_parser = values::optional_ip)]
    pub(crate) healthz_host: Option<String>,

    /// The health check's path on the admin listener.
    #[arg(long, default_value = "/healthz", value_name = "PATH", value_parser = values::url_path)]
    pub(crate) health_check_path: String,

    /// Serve the live configuration (compiled routes, backends, endpoints)
    /// read-only at /configuration on the admin listener; `edge-gateway
    /// check --live` prints it. Off by default.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) enable_configuration_view: bool,

    /// Serve the validating admission webhook for Ingresses on this address
    /// (`:8443` for every address of --bind-address).
    #[arg(long, value_name = "[HOST]:PORT", value_parser = values::listen_addr,
          requires_all = ["validating_webhook_certificate", "validating_webhook_key"])]
    pub(crate) validating_webhook: Option<ListenAddr>,

    /// The webhook's certificate chain (PEM file), re-read when it changes.
    #[arg(long, value_name = "PATH")]
    pub(crate) validating_webhook_certificate: Option<PathBuf>,

    /// The webhook's private key (PEM file), re-read when it changes.
    #[arg(long, value_name = "PATH")]
    pub(crate) validating_webhook_key: Option<PathBuf>,

    /// Address the listeners bind to.
    #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
    pub(crate) bind_address: IpAddr,

    /// Seconds to keep serving after SIGTERM, with /healthz already failing,
    /// so load balancers stop sending traffic before the listeners close.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub(crate) shutdown_grace_period: u64,

    /// Seconds open connections get to finish their requests after the
    /// listeners close (ingress-nginx's worker-shutdown-timeout).
    #[arg(long, default_value_t = 240, value_name = "SECONDS")]
    pub(crate) drain_timeout: u64,

    /// Seconds to wait after the listeners closed and connections drained,
    /// before exiting on SIGTERM (Ctrl-C exits at once).
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub(crate) post_shutdown_grace_period: u64,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    /// Log verbosity, as klog's: 0-2 info, 3-4 debug, 5 and more trace
    /// (RUST_LOG, when set, wins).
    #[arg(short = 'v', long = "v", default_value_t = 0, value_name = "LEVEL")]
    pub(crate) verbosity: u32,

    /// Serve request metrics (nginx_ingress_controller_requests and the
    /// request histograms) on the metrics port. Controller and process
    /// metrics are always served.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) enable_metrics: bool,

    /// Label request metrics with the host.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) metrics_per_host: bool,

    /// Record requests on hosts no Ingress names exactly (wildcard and
    /// host-less rules), labelled with the host the client sent. Off by
    /// default, as in ingress-nginx: the label would take any value a client
    /// sends.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) metrics_per_undefined_host: bool,

    /// Report the status label as a class (2xx, 4xx, ...) instead of the code.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) report_status_classes: bool,

    /// Request metric families not to export (names with or without the
    /// nginx_ingress_controller_ prefix), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub(crate) exclude_socket_metrics: Vec<String>,

    /// Buckets of the request time histograms, in seconds.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SECONDS",
        default_value = "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10"
    )]
    pub(crate) time_buckets: Vec<f64>,

    /// Buckets of the request/response length histograms, in bytes.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "BYTES",
        default_value = "10,20,30,40,50,60,70,80,90,100"
    )]
    pub(crate) length_buckets: Vec<f64>,

    /// Buckets of the (deprecated) bytes_sent histogram, in bytes.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "BYTES",
        default_value = "10,100,1000,10000,100000,1000000,10000000"
    )]
    pub(crate) size_buckets: Vec<f64>,

    /// The access log's line format: nginx (default: the ConfigMap's
    /// log-format-upstream, ingress-nginx's upstreaminfo unless set; `text`
    /// is an alias), json, or off. Where lines go follows the ConfigMap
    /// (stdout unless http-access-log-path or enable-syslog say otherwise).
    #[arg(long, value_enum, default_value_t = AccessLog::Nginx)]
    pub(crate) access_log: AccessLog,

    /// The Gateway API beside Ingress (flags in `gateway_api_args.rs`).
    #[command(flatten)]
    pub(crate) gateway_api: crate::gateway_api_args::GatewayApiArgs,

    /// TCP/UDP services and SSL passthrough.
    #[command(flatten)]
    pub(crate) edge: EdgeArgs,

    /// Where this replica runs: the pod's name and namespace (the
    /// Deployment sets POD_NAME and POD_NAMESPACE from the downward API),
    /// and the host name (the leader identity without POD_NAME).
    #[command(flatten)]
    pub(crate) pod: PodArgs,
}

/// Read from the environment, as ingress-nginx reads them.
#[derive(Debug, Clone, Args)]
pub(crate) struct PodArgs {
    /// The pod's name (POD_NAME).
    #[arg(long, env = "POD_NAME", hide = true)]
    pub(crate) pod_name: Option<String>,
    /// The pod's namespace (POD_NAMESPACE).
    #[arg(long, env = "POD_NAMESPACE", hide = true)]
    pub(crate) pod_namespace: Option<String>,
    /// The host name (HOSTNAME).
    #[arg(long, env = "HOSTNAME", hide = true)]
    pub(crate) hostname: Option<String>,
}

impl PodArgs {
    /// The pod's namespace and name, when both are set and non-empty.
    pub(crate) fn identity(&self) -> Option<(String, String)> {
        let name = self.pod_name.as_deref().filter(|n| !n.is_empty())?;
        let namespace = self.pod_namespace.as_deref().filter(|n| !n.is_empty())?;
        Some((namespace.to_owned(), name.to_owned()))
    }
}

/// Which Ingresses are ours and the controller ConfigMap: the flags that
/// serving and `check` share.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClassArgs {
    /// The controller's ConfigMap, as namespace/name.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = values::ns_name)]
    pub(crate) configmap: Option<(String, String)>,

    /// Ingresses whose `kubernetes.io/ingress.class` annotation has this
    /// value are served (and IngressClasses of this name, with
    /// --ingress-class-by-name).
    #[arg(long, default_value = "nginx", value_name = "NAME")]
    pub(crate) ingress_class: String,

    /// Ingresses whose `ingressClassName` names an IngressClass with this
    /// `spec.controller` are served.
    #[arg(
        long,
        default_value = "k8s.io/ingress-nginx",
        value_name = "CONTROLLER"
    )]
    pub(crate) controller_class: String,

    /// Also serve Ingresses that name no class at all.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) watch_ingress_without_class: bool,

    /// Serve Ingresses whose `ingressClassName` is --ingress-class even if no
    /// IngressClass with our controller exists.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) ingress_class_by_name: bool,

    /// Only serve Ingresses of this namespace (default: all namespaces).
    #[arg(long, value_name = "NAMESPACE")]
    pub(crate) watch_namespace: Option<String>,

    /// Only serve Ingresses of the Namespaces whose labels this selector
    /// matches (`env=prod,team in (a,b)`); label changes are followed.
    #[arg(long, value_name = "SELECTOR", value_parser = values::selector,
          conflicts_with = "watch_namespace")]
    pub(crate) watch_namespace_selector: Option<LabelSelector>,

    /// The prefix of the annotations read (`<prefix>/rewrite-target`).
    #[arg(long, default_value = prefix::DEFAULT_PREFIX, value_name = "PREFIX")]
    pub(crate) annotations_prefix: String,

    /// Ignore Ingresses that have a spec.defaultBackend (catch-all).
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) disable_catch_all: bool,

    /// The Service (namespace/name, its first port) that answers requests
    /// matching no Ingress rule, and the error pages of custom-http-errors
    /// without a default-backend annotation (default: the built-in 404).
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = values::ns_name)]
    pub(crate) default_backend_service: Option<(String, String)>,
}

impl ClassArgs {
    /// `--watch-namespace-selector`, unless empty.
    pub(crate) fn namespace_selector(&self) -> Option<LabelSelector> {
        self.watch_namespace_selector
            .clone()
            .filter(|s| !s.is_empty())
    }

    /// The compile options these flags set (the rest default).
    pub(crate) fn compile_options(&self) -> CompileOptions {
        CompileOptions {
            class: ClassOptions {
                ingress_class: self.ingress_class.clone(),
                controller_class: self.controller_class.clone(),
                watch_without_class: self.watch_ingress_without_class,
                by_name: self.ingress_class_by_name,
            },
            watch_namespace: self.watch_namespace.clone(),
            namespace_selector: self.namespace_selector(),
            annotations_prefix: prefix::custom(&self.annotations_prefix),
            disable_catch_all: self.disable_catch_all,
            configmap: ns_name(self.configmap.as_ref()),
            default_backend_service: ns_name(self.default_backend_service.as_ref()),
            ..CompileOptions::default()
        }
    }
}

/// A `namespace/name` flag's value as a [`NsName`].
pub(crate) fn ns_name(pair: Option<&(String, String)>) -> Option<NsName> {
    pair.map(|(ns, name)| NsName::new(ns.clone(), name.clone()))
}

/// ingress-nginx's flags for what is not plain HTTP routing: TCP/UDP
/// services and SSL passthrough.
#[derive(Debug, Clone, Args)]
pub(crate) struct EdgeArgs {
    /// Read the ClientHello's server name on the HTTPS port before
    /// terminating TLS, and splice connections for hosts whose Ingress has
    /// `nginx.ingress.kubernetes.io/ssl-passthrough: "true"` to their `/`
    /// backend, undecrypted.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) enable_ssl_passthrough: bool,

    /// The ConfigMap (namespace/name) of TCP services: `"<port>":
    /// "<namespace>/<service>:<port>[:PROXY][:PROXY]"`; ports are bound and
    /// closed as it changes.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = values::ns_name)]
    pub(crate) tcp_services_configmap: Option<(String, String)>,

    /// The ConfigMap (namespace/name) of UDP services: `"<port>":
    /// "<namespace>/<service>:<port>"`.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = values::ns_name)]
    pub(crate) udp_services_configmap: Option<(String, String)>,
}
