//! `edge-gateway check`: what this gateway would do with the objects a
//! cluster (or a manifests folder) already has, before migrating to it.
//!
//! It reads the Ingresses, IngressClasses, Services, EndpointSlices,
//! Secrets and the controller ConfigMap once, compiles them exactly as
//! serving does, and prints per Ingress of our class: each
//! `nginx.ingress.kubernetes.io/*` annotation with its status here (from the
//! annotation registry), the compiled routes and the diagnostics; then the
//! ConfigMap keys not applied, the other diagnostics and a summary line.
//! Everything is sorted, so two runs on the same objects print the same
//! bytes. It never serves and never binds a port.
//!
//! Exit status: 1 when something would be refused (an Ingress not served
//! because of a refused annotation, or routes answering 503 because an
//! access or auth annotation cannot be applied), 0 otherwise, 2 for usage
//! errors and a source that cannot be read.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use controller::annotations::{self, Support};
use controller::cluster::{self, ClusterError};
use controller::compile::selects;
use controller::config_map::{self, KeyError};
use controller::manifests::ManifestDir;
use controller::reconcile::Change;
use controller::{CompileOptions, Compiled, Diagnostic, Kind, NsName, Object, Reason, Snapshot};
use gateway::{RouteAction, RouteTable};
use serde_json::{Value, json};

use crate::cli::{CheckArgs, CheckOutput};

/// Why the objects could not be read (exit status 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    /// `--manifests` is not a readable folder.
    #[error("--manifests {}: not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// The cluster could not be reached or listed.
    #[error("{0}")]
    Cluster(#[source] ClusterError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs the check and returns the exit status.
pub(crate) fn main(args: &CheckArgs) -> ExitCode {
    if let Some(url) = &args.live {
        return crate::live_cmd::main(url, args.output);
    }
    init_warnings();
    let snapshot = match read(args) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "edge-gateway check: {error}");
            return ExitCode::from(2);
        }
    };
    let options = args.class.compile_options();
    let compiled = controller::compile(&snapshot, &options);
    let report = Report::new(&snapshot, &options, &compiled);
    let output = match args.output {
        CheckOutput::Text => report.text(&options.class.ingress_class),
        CheckOutput::Json => report.json(),
    };
    let mut out = std::io::stdout().lock();
    if out
        .write_all(output.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::from(2);
    }
    ExitCode::from(report.exit_code())
}

/// Sends warnings (a manifest file that does not parse, an object that is
/// skipped) to stderr; stdout holds the report alone.
fn init_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Reads every object from the folder or the cluster.
fn read(args: &CheckArgs) -> Result<Snapshot, SourceError> {
    read_source(
        args.manifests.as_deref(),
        args.kubeconfig.as_deref(),
        &args.class,
        args.request_timeout,
    )
}

/// Reads every object from `manifests`, else the cluster of `kubeconfig`
/// (also for `convert`).
pub(crate) fn read_source(
    manifests: Option<&Path>,
    kubeconfig: Option<&Path>,
    class: &crate::cli::ClassArgs,
    request_timeout: std::time::Duration,
) -> Result<Snapshot, SourceError> {
    let objects = match manifests {
        Some(dir) => read_folder(dir)?,
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(SourceError::Runtime)?;
            let configmap = crate::cli::ns_name(class.configmap.as_ref());
            runtime
                .block_on(async {
                    let client = cluster::connect(kubeconfig).await?;
                    cluster::list_once(
                        &client,
                        class.watch_namespace.as_deref(),
                        configmap.as_ref(),
                        class.namespace_selector().is_some(),
                        request_timeout,
                    )
                    .await
                })
                .map_err(SourceError::Cluster)?
        }
    };
    let mut snapshot = Snapshot::default();
    for object in objects {
        snapshot.apply(object);
    }
    Ok(snapshot)
}

/// The objects of a manifests folder, read as the serving command reads it.
fn read_folder(dir: &Path) -> Result<Vec<Object>, SourceError> {
    if !dir.is_dir() {
        return Err(SourceError::NotAFolder(dir.to_path_buf()));
    }
    Ok(ManifestDir::new(dir)
        .scan()
        .into_iter()
        .filter_map(|change| match change {
            Change::Apply(object) => Some(object),
            Change::Delete(_) => None,
        })
        .collect())
}

/// What becomes of one Ingress of our class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Served.
    Served,
    /// Not served: it carries a refused annotation.
    Refused,
    /// Served, but its routes answer 503: an access or auth annotation
    /// cannot be applied.
    Denied,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Served => "served",
            Self::Refused => "refused",
            Self::Denied => "denied",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Self::Served => "served",
            Self::Refused => "NOT SERVED (a refused annotation)",
            Self::Denied => "DENIED (its routes answer 503)",
        }
    }
}

/// One `nginx.ingress.kubernetes.io/*` annotation or ConfigMap key and its
/// status here.
#[derive(Debug)]
struct KeyLine {
    key: String,
    /// `None`: not an annotation or key this gateway knows.
    support: Option<Support>,
}

impl KeyLine {
    fn status(&self) -> &'static str {
        self.support.map_or("unknown", Support::label)
    }

    fn note(&self) -> &'static str {
        self.support.map_or("", Support::note)
    }

    /// `status` or `status: note`, for text.
    fn described(&self) -> String {
        match self.note() {
            "" => self.status().to_owned(),
            note => format!("{}: {note}", self.status()),
        }
    }

    fn json(&self) -> Value {
        json!({"key": self.key, "status": self.status(), "note": self.note()})
    }
}

/// One compiled route.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RouteLine {
    /// The rule's host; empty for any host.
    host: String,
    path: String,
    path_type: &'static str,
    target: Target,
}

/// Where a route's requests go.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    /// A Service port, with its endpoints' count.
    Service {
        name: String,
        port: String,
        endpoints: usize,
    },
    /// A fixed status, no upstream.
    Status(u16),
}

/// Everything found about one Ingress of our class.
#[derive(Debug)]
struct IngressReport {
    id: NsName,
    outcome: Outcome,
    annotations: Vec<KeyLine>,
    routes: Vec<RouteLine>,
    diagnostics: Vec<Diagnostic>,
}

/// The controller ConfigMap named by `--configmap`.
#[derive(Debug)]
struct ConfigMapReport {
    id: NsName,
    found: bool,
    /// Every key of its data, with its status here.
    keys: Vec<KeyLine>,
    /// The keys without effect here: not built yet, refused or unknown.
    not_applied: Vec<String>,
    /// The values that did not parse (their defaults apply).
    invalid: Vec<KeyError>,
}

/// The whole report.
#[derive(Debug)]
struct Report {
    ingresses: Vec<IngressReport>,
    /// Ingresses of another class or namespace, left alone.
    skipped: usize,
    configmap: Option<ConfigMapReport>,
    /// Diagnostics about neither an Ingress of ours nor the ConfigMap.
    other: Vec<Diagnostic>,
    /// How many diagnostics the compile gave in all.
    diagnostics: usize,
}

impl Report {
    fn new(snapshot: &Snapshot, options: &CompileOptions, compiled: &Compiled) -> Self {
        let served: BTreeSet<&NsName> = compiled.served.iter().collect();
        let mut routes = routes_by_ingress(&compiled.table);
        let mut by_object: BTreeMap<(Kind, &NsName), Vec<Diagnostic>> = BTreeMap::new();
        for diagnostic in &compiled.diagnostics {
            by_object
                .entry((diagnostic.object.kind, &diagnostic.object.id))
                .or_default()
                .push(diagnostic.clone());
        }
        let mut ingresses = Vec::new();
        let mut skipped = 0;
        for (id, ingress) in snapshot.ingresses() {
            if !selects(snapshot, options, id, ingress) {
                skipped += 1;
                continue;
            }
            let diagnostics = by_object.remove(&(Kind::Ingress, id)).unwrap_or_default();
            let outcome = if !served.contains(id) {
                Outcome::Refused
            } else if diagnostics
                .iter()
                .any(|d| d.reason == Reason::LocationDenied)
            {
                Outcome::Denied
            } else {
                Outcome::Served
            };
            let annotations = ingress
                .metadata
                .annotations
                .iter()
                .flatten()
                .filter_map(|(key, _)| {
                    let prefix = options
                        .annotations_prefix
                        .as_deref()
                        .unwrap_or(annotations::PREFIX);
                    let name = key.strip_prefix(prefix)?;
                    Some(KeyLine {
                        key: key.clone(),
                        support: annotations::known(name).map(|k| k.support),
                    })
                })
                .collect();
            ingresses.push(IngressReport {
                id: id.clone(),
                outcome,
                annotations,
                routes: routes.remove(id).unwrap_or_default(),
                diagnostics,
            });
        }
        let configmap = options.configmap.as_ref().map(|id| {
            by_object.remove(&(Kind::ConfigMap, id));
            config_map_report(snapshot, id)
        });
        Report {
            ingresses,
            skipped,
            configmap,
            other: by_object.into_values().flatten().collect(),
            diagnostics: compiled.diagnostics.len(),
        }
    }

    /// 1 when an Ingress would be refused or denied, else 0.
    fn exit_code(&self) -> u8 {
        let refusing = self.ingresses.iter().any(|i| i.outcome != Outcome::Served);
        u8::from(refusing)
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.ingresses
            .iter()
            .filter(|i| i.outcome == outcome)
            .count()
    }

    /// How many annotations have each status, by status.
    fn annotation_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for line in self.ingresses.iter().flat_map(|i| &i.annotations) {
            *counts.entry(line.status()).or_insert(0) += 1;
        }
        counts
    }

    fn route_count(&self) -> usize {
        self.ingresses.iter().map(|i| i.routes.len()).sum()
    }

    fn not_applied_count(&self) -> usize {
        self.configmap.as_ref().map_or(0, |c| c.not_applied.len())
    }

    /// The report for people.
    fn text(&self, class: &str) -> String {
        let mut out = String::new();
        for ingress in &self.ingresses {
            ingress.text(&mut out);
            out.push('\n');
        }
        if let Some(configmap) = &self.configmap {
            configmap.text(&mut out);
            out.push('\n');
        }
        if !self.other.is_empty() {
            out.push_str("Other diagnostics:\n");
            for diagnostic in &self.other {
                out.push_str(&format!("  {diagnostic}\n"));
            }
            out.push('\n');
        }
        let counts = self.annotation_counts();
        let annotation_summary: Vec<String> = [
            "refused",
            "fails closed",
            "unknown",
            "not yet",
            "differs",
            "ignored",
        ]
        .iter()
        .map(|status| format!("{} {status}", counts.get(status).copied().unwrap_or(0)))
        .collect();
        let verdict = if self.exit_code() == 0 {
            "nothing would be refused"
        } else {
            "something would be refused"
        };
        out.push_str(&format!(
            "check: {} of class {class}: {} served, {} refused, {} denied ({} skipped: other class or namespace); {}; annotations: {}; {} not applied; {}; {verdict}\n",
            plural(self.ingresses.len(), "Ingress"),
            self.count(Outcome::Served),
            self.count(Outcome::Refused),
            self.count(Outcome::Denied),
            self.skipped,
            plural(self.route_count(), "route"),
            annotation_summary.join(", "),
            plural(self.not_applied_count(), "ConfigMap key"),
            plural(self.diagnostics, "diagnostic"),
        ));
        out
    }

    /// The report as one JSON document, with a final newline.
    fn json(&self) -> String {
        let configmap = self.configmap.as_ref().map_or(Value::Null, |c| {
            json!({
                "namespace": c.id.namespace,
                "name": c.id.name,
                "found": c.found,
                "keys": c.keys.iter().map(KeyLine::json).collect::<Vec<_>>(),
                "notApplied": c.not_applied,
                "invalid": c.invalid.iter().map(|e| json!({
                    "key": e.key, "value": e.value, "message": e.message,
                })).collect::<Vec<_>>(),
            })
        });
        let document = json!({
            "ingresses": self.ingresses.iter().map(IngressReport::json).collect::<Vec<_>>(),
            "configMap": configmap,
            "diagnostics": self.other.iter().map(diagnostic_json).collect::<Vec<_>>(),
            "summary": {
                "ingresses": self.ingresses.len(),
                "served": self.count(Outcome::Served),
                "refused": self.count(Outcome::Refused),
                "denied": self.count(Outcome::Denied),
                "skipped": self.skipped,
                "routes": self.route_count(),
                "annotations": self.annotation_counts(),
                "configMapKeysNotApplied": self.not_applied_count(),
                "diagnostics": self.diagnostics,
            },
            "exitCode": self.exit_code(),
        });
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        text
    }
}

impl IngressReport {
    fn text(&self, out: &mut String) {
        out.push_str(&format!(
            "Ingress {}/{}: {}\n",
            self.id.namespace,
            self.id.name,
            self.outcome.text()
        ));
        if self.annotations.is_empty() {
            out.push_str("  annotations: none\n");
        } else {
            out.push_str("  annotations:\n");
            let rows: Vec<Vec<String>> = self
                .annotations
                .iter()
                .map(|a| vec![a.key.clone(), a.described()])
                .collect();
            columns(out, &rows);
        }
        if self.routes.is_empty() {
            out.push_str("  routes: none\n");
        } else {
            out.push_str("  routes:\n");
            let rows: Vec<Vec<String>> = self
                .routes
                .iter()
                .map(|r| {
                    let host = if r.host.is_empty() { "*" } else { &r.host };
                    let target = match &r.target {
                        Target::Service {
                            name,
                            port,
                            endpoints,
                        } => format!("-> {name}:{port} ({})", plural(*endpoints, "endpoint")),
                        Target::Status(code) => format!("-> status {code}"),
                    };
                    vec![
                        host.to_owned(),
                        r.path.clone(),
                        r.path_type.to_owned(),
                        target,
                    ]
                })
                .collect();
            columns(out, &rows);
        }
        if !self.diagnostics.is_empty() {
            out.push_str("  diagnostics:\n");
            for diagnostic in &self.diagnostics {
                out.push_str(&format!(
                    "    {}: {}\n",
                    diagnostic.reason, diagnostic.message
                ));
            }
        }
    }

    fn json(&self) -> Value {
        json!({
            "namespace": self.id.namespace,
            "name": self.id.name,
            "status": self.outcome.as_str(),
            "annotations": self.annotations.iter().map(KeyLine::json).collect::<Vec<_>>(),
            "routes": self.routes.iter().map(|r| route_json(&self.id, r)).collect::<Vec<_>>(),
            "diagnostics": self.diagnostics.iter().map(diagnostic_json).collect::<Vec<_>>(),
        })
    }
}

impl ConfigMapReport {
    fn text(&self, out: &mut String) {
        let id = &self.id;
        if !self.found {
            out.push_str(&format!(
                "ConfigMap {id}: not found; the built-in defaults apply\n"
            ));
            return;
        }
        out.push_str(&format!("ConfigMap {id}:\n"));
        if self.keys.is_empty() {
            out.push_str("  keys: none\n");
        } else {
            out.push_str("  keys:\n");
            let rows: Vec<Vec<String>> = self
                .keys
                .iter()
                .map(|k| vec![k.key.clone(), k.described()])
                .collect();
            columns(out, &rows);
        }
        if self.not_applied.is_empty() {
            out.push_str("  not applied: none\n");
        } else {
            out.push_str(&format!("  not applied: {}\n", self.not_applied.join(", ")));
        }
        for error in &self.invalid {
            out.push_str(&format!(
                "  invalid: {}: {:?} {}; {}\n",
                error.key,
                error.value,
                error.message,
                error.outcome()
            ));
        }
    }
}

/// The controller ConfigMap `id`, read as the compile reads it.
fn config_map_report(snapshot: &Snapshot, id: &NsName) -> ConfigMapReport {
    let empty = BTreeMap::new();
    let Some(data) = snapshot
        .config_map(id)
        .map(|cm| cm.data.as_ref().unwrap_or(&empty))
    else {
        return ConfigMapReport {
            id: id.clone(),
            found: false,
            keys: Vec::new(),
            not_applied: Vec::new(),
            invalid: Vec::new(),
        };
    };
    let read = config_map::read(data);
    let mut not_applied = read.not_applied;
    not_applied.extend(read.unknown);
    not_applied.sort();
    ConfigMapReport {
        id: id.clone(),
        found: true,
        keys: data
            .keys()
            .map(|key| KeyLine {
                key: key.clone(),
                support: config_map::registry::known(key).map(|k| k.support),
            })
            .collect(),
        not_applied,
        invalid: read.errors,
    }
}

/// The routes of the table by the Ingress that owns them, sorted; built-in
/// routes are left out.
fn routes_by_ingress(table: &RouteTable) -> BTreeMap<NsName, Vec<RouteLine>> {
    let mut routes: BTreeMap<NsName, Vec<RouteLine>> = BTreeMap::new();
    for route in table.routes() {
        let Some(source) = &route.source else {
            continue;
        };
        let target = match route.action {
            RouteAction::Respond(code) => Target::Status(code),
            RouteAction::Proxy(id) => match table.backend(id) {
                Some(backend) => Target::Service {
                    name: backend.key().service.to_string(),
                    port: backend.key().port.to_string(),
                    endpoints: backend.endpoints().endpoints().len(),
                },
                None => continue,
            },
        };
        routes
            .entry(NsName::new(&*source.namespace, &*source.name))
            .or_default()
            .push(RouteLine {
                host: route.host.to_string(),
                path: route.path.to_string(),
                path_type: route.path_kind.as_str(),
                target,
            });
    }
    for lines in routes.values_mut() {
        lines.sort();
        lines.dedup();
    }
    routes
}

fn route_json(owner: &NsName, route: &RouteLine) -> Value {
    let mut value = json!({
        "ingress": owner.to_string(),
        "host": route.host,
        "path": route.path,
        "pathType": route.path_type,
    });
    match &route.target {
        Target::Service {
            name,
            port,
            endpoints,
        } => {
            value["service"] = json!(name);
            value["port"] = json!(port);
            value["endpoints"] = json!(endpoints);
        }
        Target::Status(code) => value["status"] = json!(code),
    }
    value
}

fn diagnostic_json(diagnostic: &Diagnostic) -> Value {
    json!({
        "object": diagnostic.object.to_string(),
        "reason": diagnostic.reason.as_str(),
        "message": diagnostic.message,
    })
}

/// `1 route`, `2 routes`: a count and its noun.
fn plural(count: usize, noun: &str) -> String {
    match (count, noun.ends_with('s')) {
        (1, _) => format!("{count} {noun}"),
        (_, true) => format!("{count} {noun}es"),
        (_, false) => format!("{count} {noun}s"),
    }
}

/// Appends `rows` indented by four spaces, their cells aligned in columns
/// two spaces apart (the last cell is not padded).
fn columns(out: &mut String, rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            match widths.get_mut(i) {
                Some(width) => *width = (*width).max(cell.chars().count()),
                None => widths.push(cell.chars().count()),
            }
        }
    }
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str("    ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_trim() {
        let mut out = String::new();
        columns(
            &mut out,
            &[
                vec!["a".to_owned(), "long".to_owned(), "x".to_owned()],
                vec!["bbb".to_owned(), "s".to_owned(), "".to_owned()],
            ],
        );
        assert_eq!(out, "    a    long  x\n    bbb  s\n");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "route"), "1 route");
        assert_eq!(plural(0, "route"), "0 routes");
        assert_eq!(plural(2, "Ingress"), "2 Ingresses");
    }

    #[test]
    fn unknown_annotations_have_no_note() {
        let line = KeyLine {
            key: "nginx.ingress.kubernetes.io/nope".to_owned(),
            support: None,
        };
        assert_eq!((line.status(), line.note()), ("unknown", ""));
        let line = KeyLine {
            key: "nginx.ingress.kubernetes.io/server-snippet".to_owned(),
            support: annotations::known("server-snippet").map(|k| k.support),
        };
        assert_eq!(line.status(), "refused");
        assert!(!line.note().is_empty());
    }
}
