//! The model-server metrics scraper (`endpoint-metrics`): a background
//! task of the data plane, fed by the live endpoint sets, that scrapes each
//! endpoint of a backend that asks for it and leaves what it finds in the
//! endpoint's atomics (the balancers' `server_load`). The request path never
//! waits for it and never sees it but through those atomics.
//!
//! Every [`TICK`] the task looks at the current table's backends with
//! `endpoint-metrics` (the list is rebuilt only when a new table is
//! published) and starts a scrape of each endpoint whose interval has
//! passed and whose previous scrape has ended, at most
//! [`MAX_CONCURRENT`] at once. A scrape that fails (timeout, refused,
//! non-200, a page over [`client::MAX_PAGE_BYTES`]) withdraws the
//! endpoint's values at once; one not repeated within
//! `endpoint-metrics-max-age` lets them expire. Either way the pickers fall
//! back to the gateway's own view. Endpoints removed from a set are
//! forgotten with it (a running scrape holds its endpoint until its
//! timeout). After each scrape, requests waiting in the backend's queue
//! look again (saturation may have cleared).

mod client;
mod exposition;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::backend::balance::EndpointMetrics;
use crate::backend::{Backend, Endpoint};
use crate::clock::now;
use crate::table::RouteTable;
use crate::table::TableHandle;

/// How often the task looks for scrapes due.
pub const TICK: Duration = Duration::from_millis(25);

/// The most scrapes running at once.
pub const MAX_CONCURRENT: usize = 64;

/// Runs the scraper for whatever table `table` holds, until the runtime
/// stops.
pub async fn run(table: TableHandle) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT));
    let mut seen: Option<Arc<RouteTable>> = None;
    let mut scraped: Vec<Arc<Backend>> = Vec::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let current = table.load_full();
        if seen.as_ref().is_none_or(|t| !Arc::ptr_eq(t, &current)) {
            scraped = current
                .backends()
                .iter()
                .filter(|b| b.policy().endpoint_metrics.is_some())
                .cloned()
                .collect();
            seen = Some(current);
        }
        for backend in &scraped {
            start_due(backend, &permits);
        }
    }
}

/// Starts the scrapes due on `backend`'s endpoints.
fn start_due(backend: &Arc<Backend>, permits: &Arc<Semaphore>) {
    let policy = backend.policy();
    let Some(config) = &policy.endpoint_metrics else {
        return;
    };
    let now = now();
    for endpoint in backend.endpoints().endpoints() {
        let server = endpoint.server();
        if server.due.get().is_some_and(|due| due > now) || server.busy.load(Ordering::Relaxed) {
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            return;
        };
        server.busy.store(true, Ordering::Relaxed);
        server.due.set(now.saturating_add(nanos(config.interval)));
        let (endpoint, config) = (endpoint.clone(), config.clone());
        tokio::spawn(async move {
            scrape(&endpoint, &config).await;
            drop(permit);
        });
    }
}

/// Scrapes one endpoint and stores what it says.
async fn scrape(endpoint: &Endpoint, config: &EndpointMetrics) {
    let mut addr = endpoint.addr();
    if let Some(port) = config.port {
        addr.set_port(port);
    }
    let server = endpoint.server();
    match client::fetch(addr, &config.path, config.timeout).await {
        Ok(page) => {
            let report = exposition::read(&page, &config.names);
            server.store(&report, nanos(config.max_age), now());
        }
        Err(error) => {
            tracing::debug!(endpoint = %addr, %error, "endpoint metrics scrape failed");
            server.failed();
        }
    }
    server.busy.store(false, Ordering::Relaxed);
    endpoint.gate().recheck();
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
