//! URL paths to routes, laid out exactly as the Kubernetes API lays them out.

use crate::query::percent_decode;
use crate::resources::{Kinds, Res};

/// What a request path designates.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/version`
    Version,
    /// `/api`
    Api,
    /// `/apis`
    Apis,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`: the APIResourceList.
    GroupVersion(String, String),
    /// `/healthz`, `/livez`, `/readyz`
    Health,
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiRoot,
    /// `/openapi/v3/{gv}` (the group/version path, e.g. `api/v1`)
    OpenApiDoc(String),
    /// A resource path.
    Resource(ResourcePath),
    /// Anything else.
    NotFound,
}

/// A path under a group/version that names a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePath {
    /// The resource.
    pub(crate) rt: Res,
    /// The URL's namespace (`None`: cluster-scoped, or all namespaces).
    pub(crate) namespace: Option<String>,
    /// The object name (`None`: the collection).
    pub(crate) name: Option<String>,
    /// Whether the path is `/status`.
    pub(crate) status: bool,
    /// Whether the path used the deprecated `/watch/` prefix.
    pub(crate) watch_prefix: bool,
}

/// Parses a request path against the kinds the server serves.
pub(crate) fn route(kinds: &Kinds, path: &str) -> Route {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::Api,
        ["apis"] => Route::Apis,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", gv @ ..] => Route::OpenApiDoc(gv.join("/")),
        ["apis", group] if kinds.groups().iter().any(|g| g.name == *group) => {
            Route::Group((*group).to_owned())
        }
        ["api", version, rest @ ..] => under_group_version(kinds, "", version, rest),
        ["apis", group, version, rest @ ..] => under_group_version(kinds, group, version, rest),
        _ => Route::NotFound,
    }
}

fn under_group_version(kinds: &Kinds, group: &str, version: &str, rest: &[&str]) -> Route {
    if !kinds.has_group_version(group, version) {
        return Route::NotFound;
    }
    let (watch_prefix, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    if rest.is_empty() {
        return if watch_prefix {
            Route::NotFound
        } else {
            Route::GroupVersion(group.to_owned(), version.to_owned())
        };
    }
    let namespaced_in = |plural: &str| {
        kinds
            .by_path(group, version, plural)
            .filter(|rt| rt.namespaced)
    };
    let (namespace, parts): (Option<String>, Vec<&str>) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced_in(plural).is_some() => {
            let mut parts = vec![*plural];
            parts.extend_from_slice(tail);
            (Some((*ns).to_owned()), parts)
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, sub) = match parts.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Route::NotFound,
    };
    let Some(rt) = kinds.by_path(group, version, plural) else {
        return Route::NotFound;
    };
    if rt.namespaced && namespace.is_none() && name.is_some() {
        return Route::NotFound;
    }
    let status = match sub {
        None => false,
        Some("status") if rt.status_subresource => true,
        Some(_) => return Route::NotFound,
    };
    Route::Resource(ResourcePath {
        rt,
        namespace,
        name: name.map(str::to_owned),
        status,
        watch_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> Route {
        super::route(&Kinds::default(), path)
    }

    fn res(path: &str) -> ResourcePath {
        match route(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn kubernetes_paths() {
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(route("/api"), Route::Api);
        assert_eq!(route("/apis/"), Route::Apis);
        assert_eq!(
            route("/api/v1"),
            Route::GroupVersion(String::new(), "v1".to_owned())
        );
        assert_eq!(
            route("/apis/networking.k8s.io/v1"),
            Route::GroupVersion("networking.k8s.io".to_owned(), "v1".to_owned())
        );
        assert_eq!(
            route("/apis/networking.k8s.io"),
            Route::Group("networking.k8s.io".to_owned())
        );
        assert_eq!(route("/apis/gateway.networking.k8s.io/v1"), Route::NotFound);
        assert_eq!(route("/openapi/v2"), Route::OpenApiV2);

        let r = res("/api/v1/namespaces/default/services/web");
        assert_eq!(
            (
                r.rt.plural.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.status
            ),
            ("services", Some("default"), Some("web"), false)
        );
        let r = res("/apis/networking.k8s.io/v1/ingresses");
        assert_eq!(
            (r.rt.kind.as_str(), r.namespace, r.name),
            ("Ingress", None, None)
        );
        let r = res("/apis/networking.k8s.io/v1/namespaces/ns/ingresses/web/status");
        assert!(r.status);
        let r = res("/api/v1/namespaces/default");
        assert_eq!(
            (r.rt.kind.as_str(), r.name.as_deref()),
            ("Namespace", Some("default"))
        );
        let r = res("/api/v1/namespaces/default/status");
        assert!(r.status && r.rt.kind == "Namespace");
        let r = res("/api/v1/namespaces");
        assert_eq!((r.rt.kind.as_str(), r.name), ("Namespace", None));
        let r = res("/api/v1/nodes/n1");
        assert_eq!(r.name.as_deref(), Some("n1"));
        let r = res("/api/v1/watch/namespaces/default/secrets");
        assert!(r.watch_prefix && r.rt.kind == "Secret");
        assert_eq!(route("/api/v1/services/web"), Route::NotFound);
        assert_eq!(
            route("/api/v1/namespaces/default/secrets/a/status"),
            Route::NotFound
        );
        assert_eq!(
            route("/api/v1/namespaces/default/secrets/a/b/c"),
            Route::NotFound
        );
        assert_eq!(route("/api/v1/deployments"), Route::NotFound);
        let r = res("/apis/apps/v1/namespaces/a/deployments/web/status");
        assert!(r.status && r.rt.kind == "Deployment");
    }
}
