//! Diagnostics: what `compile()` skipped or could not honour, and why,
//! naming the object. They become log lines (and, with the Kubernetes API
//! source, Events), never a failure of the whole configuration.

use std::fmt;

use crate::objects::ObjectKey;

/// Why something in an object was skipped or degraded. The names follow
/// Kubernetes Event reason style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// A rule's host is not a valid host name or wildcard.
    InvalidHost,
    /// A path is not valid for its pathType.
    InvalidPath,
    /// A pathType other than Exact, Prefix or ImplementationSpecific.
    InvalidPathType,
    /// Another (older) Ingress already routes this host, path and pathType.
    PathConflict,
    /// Another (older) Ingress already set the default backend.
    DefaultBackendConflict,
    /// A backend that is not a Service (resource backends).
    UnsupportedBackend,
    /// The backend Service does not exist.
    ServiceNotFound,
    /// The backend Service has no such port.
    ServicePortNotFound,
    /// The backend Service is of a type this gateway cannot route to.
    UnsupportedService,
    /// An annotation value that does not parse; the default applies.
    InvalidAnnotation,
    /// A TLS Secret that is missing, malformed, expired or for other names.
    InvalidCertificate,
    /// An annotation under the ingress-nginx prefix that is not known.
    UnknownAnnotation,
    /// An annotation that is never applied (configuration snippets): the
    /// Ingress is not served.
    RefusedAnnotation,
    /// An access or authentication annotation that cannot be applied (a
    /// bad address list, a missing users Secret): the Ingress's routes
    /// answer 503, as ingress-nginx's denied locations.
    LocationDenied,
    /// An older Ingress routing to the same backend decides its balancing,
    /// queue and hold settings; this Ingress's are ignored for it.
    BackendSettingsConflict,
    /// A canary Ingress path that has no main route to join (or would
    /// split a route with itself): it serves nothing there.
    CanaryNotMerged,
    /// A route already has an older canary; this one is not used there.
    CanaryConflict,
    /// Annotations a canary Ingress carries that only its main Ingress's
    /// decide (its requests use the main route's settings).
    CanaryIgnoredAnnotation,
    /// A controller ConfigMap value that does not parse; the default applies.
    InvalidConfigKey,
    /// Controller ConfigMap keys this gateway does not apply.
    UnsupportedConfigKey,
    /// A route asks for a WAF this gateway does not have, and is served
    /// without it because the operator said so
    /// (`edge-gateway.io/serve-without-waf`).
    WafNotApplied,
    /// An Ingress over a regex limit (paths per Ingress or host, compiled
    /// size): not served.
    RegexLimit,
    /// An Ingress puts a host shared with other namespaces in regex mode.
    SharedHostRegexMode,
    /// A canary Ingress names a route of another namespace, which is not
    /// allowed: it serves nothing there.
    CanaryCrossNamespace,
    /// A Gateway API object is not served (or only in part): a Gateway or
    /// listener not accepted, a route not attached, rules answering 500,
    /// a backendRef that does not resolve (its status says the same).
    GatewayApi,
    /// An HTTPRoute rule's path on a host is held by an Ingress rule,
    /// which keeps it.
    RouteShadowed,
    /// An entry of a TCP/UDP services ConfigMap that cannot be served.
    InvalidStreamService,
}

impl Reason {
    /// The reason as a single CamelCase word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidHost => "InvalidHost",
            Self::InvalidPath => "InvalidPath",
            Self::InvalidPathType => "InvalidPathType",
            Self::PathConflict => "PathConflict",
            Self::DefaultBackendConflict => "DefaultBackendConflict",
            Self::UnsupportedBackend => "UnsupportedBackend",
            Self::ServiceNotFound => "ServiceNotFound",
            Self::ServicePortNotFound => "ServicePortNotFound",
            Self::UnsupportedService => "UnsupportedService",
            Self::InvalidAnnotation => "InvalidAnnotation",
            Self::InvalidCertificate => "InvalidCertificate",
            Self::UnknownAnnotation => "UnknownAnnotation",
            Self::RefusedAnnotation => "RefusedAnnotation",
            Self::LocationDenied => "LocationDenied",
            Self::CanaryNotMerged => "CanaryNotMerged",
            Self::CanaryConflict => "CanaryConflict",
            Self::CanaryIgnoredAnnotation => "CanaryIgnoredAnnotation",
            Self::InvalidConfigKey => "InvalidConfigKey",
            Self::UnsupportedConfigKey => "UnsupportedConfigKey",
            Self::BackendSettingsConflict => "BackendSettingsConflict",
            Self::WafNotApplied => "WafNotApplied",
            Self::RegexLimit => "RegexLimit",
            Self::SharedHostRegexMode => "SharedHostRegexMode",
            Self::CanaryCrossNamespace => "CanaryCrossNamespace",
            Self::GatewayApi => "GatewayApi",
            Self::RouteShadowed => "RouteShadowed",
            Self::InvalidStreamService => "InvalidStreamService",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding about one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The object it is about.
    pub object: ObjectKey,
    /// Why.
    pub reason: Reason,
    /// What exactly, in a sentence.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.object, self.reason, self.message)
    }
}
