//! The table of resources the fake server serves, and the lookups over it.
//!
//! The server is generic over JSON objects: everything it knows about a kind
//! is in one [`ResourceType`] row (URL name, kind, scope, discovery data and
//! whether it has a `/status` subresource).

/// One served resource: the facts the URL router, discovery and the object
/// semantics need about it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResourceType {
    /// API group, `""` for the core group.
    pub(crate) group: &'static str,
    /// API version inside the group.
    pub(crate) version: &'static str,
    /// URL name (`ingresses`).
    pub(crate) plural: &'static str,
    /// Singular name (`ingress`).
    pub(crate) singular: &'static str,
    /// Object kind (`Ingress`).
    pub(crate) kind: &'static str,
    /// Namespaced or cluster-scoped.
    pub(crate) namespaced: bool,
    /// kubectl short names (`ing`).
    pub(crate) short_names: &'static [&'static str],
    /// Whether `.status` is only written through the `/status` subresource.
    pub(crate) status_subresource: bool,
}

const fn rt(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status_subresource: bool,
) -> ResourceType {
    ResourceType {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        status_subresource,
    }
}

/// Every served resource. Order matters for bare-name lookups (`events`
/// resolves to core v1 first, as kubectl does).
pub(crate) static RESOURCES: &[ResourceType] = &[
    rt(
        "",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
    ),
    rt("", "services", "service", "Service", true, &["svc"], true),
    rt(
        "",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
        false,
    ),
    rt("", "secrets", "secret", "Secret", true, &[], false),
    rt(
        "",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        false,
    ),
    rt("", "events", "event", "Event", true, &["ev"], false),
    rt("", "pods", "pod", "Pod", true, &["po"], true),
    rt("", "nodes", "node", "Node", false, &["no"], true),
    rt(
        "networking.k8s.io",
        "ingresses",
        "ingress",
        "Ingress",
        true,
        &["ing"],
        true,
    ),
    rt(
        "networking.k8s.io",
        "ingressclasses",
        "ingressclass",
        "IngressClass",
        false,
        &[],
        false,
    ),
    rt(
        "discovery.k8s.io",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        &[],
        false,
    ),
    rt(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        false,
    ),
    // No short name: `ev` stays unambiguous for kubectl (core events).
    rt(
        "events.k8s.io",
        "events",
        "event",
        "Event",
        true,
        &[],
        false,
    ),
    crate::gateway_api::GATEWAY_CLASSES,
    crate::gateway_api::GATEWAYS,
    crate::gateway_api::HTTP_ROUTES,
    crate::gateway_api::GRPC_ROUTES,
    crate::gateway_api::REFERENCE_GRANTS_V1BETA1,
];

/// The verbs every resource supports, as discovery lists them.
pub(crate) const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceType {
    /// Position in [`RESOURCES`], the store's key for this resource.
    pub(crate) fn index(&'static self) -> usize {
        RESOURCES
            .iter()
            .position(|r| std::ptr::eq(r, self))
            .unwrap_or(usize::MAX)
    }

    /// `apiVersion` of the objects: `v1` or `group/version`.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as Kubernetes error messages name it (`services` for core).
    pub(crate) fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group` as validation messages name it (`Service` for core).
    pub(crate) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Kind of the list type (`IngressList`).
    pub(crate) fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether a name (plural, singular, kind or short name) designates this
    /// resource, case-insensitively.
    fn is_named(&self, name: &str) -> bool {
        self.plural.eq_ignore_ascii_case(name)
            || self.singular.eq_ignore_ascii_case(name)
            || self.kind.eq_ignore_ascii_case(name)
            || self
                .short_names
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
    }
}

/// The resource at `/apis/{group}/{version}/{plural}`.
pub(crate) fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of an object's `apiVersion` and `kind`.
pub(crate) fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Whether any resource lives in this group/version.
pub(crate) fn has_group_version(group: &str, version: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.group == group && r.version == version)
}

/// The distinct non-core groups, in table order.
pub(crate) fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

/// Resolves a test's name for a resource: a kind, plural, singular or short
/// name (`Ingress`, `ingresses`, `ing`), optionally qualified by group
/// (`ingresses.networking.k8s.io`) or prefixed by an apiVersion
/// (`networking.k8s.io/v1/Ingress`, `v1/Secret`).
pub(crate) fn resolve(spec: &str) -> Option<&'static ResourceType> {
    if let Some((api_version, name)) = spec.rsplit_once('/') {
        return RESOURCES
            .iter()
            .find(|r| r.api_version() == api_version && r.is_named(name));
    }
    if let Some((name, group)) = spec.split_once('.') {
        return RESOURCES
            .iter()
            .find(|r| r.group == group && r.is_named(name));
    }
    RESOURCES.iter().find(|r| r.is_named(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names() {
        let ing = resolve("Ingress").map(|r| r.plural);
        assert_eq!(ing, Some("ingresses"));
        assert_eq!(resolve("ing").map(|r| r.kind), Some("Ingress"));
        assert_eq!(
            resolve("networking.k8s.io/v1/Ingress").map(|r| r.plural),
            Some("ingresses")
        );
        assert_eq!(resolve("events").map(|r| r.group), Some(""));
        assert_eq!(
            resolve("events.events.k8s.io").map(|r| r.group),
            Some("events.k8s.io")
        );
        assert_eq!(resolve("v1/Secret").map(|r| r.plural), Some("secrets"));
        assert!(resolve("deployments").is_none());
    }

    #[test]
    fn indexes_are_positions() {
        for (i, r) in RESOURCES.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        assert_eq!(by_kind("v1", "Secret").map(|r| r.plural), Some("secrets"));
        assert!(by_path("networking.k8s.io", "v1", "ingresses").is_some());
    }
}
