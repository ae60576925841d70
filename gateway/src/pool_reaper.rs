//! Closing idle upstream connections that may no longer be reused.
//!
//! No task watches an idle HTTP/1.1 upstream connection (the task using a
//! connection drives it; see [`crate::upstream`]), so an upstream closing
//! one while it idles, or `upstream-keepalive-timeout` running out, would
//! otherwise be noticed only when a request next looks at the pool. Every
//! [`REAP_EVERY`] this task walks the endpoints of the live table and
//! closes those connections, as nginx closes an idle keep-alive connection
//! when the upstream closes it or when its `keepalive_timeout` passes.

use std::time::{Duration, Instant};

use crate::table::TableHandle;

/// How often idle connections are looked at.
pub const REAP_EVERY: Duration = Duration::from_secs(5);

/// Backends looked at before the task lets others run.
const BACKENDS_PER_TURN: usize = 1024;

/// Runs for whatever table `table` holds, until the runtime stops.
pub async fn run(table: TableHandle) {
    let mut tick = tokio::time::interval(REAP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        reap(&table).await;
    }
}

/// One walk over the live table's endpoints.
async fn reap(table: &TableHandle) {
    let current = table.load_full();
    let now = Instant::now();
    for backends in current.backends().chunks(BACKENDS_PER_TURN) {
        for backend in backends {
            for endpoint in backend.endpoints().endpoints() {
                endpoint.pool.reap(now);
            }
        }
        tokio::task::yield_now().await;
    }
}
