//! `--annotations-prefix`: ingress-nginx reads its annotations under a
//! configurable prefix (default `nginx.ingress.kubernetes.io`). With another
//! prefix, the Ingress's keys under it are read as if they carried the
//! default one, and keys under the default prefix are ignored, as
//! ingress-nginx ignores them then. Diagnostics name the keys as written.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;

use super::PREFIX;

/// The default prefix, without its trailing `/`, as the flag spells it.
pub const DEFAULT_PREFIX: &str = "nginx.ingress.kubernetes.io";

/// A prefix other than the default, normalised to end with `/`; `None`
/// for the default (nothing to rename).
pub fn custom(prefix: &str) -> Option<String> {
    let prefix = prefix.trim().trim_end_matches('/');
    (!prefix.is_empty() && prefix != DEFAULT_PREFIX).then(|| format!("{prefix}/"))
}

/// `ingress` with its annotations under `custom` (ending in `/`) renamed
/// to the default prefix, and those under the default prefix dropped.
pub fn renamed(ingress: &Ingress, custom: &str) -> Ingress {
    let mut ingress = ingress.clone();
    if let Some(annotations) = ingress.metadata.annotations.take() {
        let renamed: BTreeMap<String, String> = annotations
            .into_iter()
            .filter(|(key, _)| !key.starts_with(PREFIX))
            .map(|(key, value)| match key.strip_prefix(custom) {
                Some(name) => (format!("{PREFIX}{name}"), value),
                None => (key, value),
            })
            .collect();
        ingress.metadata.annotations = Some(renamed);
    }
    ingress
}

/// A diagnostic message with annotation keys spelled with `custom`.
pub fn spelled(message: &str, custom: &str) -> String {
    message.replace(PREFIX, custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_move_from_the_custom_prefix_and_the_default_is_ignored() {
        assert_eq!(custom("nginx.ingress.kubernetes.io"), None);
        assert_eq!(custom(""), None);
        let prefix = custom("ingress.example.com/").unwrap();
        assert_eq!(prefix, "ingress.example.com/");
        let mut ingress = Ingress::default();
        ingress.metadata.annotations = Some(BTreeMap::from([
            (
                "ingress.example.com/ssl-redirect".to_owned(),
                "false".to_owned(),
            ),
            (format!("{PREFIX}rewrite-target"), "/".to_owned()),
            ("kubernetes.io/ingress.class".to_owned(), "nginx".to_owned()),
        ]));
        let renamed = renamed(&ingress, &prefix);
        let keys: Vec<&String> = renamed
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            keys,
            [
                "kubernetes.io/ingress.class",
                &format!("{PREFIX}ssl-redirect")
            ]
        );
        assert_eq!(
            spelled(
                &format!("{PREFIX}ssl-redirect: \"x\" is not a boolean"),
                &prefix
            ),
            "ingress.example.com/ssl-redirect: \"x\" is not a boolean"
        );
    }
}
