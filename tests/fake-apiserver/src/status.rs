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
    causes: Vec<Cause>,
}

/// One `Status.details.causes` entry: a field error of a 422.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, ...
    pub(crate) reason: String,
    /// The error without its field (`Required value: ...`).
    pub(crate) message: String,
    /// The field path (`spec.rules[0].http.paths[0].pathType`).
    pub(crate) field: String,
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
            group: rt.group.clone(),
            kind: rt.plural.clone(),
            causes: Vec::new(),
        }));
        self
    }

    /// The causes of a 422 (empty for other errors).
    pub fn causes(&self) -> Vec<(String, String, String)> {
        self.details
            .iter()
            .flat_map(|d| d.causes.iter())
            .map(|c| (c.reason.clone(), c.message.clone(), c.field.clone()))
            .collect()
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

    /// 422 for an object that fails validation, with the field errors as
    /// causes: the message lists them (`[a, b]` when several), and
    /// `details.kind` is the Kind, as `NewInvalid` writes them.
    pub(crate) fn invalid(
        rt: &ResourceType,
        name: &str,
        errors: &[crate::validation::FieldError],
    ) -> Self {
        let mut texts: Vec<String> = Vec::new();
        for e in errors {
            let t = e.to_string();
            if !texts.contains(&t) {
                texts.push(t);
            }
        }
        let why = match texts.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let msg = format!("{} \"{name}\" is invalid: {why}", rt.qualified_kind());
        let mut err = Self::new(422, "Invalid", msg);
        err.details = Some(Box::new(Details {
            name: name.to_owned(),
            group: rt.group.clone(),
            kind: rt.kind.clone(),
            causes: errors
                .iter()
                .map(|e| Cause {
                    reason: e.kind.reason().to_owned(),
                    message: e.body(),
                    field: e.field.clone(),
                })
                .collect(),
        }));
        err
    }

    /// A `Status` error as a webhook or another component wrote it: the
    /// fields are taken as they are.
    pub(crate) fn from_status(status: &Value) -> Self {
        let text = |k: &str| {
            status
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let code = status
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        let mut err = Self::new(code, &text("reason"), text("message"));
        if let Some(d) = status.get("details").filter(|d| d.is_object()) {
            let dtext = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            err.details = Some(Box::new(Details {
                name: dtext("name"),
                group: dtext("group"),
                kind: dtext("kind"),
                causes: d
                    .get("causes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| Cause {
                        reason: c
                            .get("reason")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        message: c
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        field: c
                            .get("field")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    })
                    .collect(),
            }));
        }
        err
    }

    /// 500 InternalError (`Internal error occurred: ...`), with the message
    /// as its one cause, as the real server reports a failed webhook call.
    pub(crate) fn internal(message: &str) -> Self {
        let mut err = Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        );
        err.details = Some(Box::new(Details {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            causes: vec![Cause {
                reason: String::new(),
                message: message.to_owned(),
                field: String::new(),
            }],
        }));
        err
    }

    /// 403 Forbidden for a request a rule refuses.
    pub(crate) fn forbidden(rt: &ResourceType, name: &str, why: &str) -> Self {
        let msg = format!("{} \"{name}\" is forbidden: {why}", rt.qualified_plural());
        Self::new(403, "Forbidden", msg).about(rt, name)
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
        fn put(map: &mut serde_json::Map<String, Value>, key: &str, value: &str) {
            if !value.is_empty() {
                map.insert(key.to_owned(), json!(value));
            }
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(map) = status.as_object_mut()
            && self.reason.is_empty()
        {
            map.remove("reason");
        }
        if let (Some(d), Some(map)) = (&self.details, status.as_object_mut()) {
            let mut details = serde_json::Map::new();
            put(&mut details, "name", &d.name);
            put(&mut details, "group", &d.group);
            put(&mut details, "kind", &d.kind);
            if !d.causes.is_empty() {
                let causes: Vec<Value> = d
                    .causes
                    .iter()
                    .map(|c| {
                        let mut m = serde_json::Map::new();
                        put(&mut m, "reason", &c.reason);
                        put(&mut m, "message", &c.message);
                        put(&mut m, "field", &c.field);
                        Value::Object(m)
                    })
                    .collect();
                details.insert("causes".to_owned(), json!(causes));
            }
            map.insert("details".to_owned(), Value::Object(details));
        }
        status
    }
}

/// The `Status` a DELETE answers for kinds that do not return the object:
/// success, with the name, group, resource (as `kind`) and uid.
pub(crate) fn deleted(rt: &ResourceType, name: &str, uid: &str) -> Value {
    let mut details = serde_json::Map::new();
    details.insert("name".to_owned(), json!(name));
    if !rt.group.is_empty() {
        details.insert("group".to_owned(), json!(rt.group));
    }
    details.insert("kind".to_owned(), json!(rt.plural));
    if !uid.is_empty() {
        details.insert("uid".to_owned(), json!(uid));
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;

    #[test]
    fn status_objects_look_like_kubernetes() {
        let Some(rt) = builtin("Ingress") else {
            panic!("Ingress is served");
        };
        let s = ApiError::not_found(&rt, "web").to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(
            s["message"],
            "ingresses.networking.k8s.io \"web\" not found"
        );
        assert_eq!(s["details"]["kind"], "ingresses");
        assert_eq!(s["details"]["group"], "networking.k8s.io");
        let c = ApiError::stale(&rt, "web");
        assert_eq!((c.code, c.reason.as_str()), (409, "Conflict"));
    }
}
