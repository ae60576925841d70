//! Requests that never get an answer, for tests of a client's timeouts.
//!
//! While a rule is set ([`crate::FakeApiServer::hang`]), each request it
//! matches is recorded, then held: no status line, no body, until its
//! connection is cut (a pause, a restart, the server dropped). Clearing
//! the rule only lets later requests through; the held ones stay held, as
//! a hung server's would.

use std::sync::{Arc, Mutex};

use crate::state::{RecordedRequest, lock};

/// Which requests to hold.
pub(crate) type Rule = Arc<dyn Fn(&RecordedRequest) -> bool + Send + Sync>;

/// The current rule, if any.
#[derive(Default)]
pub(crate) struct Hang {
    rule: Mutex<Option<Rule>>,
}

impl std::fmt::Debug for Hang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = lock(&self.rule).is_some();
        f.debug_struct("Hang").field("set", &set).finish()
    }
}

impl Hang {
    /// Sets (or, with `None`, clears) the rule.
    pub(crate) fn set(&self, rule: Option<Rule>) {
        *lock(&self.rule) = rule;
    }

    /// Holds the request for ever when the rule matches it.
    pub(crate) async fn hold_if_matching(&self, request: &RecordedRequest) {
        let rule = lock(&self.rule).clone();
        if rule.is_some_and(|rule| rule(request)) {
            tracing::debug!(path = %request.path, "request held (hang rule)");
            std::future::pending::<()>().await;
        }
    }
}
