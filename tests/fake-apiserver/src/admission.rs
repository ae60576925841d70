//! Admission of a write, in the real server's order: mutating admission
//! webhooks, then validation (the 422s), then validating admission
//! webhooks. The built-in mutating plugin the tests meet (the default
//! IngressClass) runs earlier, while the write is planned
//! ([`crate::ingress_class`]).

use serde_json::Value;

use crate::resources::ResourceType;
use crate::state::Shared;
use crate::status::ApiError;
use crate::validation::{self, Settings};
use crate::webhooks::{self, Phase};

/// The operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    /// A new object.
    Create,
    /// A changed object.
    Update,
}

impl Operation {
    /// The name AdmissionReviews and webhook rules use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
        }
    }

    /// The options kind an AdmissionReview carries.
    pub(crate) fn options_kind(self) -> &'static str {
        match self {
            Self::Create => "CreateOptions",
            Self::Update => "UpdateOptions",
        }
    }
}

/// What is being admitted, besides the new object.
#[derive(Debug)]
pub(crate) struct Attributes<'a> {
    /// The kind, as the client wrote it.
    pub(crate) rt: &'a ResourceType,
    /// Create or update.
    pub(crate) operation: Operation,
    /// Whether the write is to the `/status` subresource.
    pub(crate) status: bool,
    /// The namespace (`""` for cluster-scoped objects).
    pub(crate) namespace: String,
    /// The object's name.
    pub(crate) name: String,
    /// The object before the write (updates), as the client's version has it.
    pub(crate) old: Option<&'a Value>,
    /// Whether the write is a dry run.
    pub(crate) dry_run: bool,
}

/// Admits `object`: returns it (as mutating webhooks left it) with the
/// webhooks' warnings, or the error the client gets.
pub(crate) async fn admit(
    shared: &Shared,
    attrs: &Attributes<'_>,
    object: Value,
) -> Result<(Value, Vec<String>), ApiError> {
    let mut warnings = Vec::new();
    let object = webhooks::run(shared, attrs, object, Phase::Mutating, &mut warnings).await?;
    if !attrs.status {
        let settings = Settings {
            allow_loopback_endpoints: shared.options.allow_loopback_endpoints,
        };
        validation::validate(attrs.rt, &object, attrs.old, settings)?;
    }
    let object = webhooks::run(shared, attrs, object, Phase::Validating, &mut warnings).await?;
    Ok((object, warnings))
}
