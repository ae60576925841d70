//! The kinds the fake server serves, and the lookups over them.
//!
//! The server is generic over JSON objects: everything it knows about a kind
//! is one [`ResourceType`] row (URL name, kind, scope, discovery data, which
//! subresources it has, where its objects are stored). The built-in rows are
//! data ([`crate::builtin`]); a CustomResourceDefinition adds one row per
//! served version while it exists ([`crate::crd`]). A [`Kinds`] holds the
//! rows of one server.

use std::sync::{Arc, LazyLock};

use crate::builtin::{BUILTIN, Builtin};

/// A shared row of the kind table.
pub(crate) type Res = Arc<ResourceType>;

/// What a DELETE that removes the object answers, per kind (the real
/// registries differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeleteAnswer {
    /// A `Status` with `status: Success` and the object's name, group,
    /// resource and uid (most kinds).
    Status,
    /// The deleted object itself (pods, services, service accounts,
    /// namespaces, CRDs: `ReturnDeletedObject` in the real registries).
    Object,
}

/// Which verbs a resource takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verbs {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    All,
    /// Only `create`, answered without storing (access reviews).
    CreateOnly,
}

impl Verbs {
    /// The verbs as discovery lists them.
    pub(crate) fn names(self) -> &'static [&'static str] {
        match self {
            Self::All => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Self::CreateOnly => &["create"],
        }
    }
}

/// One served resource: the facts the URL router, discovery, the OpenAPI
/// documents and the object semantics need about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceType {
    /// API group, `""` for the core group.
    pub(crate) group: String,
    /// API version inside the group.
    pub(crate) version: String,
    /// URL name (`ingresses`).
    pub(crate) plural: String,
    /// Singular name (`ingress`).
    pub(crate) singular: String,
    /// Object kind (`Ingress`).
    pub(crate) kind: String,
    /// Namespaced or cluster-scoped.
    pub(crate) namespaced: bool,
    /// kubectl short names (`ing`).
    pub(crate) short_names: Vec<String>,
    /// Discovery categories (`all`).
    pub(crate) categories: Vec<String>,
    /// Whether `.status` is only written through the `/status` subresource.
    pub(crate) status_subresource: bool,
    /// The verbs it takes.
    pub(crate) verbs: Verbs,
    /// What a DELETE answers.
    pub(crate) delete_answer: DeleteAnswer,
    /// The store's key for its objects, shared by every version of one
    /// resource (and by core and `events.k8s.io` Events).
    pub(crate) storage: Arc<str>,
    /// The apiVersion objects are stored in ([`crate::convert`]).
    pub(crate) storage_version: String,
    /// Whether it comes from a CustomResourceDefinition.
    pub(crate) custom: bool,
}

impl ResourceType {
    /// A row from the built-in table.
    fn from_builtin(b: &Builtin) -> Self {
        Self {
            group: b.group.to_owned(),
            version: b.version.to_owned(),
            plural: b.plural.to_owned(),
            singular: b.singular.to_owned(),
            kind: b.kind.to_owned(),
            namespaced: b.namespaced,
            short_names: b.short_names.iter().map(|s| (*s).to_owned()).collect(),
            categories: b.categories.iter().map(|s| (*s).to_owned()).collect(),
            status_subresource: b.status,
            verbs: b.verbs,
            delete_answer: b.delete_answer,
            storage: Arc::from(
                b.storage
                    .map_or_else(|| storage_key(b.group, b.plural), |(key, _)| key.to_owned()),
            ),
            storage_version: b
                .storage
                .map_or_else(|| api_version(b.group, b.version), |(_, v)| v.to_owned()),
            custom: false,
        }
    }

    /// `apiVersion` of the objects: `v1` or `group/version`.
    pub(crate) fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    /// `plural.group` as Kubernetes error messages name it (`services` for core).
    pub(crate) fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group` as validation messages name it (`Service` for core).
    pub(crate) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Kind of the list type (`IngressList`).
    pub(crate) fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The URL prefix of its group/version (`api/v1`, `apis/apps/v1`), as
    /// the OpenAPI v3 documents are named.
    pub(crate) fn gv_path(&self) -> String {
        if self.group.is_empty() {
            format!("api/{}", self.version)
        } else {
            format!("apis/{}/{}", self.group, self.version)
        }
    }

    /// Whether objects are stored and read back (not a review).
    pub(crate) fn is_stored(&self) -> bool {
        self.verbs == Verbs::All
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

/// `v1` or `group/version`.
pub(crate) fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The store key of a resource: `group/plural`.
pub(crate) fn storage_key(group: &str, plural: &str) -> String {
    format!("{group}/{plural}")
}

/// Kubernetes' version priority: GA before beta before alpha, higher
/// numbers first, then other strings alphabetically (as `kubectl` and the
/// API server order a group's versions).
pub(crate) fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn rank(v: &str) -> (u8, u64, u64, String) {
        let parsed = v.strip_prefix('v').and_then(|rest| {
            let digits_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let major = rest[..digits_end].parse::<u64>().ok()?;
            let tail = &rest[digits_end..];
            let (stage, minor) = if tail.is_empty() {
                (3, 0)
            } else if let Some(n) = tail.strip_prefix("beta") {
                (2, n.parse().ok()?)
            } else if let Some(n) = tail.strip_prefix("alpha") {
                (1, n.parse().ok()?)
            } else {
                return None;
            };
            Some((stage, major, minor))
        });
        match parsed {
            Some((stage, major, minor)) => (stage, major, minor, String::new()),
            None => (0, 0, 0, v.to_owned()),
        }
    }
    let (ra, rb) = (rank(a), rank(b));
    // Higher stage, major and minor first; unknown strings last, A to Z.
    rb.0.cmp(&ra.0)
        .then(rb.1.cmp(&ra.1))
        .then(rb.2.cmp(&ra.2))
        .then(ra.3.cmp(&rb.3))
}

/// The built-in rows, made once.
static BUILTIN_ROWS: LazyLock<Vec<Res>> = LazyLock::new(|| {
    BUILTIN
        .iter()
        .map(|b| Arc::new(ResourceType::from_builtin(b)))
        .collect()
});

/// A built-in kind by name (see [`Kinds::resolve`]), for tests and fixed
/// lookups.
pub(crate) fn builtin(spec: &str) -> Option<Res> {
    resolve_in(&BUILTIN_ROWS, spec)
}

fn resolve_in(rows: &[Res], spec: &str) -> Option<Res> {
    let found = if let Some((api_version, name)) = spec.rsplit_once('/') {
        rows.iter()
            .find(|r| r.api_version() == api_version && r.is_named(name))
    } else if let Some((name, group)) = spec.split_once('.') {
        rows.iter().find(|r| r.group == group && r.is_named(name))
    } else {
        rows.iter().find(|r| r.is_named(spec))
    };
    found.cloned()
}

/// One group as discovery lists it: its versions, preferred first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    /// The group name.
    pub(crate) name: String,
    /// Its versions, preferred first.
    pub(crate) versions: Vec<String>,
}

/// The kind table of one server: the built-in rows, then the rows of the
/// CustomResourceDefinitions that exist.
#[derive(Debug, Clone)]
pub(crate) struct Kinds {
    rows: Vec<Res>,
}

impl Default for Kinds {
    fn default() -> Self {
        Self {
            rows: BUILTIN_ROWS.clone(),
        }
    }
}

impl Kinds {
    /// Every row, built-in first.
    pub(crate) fn all(&self) -> &[Res] {
        &self.rows
    }

    /// Replaces the custom rows.
    pub(crate) fn set_custom(&mut self, custom: Vec<Res>) {
        self.rows.retain(|r| !r.custom);
        self.rows.extend(custom);
    }

    /// The resource at `/apis/{group}/{version}/{plural}`.
    pub(crate) fn by_path(&self, group: &str, version: &str, plural: &str) -> Option<Res> {
        self.rows
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// The resource of an object's `apiVersion` and `kind`.
    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<Res> {
        self.rows
            .iter()
            .find(|r| r.kind == kind && r.api_version() == api_version)
            .cloned()
    }

    /// Whether any resource lives in this group/version.
    pub(crate) fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.rows
            .iter()
            .any(|r| r.group == group && r.version == version)
    }

    /// The distinct non-core groups (table order), each with its versions
    /// in priority order.
    pub(crate) fn groups(&self) -> Vec<Group> {
        let mut out: Vec<Group> = Vec::new();
        for r in self.rows.iter().filter(|r| !r.group.is_empty()) {
            match out.iter_mut().find(|g| g.name == r.group) {
                Some(g) if !g.versions.contains(&r.version) => g.versions.push(r.version.clone()),
                Some(_) => {}
                None => out.push(Group {
                    name: r.group.clone(),
                    versions: vec![r.version.clone()],
                }),
            }
        }
        for g in &mut out {
            g.versions.sort_by(|a, b| version_order(a, b));
        }
        out
    }

    /// The group/version URL prefixes (`api/v1`, `apis/apps/v1`), in table
    /// order.
    pub(crate) fn group_version_paths(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.rows {
            let gv = r.gv_path();
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        out
    }

    /// Resolves a test's name for a resource: a kind, plural, singular or
    /// short name (`Ingress`, `ingresses`, `ing`), optionally qualified by
    /// group (`ingresses.networking.k8s.io`) or prefixed by an apiVersion
    /// (`networking.k8s.io/v1/Ingress`, `v1/Secret`).
    pub(crate) fn resolve(&self, spec: &str) -> Option<Res> {
        resolve_in(&self.rows, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names() {
        let kinds = Kinds::default();
        let plural = |spec: &str| kinds.resolve(spec).map(|r| r.plural.clone());
        assert_eq!(plural("Ingress").as_deref(), Some("ingresses"));
        assert_eq!(plural("ing").as_deref(), Some("ingresses"));
        assert_eq!(
            plural("networking.k8s.io/v1/Ingress").as_deref(),
            Some("ingresses")
        );
        assert_eq!(
            kinds.resolve("events").map(|r| r.group.clone()).as_deref(),
            Some("")
        );
        assert_eq!(
            kinds
                .resolve("events.events.k8s.io")
                .map(|r| r.group.clone())
                .as_deref(),
            Some("events.k8s.io")
        );
        assert_eq!(plural("v1/Secret").as_deref(), Some("secrets"));
        assert_eq!(plural("deploy").as_deref(), Some("deployments"));
        assert!(kinds.resolve("gateways").is_none());
    }

    #[test]
    fn storage_is_shared_by_event_apis() {
        let kinds = Kinds::default();
        let core = kinds.by_kind("v1", "Event");
        let new = kinds.by_kind("events.k8s.io/v1", "Event");
        assert_eq!(
            core.map(|r| r.storage.clone()),
            new.map(|r| r.storage.clone())
        );
        assert!(
            kinds
                .by_path("networking.k8s.io", "v1", "ingresses")
                .is_some()
        );
        assert!(kinds.has_group_version("apps", "v1"));
    }

    #[test]
    fn versions_in_kubernetes_priority() {
        let mut v = vec!["v1alpha1", "v2", "v1beta2", "v1", "foo", "v1beta1", "v10"];
        v.sort_by(|a, b| version_order(a, b));
        assert_eq!(
            v,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]
        );
    }
}
