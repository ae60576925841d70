//! The decision on one reviewed Ingress: compile it with every other
//! object, then deny for what would be refused and warn for the rest.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};

use super::Baseline;
use crate::compile::{compile, selects};
use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, Object, ObjectKey};

/// The name a reviewed Ingress gets when it has none yet (`generateName`).
const UNNAMED: &str = "<generated name>";
/// The most warnings returned (the API server truncates long lists).
const MAX_WARNINGS: usize = 20;
/// The longest warning returned (kubectl shows 256 characters).
const MAX_WARNING_CHARS: usize = 256;

/// The decision on one review.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the change may go ahead.
    pub allowed: bool,
    /// Why not: every diagnostic that refuses (part of) the Ingress.
    pub message: Option<String>,
    /// What would still serve but deserves a look.
    pub warnings: Vec<String>,
}

impl Verdict {
    fn allow() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }

    fn deny(message: String) -> Self {
        Self {
            allowed: false,
            message: Some(message),
            warnings: Vec::new(),
        }
    }
}

/// Whether a diagnostic about the reviewed Ingress denies it: what makes a
/// rule, a path or the whole Ingress not serve, or serve 503. Those that
/// leave it serving as meant once other objects exist (a Service, a
/// certificate) only warn, since objects are often applied in any order.
fn denies(reason: Reason) -> bool {
    match reason {
        Reason::InvalidHost
        | Reason::InvalidPath
        | Reason::InvalidPathType
        | Reason::PathConflict
        | Reason::DefaultBackendConflict
        | Reason::UnsupportedBackend
        | Reason::InvalidAnnotation
        | Reason::RefusedAnnotation
        | Reason::LocationDenied
        | Reason::CanaryConflict
        | Reason::RegexLimit
        | Reason::CanaryCrossNamespace => true,
        Reason::ServiceNotFound
        | Reason::ServicePortNotFound
        | Reason::UnsupportedService
        | Reason::InvalidCertificate
        | Reason::UnknownAnnotation
        | Reason::BackendSettingsConflict
        | Reason::CanaryNotMerged
        | Reason::CanaryIgnoredAnnotation
        | Reason::InvalidConfigKey
        | Reason::UnsupportedConfigKey
        | Reason::WafNotApplied
        | Reason::SharedHostRegexMode
        | Reason::GatewayApi
        | Reason::RouteShadowed
        | Reason::InvalidStreamService => false,
    }
}

/// Conflicts the reviewed Ingress would cause on another, older-or-newer
/// Ingress: it would take that Ingress's path (ingress-nginx's
/// `checkOverlap` refuses an Ingress whose host and path another has).
fn is_conflict(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::PathConflict | Reason::DefaultBackendConflict | Reason::CanaryConflict
    )
}

/// Judges `request` against `baseline`.
pub fn judge(baseline: &Baseline, request: &AdmissionRequest<DynamicObject>) -> Verdict {
    let resource = &request.resource;
    let reviewed = resource.group == "networking.k8s.io"
        && resource.version == "v1"
        && resource.resource == "ingresses"
        && request.sub_resource.is_none();
    if !reviewed || matches!(request.operation, Operation::Delete | Operation::Connect) {
        return Verdict::allow();
    }
    let ingress = match reviewed_ingress(request) {
        Ok(ingress) => ingress,
        Err(message) => return Verdict::deny(message),
    };
    if ingress.metadata.deletion_timestamp.is_some() {
        // Finalizers being removed: never block a deletion.
        return Verdict::allow();
    }
    let old = request
        .old_object
        .as_ref()
        .and_then(|o| read_ingress(o, None, None).ok());
    if let Some(old) = &old
        && old.spec == ingress.spec
        && old.metadata.annotations == ingress.metadata.annotations
    {
        // Labels, finalizers, owner references: nothing routing reads.
        return Verdict::allow();
    }
    let id = NsName::new(
        ingress.metadata.namespace.clone().unwrap_or_default(),
        ingress
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| UNNAMED.to_owned()),
    );
    let mut snapshot = baseline.snapshot.clone();
    snapshot.apply(Object::Ingress(Arc::new(ingress.clone())));
    if !selects(&snapshot, &baseline.options, &id, &ingress) {
        return Verdict::allow();
    }
    let compiled = compile(&snapshot, &baseline.options);
    let key = ObjectKey {
        kind: Kind::Ingress,
        id: id.clone(),
    };
    let before: BTreeSet<&Diagnostic> = baseline.diagnostics.iter().collect();
    let mut refusals = Vec::new();
    let mut warnings = Vec::new();
    for d in &compiled.diagnostics {
        if d.object == key {
            let line = format!("{}: {}", d.reason, d.message);
            if denies(d.reason) {
                refusals.push(line);
            } else {
                warnings.push(line);
            }
        } else if d.object.kind == Kind::Ingress && is_conflict(d.reason) && !before.contains(d) {
            refusals.push(format!(
                "{}: it would take a route of Ingress {}: {}",
                d.reason, d.object.id, d.message
            ));
        }
    }
    if refusals.is_empty() {
        return Verdict {
            allowed: true,
            message: None,
            warnings: warnings
                .into_iter()
                .take(MAX_WARNINGS)
                .map(|w| truncate(w, MAX_WARNING_CHARS))
                .collect(),
        };
    }
    let count = refusals.len();
    Verdict::deny(format!(
        "Ingress {id} would not be served as written ({count} problem{}): {}",
        if count == 1 { "" } else { "s" },
        refusals.join("; ")
    ))
}

/// The reviewed Ingress, with what the API server fills in later (its
/// namespace, and for a new one a creation time of now, so that it loses
/// conflicts with existing Ingresses as it will once created).
fn reviewed_ingress(request: &AdmissionRequest<DynamicObject>) -> Result<Ingress, String> {
    let object = request
        .object
        .as_ref()
        .ok_or("the review carries no object")?;
    let name = Some(request.name.as_str()).filter(|n| !n.is_empty());
    let namespace = request.namespace.as_deref().filter(|n| !n.is_empty());
    let mut ingress = read_ingress(object, name, namespace)?;
    if ingress.metadata.creation_timestamp.is_none() {
        let old_created = request
            .old_object
            .as_ref()
            .and_then(|o| o.metadata.creation_timestamp.clone());
        ingress.metadata.creation_timestamp =
            Some(old_created.unwrap_or_else(|| Time(jiff::Timestamp::now())));
    }
    Ok(ingress)
}

/// An object of the review as an Ingress, read as the watchers read them;
/// `name` and `namespace` fill in what the object leaves empty.
fn read_ingress(
    object: &DynamicObject,
    name: Option<&str>,
    namespace: Option<&str>,
) -> Result<Ingress, String> {
    let mut value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    value["apiVersion"] = "networking.k8s.io/v1".into();
    value["kind"] = "Ingress".into();
    let meta = &mut value["metadata"];
    let empty = |v: &serde_json::Value| v.as_str().is_none_or(str::is_empty);
    if empty(&meta["name"]) {
        meta["name"] = name.unwrap_or(UNNAMED).into();
    }
    if empty(&meta["namespace"]) {
        meta["namespace"] = namespace.unwrap_or("default").into();
    }
    match Object::from_value(value) {
        Ok(Some(Object::Ingress(ingress))) => Ok(Arc::unwrap_or_clone(ingress)),
        Ok(_) => Err("the object is not an Ingress".to_owned()),
        Err(error) => Err(format!(
            "the object cannot be read as an Ingress: {}",
            error.message
        )),
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.chars().count() > max {
        text = text.chars().take(max - 1).collect();
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests;
