//! `enable-opentelemetry`, `opentelemetry-trust-incoming-span` and
//! `opentelemetry-operation-name`, as ingress-nginx reads them: the two
//! others count only on an Ingress that sets `enable-opentelemetry:
//! "true"` (here they are reported when they would have no effect); the
//! span name is a literal (`[A-Za-z0-9_-]*`, no variables, ingress-nginx's
//! own validation). Without the annotations, the ConfigMap's settings
//! apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway::telemetry::{OperationName, RouteTracing};

use super::values::boolean;
use super::{AnnotationError, error};

const ENABLE: &str = "enable-opentelemetry";
const TRUST: &str = "opentelemetry-trust-incoming-span";
const NAME: &str = "opentelemetry-operation-name";

/// The route tracing of an Ingress whose ConfigMap default is `defaults`.
pub(crate) fn parse(
    annotations: &BTreeMap<&str, &str>,
    defaults: &RouteTracing,
    errors: &mut Vec<AnnotationError>,
) -> RouteTracing {
    let mut tracing = defaults.clone();
    let enabled = match annotations.get(ENABLE).map(|v| v.trim()) {
        None => None,
        Some(value) => match boolean(value) {
            Ok(enabled) => Some(enabled),
            Err(message) => {
                errors.push(error(ENABLE, value, message));
                None
            }
        },
    };
    if enabled != Some(true) {
        for key in [TRUST, NAME] {
            if let Some(value) = annotations.get(key) {
                errors.push(error(
                    key,
                    value,
                    format!(
                        "has no effect without {ENABLE}: \"true\" on the Ingress (as ingress-nginx); the ConfigMap's setting applies"
                    ),
                ));
            }
        }
        if let Some(enabled) = enabled {
            tracing.enabled = enabled;
        }
        return tracing;
    }
    tracing.enabled = true;
    if let Some(value) = annotations.get(TRUST) {
        match boolean(value.trim()) {
            Ok(trust) => tracing.trust_incoming = trust,
            Err(message) => errors.push(error(TRUST, value, message)),
        }
    }
    if let Some(value) = annotations.get(NAME).map(|v| v.trim()) {
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            errors.push(error(
                NAME,
                value,
                "may hold letters, digits, '_' and '-' only (as ingress-nginx); the ConfigMap's span name applies"
                    .to_owned(),
            ));
        } else if !value.is_empty() {
            tracing.operation = Some(Arc::new(OperationName::literal(value)));
        }
    }
    tracing
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(pairs: &[(&str, &str)], defaults: &RouteTracing) -> (RouteTracing, Vec<String>) {
        let annotations = pairs.iter().copied().collect();
        let mut errors = Vec::new();
        let tracing = parse(&annotations, defaults, &mut errors);
        (tracing, errors.into_iter().map(|e| e.key).collect())
    }

    #[test]
    fn the_ingress_overrides_the_config_map() {
        let on = RouteTracing {
            enabled: true,
            ..RouteTracing::default()
        };
        let (off, errors) = parse_all(&[(ENABLE, "false")], &on);
        assert!(!off.enabled && errors.is_empty());
        let (tracing, errors) = parse_all(
            &[(ENABLE, "true"), (TRUST, "false"), (NAME, "predict")],
            &RouteTracing::default(),
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert!(tracing.enabled && !tracing.trust_incoming);
        assert_eq!(
            tracing.operation.as_deref(),
            Some(&OperationName::literal("predict"))
        );
    }

    #[test]
    fn trust_and_name_need_the_ingress_to_enable_tracing() {
        let on = RouteTracing {
            enabled: true,
            ..RouteTracing::default()
        };
        let (tracing, errors) = parse_all(&[(TRUST, "false"), (NAME, "x")], &on);
        assert_eq!(tracing, on);
        assert_eq!(
            errors,
            [
                "nginx.ingress.kubernetes.io/opentelemetry-trust-incoming-span",
                "nginx.ingress.kubernetes.io/opentelemetry-operation-name"
            ]
        );
    }

    #[test]
    fn a_name_with_variables_is_refused() {
        let (tracing, errors) = parse_all(
            &[(ENABLE, "true"), (NAME, "HTTP $uri")],
            &RouteTracing::default(),
        );
        assert!(tracing.enabled && tracing.operation.is_none());
        assert_eq!(errors.len(), 1);
    }
}
