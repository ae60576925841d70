//! The span name: `opentelemetry-operation-name`, an nginx string with
//! variables (`HTTP $request_method $service_name $uri`), compiled once
//! into pieces; without one, the nginx location's name, which for
//! ingress-nginx is the Ingress path. A variable this gateway does not
//! know is refused when the ConfigMap is read, never left as text.

use std::fmt::Write as _;

/// The variables a span name may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Var {
    RequestMethod,
    Uri,
    RequestUri,
    Host,
    Scheme,
    Namespace,
    IngressName,
    ServiceName,
    ServicePort,
    LocationPath,
}

const VARS: [(&str, Var); 10] = [
    ("request_method", Var::RequestMethod),
    ("uri", Var::Uri),
    ("request_uri", Var::RequestUri),
    ("host", Var::Host),
    ("scheme", Var::Scheme),
    ("namespace", Var::Namespace),
    ("ingress_name", Var::IngressName),
    ("service_name", Var::ServiceName),
    ("service_port", Var::ServicePort),
    ("location_path", Var::LocationPath),
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A compiled span name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationName {
    pieces: Vec<Piece>,
}

/// What a span name's variables read, for one request.
#[derive(Debug, Default)]
pub(crate) struct NameFacts<'a> {
    pub(crate) method: &'a str,
    /// The path without the query (`$uri`).
    pub(crate) path: &'a str,
    /// The path and query as the client sent them (`$request_uri`).
    pub(crate) request_uri: &'a str,
    pub(crate) host: &'a str,
    pub(crate) scheme: &'a str,
    pub(crate) namespace: &'a str,
    pub(crate) ingress: &'a str,
    pub(crate) service: &'a str,
    pub(crate) port: &'a str,
    /// The Ingress path of the route (nginx's location).
    pub(crate) location: &'a str,
}

impl OperationName {
    /// Compiles an nginx string: `$name` or `${name}` are variables.
    pub fn parse(template: &str) -> Result<OperationName, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(at) = rest.find('$') {
            text.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let (name, tail) = match after.strip_prefix('{') {
                Some(braced) => {
                    let end = braced
                        .find('}')
                        .ok_or_else(|| format!("unclosed ${{ in {template:?}"))?;
                    (&braced[..end], &braced[end + 1..])
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            let var = VARS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let known: Vec<_> = VARS.iter().map(|(n, _)| format!("${n}")).collect();
                    format!(
                        "${name} is not a variable a span name can use here (known: {})",
                        known.join(", ")
                    )
                })?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Var(var));
            rest = tail;
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(OperationName { pieces })
    }

    /// A fixed name (the annotation's, whose value has no variables).
    pub fn literal(name: &str) -> OperationName {
        OperationName {
            pieces: vec![Piece::Text(name.to_owned())],
        }
    }

    /// The name of one request's span.
    pub(crate) fn render(&self, facts: &NameFacts<'_>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            let value = match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Var(var) => match var {
                    Var::RequestMethod => facts.method,
                    Var::Uri => facts.path,
                    Var::RequestUri => facts.request_uri,
                    Var::Host => facts.host,
                    Var::Scheme => facts.scheme,
                    Var::Namespace => facts.namespace,
                    Var::IngressName => facts.ingress,
                    Var::ServiceName => facts.service,
                    Var::ServicePort => facts.port,
                    Var::LocationPath => facts.location,
                },
            };
            let _ = write!(out, "{value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_ingress_nginx_example() {
        let name = OperationName::parse("HTTP $request_method $service_name $uri").unwrap();
        let facts = NameFacts {
            method: "POST",
            service: "model",
            path: "/api/v1/predict/7",
            ..NameFacts::default()
        };
        assert_eq!(name.render(&facts), "HTTP POST model /api/v1/predict/7");
        let braced = OperationName::parse("${namespace}/${ingress_name}:x").unwrap();
        let facts = NameFacts {
            namespace: "ns",
            ingress: "ing",
            ..NameFacts::default()
        };
        assert_eq!(braced.render(&facts), "ns/ing:x");
    }

    #[test]
    fn unknown_variables_are_refused() {
        let error = OperationName::parse("HTTP $cookie_session").unwrap_err();
        assert!(error.contains("$cookie_session"), "{error}");
        assert!(OperationName::parse("${uri").is_err());
        assert!(OperationName::parse("$").is_err());
    }
}
