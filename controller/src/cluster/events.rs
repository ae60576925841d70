//! Kubernetes Events for diagnostics: an Ingress that is skipped or partly
//! skipped gets a Warning Event saying what and why, beside the log line.
//!
//! Rate-limited so that a broken object cannot flood the API server: each
//! (object, reason, message) is sent at most once per [`REPEAT_AFTER`], and
//! at most [`BURST`] Events go out per [`WINDOW`] in all. kube-runtime's
//! Recorder folds repeats into an Event series.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::diagnostics::Diagnostic;
use crate::objects::Kind;
use crate::reconcile::Report;

/// How long before the same diagnostic is sent again.
const REPEAT_AFTER: Duration = Duration::from_secs(600);
/// Events allowed per window, in all.
const BURST: usize = 20;
/// The window of [`BURST`].
const WINDOW: Duration = Duration::from_secs(60);

/// Sends Events for new diagnostics until `stop`.
pub(crate) async fn run(
    client: Client,
    reporter: Reporter,
    call_timeout: Duration,
    mut reports: watch::Receiver<Arc<Report>>,
    mut stop: watch::Receiver<bool>,
) {
    let recorder = Recorder::new(client, reporter);
    let mut limiter = Limiter::default();
    loop {
        tokio::select! {
            changed = reports.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        let report = reports.borrow_and_update().clone();
        for diagnostic in &report.diagnostics {
            let Some(reference) = reference(diagnostic, &report) else {
                continue;
            };
            if !limiter.admit(diagnostic, Instant::now()) {
                continue;
            }
            let event = Event {
                type_: EventType::Warning,
                reason: diagnostic.reason.as_str().to_owned(),
                note: Some(truncate(&diagnostic.message, 1024)),
                action: "Sync".to_owned(),
                secondary: None,
            };
            match tokio::time::timeout(call_timeout, recorder.publish(&event, &reference)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "event not recorded"),
                Err(_) => tracing::debug!("event not recorded: timed out"),
            }
        }
    }
}

/// The Event's subject: the Ingress, or the controller ConfigMap, a
/// diagnostic is about.
fn reference(diagnostic: &Diagnostic, report: &Report) -> Option<ObjectReference> {
    let id = &diagnostic.object.id;
    let (api_version, kind, uid) = match diagnostic.object.kind {
        Kind::Ingress => (
            "networking.k8s.io/v1",
            "Ingress",
            report.ingresses.get(id).and_then(|s| s.uid.clone()),
        ),
        Kind::ConfigMap => ("v1", "ConfigMap", None),
        _ => return None,
    };
    Some(ObjectReference {
        api_version: Some(api_version.to_owned()),
        kind: Some(kind.to_owned()),
        name: Some(id.name.clone()),
        namespace: Some(id.namespace.clone()),
        uid,
        ..ObjectReference::default()
    })
}

fn truncate(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// Decides which diagnostics become Events now.
#[derive(Debug, Default)]
struct Limiter {
    sent: HashMap<Diagnostic, Instant>,
    window: Vec<Instant>,
}

impl Limiter {
    fn admit(&mut self, diagnostic: &Diagnostic, now: Instant) -> bool {
        self.sent
            .retain(|_, at| now.duration_since(*at) < REPEAT_AFTER);
        self.window.retain(|at| now.duration_since(*at) < WINDOW);
        if self.sent.contains_key(diagnostic) || self.window.len() >= BURST {
            return false;
        }
        self.sent.insert(diagnostic.clone(), now);
        self.window.push(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::Reason;
    use crate::objects::{NsName, ObjectKey};

    fn diagnostic(n: usize) -> Diagnostic {
        Diagnostic {
            object: ObjectKey {
                kind: Kind::Ingress,
                id: NsName::new("ns", format!("i{n}")),
            },
            reason: Reason::InvalidPath,
            message: "bad".to_owned(),
        }
    }

    #[test]
    fn repeats_and_bursts_are_limited() {
        let mut limiter = Limiter::default();
        let start = Instant::now();
        assert!(limiter.admit(&diagnostic(0), start));
        assert!(
            !limiter.admit(&diagnostic(0), start),
            "same diagnostic twice"
        );
        for n in 1..BURST {
            assert!(limiter.admit(&diagnostic(n), start));
        }
        assert!(!limiter.admit(&diagnostic(BURST), start), "burst exhausted");
        let later = start + WINDOW;
        assert!(limiter.admit(&diagnostic(BURST), later));
        assert!(!limiter.admit(&diagnostic(0), later));
        assert!(limiter.admit(&diagnostic(0), start + REPEAT_AFTER));
    }

    #[test]
    fn ingresses_and_the_config_map_are_event_subjects() {
        let report = Report::default();
        let mut d = diagnostic(0);
        let ingress = reference(&d, &report).unwrap();
        assert_eq!(ingress.kind.as_deref(), Some("Ingress"));
        d.object.kind = Kind::ConfigMap;
        let config_map = reference(&d, &report).unwrap();
        assert_eq!(
            (
                config_map.api_version.as_deref(),
                config_map.kind.as_deref()
            ),
            (Some("v1"), Some("ConfigMap"))
        );
        d.object.kind = Kind::Secret;
        assert!(reference(&d, &report).is_none());
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let message = "é".repeat(600);
        let short = truncate(&message, 1023);
        assert!(short.len() <= 1023 + '…'.len_utf8());
        assert!(short.ends_with('…'));
    }
}
