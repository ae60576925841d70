//! The command line. Flag names are ingress-nginx's controller flags where
//! one exists, so that the arguments of an existing Deployment carry over;
//! boolean flags take Go's forms too (`--flag`, `--flag=true`, `--flag=false`).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

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
pub(crate) enum Command {
    /// Serve the bundled example models: starts a demo model server on every
    /// endpoint address of the `model-serving-*` Services in the manifests
    /// folder, then serves the folder like the default command.
    Demo(ServeArgs),
}

/// How log lines are written (to stderr).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of the serving commands.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// Folder of Kubernetes YAML/JSON manifests to serve (watched; changes
    /// apply within a second). Every *.yaml, *.yml and *.json file below it
    /// is read; multi-document YAML and `kind: List` are accepted.
    #[arg(long, value_name = "DIR")]
    pub(crate) manifests: Option<PathBuf>,

    /// Port of the plain HTTP listener.
    #[arg(long, default_value_t = 30080, value_name = "PORT")]
    pub(crate) http_port: u16,

    /// Port of the HTTPS listener (reserved: the TLS listener is not built yet).
    #[arg(long, default_value_t = 30443, value_name = "PORT")]
    pub(crate) https_port: u16,

    /// Port of the admin listener: GET /healthz is 200 once the first full
    /// configuration load is done, 503 before and while shutting down.
    #[arg(long, default_value_t = 10254, value_name = "PORT")]
    pub(crate) metrics_port: u16,

    /// Address the listeners bind to.
    #[arg(long, default_value = "0.0.0.0", value_name = "IP")]
    pub(crate) bind_address: IpAddr,

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
        assert_eq!(s.ingress_class, "nginx");
        assert_eq!(s.controller_class, "k8s.io/ingress-nginx");
        assert!(!s.watch_ingress_without_class);
        assert!(s.watch_namespace.is_none());
    }

    #[test]
    fn go_style_booleans() {
        for (arg, want) in [
            ("--watch-ingress-without-class", true),
            ("--watch-ingress-without-class=true", true),
            ("--watch-ingress-without-class=false", false),
        ] {
            let cli = Cli::try_parse_from(["edge-gateway", arg]).unwrap();
            assert_eq!(cli.serve.watch_ingress_without_class, want, "{arg}");
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
    fn demo_takes_serving_options() {
        let cli = Cli::try_parse_from(["edge-gateway", "demo", "--http-port", "8080"]).unwrap();
        let Some(Command::Demo(args)) = cli.command else {
            panic!("not the demo command");
        };
        assert_eq!(args.http_port, 8080);
    }
}
