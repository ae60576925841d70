//! Field errors worded as apimachinery's `field.Error` prints them:
//! `spec.ports: Required value`, `spec.rules[0].http.paths[0].path: Invalid
//! value: "api": must be an absolute path`, `addressType: Unsupported value:
//! "IP": supported values: "FQDN", "IPv4", "IPv6"`.

use std::fmt;

use serde_json::Value;

/// The type of a field error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// `Required value`.
    Required,
    /// `Invalid value: <value>`.
    Invalid(Value),
    /// `Invalid value: <text>`, for values Go prints with `%#v` (typed
    /// nils, structs).
    InvalidShown(String),
    /// `Unsupported value: <value>: supported values: ...`.
    NotSupported(Value, Vec<&'static str>),
    /// `Duplicate value: <value>`.
    Duplicate(Value),
    /// `Forbidden`.
    Forbidden,
    /// `Too many: <n>: must have at most <max> items`.
    TooMany(usize, usize),
}

impl ErrorKind {
    /// The cause reason the real server reports.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid(_) | Self::InvalidShown(_) => "FieldValueInvalid",
            Self::NotSupported(..) => "FieldValueNotSupported",
            Self::Duplicate(_) => "FieldValueDuplicate",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooMany(..) => "FieldValueTooMany",
        }
    }
}

/// One field error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The field path, as `field.Path` prints it.
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) kind: ErrorKind,
    /// The explanation after the value (may be empty).
    pub(crate) detail: String,
}

/// A value as Go's `%v`/`%q` print the simple types a field error carries.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

impl FieldError {
    /// `Required value`.
    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: ErrorKind::Required,
            detail: detail.into(),
        }
    }

    /// `Invalid value: <value>: detail`.
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: Value,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind: ErrorKind::Invalid(value),
            detail: detail.into(),
        }
    }

    /// `Invalid value: <text>: detail`, the value printed as given.
    pub(crate) fn invalid_shown(
        field: impl Into<String>,
        shown: &str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind: ErrorKind::InvalidShown(shown.to_owned()),
            detail: detail.into(),
        }
    }

    /// `Unsupported value: <value>: supported values: "a", "b"`.
    pub(crate) fn not_supported(
        field: impl Into<String>,
        value: Value,
        valid: &[&'static str],
    ) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
        Self {
            field: field.into(),
            kind: ErrorKind::NotSupported(value, valid.to_vec()),
            detail: format!("supported values: {}", quoted.join(", ")),
        }
    }

    /// `Duplicate value: <value>`.
    pub(crate) fn duplicate(field: impl Into<String>, value: Value) -> Self {
        Self {
            field: field.into(),
            kind: ErrorKind::Duplicate(value),
            detail: String::new(),
        }
    }

    /// `Forbidden: detail`.
    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: ErrorKind::Forbidden,
            detail: detail.into(),
        }
    }

    /// `Too many: <n>: must have at most <max> items`.
    pub(crate) fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self {
            field: field.into(),
            kind: ErrorKind::TooMany(actual, max),
            detail: format!("must have at most {max} items"),
        }
    }

    /// The error without its field, as `ErrorBody()` prints it (the
    /// cause's message).
    pub(crate) fn body(&self) -> String {
        let head = match &self.kind {
            ErrorKind::Required => "Required value".to_owned(),
            ErrorKind::Forbidden => "Forbidden".to_owned(),
            ErrorKind::Invalid(v) => format!("Invalid value: {}", show(v)),
            ErrorKind::InvalidShown(v) => format!("Invalid value: {v}"),
            ErrorKind::NotSupported(v, _) => format!("Unsupported value: {}", show(v)),
            ErrorKind::Duplicate(v) => format!("Duplicate value: {}", show(v)),
            ErrorKind::TooMany(n, _) => format!("Too many: {n}"),
        };
        if self.detail.is_empty() {
            head
        } else {
            format!("{head}: {}", self.detail)
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// A field path being walked: `spec.rules[0].host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    /// The root path of one field (`spec`, `metadata`).
    pub(crate) fn new(root: &str) -> Self {
        Self(root.to_owned())
    }

    /// A child field.
    pub(crate) fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// A list element.
    pub(crate) fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> Self {
        p.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn worded_like_apimachinery() {
        let p = Path::new("spec").child("rules").index(0).child("http");
        assert_eq!(String::from(&p), "spec.rules[0].http");
        let e = FieldError::required(
            &p.child("paths").index(0).child("pathType"),
            "pathType must be specified",
        );
        assert_eq!(
            e.to_string(),
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
        );
        assert_eq!(e.body(), "Required value: pathType must be specified");
        let e = FieldError::invalid(
            "spec.ports[0].port",
            json!(0),
            "must be between 1 and 65535, inclusive",
        );
        assert_eq!(
            e.to_string(),
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
        );
        let e = FieldError::not_supported("addressType", json!("IP"), &["FQDN", "IPv4", "IPv6"]);
        assert_eq!(
            e.to_string(),
            "addressType: Unsupported value: \"IP\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
        );
        assert_eq!(
            FieldError::required("spec.ports", "").to_string(),
            "spec.ports: Required value"
        );
    }
}
