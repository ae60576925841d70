//! Every flag ingress-nginx v1.15's controller accepts (`pkg/flags/flags.go`
//! and the klog flags it registers), and what each does here. The table
//! on docs/compatibility.md is generated from [`FLAGS`].
//!
//! - **applied**: a field of [`super::ServeArgs`] or [`super::ClassArgs`]
//!   with ingress-nginx's meaning (the note says where it differs);
//! - **ignored**: accepted with ingress-nginx's value syntax and logged
//!   once at start with the reason, because it has no meaning here;
//! - **refused**: accepted, but start-up stops with the note when the value
//!   would change behaviour, because the feature is not built yet.
//!
//! Ignored and refused flags are added to the command line from this table
//! ([`args`]); applied ones are declared on the argument structs.

use std::ffi::OsStr;

use clap::builder::{PossibleValuesParser, ValueParser};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches};

use super::values;
use Here::{Applied, Ignored, Refused};
use Syntax::{Bool, Duration, Float, Floats, Int, Ip, Severity, Text, Uint};

/// What a flag does here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Here {
    /// Applied with ingress-nginx's meaning; the note says where it differs.
    Applied(&'static str),
    /// Accepted and ignored, logged once at start with this reason.
    Ignored(&'static str),
    /// Start-up stops with this message when the value changes behaviour.
    Refused(&'static str),
}

impl Here {
    /// The status word of the docs table.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Applied(_) => "applied",
            Self::Ignored(_) => "ignored",
            Self::Refused(_) => "refused",
        }
    }

    /// The note or reason.
    pub(crate) fn note(self) -> &'static str {
        match self {
            Self::Applied(note) | Self::Ignored(note) | Self::Refused(note) => note,
        }
    }
}

/// The syntax of a flag's value, as pflag parses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// `--flag`, `--flag=true|false` (Go booleans).
    Bool,
    /// A signed integer.
    Int,
    /// An unsigned integer.
    Uint,
    /// A floating point number.
    Float,
    /// A Go duration (`30s`).
    Duration,
    /// Any text.
    Text,
    /// Comma-separated numbers.
    Floats,
    /// An IP address.
    Ip,
    /// A klog severity: INFO, WARNING, ERROR, FATAL or 0-3.
    Severity,
}

/// One ingress-nginx flag.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flag {
    /// The name, without dashes.
    pub(crate) name: &'static str,
    /// Its value syntax.
    pub(crate) syntax: Syntax,
    /// ingress-nginx's default, as a value the flag accepts.
    pub(crate) default: &'static str,
    /// What it does here.
    pub(crate) here: Here,
}

const fn flag(name: &'static str, syntax: Syntax, default: &'static str, here: Here) -> Flag {
    Flag {
        name,
        syntax,
        default,
        here,
    }
}

const NO_PPROF: &str = "no Go profiler here; nothing is served on a profiling port";
const NO_NGINX: &str = "no nginx process: nothing listens on this internal port";
const NO_GEOIP: &str =
    "GeoIP2 databases are not used here (the ConfigMap's use-geoip2 is reported as not built)";
const NATIVE_HISTOGRAMS: &str =
    "classic histograms only (native histograms need the protobuf exposition)";
const KLOG_FILES: &str = "logs always go to stderr, the container log; nothing is written to files";
const KLOG_FORMAT: &str =
    "log lines are tracing's text or JSON (--log-format); set RUST_LOG for per-module levels";

/// Every flag of ingress-nginx v1.15's controller, in its `--help` order,
/// then the klog flags.
pub(crate) const FLAGS: &[Flag] = &[
    flag(
        "apiserver-host",
        Text,
        "",
        Applied("the API server URL, with the kubeconfig's or the in-cluster credentials"),
    ),
    flag(
        "certificate-authority",
        Text,
        "",
        Applied("CA file (PEM) for --apiserver-host; ignored without it, as in ingress-nginx"),
    ),
    flag("kubeconfig", Text, "", Applied("")),
    flag("default-backend-service", Text, "", Applied("")),
    flag("ingress-class", Text, "nginx", Applied("")),
    flag(
        "controller-class",
        Text,
        "k8s.io/ingress-nginx",
        Applied(""),
    ),
    flag("watch-ingress-without-class", Bool, "false", Applied("")),
    flag("ingress-class-by-name", Bool, "false", Applied("")),
    flag("configmap", Text, "", Applied("")),
    flag("publish-service", Text, "", Applied("")),
    flag(
        "tcp-services-configmap",
        Text,
        "",
        Applied(
            "`\"<port>\": \"<namespace>/<service>:<port>[:PROXY][:PROXY]\"`; ports are bound and closed as the ConfigMap changes",
        ),
    ),
    flag(
        "udp-services-configmap",
        Text,
        "",
        Applied("`\"<port>\": \"<namespace>/<service>:<port>\"`"),
    ),
    flag(
        "sync-period",
        Duration,
        "0s",
        Applied(
            "every watched kind is listed again this often (at least 1 s); the fresh list replaces the kind's objects",
        ),
    ),
    flag("watch-namespace", Text, "", Applied("")),
    flag(
        "watch-namespace-selector",
        Text,
        "",
        Applied(
            "Namespaces are watched with the selector: an Ingress is served while its Namespace's labels match, and label changes are followed (ingress-nginx only checks on Ingress events)",
        ),
    ),
    flag("profiling", Bool, "true", Ignored(NO_PPROF)),
    flag("default-ssl-certificate", Text, "", Applied("")),
    flag(
        "health-check-path",
        Text,
        "/healthz",
        Applied("the readiness path on the metrics port"),
    ),
    flag(
        "health-check-timeout",
        Int,
        "10",
        Ignored("the health check reads the readiness state in memory and answers at once"),
    ),
    flag("update-status", Bool, "true", Applied("")),
    flag(
        "election-id",
        Text,
        "ingress-controller-leader",
        Applied(""),
    ),
    flag("election-ttl", Duration, "30s", Applied("")),
    flag("update-status-on-shutdown", Bool, "true", Applied("")),
    flag(
        "report-node-internal-ip-address",
        Bool,
        "false",
        Applied(""),
    ),
    flag(
        "version",
        Bool,
        "false",
        Applied("prints edge-gateway's version"),
    ),
    flag(
        "enable-ssl-passthrough",
        Bool,
        "false",
        Applied(
            "the ClientHello's server name is read on the HTTPS port; hosts with ssl-passthrough are spliced to their backend undecrypted",
        ),
    ),
    flag(
        "disable-leader-election",
        Bool,
        "false",
        Applied("every replica writes Ingress status"),
    ),
    flag(
        "disable-svc-external-name",
        Bool,
        "false",
        Refused(
            "ExternalName Services are routed (the gateway resolves their names); refusing them as this flag asks is not built: start-up stops when it is true",
        ),
    ),
    flag(
        "annotations-prefix",
        Text,
        "nginx.ingress.kubernetes.io",
        Applied(
            "annotations are read under this prefix; those under the default prefix are then ignored",
        ),
    ),
    flag(
        "enable-annotation-validation",
        Bool,
        "true",
        Ignored(
            "annotation values are always parsed; an invalid one keeps its default and is reported (and denied by the admission webhook)",
        ),
    ),
    flag(
        "enable-ssl-chain-completion",
        Bool,
        "false",
        Ignored(
            "certificate chains are served as the Secret holds them: put the intermediates in tls.crt",
        ),
    ),
    flag(
        "sync-rate-limit",
        Float,
        "0.3",
        Ignored(
            "changes are applied as they arrive (coalesced for 20 ms); endpoint changes never recompile routes",
        ),
    ),
    flag(
        "publish-status-address",
        Text,
        "",
        Applied("takes priority over --publish-service rather than being refused with it"),
    ),
    flag("enable-metrics", Bool, "false", Applied("")),
    flag("metrics-per-host", Bool, "true", Applied("")),
    flag("metrics-per-undefined-host", Bool, "false", Applied("")),
    flag("report-status-classes", Bool, "false", Applied("")),
    flag(
        "time-buckets",
        Floats,
        "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10",
        Applied(""),
    ),
    flag(
        "length-buckets",
        Floats,
        "10,20,30,40,50,60,70,80,90,100",
        Applied(""),
    ),
    flag(
        "size-buckets",
        Floats,
        "10,100,1000,10000,100000,1e+06,1e+07",
        Applied(""),
    ),
    flag("bucket-factor", Float, "0", Ignored(NATIVE_HISTOGRAMS)),
    flag("max-buckets", Uint, "100", Ignored(NATIVE_HISTOGRAMS)),
    flag(
        "exclude-socket-metrics",
        Text,
        "",
        Applied(
            "the named request metric families (with or without the nginx_ingress_controller_ prefix) are not exported",
        ),
    ),
    flag(
        "monitor-max-batch-size",
        Int,
        "10000",
        Ignored("request metrics are recorded in process, not batched over a socket"),
    ),
    flag(
        "http-port",
        Int,
        "80",
        Applied("the default is 30080, the model-serving platform's node port"),
    ),
    flag("https-port", Int, "443", Applied("the default is 30443")),
    flag(
        "ssl-passthrough-proxy-port",
        Int,
        "442",
        Ignored(
            "no internal passthrough proxy: passthrough connections are spliced in process on the HTTPS port",
        ),
    ),
    flag("default-server-port", Int, "8181", Ignored(NO_NGINX)),
    flag(
        "healthz-port",
        Int,
        "10254",
        Applied("same as --metrics-port"),
    ),
    flag(
        "healthz-host",
        Text,
        "",
        Applied("the address the metrics port binds (default: --bind-address)"),
    ),
    flag(
        "disable-catch-all",
        Bool,
        "false",
        Applied("Ingresses with a spec.defaultBackend are ignored"),
    ),
    flag(
        "validating-webhook",
        Text,
        "",
        Applied(
            "the admission webhook: compiles the reviewed Ingress with all others; nothing is rendered or run",
        ),
    ),
    flag(
        "validating-webhook-certificate",
        Text,
        "",
        Applied("re-read when the file changes"),
    ),
    flag(
        "validating-webhook-key",
        Text,
        "",
        Applied("re-read when the file changes"),
    ),
    flag(
        "disable-full-test",
        Bool,
        "false",
        Ignored(
            "the webhook always checks the Ingress against all others; nothing is rendered or tested with nginx",
        ),
    ),
    flag(
        "status-port",
        Int,
        "10246",
        Ignored(
            "no Lua configuration endpoint; --enable-configuration-view serves the live configuration on the metrics port",
        ),
    ),
    flag("stream-port", Int, "10247", Ignored(NO_NGINX)),
    flag(
        "internal-logger-address",
        Text,
        "127.0.0.1:11514",
        Ignored("no nginx syslog: access log lines go to stdout"),
    ),
    flag("profiler-port", Int, "10245", Ignored(NO_PPROF)),
    flag("profiler-address", Ip, "127.0.0.1", Ignored(NO_PPROF)),
    flag(
        "status-update-interval",
        Int,
        "60",
        Applied("values below 5 become 5, as in ingress-nginx"),
    ),
    flag(
        "shutdown-grace-period",
        Int,
        "0",
        Applied("seconds with readiness off before the listeners close"),
    ),
    flag(
        "post-shutdown-grace-period",
        Int,
        "10",
        Applied(
            "seconds to wait after the listeners closed and connections drained, before exiting",
        ),
    ),
    flag(
        "deep-inspect",
        Bool,
        "true",
        Ignored(
            "nothing is templated into configuration text, so there is nothing to inspect for; paths and annotations are always validated",
        ),
    ),
    flag(
        "dynamic-configuration-retries",
        Int,
        "15",
        Ignored("configuration is swapped in process; there is nothing to retry"),
    ),
    flag(
        "disable-sync-events",
        Bool,
        "false",
        Ignored("no Sync events are created; diagnostics Events still are"),
    ),
    flag(
        "enable-topology-aware-routing",
        Bool,
        "false",
        Ignored("EndpointSlice zone hints are not read: ready endpoints of every zone are used"),
    ),
    flag("maxmind-mirror", Text, "", Ignored(NO_GEOIP)),
    flag("maxmind-license-key", Text, "", Ignored(NO_GEOIP)),
    flag(
        "maxmind-edition-ids",
        Text,
        "GeoLite2-City,GeoLite2-ASN",
        Ignored(NO_GEOIP),
    ),
    flag("maxmind-retries-count", Int, "1", Ignored(NO_GEOIP)),
    flag("maxmind-retries-timeout", Duration, "0s", Ignored(NO_GEOIP)),
    // klog, registered by `klog.InitFlags` (klog v2.140).
    flag(
        "v",
        Uint,
        "0",
        Applied(
            "log verbosity: 0-2 info, 3-4 debug, 5 and more trace (RUST_LOG, when set, wins); `-v 2`, `-v=2`, `--v=2` all work",
        ),
    ),
    flag("vmodule", Text, "", Ignored(KLOG_FORMAT)),
    flag("logtostderr", Bool, "true", Ignored(KLOG_FILES)),
    flag("alsologtostderr", Bool, "false", Ignored(KLOG_FILES)),
    flag(
        "alsologtostderrthreshold",
        Severity,
        "ERROR",
        Ignored(KLOG_FILES),
    ),
    flag(
        "legacy_stderr_threshold_behavior",
        Bool,
        "true",
        Ignored(KLOG_FILES),
    ),
    flag("stderrthreshold", Severity, "ERROR", Ignored(KLOG_FILES)),
    flag("log_dir", Text, "", Ignored(KLOG_FILES)),
    flag("log_file", Text, "", Ignored(KLOG_FILES)),
    flag("log_file_max_size", Uint, "1800", Ignored(KLOG_FILES)),
    flag("one_output", Bool, "false", Ignored(KLOG_FILES)),
    flag("skip_log_headers", Bool, "false", Ignored(KLOG_FILES)),
    flag("add_dir_header", Bool, "false", Ignored(KLOG_FORMAT)),
    flag("skip_headers", Bool, "false", Ignored(KLOG_FORMAT)),
    flag("log_backtrace_at", Text, "", Ignored(KLOG_FORMAT)),
];

/// The help heading of the flags added from this table.
const HEADING: &str = "ingress-nginx flags ignored here, or refused until built";

/// The command-line arguments of the ignored and refused flags.
pub(crate) fn args() -> impl Iterator<Item = Arg> {
    FLAGS
        .iter()
        .filter(|f| !matches!(f.here, Applied(_)))
        .map(|f| {
            let arg = Arg::new(f.name)
                .long(f.name)
                .help(format!("{}: {}", f.here.label(), f.here.note()))
                .help_heading(HEADING)
                .value_name(value_name(f.syntax))
                .action(ArgAction::Set)
                .value_parser(parser(f.syntax));
            match f.syntax {
                Bool => arg.num_args(0..=1).default_missing_value("true"),
                _ => arg.num_args(1).allow_hyphen_values(true),
            }
        })
}

fn value_name(syntax: Syntax) -> &'static str {
    match syntax {
        Bool => "BOOL",
        Int | Uint => "N",
        Float => "X",
        Duration => "DURATION",
        Text => "VALUE",
        Floats => "X,...",
        Ip => "IP",
        Severity => "SEVERITY",
    }
}

fn parser(syntax: Syntax) -> ValueParser {
    match syntax {
        Bool => ValueParser::new(values::go_bool),
        Int => ValueParser::new(|v: &str| v.parse::<i64>().map_err(|e| e.to_string())),
        Uint => ValueParser::new(|v: &str| v.parse::<u64>().map_err(|e| e.to_string())),
        Float => ValueParser::new(|v: &str| v.parse::<f64>().map_err(|e| e.to_string())),
        Duration => ValueParser::new(values::duration),
        Text => ValueParser::string(),
        Floats => ValueParser::new(|v: &str| {
            v.split(',')
                .map(|x| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}")))
                .collect::<Result<Vec<f64>, _>>()
        }),
        Ip => ValueParser::new(|v: &str| {
            v.parse::<std::net::IpAddr>()
                .map_err(|e| format!("{v:?}: {e}"))
        }),
        Severity => PossibleValuesParser::new([
            "INFO", "WARNING", "ERROR", "FATAL", "info", "warning", "error", "fatal", "0", "1",
            "2", "3",
        ])
        .into(),
    }
}

/// One ignored or refused flag given on the command line.
#[derive(Clone, Debug)]
pub(crate) struct Given {
    /// The flag.
    pub(crate) flag: Flag,
    /// Its value as written (`true` for a bare boolean).
    pub(crate) value: String,
}

impl Given {
    /// Whether this value changes behaviour for a refused flag: a true
    /// boolean, a non-empty text.
    pub(crate) fn changes_behaviour(&self) -> bool {
        match self.flag.syntax {
            Bool => values::go_bool(&self.value).unwrap_or(true),
            _ => !self.value.is_empty(),
        }
    }
}

/// The ignored and refused flags given on the command line (not those at
/// their defaults).
pub(crate) fn given(matches: &ArgMatches) -> Vec<Given> {
    FLAGS
        .iter()
        .filter(|f| !matches!(f.here, Applied(_)))
        .filter(|f| matches.value_source(f.name) == Some(ValueSource::CommandLine))
        .map(|f| Given {
            flag: *f,
            value: matches
                .get_raw(f.name)
                .and_then(|mut raw| raw.next_back())
                .map(OsStr::to_string_lossy)
                .map_or_else(String::new, |v| v.into_owned()),
        })
        .collect()
}

/// Start-up refused: a flag whose feature is not built would change
/// behaviour.
#[derive(Debug, thiserror::Error)]
#[error("--{}={}: {}", .0.flag.name, .0.value, .0.flag.here.note())]
pub(crate) struct Refusal(pub(crate) Given);

/// Flags whose value is a credential: never logged.
const SECRET_VALUES: [&str; 1] = ["maxmind-license-key"];

/// Logs each ignored flag once, with its reason; fails on the first
/// refused flag whose value would change behaviour.
pub(crate) fn apply(given: &[Given]) -> Result<(), Refusal> {
    for g in given {
        let value = if SECRET_VALUES.contains(&g.flag.name) {
            "<redacted>"
        } else {
            g.value.as_str()
        };
        match g.flag.here {
            Ignored(reason) => tracing::warn!(
                flag = g.flag.name,
                value,
                "ingress-nginx flag --{} ignored: {reason}",
                g.flag.name
            ),
            Refused(_) if g.changes_behaviour() => return Err(Refusal(g.clone())),
            Refused(_) | Applied(_) => {}
        }
    }
    Ok(())
}

/// The flags whose `--name=` (empty) means the default: text flags whose
/// default is empty. pflag takes the empty value; so does edge-gateway, by
/// leaving the flag unset.
pub(crate) fn empty_means_default(arg: &str) -> bool {
    arg.strip_prefix("--")
        .and_then(|a| a.strip_suffix('='))
        .is_some_and(|name| {
            FLAGS
                .iter()
                .any(|f| f.name == name && f.syntax == Text && f.default.is_empty())
        })
}

/// The docs table (docs/compatibility.md, section `flags`).
#[cfg(test)]
pub(crate) fn table() -> String {
    let mut out =
        String::from("| Flag | ingress-nginx default | Status | Note |\n|---|---|---|---|\n");
    for f in FLAGS {
        let default = match f.default {
            "" => "—".to_owned(),
            d => format!("`{d}`"),
        };
        out.push_str(&format!(
            "| `--{}` | {default} | {} | {} |\n",
            f.name,
            f.here.label(),
            f.here.note().replace('|', "\\|")
        ));
    }
    out
}
