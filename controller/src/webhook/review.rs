//! The AdmissionReview wire format (`admission.k8s.io/v1`): parsing the
//! request document and writing the response, with kube's types.

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::{DynamicObject, Status};

use super::{Baseline, judge};

/// The largest review read. The API server takes request bodies of up to
/// 3 MiB and etcd stores objects of up to 1.5 MiB, so a review (the object
/// and, on update, the old one, plus the request's fields) stays below
/// this; a larger body is refused (413) before it is parsed.
pub const MAX_REVIEW_BYTES: usize = 5 << 20;

/// Why a body is not a review to answer (the server answers 400).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not shaped like an AdmissionReview.
    #[error("not an AdmissionReview: {0}")]
    Malformed(String),
    /// An AdmissionReview without a request.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// Another version than admission.k8s.io/v1 (or v1beta1).
    #[error("apiVersion {0:?}: admission.k8s.io/v1 expected")]
    Version(String),
}

/// Answers one review: the response document to send back.
pub fn answer(baseline: &Baseline, body: &[u8]) -> Result<Vec<u8>, ReviewError> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    let version = review.types.api_version.clone();
    if review.types.kind != "AdmissionReview"
        || !matches!(
            version.as_str(),
            "admission.k8s.io/v1" | "admission.k8s.io/v1beta1"
        )
    {
        return Err(ReviewError::Version(version));
    }
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let verdict = judge(baseline, &request);
    let mut response = AdmissionResponse::from(&request);
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings);
    }
    if !verdict.allowed {
        let message = verdict.message.unwrap_or_default();
        response = response.deny(&message);
        response.result = Status::failure(&message, "BadRequest").with_code(400);
    }
    serde_json::to_vec(&response.into_review()).map_err(|e| ReviewError::Malformed(e.to_string()))
}
