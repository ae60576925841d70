//! The review kinds (create only, nothing stored): access reviews answer
//! allowed, since the fake has no authorization (`kubectl auth can-i` says
//! yes), rules reviews list everything, and the self review names a
//! cluster administrator.

use serde_json::{Value, json};

use crate::handlers::{Reply, Request, parse_body};
use crate::status::ApiError;

/// The user every request is taken to come from.
pub(crate) const USER: &str = "fake-admin";
/// Its groups.
pub(crate) const GROUPS: &[&str] = &["system:masters", "system:authenticated"];

/// POST of a review: the request, answered in `status`.
pub(crate) fn create(req: &Request<'_>) -> Result<Reply, ApiError> {
    let rt = &req.path.rt;
    let mut review = parse_body(rt, req.content_type, req.body)?;
    let Value::Object(map) = &mut review else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    map.insert("apiVersion".to_owned(), json!(rt.api_version()));
    map.insert("kind".to_owned(), json!(rt.kind));
    map.entry("metadata").or_insert_with(|| json!({}));
    let status = match rt.kind.as_str() {
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => json!({
            "allowed": true,
            "reason": "the fake API server allows every request",
        }),
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        "SelfSubjectReview" => json!({"userInfo": {"username": USER, "groups": GROUPS}}),
        "TokenReview" => json!({
            "authenticated": true,
            "user": {"username": USER, "groups": GROUPS},
            "audiences": map.get("spec").and_then(|s| s.get("audiences")).cloned().unwrap_or_else(|| json!([])),
        }),
        _ => return Err(ApiError::method_not_allowed()),
    };
    map.insert("status".to_owned(), status);
    Ok(Reply::new(201, review))
}
