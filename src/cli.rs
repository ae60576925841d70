//! The command line. Flag names are ingress-nginx's controller flags where
//! one exists, so that the arguments of an existing Deployment carry over;
//! boolean flags take Go's forms too (`--flag`, `--flag=true`, `--flag=false`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use controller::class::ClassOptions;
use controller::{CompileOptions, NsName};

/// edge-gateway: a drop-in replacement for the NGINX Ingress Controller,
/// built for model serving.
///
/// Without a subcommand it serves: it reads Ingress, IngressClass, Service,
/// EndpointSlice, Secret and ConfigMap objects from a manifests folder
/// (`--manifests`), compiles them into a routing table, and proxies HTTP
/// traffic to ready pod endpoints, applying every change without a reload.
#[derive(Debug, Parser)]
#[command(name = "edge-gateway", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true, disable_help_subcommand = true)]
pub(crate) struct Cli {
    /// What to run; serving is the default.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// Serving options.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value, parsed once at start-up"
)]
pub(crate) enum Command {
    /// Serve the bundled example models: starts a demo model server on every
    /// endpoint address of the `model-serving-*` Services in the manifests
    /// folder, then serves the folder like the default command.
    Demo(ServeArgs),
    /// Create, delete or list the model-serving platform's Ingresses through
    /// the Kubernetes API (the client API; see docs/client-api.md).
    Ingress(IngressArgs),
    /// Report what this gateway would do with the Ingresses and ConfigMap a
    /// cluster (or a manifests folder) already has, without serving.
    Check(CheckArgs),
}

/// `edge-gateway check`: reads the objects once, compiles them as serving
/// would, and prints per Ingress of our class each
/// `nginx.ingress.kubernetes.io/*` annotation's status here, the routes
/// and the diagnostics, then a summary. Never serves, never binds a port.
///
/// Exit status: 0 when nothing would be refused, 1 when an Ingress would
/// not be served (a refused annotation) or its routes would answer 503 (an
/// unusable access or auth annotation), 2 for usage errors or an
/// unreadable source.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Folder of Kubernetes YAML/JSON manifests to check instead of a
    /// cluster (read once, like the serving command reads it).
    #[arg(long, value_name = "DIR", conflicts_with = "kubeconfig")]
    pub(crate) manifests: Option<PathBuf>,

    /// Kubeconfig of the cluster to check (default: $KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account). Used when
    /// --manifests is not given.
    #[arg(long, value_name = "PATH")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// How long reading the cluster may take in all (Go duration: 30s, 1m).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) request_timeout: Duration,

    /// Output format: text for people, json (one document) for pipelines.
    #[arg(long, value_enum, default_value_t = CheckOutput::Text)]
    pub(crate) output: CheckOutput,

    /// Which Ingresses are ours, and the controller ConfigMap (as serving).
    #[command(flatten)]
    pub(crate) class: ClassArgs,
}

/// How `check` prints its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum CheckOutput {
    /// Human-readable sections, one per Ingress.
    Text,
    /// One JSON document.
    Json,
}

/// `edge-gateway ingress`: the Ingress client API on the command line.
///
/// The host, base path, class, TLS Secret and URL ports come from
/// INGRESS_HOST (localhost), INGRESS_BASE_PATH (/api/v1/predict),
/// INGRESS_CLASS (nginx), INGRESS_TLS_SECRET (none), INGRESS_HTTP_PORT
/// (30080) and INGRESS_HTTPS_PORT (30443). Exit status: 0 on success, 2 for
/// invalid input or configuration (nothing was sent), 1 when the API call
/// failed.
#[derive(Debug, Args)]
pub(crate) struct IngressArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) action: IngressAction,
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) kubeconfig: Option<PathBuf>,
}

/// The `ingress` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum IngressAction {
    /// Create the Ingress, or update it if the client created it before, and
    /// print its public URL.
    Create(IngressCreateArgs),
    /// Delete the Ingress if the client created it (a missing one is fine).
    Delete(IngressNameArgs),
    /// List the Ingresses the client created, with their URLs.
    List(IngressListArgs),
}

/// Which Ingress.
#[derive(Debug, Clone, Args)]
pub(crate) struct IngressNameArgs {
    /// The Ingress's namespace.
    #[arg(short, long, value_name = "NAMESPACE")]
    pub(crate) namespace: String,
    /// The Ingress's name, e.g. model-serving-1.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: String,
}

/// What `ingress create` writes.
#[derive(Debug, Clone, Args)]
pub(crate) struct IngressCreateArgs {
    /// Which Ingress.
    #[command(flatten)]
    pub(crate) ingress: IngressNameArgs,
    /// The Service that receives the traffic (in the same namespace).
    #[arg(long, value_name = "NAME")]
    pub(crate) service: String,
    /// The Service's port.
    #[arg(long, default_value_t = 80, value_name = "PORT")]
    pub(crate) service_port: u16,
    /// The rule's host (default: INGRESS_HOST, else localhost).
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// The Prefix path (default: <INGRESS_BASE_PATH>/<id>, the id being the
    /// name without a model-serving- prefix: /api/v1/predict/1 for
    /// model-serving-1).
    #[arg(long, value_name = "PATH")]
    pub(crate) path: Option<String>,
}

/// Where `ingress list` looks.
#[derive(Debug, Clone, Args)]
pub(crate) struct IngressListArgs {
    /// Only this namespace (default: all namespaces).
    #[arg(short, long, value_name = "NAMESPACE")]
    pub(crate) namespace: Option<String>,
}

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where access log lines go, and in what form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AccessLog {
    /// One JSON object per request.
    Json,
    /// ingress-nginx's text format (upstreaminfo).
    Text,
    /// No access log.
    Off,
}

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

    /// Which Ingresses are ours, and the controller ConfigMap.
    #[command(flatten)]
    pub(crate) class: ClassArgs,

    /// The Secret (namespace/name, type kubernetes.io/tls) served on HTTPS
    /// to names no Ingress covers; without it a self-signed certificate is
    /// generated at start-up, as ingress-nginx does.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = parse_ns_name)]
    pub(crate) default_ssl_certificate: Option<(String, String)>,

    /// Publish this Service's address (namespace/name) in Ingress status.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = parse_ns_name)]
    pub(crate) publish_service: Option<(String, String)>,

    /// Publish these addresses (comma-separated IPs or host names) in Ingress
    /// status; takes priority over --publish-service.
    #[arg(long, value_name = "ADDRESSES", value_delimiter = ',')]
    pub(crate) publish_status_address: Vec<String>,

    /// Name of the Lease used for leader election (in POD_NAMESPACE).
    #[arg(long, default_value = "ingress-controller-leader", value_name = "NAME")]
    pub(crate) election_id: String,

    /// How long a leader's Lease lasts without renewal (Go duration: 30s, 1m).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) election_ttl: Duration,

    /// Write the load-balancer address into the status of served Ingresses.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) update_status: bool,

    /// Clear Ingress status when the last replica shuts down.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
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

    /// Port of the admin listener: GET /healthz is 200 once the first full
    /// configuration load is done, 503 before and while shutting down.
    #[arg(long, default_value_t = 10254, value_name = "PORT")]
    pub(crate) metrics_port: u16,

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

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,

    /// Serve request metrics (nginx_ingress_controller_requests and the
    /// request histograms) on the metrics port. Controller and process
    /// metrics are always served.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) enable_metrics: bool,

    /// Label request metrics with the host.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) metrics_per_host: bool,

    /// Record requests on hosts no Ingress names exactly (wildcard and
    /// host-less rules), labelled with the host the client sent. Off by
    /// default, as in ingress-nginx: the label would take any value a client
    /// sends.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) metrics_per_undefined_host: bool,

    /// Report the status label as a class (2xx, 4xx, ...) instead of the code.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) report_status_classes: bool,

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

    /// One access log line per request on stdout: json (default), text, or off.
    #[arg(long, value_enum, default_value_t = AccessLog::Json)]
    pub(crate) access_log: AccessLog,

    /// TCP/UDP services and SSL passthrough.
    #[command(flatten)]
    pub(crate) edge: EdgeArgs,
}

// === The edge flags (issue 15): TCP/UDP services and SSL passthrough ===

/// ingress-nginx's flags for what is not plain HTTP routing.
#[derive(Debug, Clone, Args)]
pub(crate) struct EdgeArgs {
    /// Read the ClientHello's server name on the HTTPS port before
    /// terminating TLS, and splice connections for hosts whose Ingress has
    /// `nginx.ingress.kubernetes.io/ssl-passthrough: "true"` to their `/`
    /// backend, undecrypted.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) enable_ssl_passthrough: bool,

    /// The ConfigMap (namespace/name) of TCP services: `"<port>":
    /// "<namespace>/<service>:<port>[:PROXY][:PROXY]"`; ports are bound and
    /// closed as it changes.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = parse_ns_name)]
    pub(crate) tcp_services_configmap: Option<(String, String)>,

    /// The ConfigMap (namespace/name) of UDP services: `"<port>":
    /// "<namespace>/<service>:<port>"`.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = parse_ns_name)]
    pub(crate) udp_services_configmap: Option<(String, String)>,
}

/// Which Ingresses are ours and the controller ConfigMap: the flags that
/// serving and `check` share.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClassArgs {
    /// The controller's ConfigMap, as namespace/name.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = parse_ns_name)]
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
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) watch_ingress_without_class: bool,

    /// Serve Ingresses whose `ingressClassName` is --ingress-class even if no
    /// IngressClass with our controller exists.
    #[arg(long, default_value_t = false, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) ingress_class_by_name: bool,

    /// Only serve Ingresses of this namespace (default: all namespaces).
    #[arg(long, value_name = "NAMESPACE")]
    pub(crate) watch_namespace: Option<String>,

    /// The Service (namespace/name, its first port) that answers requests
    /// matching no Ingress rule, and the error pages of custom-http-errors
    /// without a default-backend annotation (default: the built-in 404).
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = parse_ns_name)]
    pub(crate) default_backend_service: Option<(String, String)>,
}

impl ClassArgs {
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

/// `namespace/name`, both non-empty.
fn parse_ns_name(value: &str) -> Result<(String, String), String> {
    match value.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err("expected namespace/name".to_owned()),
    }
}

/// A Go duration: one or more `<number><unit>` with unit ms, s, m or h
/// (`30s`, `1m30s`, `500ms`).
fn parse_duration(value: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = value.trim();
    if rest.is_empty() {
        return Err("empty duration".to_owned());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{value:?} is not a duration such as 30s or 1m"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            unit => return Err(format!("unknown duration unit {unit:?}; use ms, s, m or h")),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_ingress_nginx() {
        let cli = Cli::try_parse_from(["edge-gateway"]).unwrap();
        let s = cli.serve;
        assert_eq!(
            (s.http_port, s.https_port, s.metrics_port),
            (30080, 30443, 10254)
        );
        assert_eq!(s.class.ingress_class, "nginx");
        assert_eq!(s.class.controller_class, "k8s.io/ingress-nginx");
        assert!(!s.class.watch_ingress_without_class);
        assert!(s.class.watch_namespace.is_none());
    }

    #[test]
    fn go_style_booleans() {
        for (arg, want) in [
            ("--watch-ingress-without-class", true),
            ("--watch-ingress-without-class=true", true),
            ("--watch-ingress-without-class=false", false),
        ] {
            let cli = Cli::try_parse_from(["edge-gateway", arg]).unwrap();
            assert_eq!(cli.serve.class.watch_ingress_without_class, want, "{arg}");
        }
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let error = Cli::try_parse_from(["edge-gateway", "--http-port", "x"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let error = Cli::try_parse_from(["edge-gateway", "--no-such-flag"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn cluster_flags_parse_like_ingress_nginx() {
        let cli = Cli::try_parse_from([
            "edge-gateway",
            "--publish-service=ingress-nginx/ingress-nginx-controller",
            "--publish-status-address=10.0.0.1,lb.example.com",
            "--election-id=ingress-nginx-leader",
            "--election-ttl=1m30s",
            "--configmap=ingress-nginx/ingress-nginx-controller",
            "--update-status-on-shutdown=false",
        ])
        .unwrap();
        let s = cli.serve;
        assert_eq!(
            s.publish_service,
            Some((
                "ingress-nginx".to_owned(),
                "ingress-nginx-controller".to_owned()
            ))
        );
        assert_eq!(s.publish_status_address, ["10.0.0.1", "lb.example.com"]);
        assert_eq!(s.election_ttl, Duration::from_secs(90));
        assert!(!s.update_status_on_shutdown);
        assert!(s.update_status);
        assert!(Cli::try_parse_from(["edge-gateway", "--configmap=nope"]).is_err());
        assert!(Cli::try_parse_from(["edge-gateway", "--election-ttl=5x"]).is_err());
    }

    #[test]
    fn edge_flags_parse_like_ingress_nginx() {
        let cli = Cli::try_parse_from([
            "edge-gateway",
            "--enable-ssl-passthrough",
            "--tcp-services-configmap=ingress-nginx/tcp-services",
            "--udp-services-configmap",
            "ingress-nginx/udp-services",
        ])
        .unwrap();
        let edge = cli.serve.edge;
        assert!(edge.enable_ssl_passthrough);
        assert_eq!(
            edge.tcp_services_configmap,
            Some(("ingress-nginx".to_owned(), "tcp-services".to_owned()))
        );
        assert!(edge.udp_services_configmap.is_some());
        let off = Cli::try_parse_from(["edge-gateway", "--enable-ssl-passthrough=false"]).unwrap();
        assert!(!off.serve.edge.enable_ssl_passthrough);
        assert!(Cli::try_parse_from(["edge-gateway", "--tcp-services-configmap=tcp"]).is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10").is_err());
    }

    #[test]
    fn demo_takes_serving_options() {
        let cli = Cli::try_parse_from(["edge-gateway", "demo", "--http-port", "8080"]).unwrap();
        let Some(Command::Demo(args)) = cli.command else {
            panic!("not the demo command");
        };
        assert_eq!(args.http_port, 8080);
    }

    #[test]
    fn ingress_create_takes_the_client_arguments() {
        let cli = Cli::try_parse_from([
            "edge-gateway",
            "ingress",
            "create",
            "--namespace",
            "user-1",
            "--name",
            "model-serving-3",
            "--service",
            "model-serving-3",
            "--kubeconfig",
            "/tmp/kc",
        ])
        .unwrap();
        let Some(Command::Ingress(args)) = cli.command else {
            panic!("not the ingress command");
        };
        assert_eq!(args.kubeconfig, Some(PathBuf::from("/tmp/kc")));
        let IngressAction::Create(create) = args.action else {
            panic!("not create");
        };
        assert_eq!(create.ingress.namespace, "user-1");
        assert_eq!(create.service_port, 80);
        assert_eq!((create.host, create.path), (None, None));
    }

    #[test]
    fn check_takes_the_class_flags_of_serving() {
        let cli = Cli::try_parse_from([
            "edge-gateway",
            "check",
            "--manifests",
            "/tmp/m",
            "--ingress-class=internal",
            "--watch-ingress-without-class",
            "--configmap=ingress-nginx/controller",
            "--default-backend-service=ingress-nginx/default-http-backend",
            "--output=json",
        ])
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("not the check command");
        };
        assert_eq!(args.manifests, Some(PathBuf::from("/tmp/m")));
        assert_eq!(args.output, CheckOutput::Json);
        assert_eq!(args.request_timeout, Duration::from_secs(30));
        let options = args.class.compile_options();
        assert_eq!(options.class.ingress_class, "internal");
        assert!(options.class.watch_without_class);
        assert_eq!(
            options.configmap,
            Some(NsName::new("ingress-nginx", "controller"))
        );
        assert_eq!(
            options.default_backend_service,
            Some(NsName::new("ingress-nginx", "default-http-backend"))
        );
        for bad in [
            &["check", "--default-backend-service", "default-http-backend"][..],
            &["check", "--manifests", "a", "--kubeconfig", "b"],
            &["check", "--output", "yaml"],
            &["check", "--http-port", "1"],
        ] {
            let error = Cli::try_parse_from(["edge-gateway"].iter().chain(bad)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn ingress_arguments_are_required_where_they_must_be() {
        for args in [
            &["ingress", "create", "--namespace", "a", "--name", "b"][..],
            &["ingress", "delete", "--name", "b"],
            &[
                "ingress",
                "create",
                "-n",
                "a",
                "--name",
                "b",
                "--service",
                "s",
                "--service-port",
                "x",
            ],
            &["ingress"],
        ] {
            let error = Cli::try_parse_from(["edge-gateway"].iter().chain(args)).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
        }
        let cli = Cli::try_parse_from(["edge-gateway", "ingress", "list"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Ingress(IngressArgs {
                action: IngressAction::List(IngressListArgs { namespace: None }),
                ..
            }))
        ));
    }
}
