//! The schemas of the built-in kinds, generated once from k8s-openapi's
//! types (the `schemars` feature: descriptions, types, required fields and
//! `$ref`s named as upstream names its definitions,
//! `io.k8s.api.networking.v1.Ingress`), completed with what the upstream
//! documents carry and k8s-openapi leaves out: each kind's
//! `x-kubernetes-group-version-kind`, the strategic-merge-patch metadata
//! ([`crate::patch_meta`]), and IntOrString and Quantity as upstream types
//! them. The OpenAPI documents ([`crate::openapi`]), the field checks
//! ([`crate::fieldcheck`]) and strategic merge patch ([`crate::patch`]) read
//! them.

use std::sync::LazyLock;

use k8s_openapi::schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::patch_meta::PATCH_META;

/// Where definitions live in the generated `$ref`s (OpenAPI v2's place).
pub(crate) const REF_PREFIX: &str = "#/definitions/";

/// One built-in kind's definition.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    /// Its definition name.
    pub(crate) name: String,
}

/// The built-in definitions and the kinds at their roots.
#[derive(Debug)]
pub(crate) struct Schemas {
    /// Every definition by name, `$ref`s as `#/definitions/<name>`.
    pub(crate) definitions: Map<String, Value>,
    /// The kinds.
    pub(crate) roots: Vec<Root>,
}

fn root<T: JsonSchema>(
    generator: &mut SchemaGenerator,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
) -> Root {
    generator.subschema_for::<T>();
    Root {
        group,
        version,
        kind,
        name: T::schema_name().into_owned(),
    }
}

macro_rules! roots {
    ($generator:ident; $($group:literal $version:literal $kind:literal => $t:ty;)*) => {
        vec![$(root::<$t>(&mut $generator, $group, $version, $kind),)*]
    };
}

fn generate() -> Schemas {
    use k8s_openapi::api::{
        admissionregistration::v1 as adm, apps::v1 as apps, authentication::v1 as authn,
        authorization::v1 as authz, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, networking::v1 as net, policy::v1 as policy, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    // No transforms: `$ref`s keep their siblings (descriptions), as in
    // upstream's v2 document.
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
            s.transforms = Vec::new();
        })
        .into_generator();
    let roots = roots![generator;
        "" "v1" "Namespace" => core::Namespace;
        "" "v1" "Service" => core::Service;
        "" "v1" "Endpoints" => core::Endpoints;
        "" "v1" "Secret" => core::Secret;
        "" "v1" "ConfigMap" => core::ConfigMap;
        "" "v1" "ServiceAccount" => core::ServiceAccount;
        "" "v1" "Event" => core::Event;
        "" "v1" "Pod" => core::Pod;
        "" "v1" "Node" => core::Node;
        "networking.k8s.io" "v1" "Ingress" => net::Ingress;
        "networking.k8s.io" "v1" "IngressClass" => net::IngressClass;
        "networking.k8s.io" "v1" "NetworkPolicy" => net::NetworkPolicy;
        "discovery.k8s.io" "v1" "EndpointSlice" => discovery::EndpointSlice;
        "coordination.k8s.io" "v1" "Lease" => coordination::Lease;
        "events.k8s.io" "v1" "Event" => events::Event;
        "apps" "v1" "Deployment" => apps::Deployment;
        "apps" "v1" "DaemonSet" => apps::DaemonSet;
        "apps" "v1" "ReplicaSet" => apps::ReplicaSet;
        "apps" "v1" "StatefulSet" => apps::StatefulSet;
        "apps" "v1" "ControllerRevision" => apps::ControllerRevision;
        "batch" "v1" "Job" => batch::Job;
        "batch" "v1" "CronJob" => batch::CronJob;
        "autoscaling" "v2" "HorizontalPodAutoscaler" => autoscaling::HorizontalPodAutoscaler;
        "policy" "v1" "PodDisruptionBudget" => policy::PodDisruptionBudget;
        "rbac.authorization.k8s.io" "v1" "Role" => rbac::Role;
        "rbac.authorization.k8s.io" "v1" "RoleBinding" => rbac::RoleBinding;
        "rbac.authorization.k8s.io" "v1" "ClusterRole" => rbac::ClusterRole;
        "rbac.authorization.k8s.io" "v1" "ClusterRoleBinding" => rbac::ClusterRoleBinding;
        "admissionregistration.k8s.io" "v1" "ValidatingWebhookConfiguration" => adm::ValidatingWebhookConfiguration;
        "admissionregistration.k8s.io" "v1" "MutatingWebhookConfiguration" => adm::MutatingWebhookConfiguration;
        "apiextensions.k8s.io" "v1" "CustomResourceDefinition" => apiext::CustomResourceDefinition;
        "authorization.k8s.io" "v1" "SelfSubjectAccessReview" => authz::SelfSubjectAccessReview;
        "authorization.k8s.io" "v1" "SelfSubjectRulesReview" => authz::SelfSubjectRulesReview;
        "authorization.k8s.io" "v1" "SubjectAccessReview" => authz::SubjectAccessReview;
        "authorization.k8s.io" "v1" "LocalSubjectAccessReview" => authz::LocalSubjectAccessReview;
        "authentication.k8s.io" "v1" "SelfSubjectReview" => authn::SelfSubjectReview;
        "authentication.k8s.io" "v1" "TokenReview" => authn::TokenReview;
    ];
    let mut definitions = generator.take_definitions(false);
    complete(&mut definitions, &roots);
    Schemas { definitions, roots }
}

/// Adds what upstream's documents carry and k8s-openapi's schemas do not.
fn complete(definitions: &mut Map<String, Value>, roots: &[Root]) {
    for r in roots {
        if let Some(Value::Object(def)) = definitions.get_mut(&r.name) {
            def.insert(
                "x-kubernetes-group-version-kind".to_owned(),
                json!([{"group": r.group, "version": r.version, "kind": r.kind}]),
            );
            // Upstream does not require metadata (k8s-openapi's Rust field
            // is not optional).
            if let Some(Value::Array(required)) = def.get_mut("required") {
                required.retain(|f| f != "metadata");
                if required.is_empty() {
                    def.remove("required");
                }
            }
        }
    }
    for (definition, property, strategy, key) in PATCH_META {
        let prop = definitions
            .get_mut(*definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(*property))
            .and_then(Value::as_object_mut);
        if let Some(prop) = prop {
            prop.insert("x-kubernetes-patch-strategy".to_owned(), json!(strategy));
            if let Some(key) = key {
                prop.insert("x-kubernetes-patch-merge-key".to_owned(), json!(key));
            }
        }
    }
    let retype = |definitions: &mut Map<String, Value>, name: &str, shape: Value| {
        if let Some(Value::Object(def)) = definitions.get_mut(name) {
            def.remove("x-kubernetes-int-or-string");
            def.remove("type");
            if let Value::Object(shape) = shape {
                def.extend(shape);
            }
        }
    };
    retype(
        definitions,
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        json!({"type": "string", "format": "int-or-string"}),
    );
    retype(
        definitions,
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
        json!({"type": "string"}),
    );
    // Any JSON value, as upstream leaves it untyped.
    retype(
        definitions,
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        json!({}),
    );
}

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(generate);

/// The built-in schemas (generated on first use).
pub(crate) fn schemas() -> &'static Schemas {
    &SCHEMAS
}

/// The definition name of a built-in kind.
pub(crate) fn root_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    schemas()
        .roots
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .map(|r| r.name.as_str())
}

/// A schema with `$ref`s followed (through the built-in definitions).
pub(crate) fn resolve(schema: &Value) -> &Value {
    let mut cur = schema;
    for _ in 0..16 {
        let Some(name) = cur
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(REF_PREFIX))
        else {
            return cur;
        };
        match schemas().definitions.get(name) {
            Some(def) => cur = def,
            None => return cur,
        }
    }
    cur
}

/// The definition of a built-in kind.
pub(crate) fn kind_schema(group: &str, version: &str, kind: &str) -> Option<&'static Value> {
    root_name(group, version, kind).and_then(|n| schemas().definitions.get(n))
}

/// The schema of a property of an object schema.
pub(crate) fn property<'a>(schema: &'a Value, name: &str) -> Option<&'a Value> {
    resolve(schema).get("properties").and_then(|p| p.get(name))
}

/// The schema of the items of an array schema.
pub(crate) fn items(schema: &Value) -> Option<&Value> {
    resolve(schema).get("items")
}

/// The schema of a map's values (`additionalProperties`).
pub(crate) fn map_values(schema: &Value) -> Option<&Value> {
    resolve(schema)
        .get("additionalProperties")
        .filter(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_carry_their_group_version_kind_and_patch_metadata() {
        let ing = kind_schema("networking.k8s.io", "v1", "Ingress")
            .cloned()
            .unwrap_or_default();
        assert_eq!(ing["x-kubernetes-group-version-kind"][0]["kind"], "Ingress");
        assert!(ing.get("required").is_none());
        let spec = property(&ing, "spec").cloned().unwrap_or_default();
        let rules = property(&spec, "rules").cloned().unwrap_or_default();
        let rule = items(&rules).cloned().unwrap_or_default();
        assert!(property(&rule, "host").is_some());
        let deploy = kind_schema("apps", "v1", "Deployment")
            .cloned()
            .unwrap_or_default();
        let containers = ["spec", "template", "spec", "containers"]
            .iter()
            .try_fold(deploy, |s, p| property(&s, p).cloned());
        let containers = containers.unwrap_or_default();
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        let port = &schemas().definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(port["format"], "int-or-string");
        for r in &schemas().roots {
            assert!(schemas().definitions.contains_key(&r.name), "{}", r.name);
        }
    }
}
