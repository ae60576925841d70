//! Counters of the gateway's own telemetry paths, read when scraped:
//! access log lines dropped, spans exported and dropped, and the global
//! rate limit's store calls that failed open. Each source registers its
//! counters when it starts ([`Metrics::watch`]).

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{MetricFamily, MetricType};

use super::inference::PREFIX;
use super::{Metrics, counter, family_raw};
use crate::access_log::AccessLog;

/// The samples of one counter family: label pairs and value.
pub(crate) type Samples = Vec<(Vec<(&'static str, String)>, f64)>;

/// One counter family, read from its source when scraped.
struct Reader {
    desc: Vec<Desc>,
    name: String,
    help: &'static str,
    read: Box<dyn Fn() -> Samples + Send + Sync>,
}

impl Collector for Reader {
    fn desc(&self) -> Vec<&Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut family = family_raw(&self.name, self.help, MetricType::COUNTER);
        for (labels, value) in (self.read)() {
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
            family.mut_metric().push(counter(&pairs, value));
        }
        vec![family]
    }
}

impl Metrics {
    /// Reports the lines `log` dropped, as
    /// `edge_gateway_access_log_dropped_lines_total`.
    pub fn watch_access_log(&self, log: Arc<AccessLog>) {
        self.watch(
            "access_log_dropped_lines_total",
            "Access log lines dropped because the writer fell behind (buffers full) or could not write",
            &[],
            move || vec![(Vec::new(), log.dropped() as f64)],
        );
    }

    /// Registers the counter family `edge_gateway_<name>` with the label
    /// names `labels`, whose samples `read` gives when scraped. A second
    /// registration of the same name is refused (and logged).
    pub(crate) fn watch(
        &self,
        name: &str,
        help: &'static str,
        labels: &[&str],
        read: impl Fn() -> Samples + Send + Sync + 'static,
    ) {
        let name = format!("{PREFIX}{name}");
        let desc = match Desc::new(
            name.clone(),
            help.to_owned(),
            labels.iter().map(|l| (*l).to_owned()).collect(),
            HashMap::new(),
        ) {
            Ok(desc) => desc,
            Err(error) => {
                tracing::warn!(%error, name, "metric not registered");
                return;
            }
        };
        let reader = Reader {
            desc: vec![desc],
            name: name.clone(),
            help,
            read: Box::new(read),
        };
        if let Err(error) = self.registry.register(Box::new(reader)) {
            tracing::warn!(%error, name, "metric not registered");
        }
    }
}
