//! Validation of API writes, with the real server's 422 answers: the field
//! errors of kube-apiserver's validation for the kinds tests depend on
//! (object metadata of every kind; Ingress, IngressClass, Service,
//! EndpointSlice in depth), returned as a `Status` with `reason: Invalid`
//! and `details.causes`. Kinds without a validator here only get the
//! metadata checks.

mod apiextensions;
mod endpointslice;
mod field;
mod meta;
mod names;
mod networking;
mod service;

use serde_json::Value;

pub(crate) use field::FieldError;
pub(crate) use meta::validate_name;

use crate::resources::ResourceType;
use crate::status::ApiError;

/// What a validation may depend on beyond the object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Whether EndpointSlice addresses may be loopback addresses.
    pub(crate) allow_loopback_endpoints: bool,
}

/// A string field (`""` when missing or not a string).
pub(crate) fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// An array field (empty when missing).
pub(crate) fn items<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Validates a create (`old` is `None`) or an update of an object as a
/// client of `rt` wrote it (defaults applied). `Err` is the 422.
pub(crate) fn validate(
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
    settings: Settings,
) -> Result<(), ApiError> {
    let mut errs = meta::validate_object_meta(rt, obj);
    if !rt.custom {
        match rt.kind.as_str() {
            "Ingress" if rt.group == "networking.k8s.io" => {
                errs.extend(networking::validate_ingress(obj, old.is_none()));
            }
            "IngressClass" => errs.extend(networking::validate_ingress_class(obj, old)),
            "Service" if rt.group.is_empty() => errs.extend(service::validate_service(obj)),
            "CustomResourceDefinition" => errs.extend(apiextensions::validate(obj)),
            "EndpointSlice" => {
                errs.extend(endpointslice::validate_endpoint_slice(obj, old, settings));
            }
            _ => {}
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, text(obj, "/metadata/name"), &errs))
    }
}
