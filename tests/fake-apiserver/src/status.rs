//! Kubernetes `Status` errors: what every failed request answers, with the
//! HTTP code, reason and message wording of the real API server.

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// A failed API operation, answered to clients as a `kind: Status` object and
/// returned by the direct store methods of [`crate::FakeApiServer`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status code (404, 409, 410, 422, ...).
    pub code: u16,
    /// Kubernetes reason (`NotFound`, `AlreadyExists`, `Conflict`, `Expired`, ...).
    pub reason: String,
    /// Human-readable message, worded like the real server's.
    pub message: String,
    details: Option<Box<Details>>,
}

/// `Status.details`: which object the error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    name: String,
    group: String,
    kind: String,
}

impl ApiError {
    /// An error without details.
    pub(crate) fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_owned(),
            message: message.into(),
            details: None,
        }
    }

    fn about(mut self, rt: &ResourceType, name: &str) -> Self {
        self.details = Some(Box::new(Details {
            name: name.to_owned(),
            group: rt.group.to_owned(),
            kind: rt.plural.to_owned(),
        }));
        self
    }

    /// 404 for a missing object.
    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        let msg = format!("{} \"{name}\" not found", rt.qualified_plural());
        Self::new(404, "NotFound", msg).about(rt, name)
    }

    /// 404 for a path the server does not serve.
    pub(crate) fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 409 for a create of an existing name.
    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        let msg = format!("{} \"{name}\" already exists", rt.qualified_plural());
        Self::new(409, "AlreadyExists", msg).about(rt, name)
    }

    /// 409 for an update or delete with a stale resourceVersion or UID.
    pub(crate) fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            rt.qualified_plural()
        );
        Self::new(409, "Conflict", msg).about(rt, name)
    }

    /// 409 for a stale `metadata.resourceVersion`.
    pub(crate) fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 for an object that fails validation.
    pub(crate) fn invalid(rt: &ResourceType, name: &str, why: &str) -> Self {
        let msg = format!("{} \"{name}\" is invalid: {why}", rt.qualified_kind());
        Self::new(422, "Invalid", msg).about(rt, name)
    }

    /// 400 for a malformed request.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 405 for a verb the path does not take.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 410 for a resourceVersion older than the compaction point.
    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 for a body type the verb does not take.
    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"
            ),
        )
    }

    /// 413 for a body over the size limit.
    pub(crate) fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "the request body is too large",
        )
    }

    /// 503 while the server simulates an outage.
    pub(crate) fn unavailable() -> Self {
        Self::new(
            503,
            "ServiceUnavailable",
            "the fake API server is unavailable (simulated outage)",
        )
    }

    /// The `kind: Status` object clients receive.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(d), Some(map)) = (&self.details, status.as_object_mut()) {
            let mut details = serde_json::Map::new();
            details.insert("name".to_owned(), json!(d.name));
            if !d.group.is_empty() {
                details.insert("group".to_owned(), json!(d.group));
            }
            details.insert("kind".to_owned(), json!(d.kind));
            map.insert("details".to_owned(), Value::Object(details));
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::resolve;

    #[test]
    fn status_objects_look_like_kubernetes() {
        let Some(rt) = resolve("Ingress") else {
            panic!("Ingress is served");
        };
        let s = ApiError::not_found(rt, "web").to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(
            s["message"],
            "ingresses.networking.k8s.io \"web\" not found"
        );
        assert_eq!(s["details"]["kind"], "ingresses");
        assert_eq!(s["details"]["group"], "networking.k8s.io");
        let c = ApiError::stale(rt, "web");
        assert_eq!((c.code, c.reason.as_str()), (409, "Conflict"));
    }
}
