//! The command line. Flag names are ingress-nginx's controller flags where
//! one exists, so that the arguments of an existing Deployment carry over;
//! values take Go's syntax too (`--flag`, `--flag=false`, `-v=2`, `30s`).
//! Every flag ingress-nginx's controller accepts is accepted
//! ([`ingress_nginx`]); a flag it does not know exits 2, as there.
//!
//! - [`serve`]: the serving options (and the class options `check` shares);
//! - [`ingress_nginx`]: the registry of ingress-nginx's flags;
//! - [`certgen`]: `webhook-certgen`'s options;
//! - [`values`]: value parsers in Go's syntax.

mod certgen;
pub(crate) mod ingress_nginx;
mod serve;
pub(crate) mod values;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

pub(crate) use certgen::{CertgenAction, CertgenArgs, CreateArgs, PatchArgs};
pub(crate) use serve::{ClassArgs, ServeArgs, ns_name};

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
    /// The admission webhook's certificate, as ingress-nginx's
    /// kube-webhook-certgen: create the Secret, then patch the webhook
    /// configuration's CA (the chart runs both as Helm hook Jobs).
    WebhookCertgen(CertgenArgs),
    /// Print the Gateway API objects this gateway serves like a cluster's
    /// (or a folder's) Ingresses, and what stays on the Ingresses.
    Convert(crate::gateway_api_args::ConvertArgs),
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
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = values::duration)]
    pub(crate) request_timeout: Duration,

    /// Output format: text for people, json (one document) for pipelines.
    #[arg(long, value_enum, default_value_t = CheckOutput::Text)]
    pub(crate) output: CheckOutput,

    /// Print the configuration a running gateway serves instead of reading
    /// objects: the URL of its metrics port (it must run with
    /// --enable-configuration-view), e.g. http://127.0.0.1:10254.
    #[arg(long, value_name = "URL", conflicts_with_all = ["manifests", "kubeconfig"])]
    pub(crate) live: Option<String>,

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

/// The access log's line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum AccessLog {
    /// ingress-nginx's: the ConfigMap's log-format-upstream, its
    /// upstreaminfo format unless set.
    #[value(alias = "text")]
    Nginx,
    /// The gateway's fixed JSON object per request.
    Json,
    /// No access log.
    Off,
}

/// What the command line asked for.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The arguments.
    pub(crate) cli: Cli,
    /// The ingress-nginx flags given that have no effect here (or refuse
    /// to start): logged, or refused, at start.
    pub(crate) ingress_nginx: Vec<ingress_nginx::Given>,
    /// Arguments left out, with the reason (logged at start).
    pub(crate) dropped: Vec<(String, &'static str)>,
}

/// Parses the process's arguments; exits 2 on a usage error, 0 for
/// `--help` and `--version`.
pub(crate) fn parse() -> Parsed {
    parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
}

/// Parses `args` (the program name first).
pub(crate) fn parse_from<I, T>(args: I) -> Result<Parsed, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let (args, dropped) = normalize(args.into_iter().map(Into::into).collect());
    let mut command = command();
    let matches = command.try_get_matches_from_mut(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let serving = match (&cli.command, matches.subcommand()) {
        (None, _) => Some((&cli.serve, &matches)),
        (Some(Command::Demo(args)), Some((_, demo))) => Some((args, demo)),
        _ => None,
    };
    let mut given = Vec::new();
    if let Some((serve, matches)) = serving {
        if serve.metrics_per_undefined_host && !serve.metrics_per_host {
            return Err(command.error(
                ErrorKind::ArgumentConflict,
                "--metrics-per-undefined-host=true must be passed with --metrics-per-host=true",
            ));
        }
        given = ingress_nginx::given(matches);
    }
    Ok(Parsed {
        cli,
        ingress_nginx: given,
        dropped,
    })
}

/// The command with the ingress-nginx flags that have no field (those
/// ignored or refused here) added to the serving commands, and repeated
/// flags allowed (the last one wins, as with Go's flags).
pub(crate) fn command() -> clap::Command {
    Cli::command()
        .args_override_self(true)
        .args(ingress_nginx::args())
        .mut_subcommand("demo", |demo| {
            demo.args_override_self(true).args(ingress_nginx::args())
        })
}

/// Leaves out what ingress-nginx accepts but means nothing: a first
/// argument naming ingress-nginx's binary (its chart passes
/// `/nginx-ingress-controller` first, and ingress-nginx ignores positional
/// arguments), and `--flag=` for text flags whose default is empty.
fn normalize(args: Vec<OsString>) -> (Vec<OsString>, Vec<(String, &'static str)>) {
    let mut dropped = Vec::new();
    let mut kept = Vec::with_capacity(args.len());
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_string_lossy();
        if i == 1 && !text.starts_with('-') && text.ends_with("nginx-ingress-controller") {
            dropped.push((text.into_owned(), "the name of ingress-nginx's binary"));
        } else if i > 0 && ingress_nginx::empty_means_default(&text) {
            dropped.push((text.into_owned(), "an empty value is the default"));
        } else {
            kept.push(arg);
        }
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests;
