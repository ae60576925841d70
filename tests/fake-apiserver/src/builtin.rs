//! The built-in kinds, one row each: what a Kubernetes 1.37 API server
//! serves for them (names, scope, short names, categories, subresources).
//! The order matters for bare-name lookups (`events` resolves to core v1
//! first, as kubectl does). Kinds from CustomResourceDefinitions are added
//! at run time ([`crate::crd`]); the schemas of these rows come from
//! k8s-openapi ([`crate::schemas`]).

use crate::resources::{DeleteAnswer, Verbs};

/// One built-in kind.
#[derive(Debug)]
pub(crate) struct Builtin {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) singular: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) namespaced: bool,
    pub(crate) short_names: &'static [&'static str],
    pub(crate) categories: &'static [&'static str],
    pub(crate) status: bool,
    pub(crate) verbs: Verbs,
    pub(crate) delete_answer: DeleteAnswer,
    /// The store key and stored apiVersion when they are not `group/plural`
    /// and the row's own (Events of both APIs).
    pub(crate) storage: Option<(&'static str, &'static str)>,
}

const NS: bool = true;
const CLUSTER: bool = false;
const ALL: &[&str] = &["all"];

/// A stored kind answering `Status` on DELETE.
#[expect(
    clippy::too_many_arguments,
    reason = "one row of the table, positional like its siblings"
)]
const fn kind(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status: bool,
) -> Builtin {
    Builtin {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        categories: &[],
        status,
        verbs: Verbs::All,
        delete_answer: DeleteAnswer::Status,
        storage: None,
    }
}

/// A kind in the `all` category (`kubectl get all`).
const fn in_all(mut b: Builtin) -> Builtin {
    b.categories = ALL;
    b
}

/// A kind whose DELETE answers the deleted object.
const fn returns_object(mut b: Builtin) -> Builtin {
    b.delete_answer = DeleteAnswer::Object;
    b
}

/// A review: create only, nothing stored.
const fn review(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> Builtin {
    Builtin {
        verbs: Verbs::CreateOnly,
        ..self::kind(group, "v1", plural, singular, kind, namespaced, &[], false)
    }
}

const NET: &str = "networking.k8s.io";
const RBAC: &str = "rbac.authorization.k8s.io";
const ADMISSION: &str = "admissionregistration.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";

/// Every built-in kind.
#[rustfmt::skip]
pub(crate) static BUILTIN: &[Builtin] = &[
    // core/v1
    returns_object(kind("", "v1", "namespaces", "namespace", "Namespace", CLUSTER, &["ns"], true)),
    returns_object(in_all(kind("", "v1", "services", "service", "Service", NS, &["svc"], true))),
    kind("", "v1", "endpoints", "endpoints", "Endpoints", NS, &["ep"], false),
    kind("", "v1", "secrets", "secret", "Secret", NS, &[], false),
    kind("", "v1", "configmaps", "configmap", "ConfigMap", NS, &["cm"], false),
    returns_object(kind("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", NS, &["sa"], false)),
    kind("", "v1", "events", "event", "Event", NS, &["ev"], false),
    returns_object(in_all(kind("", "v1", "pods", "pod", "Pod", NS, &["po"], true))),
    kind("", "v1", "nodes", "node", "Node", CLUSTER, &["no"], true),
    // networking.k8s.io/v1
    kind(NET, "v1", "ingresses", "ingress", "Ingress", NS, &["ing"], true),
    kind(NET, "v1", "ingressclasses", "ingressclass", "IngressClass", CLUSTER, &[], false),
    kind(NET, "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", NS, &["netpol"], false),
    // discovery.k8s.io/v1
    kind("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", NS, &[], false),
    // coordination.k8s.io/v1
    kind("coordination.k8s.io", "v1", "leases", "lease", "Lease", NS, &[], false),
    // events.k8s.io/v1: the same objects as core Events, converted. No
    // short name: `ev` stays unambiguous for kubectl (core events).
    Builtin {
        storage: Some(("/events", "v1")),
        ..kind("events.k8s.io", "v1", "events", "event", "Event", NS, &[], false)
    },
    // apps/v1
    in_all(kind("apps", "v1", "deployments", "deployment", "Deployment", NS, &["deploy"], true)),
    in_all(kind("apps", "v1", "daemonsets", "daemonset", "DaemonSet", NS, &["ds"], true)),
    in_all(kind("apps", "v1", "replicasets", "replicaset", "ReplicaSet", NS, &["rs"], true)),
    in_all(kind("apps", "v1", "statefulsets", "statefulset", "StatefulSet", NS, &["sts"], true)),
    kind("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", NS, &[], false),
    // batch/v1
    in_all(kind("batch", "v1", "jobs", "job", "Job", NS, &[], true)),
    in_all(kind("batch", "v1", "cronjobs", "cronjob", "CronJob", NS, &["cj"], true)),
    // autoscaling/v2
    in_all(kind("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", NS, &["hpa"], true)),
    // policy/v1
    kind("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", NS, &["pdb"], true),
    // rbac.authorization.k8s.io/v1
    kind(RBAC, "v1", "roles", "role", "Role", NS, &[], false),
    kind(RBAC, "v1", "rolebindings", "rolebinding", "RoleBinding", NS, &[], false),
    kind(RBAC, "v1", "clusterroles", "clusterrole", "ClusterRole", CLUSTER, &[], false),
    kind(RBAC, "v1", "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", CLUSTER, &[], false),
    // admissionregistration.k8s.io/v1
    kind(ADMISSION, "v1", "validatingwebhookconfigurations", "validatingwebhookconfiguration", "ValidatingWebhookConfiguration", CLUSTER, &[], false),
    kind(ADMISSION, "v1", "mutatingwebhookconfigurations", "mutatingwebhookconfiguration", "MutatingWebhookConfiguration", CLUSTER, &[], false),
    // apiextensions.k8s.io/v1
    returns_object(Builtin {
        categories: &["api-extensions"],
        ..kind("apiextensions.k8s.io", "v1", "customresourcedefinitions", "customresourcedefinition", "CustomResourceDefinition", CLUSTER, &["crd", "crds"], true)
    }),
    // authorization.k8s.io/v1 and authentication.k8s.io/v1: reviews
    review(AUTHZ, "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview", CLUSTER),
    review(AUTHZ, "selfsubjectrulesreviews", "selfsubjectrulesreview", "SelfSubjectRulesReview", CLUSTER),
    review(AUTHZ, "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview", CLUSTER),
    review(AUTHZ, "localsubjectaccessreviews", "localsubjectaccessreview", "LocalSubjectAccessReview", NS),
    review("authentication.k8s.io", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", CLUSTER),
    review("authentication.k8s.io", "tokenreviews", "tokenreview", "TokenReview", CLUSTER),
];
