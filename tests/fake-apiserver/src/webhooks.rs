//! Admission webhooks: the Validating- and MutatingWebhookConfigurations
//! in the store decide which webhooks a write goes to (rules: operations,
//! groups, versions, resources and subresources, scope; namespaceSelector;
//! objectSelector), each is called over HTTPS with its caBundle
//! ([`crate::webhook_call`]), and its answer is applied as kube-apiserver
//! does: a denial becomes `admission webhook "<name>" denied the request:
//! <message>` with the webhook's code (at least 400), a failed call (refused,
//! TLS, timeout after `timeoutSeconds`) is an InternalError under
//! `failurePolicy: Fail` (the default) and is skipped under `Ignore`, and a
//! mutating webhook's JSON patch is applied. Not evaluated: `matchConditions`
//! (CEL), so a webhook with them is called as if they matched.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::admission::Attributes;
use crate::handlers::namespace_key;
use crate::patch::json_patch;
use crate::selectors::label_selector_matches;
use crate::state::{Shared, lock};
use crate::status::ApiError;
use crate::store::Store;
use crate::webhook_call::{Target, call};

/// Mutating or validating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Mutating,
    Validating,
}

impl Phase {
    fn storage(self) -> &'static str {
        match self {
            Self::Mutating => "admissionregistration.k8s.io/mutatingwebhookconfigurations",
            Self::Validating => "admissionregistration.k8s.io/validatingwebhookconfigurations",
        }
    }
}

/// The default and the largest `timeoutSeconds`.
const DEFAULT_TIMEOUT: u64 = 10;
const MAX_TIMEOUT: u64 = 30;

/// One webhook selected for a write, with where to call it.
#[derive(Debug)]
struct Selected {
    name: String,
    webhook: Value,
    /// Where to call it, or why it cannot be called.
    target: Result<Target, String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// Whether a list from a rule admits a value (`*` admits all).
fn admits(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// Whether a rule's `resources` admit the resource and subresource.
fn admits_resource(resources: &[String], plural: &str, sub: Option<&str>) -> bool {
    resources.iter().any(|r| {
        let (res, rsub) = r
            .split_once('/')
            .map_or((r.as_str(), None), |(a, b)| (a, Some(b)));
        let res_ok = res == "*" || res == plural;
        match (rsub, sub) {
            (None, None) => res_ok,
            (Some("*"), _) => res_ok,
            (Some(rs), Some(s)) => res_ok && rs == s,
            _ => false,
        }
    })
}

/// Whether one of a webhook's rules matches the write.
fn rules_match(webhook: &Value, attrs: &Attributes<'_>) -> bool {
    let sub = attrs.status.then_some("status");
    webhook
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|rule| {
            let scope = rule.get("scope").and_then(Value::as_str).unwrap_or("*");
            let scope_ok = match scope {
                "Cluster" => !attrs.rt.namespaced,
                "Namespaced" => attrs.rt.namespaced,
                _ => true,
            };
            scope_ok
                && admits(&strings(rule, "operations"), attrs.operation.as_str())
                && admits(&strings(rule, "apiGroups"), &attrs.rt.group)
                && admits(&strings(rule, "apiVersions"), &attrs.rt.version)
                && admits_resource(&strings(rule, "resources"), &attrs.rt.plural, sub)
        })
}

/// Whether the namespace and object selectors match.
fn selectors_match(store: &Store, webhook: &Value, attrs: &Attributes<'_>, object: &Value) -> bool {
    let labels = |o: &Value| {
        o.pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}))
    };
    let empty = json!({});
    let ns_selector = webhook.get("namespaceSelector").unwrap_or(&empty);
    let ns_ok = if attrs.rt.namespaced {
        let ns_labels = store
            .get(&namespace_key(&attrs.namespace))
            .map_or_else(|| json!({}), |n| labels(n));
        label_selector_matches(ns_selector, &ns_labels)
    } else if attrs.rt.kind == "Namespace" {
        label_selector_matches(ns_selector, &labels(object))
    } else {
        true
    };
    let obj_selector = webhook.get("objectSelector").unwrap_or(&empty);
    let obj_ok = label_selector_matches(obj_selector, &labels(object))
        || attrs
            .old
            .is_some_and(|o| label_selector_matches(obj_selector, &labels(o)));
    ns_ok && obj_ok
}

/// The webhooks of one phase that a write goes to, in configuration and
/// webhook order.
fn select(shared: &Shared, attrs: &Attributes<'_>, object: &Value, phase: Phase) -> Vec<Selected> {
    let store = lock(&shared.store);
    let res: Arc<str> = Arc::from(phase.storage());
    let mut out = Vec::new();
    for (_, config) in store.range(&res, None, None) {
        for webhook in config
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !rules_match(webhook, attrs) || !selectors_match(&store, webhook, attrs, object) {
                continue;
            }
            let name = webhook
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            out.push(Selected {
                target: Target::resolve(&store, webhook),
                name,
                webhook: webhook.clone(),
            });
        }
    }
    out
}

/// The error of a denial, as `ToStatusErr` builds it.
fn denial(name: &str, status: Option<&Value>) -> ApiError {
    let status = status.cloned().unwrap_or_else(|| json!({}));
    let mut err = ApiError::from_status(&status);
    let denied = format!("admission webhook {name:?} denied the request");
    let message = status.get("message").and_then(Value::as_str).unwrap_or("");
    let reason = status.get("reason").and_then(Value::as_str).unwrap_or("");
    err.message = if !message.is_empty() {
        format!("{denied}: {message}")
    } else if !reason.is_empty() {
        format!("{denied}: {reason}")
    } else {
        format!("{denied} without explanation")
    };
    let code = status.get("code").and_then(Value::as_u64).unwrap_or(0);
    err.code = u16::try_from(code)
        .ok()
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    err
}

/// Runs the webhooks of one phase over `object`.
pub(crate) async fn run(
    shared: &Shared,
    attrs: &Attributes<'_>,
    mut object: Value,
    phase: Phase,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    for hook in select(shared, attrs, &object, phase) {
        let fail_open = hook.webhook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore");
        let side_effects = hook
            .webhook
            .get("sideEffects")
            .and_then(Value::as_str)
            .unwrap_or("Unknown");
        if attrs.dry_run && !matches!(side_effects, "None" | "NoneOnDryRun") {
            return Err(ApiError::bad_request(format!(
                "admission webhook {:?} does not support dry run",
                hook.name
            )));
        }
        let timeout = hook
            .webhook
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_TIMEOUT)
            .clamp(1, MAX_TIMEOUT);
        let outcome = match &hook.target {
            Ok(target) => {
                call(
                    target,
                    attrs,
                    &object,
                    &hook.webhook,
                    Duration::from_secs(timeout),
                )
                .await
            }
            Err(why) => Err(why.clone()),
        };
        let response = match outcome {
            Ok(r) => r,
            Err(why) if fail_open => {
                tracing::warn!(webhook = %hook.name, error = %why, "failed calling webhook, failing open");
                continue;
            }
            Err(why) => {
                return Err(ApiError::internal(&format!(
                    "failed calling webhook {:?}: {why}",
                    hook.name
                )));
            }
        };
        warnings.extend(strings(&response, "warnings"));
        if response.get("allowed") != Some(&json!(true)) {
            return Err(denial(&hook.name, response.get("status")));
        }
        if phase == Phase::Mutating
            && let Some(patch) = response.get("patch").and_then(Value::as_str)
        {
            object = apply_patch(&hook.name, &object, patch, response.get("patchType"))?;
        }
    }
    Ok(object)
}

/// A mutating webhook's base64 JSON patch applied to the object.
fn apply_patch(
    name: &str,
    object: &Value,
    patch: &str,
    kind: Option<&Value>,
) -> Result<Value, ApiError> {
    use base64::Engine as _;
    let fail = |why: String| ApiError::internal(&format!("failed calling webhook {name:?}: {why}"));
    if kind.and_then(Value::as_str) != Some("JSONPatch") {
        return Err(fail(format!("unsupported patch type {kind:?}")));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| fail(format!("the patch is not base64: {e}")))?;
    let ops: Value =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("the patch is not JSON: {e}")))?;
    let mut patched = object.clone();
    json_patch(&mut patched, &ops).map_err(fail)?;
    Ok(patched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_rules() {
        let r = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(admits_resource(&r(&["ingresses"]), "ingresses", None));
        assert!(!admits_resource(
            &r(&["ingresses"]),
            "ingresses",
            Some("status")
        ));
        assert!(admits_resource(
            &r(&["ingresses/status"]),
            "ingresses",
            Some("status")
        ));
        assert!(admits_resource(&r(&["*"]), "services", None));
        assert!(!admits_resource(&r(&["*"]), "services", Some("status")));
        assert!(admits_resource(&r(&["*/*"]), "services", Some("status")));
        assert!(!admits_resource(&r(&["services"]), "ingresses", None));
    }

    #[test]
    fn denials_worded_like_kubernetes() {
        let e = denial(
            "validate.nginx.ingress.kubernetes.io",
            Some(&json!({"message": "snippets are refused", "code": 403})),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "admission webhook \"validate.nginx.ingress.kubernetes.io\" denied the request: snippets are refused"
        );
        let bare = denial("w", None);
        assert_eq!(
            (bare.code, bare.message.as_str()),
            (
                400,
                "admission webhook \"w\" denied the request without explanation"
            )
        );
        assert_eq!(bare.to_status()["status"], "Failure");
    }
}
