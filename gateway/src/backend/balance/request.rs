//! What one request tells its backend's picker, beside stickiness: the
//! blocks of its prompt and its model (read from a JSON body by the body
//! peek, for prefix and LoRA affinity), and its criticality.
//!
//! Criticality (`criticality`, `criticality-header`): under saturation
//! (see [`super::queue`]) a `sheddable` request is refused at once with 429
//! and `Retry-After`, a `standard` one waits in the gateway's queue, a
//! `critical` one waits ahead of every standard one. A request whose route
//! sets neither key has no class and is never held back for saturation
//! (ingress-nginx's behaviour). A route may also class its requests by
//! the value of a header through a table ([`ClassByHeader`]: the
//! controller fills it from the InferenceObjectives of an InferencePool).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use http::{HeaderName, Request};

/// A request's class under saturation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Criticality {
    /// Waits in the queue, ahead of standard requests.
    Critical,
    /// Waits in the queue.
    Standard,
    /// Refused first: 429 with `Retry-After`, never queued.
    Sheddable,
}

impl Criticality {
    /// Every class.
    pub const ALL: [Criticality; 3] = [Self::Critical, Self::Standard, Self::Sheddable];

    /// Its name in annotations and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Standard => "standard",
            Self::Sheddable => "sheddable",
        }
    }

    /// The class named `name` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Criticality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route's settings for what its requests tell the picker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteSignals {
    /// Read up to this many bytes of a JSON body for its prompt blocks and
    /// model (`prefix-affinity`, or `endpoint-metrics` for LoRA affinity;
    /// the size is `model-body-peek`); `None`: the body is not read for it.
    pub body_peek: Option<usize>,
    /// `criticality`: the class of the route's requests.
    pub criticality: Option<Criticality>,
    /// `criticality-header`: a request header naming the class, which
    /// wins over `criticality` when its value is a class name.
    pub criticality_header: Option<HeaderName>,
    /// Classes by a header's value (InferenceObjective names), between
    /// `criticality-header` and `criticality`.
    pub class_by_header: Option<Arc<ClassByHeader>>,
}

/// The class of a request whose header `header` has one of the table's
/// values (exactly); other values give none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassByHeader {
    header: HeaderName,
    classes: BTreeMap<Box<str>, Criticality>,
}

impl ClassByHeader {
    /// A table read from `header`.
    pub fn new(
        header: HeaderName,
        classes: impl IntoIterator<Item = (String, Criticality)>,
    ) -> Self {
        Self {
            header,
            classes: classes.into_iter().map(|(k, v)| (k.into(), v)).collect(),
        }
    }

    /// Adds the entries of `other` read from the same header (an entry
    /// already there stays).
    pub fn merge(&mut self, other: &ClassByHeader) {
        for (value, class) in &other.classes {
            self.classes.entry(value.clone()).or_insert(*class);
        }
    }

    /// The header it reads.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// How many values it knows.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether it knows no value.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    fn class<B>(&self, req: &Request<B>) -> Option<Criticality> {
        let value = req.headers().get(&self.header)?.to_str().ok()?;
        self.classes.get(value).copied()
    }
}

/// What the body peek found in a JSON body, carried to the picker in the
/// request's extensions.
#[derive(Clone, Debug, Default)]
pub(crate) struct BodySignals {
    /// The prompt's chained block hashes.
    pub(crate) blocks: Vec<u64>,
    /// The hash of the body's `model` ([`adapter_hash`]); 0 for none.
    pub(crate) model: u64,
}

impl BodySignals {
    /// The signals of a body with these prompt blocks and model.
    #[cfg(test)]
    pub(crate) fn new(blocks: Vec<u64>, model: Option<&str>) -> Self {
        Self {
            blocks,
            model: model.map_or(0, |m| super::server_load::adapter_hash(m.as_bytes())),
        }
    }
}

/// What one request brings to its backend's picker.
#[derive(Debug, Default)]
pub struct RequestSignals {
    body: BodySignals,
    class: Option<Criticality>,
}

impl RequestSignals {
    /// Takes the body peek's findings from `req` and reads its class.
    pub fn read<B>(req: &mut Request<B>, route: &RouteSignals) -> Self {
        let header = route
            .criticality_header
            .as_ref()
            .and_then(|name| req.headers().get(name))
            .and_then(|value| value.to_str().ok())
            .and_then(Criticality::parse);
        let by_table = || route.class_by_header.as_ref()?.class(req);
        let header = header.or_else(by_table);
        let body = match route.body_peek {
            Some(_) => req.extensions_mut().remove().unwrap_or_default(),
            None => BodySignals::default(),
        };
        Self {
            body,
            class: header.or(route.criticality),
        }
    }

    /// The request's class, if its route gives it one.
    pub(crate) fn class(&self) -> Option<Criticality> {
        self.class
    }

    /// The prompt's chained block hashes.
    pub(crate) fn blocks(&self) -> &[u64] {
        &self.body.blocks
    }

    /// The hash of the body's `model`; 0 for none.
    pub(crate) fn model(&self) -> u64 {
        self.body.model
    }

    /// Signals for tests: a class and a body.
    #[cfg(test)]
    pub(crate) fn of(class: Option<Criticality>, blocks: Vec<u64>, model: Option<&str>) -> Self {
        Self {
            body: BodySignals::new(blocks, model),
            class,
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_header_wins_over_the_route_class_when_it_names_one() {
        let route = RouteSignals {
            body_peek: None,
            criticality: Some(Criticality::Standard),
            criticality_header: Some(HeaderName::from_static("x-criticality")),
            class_by_header: None,
        };
        let read = |value: Option<&str>| {
            let mut req = Request::new(());
            if let Some(v) = value {
                req.headers_mut()
                    .insert("x-criticality", HeaderValue::from_str(v).unwrap());
            }
            RequestSignals::read(&mut req, &route).class()
        };
        assert_eq!(read(None), Some(Criticality::Standard));
        assert_eq!(read(Some("Sheddable")), Some(Criticality::Sheddable));
        assert_eq!(read(Some("critical")), Some(Criticality::Critical));
        assert_eq!(read(Some("urgent")), Some(Criticality::Standard));
        let mut req = Request::new(());
        assert_eq!(
            RequestSignals::read(&mut req, &RouteSignals::default()).class(),
            None
        );
    }

    #[test]
    fn a_header_table_classes_the_values_it_knows() {
        let table = ClassByHeader::new(
            HeaderName::from_static("x-gateway-inference-objective"),
            [
                ("batch".to_owned(), Criticality::Sheddable),
                ("chat".to_owned(), Criticality::Critical),
            ],
        );
        let route = RouteSignals {
            criticality: Some(Criticality::Standard),
            criticality_header: Some(HeaderName::from_static("x-criticality")),
            class_by_header: Some(Arc::new(table)),
            ..RouteSignals::default()
        };
        let read = |objective: Option<&str>, class: Option<&str>| {
            let mut req = Request::new(());
            if let Some(v) = objective {
                req.headers_mut().insert(
                    "x-gateway-inference-objective",
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            if let Some(v) = class {
                req.headers_mut()
                    .insert("x-criticality", HeaderValue::from_str(v).unwrap());
            }
            RequestSignals::read(&mut req, &route).class()
        };
        assert_eq!(read(Some("batch"), None), Some(Criticality::Sheddable));
        assert_eq!(read(Some("chat"), None), Some(Criticality::Critical));
        assert_eq!(
            read(Some("Chat"), None),
            Some(Criticality::Standard),
            "exact"
        );
        assert_eq!(read(None, None), Some(Criticality::Standard));
        assert_eq!(
            read(Some("batch"), Some("critical")),
            Some(Criticality::Critical)
        );
    }

    #[test]
    fn the_body_signals_move_from_the_extensions() {
        let mut req = Request::new(());
        req.extensions_mut()
            .insert(BodySignals::new(vec![1, 2, 3], Some("sql-lora")));
        let reads_body = RouteSignals {
            body_peek: Some(16 * 1024),
            ..RouteSignals::default()
        };
        let signals = RequestSignals::read(&mut req, &reads_body);
        assert_eq!(signals.blocks(), [1, 2, 3]);
        assert_eq!(
            signals.model(),
            crate::backend::balance::server_load::adapter_hash(b"sql-lora")
        );
        assert!(req.extensions().get::<BodySignals>().is_none());
    }
}
