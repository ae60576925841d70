//! Services of type ExternalName as upstreams: their name is resolved by
//! DNS (hickory's resolver, `/etc/resolv.conf` and `/etc/hosts`, as
//! ingress-nginx's Lua resolver) and the addresses become the backend's
//! endpoint set, re-resolved when the answer's TTL runs out (at least every
//! [`MAX_TTL`], at most every [`MIN_TTL`]).
//!
//! Bounded: each lookup has a [`LOOKUP_TIMEOUT`], at most
//! [`MAX_ADDRESSES`] addresses are kept per name and [`MAX_NAMES`] names
//! resolved. A name that does not resolve leaves its backend without
//! endpoints (its routes answer 503, as for a Service without ready pods)
//! and is logged, then tried again after [`RETRY`]; the last good answer is
//! not kept past its TTL.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backend::EndpointUpdate;
pub use crate::backend::ExternalName;
use crate::shutdown::ShutdownSignal;
use crate::table::TableHandle;

/// The shortest time an answer is kept.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time an answer is kept, whatever its TTL.
pub const MAX_TTL: Duration = Duration::from_secs(300);
/// How long a lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// How soon a failed lookup is tried again.
pub const RETRY: Duration = Duration::from_secs(5);
/// Addresses kept per name.
pub const MAX_ADDRESSES: usize = 64;
/// Names resolved at most.
pub const MAX_NAMES: usize = 1024;

/// What is known about one name.
#[derive(Debug)]
struct Answer {
    addrs: Vec<IpAddr>,
    /// When to look it up again.
    refresh: Instant,
}

/// Keeps the ExternalName backends of the current table resolved.
pub struct ExternalNames {
    table: TableHandle,
    resolver: TokioResolver,
    answers: HashMap<Box<str>, Answer>,
}

impl std::fmt::Debug for ExternalNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalNames")
            .field("names", &self.answers.len())
            .finish_non_exhaustive()
    }
}

impl ExternalNames {
    /// A resolver with the system's configuration; `None` (logged) when it
    /// cannot be read, in which case ExternalName backends stay empty.
    pub fn new(table: TableHandle) -> Option<Self> {
        let mut builder = match TokioResolver::builder_tokio() {
            Ok(builder) => builder,
            Err(error) => {
                tracing::error!(%error, "no DNS configuration: ExternalName Services answer 503");
                return None;
            }
        };
        let options = builder.options_mut();
        options.timeout = LOOKUP_TIMEOUT;
        options.attempts = 1;
        Some(Self {
            table,
            resolver: builder.build().ok()?,
            answers: HashMap::new(),
        })
    }

    /// Resolves the names of each published table, and again as TTLs run
    /// out, until `shutdown`.
    pub async fn run(mut self, mut published: watch::Receiver<()>, mut shutdown: ShutdownSignal) {
        loop {
            let next = self.refresh().await;
            let wait = tokio::time::sleep_until(next.unwrap_or_else(|| Instant::now() + MAX_TTL));
            tokio::select! {
                changed = published.changed() => if changed.is_err() { return },
                () = wait => {}
                () = shutdown.triggered() => return,
            }
        }
    }

    /// Looks up the names that are due, gives every ExternalName backend of
    /// the current table its addresses; returns when the next is due.
    async fn refresh(&mut self) -> Option<Instant> {
        let table = self.table.load_full();
        let names: Vec<&ExternalName> = table
            .external_names()
            .map(|(_, name)| name)
            .take(MAX_NAMES)
            .collect();
        let now = Instant::now();
        for name in &names {
            let due = self
                .answers
                .get(&name.name)
                .is_none_or(|a| a.refresh <= now);
            if due {
                let answer = self.lookup(&name.name).await;
                self.answers.insert(name.name.clone(), answer);
            }
        }
        self.answers
            .retain(|key, _| names.iter().any(|n| n.name == *key));
        for (backend, name) in table.external_names() {
            let Some(answer) = self.answers.get(&name.name) else {
                continue;
            };
            let addrs = answer
                .addrs
                .iter()
                .map(|ip| SocketAddr::new(*ip, name.port))
                .collect();
            backend.update(&EndpointUpdate {
                addrs,
                service_found: true,
            });
        }
        self.answers.values().map(|a| a.refresh).min()
    }

    async fn lookup(&self, name: &str) -> Answer {
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, self.resolver.lookup_ip(name)).await;
        match lookup {
            Ok(Ok(found)) => {
                let mut addrs: Vec<IpAddr> = found.iter().take(MAX_ADDRESSES).collect();
                addrs.sort_unstable();
                addrs.dedup();
                let ttl = found
                    .valid_until()
                    .saturating_duration_since(std::time::Instant::now())
                    .clamp(MIN_TTL, MAX_TTL);
                tracing::debug!(name, ?addrs, ?ttl, "ExternalName resolved");
                Answer {
                    addrs,
                    refresh: Instant::now() + ttl,
                }
            }
            Ok(Err(error)) => failed(name, &error.to_string()),
            Err(_) => failed(name, "timed out"),
        }
    }
}

fn failed(name: &str, error: &str) -> Answer {
    tracing::warn!(
        name,
        error,
        "ExternalName does not resolve: its routes answer 503 until it does"
    );
    Answer {
        addrs: Vec::new(),
        refresh: Instant::now() + RETRY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendKey;
    use crate::table::{RouteTable, RouteTableBuilder};
    use arc_swap::ArcSwap;
    use std::sync::Arc;

    fn table_for(name: &str) -> RouteTable {
        let mut b = RouteTableBuilder::default();
        let key = BackendKey {
            namespace: "ns".into(),
            service: "ext".into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let id = b.backend(key, &EndpointUpdate::default());
        b.set_external_name(
            id,
            ExternalName {
                name: name.into(),
                port: 8080,
            },
        );
        b.build()
    }

    #[tokio::test]
    async fn names_from_the_hosts_file_resolve_and_bad_ones_leave_no_endpoint() {
        let handle: TableHandle = Arc::new(ArcSwap::from_pointee(table_for("localhost")));
        let mut names = ExternalNames::new(handle.clone()).unwrap();
        let next = names.refresh().await.unwrap();
        assert!(next > Instant::now());
        let table = handle.load();
        let (backend, _) = table.external_names().next().unwrap();
        let endpoints = backend.endpoints();
        assert!(
            endpoints
                .endpoints()
                .iter()
                .any(|e| e.addr() == SocketAddr::from(([127, 0, 0, 1], 8080))),
            "{:?}",
            endpoints.endpoints()
        );

        handle.store(Arc::new(table_for("no-such-name.invalid")));
        names.refresh().await;
        let table = handle.load();
        let (backend, _) = table.external_names().next().unwrap();
        assert!(backend.endpoints().endpoints().is_empty());
        assert_eq!(names.answers.len(), 1, "the old name is forgotten");
    }
}
