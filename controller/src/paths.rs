//! Ingress path rules as the Kubernetes API server validates them
//! (`pkg/apis/networking/validation`). The manifests folder does not go
//! through an API server, so the same checks run here; the API source gets
//! objects that already passed them.

use gateway::path::PathKind;

/// Sequences the API server refuses in Exact and Prefix paths.
const INVALID_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
/// Suffixes the API server refuses in Exact and Prefix paths.
const INVALID_SUFFIXES: [&str; 2] = ["/..", "/."];

/// The match kind for a `pathType`. ImplementationSpecific and a missing
/// pathType are Prefix, as in ingress-nginx (`SetDefaultNGINXPathType`).
pub(crate) fn path_kind(path_type: &str) -> Result<PathKind, String> {
    match path_type {
        "Exact" => Ok(PathKind::Exact),
        "Prefix" | "ImplementationSpecific" | "" => Ok(PathKind::Prefix),
        other => Err(format!(
            "pathType {other:?} is not one of Exact, Prefix, ImplementationSpecific; path skipped"
        )),
    }
}

/// The API server's checks for a path of `path_type`.
pub(crate) fn validate(path_type: &str, path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must be an absolute path".to_owned());
    }
    if matches!(path_type, "ImplementationSpecific" | "") {
        return Ok(());
    }
    if let Some(seq) = INVALID_SEQUENCES.iter().find(|s| path.contains(**s)) {
        return Err(format!("must not contain {seq:?}"));
    }
    if let Some(suffix) = INVALID_SUFFIXES.iter().find(|s| path.ends_with(**s)) {
        return Err(format!("must not end with {suffix:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_server_rules() {
        assert!(validate("Prefix", "/api/v1").is_ok());
        assert!(validate("Exact", "/a.b/c").is_ok());
        for bad in [
            "api", "/a//b", "/a/./b", "/a/../b", "/a%2fb", "/a/..", "/a/.",
        ] {
            assert!(validate("Prefix", bad).is_err(), "{bad}");
        }
        assert!(validate("ImplementationSpecific", "/a//b").is_ok());
        assert!(validate("ImplementationSpecific", "a").is_err());
        assert_eq!(path_kind("ImplementationSpecific"), Ok(PathKind::Prefix));
        assert!(path_kind("Regex").is_err());
    }
}
