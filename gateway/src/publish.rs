//! Publishing a new routing table: the one place where a freshly compiled
//! table meets the live state, just before it is swapped in.

use std::sync::Arc;

use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::table::RouteTable;
use crate::table::TableHandle;

/// Swaps compiled tables in for the proxy.
#[derive(Clone, Debug)]
pub struct Publisher {
    table: TableHandle,
    metrics: Option<Arc<Metrics>>,
    access_log: Option<Arc<AccessLog>>,
    /// Told of every published table (for the stream listeners).
    published: Arc<watch::Sender<()>>,
}

impl Publisher {
    /// Publishes into `table`; routes get metric series from `metrics`.
    pub fn new(table: TableHandle, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            table,
            metrics,
            access_log: None,
            published: Arc::new(watch::Sender::new(())),
        }
    }

    /// Also renders `log`'s per-route pieces of every table published.
    pub fn with_access_log(mut self, log: Option<Arc<AccessLog>>) -> Self {
        self.access_log = log;
        self
    }

    /// A receiver told each time a table is published.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.published.subscribe()
    }

    /// The table requests use now.
    pub fn current(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// Takes over the live backends unless the table was built adopting
    /// them (their endpoints keep in-flight counts and idle connections),
    /// gives routes their metric series and their access log pieces, and
    /// swaps the table in. Requests already running finish on the old one.
    pub fn publish(&self, mut table: RouteTable) -> Arc<RouteTable> {
        table.succeed(&self.table.load());
        if let Some(metrics) = &self.metrics {
            table.attach_metrics(metrics);
        }
        let table = Arc::new(table);
        if let Some(log) = &self.access_log {
            log.prepare(&table);
        }
        self.table.store(table.clone());
        if let Some(metrics) = &self.metrics {
            metrics.configuration_applied();
        }
        self.published.send_replace(());
        table
    }
}
