//! The stapler: one task that follows the published tables and keeps the
//! staple of each served certificate fresh (see the module docs of
//! [`super`]).
//!
//! Certificates are grouped by chain (the same certificate in two Secrets
//! is fetched once). Each chain has a due time; due chains are fetched in
//! tasks of their own, at most one per chain and [`MAX_IN_FLIGHT`] in all,
//! which report back here. Only this task sets or clears staples.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::fetch::{FetchError, fetch};
use super::schedule::{expires_at, refresh_at, retry_at};
use super::target::{NotStapled, Target};
use super::verify::{Rejected, Verified, verify};
use super::{FetchCounter, MAX_CERTIFICATES, MAX_IN_FLIGHT, Served, unix_now};
use crate::shutdown::ShutdownSignal;
use crate::tls::Certificate;

/// How long the task sleeps with nothing to do (a new table wakes it).
const IDLE: Duration = Duration::from_secs(3600);

/// A chain, by the SHA-256 of its certificates.
type ChainKey = [u8; 32];

/// Keeps the certificates of the current table stapled.
pub struct Stapler {
    served: Arc<dyn Served>,
    metrics: Option<Arc<dyn FetchCounter>>,
    chains: HashMap<ChainKey, Chain>,
    /// Chains with a fetch running.
    fetching: HashSet<ChainKey>,
    /// Certificates beyond [`MAX_CERTIFICATES`] in the last table.
    skipped: usize,
}

impl std::fmt::Debug for Stapler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stapler")
            .field("chains", &self.chains.len())
            .field("fetching", &self.fetching.len())
            .finish_non_exhaustive()
    }
}

/// One chain served by the table.
struct Chain {
    /// Its query, or why it is not stapled.
    target: Result<Arc<Target>, NotStapled>,
    /// The table's certificate objects with this chain.
    certificates: Vec<Arc<Certificate>>,
    /// The response stapled now.
    current: Option<Current>,
    /// When to fetch next (Unix seconds).
    due: i64,
    /// Failed fetches in a row.
    failures: u32,
}

/// A verified response and when it runs out.
struct Current {
    response: Vec<u8>,
    expires_at: i64,
}

/// What one fetch came to.
struct Fetched {
    key: ChainKey,
    outcome: Result<(Vec<u8>, Verified), Failure>,
}

/// Why a fetch gave nothing to staple.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// No answer from the responder.
    #[error("the OCSP responder did not answer: {0}")]
    Unreachable(#[from] FetchError),
    /// An answer that cannot be stapled.
    #[error("the OCSP response cannot be stapled: {0}")]
    Rejected(#[from] Rejected),
}

impl Failure {
    /// The `result` label of `edge_gateway_ocsp_fetches_total`.
    fn label(&self) -> &'static str {
        match self {
            Failure::Unreachable(_) => "unreachable",
            Failure::Rejected(r) if r.is_not_good() => "not_good",
            Failure::Rejected(_) => "invalid",
        }
    }
}

impl Stapler {
    /// A stapler for the certificates `served` names (the route table's
    /// handle), counting fetches in `metrics`.
    pub fn new(served: Arc<dyn Served>, metrics: Option<Arc<dyn FetchCounter>>) -> Self {
        Self {
            served,
            metrics,
            chains: HashMap::new(),
            fetching: HashSet::new(),
            skipped: 0,
        }
    }

    /// Staples the certificates of each published table until `shutdown`.
    pub async fn run(mut self, mut published: watch::Receiver<()>, mut shutdown: ShutdownSignal) {
        let (done, mut results) = mpsc::channel::<Fetched>(MAX_IN_FLIGHT);
        self.follow_table();
        loop {
            let now = unix_now();
            self.expire(now);
            self.start_fetches(now, &done);
            let wake = self.next_wake().map_or(IDLE, |at| {
                Duration::from_secs(at.saturating_sub(now).max(1).unsigned_abs())
            });
            tokio::select! {
                changed = published.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.follow_table();
                }
                Some(fetched) = results.recv() => self.finish(fetched),
                () = tokio::time::sleep(wake) => {}
                () = shutdown.triggered() => return,
            }
        }
    }

    /// Takes the certificates of the current table: new chains are due at
    /// once, known ones keep their response (given to new certificate
    /// objects of the same chain), gone ones are forgotten.
    fn follow_table(&mut self) {
        let Some(served) = self.served.stapled_certificates() else {
            if !self.chains.is_empty() {
                tracing::info!("enable-ocsp is off: no OCSP responses are stapled");
            }
            for chain in self.chains.values() {
                chain.clear();
            }
            self.chains.clear();
            return;
        };
        let known: HashMap<*const Certificate, ChainKey> = self
            .chains
            .iter()
            .flat_map(|(key, chain)| chain.certificates.iter().map(|c| (Arc::as_ptr(c), *key)))
            .collect();
        let mut seen = HashSet::new();
        let mut wanted: HashMap<ChainKey, Vec<Arc<Certificate>>> = HashMap::new();
        let mut skipped = 0;
        for certificate in &served {
            let ptr = Arc::as_ptr(certificate);
            if !seen.insert(ptr) {
                continue;
            }
            let key = known
                .get(&ptr)
                .copied()
                .unwrap_or_else(|| chain_key(certificate));
            if !wanted.contains_key(&key) && wanted.len() >= MAX_CERTIFICATES {
                skipped += 1;
                continue;
            }
            wanted.entry(key).or_default().push(certificate.clone());
        }
        if skipped != self.skipped && skipped > 0 {
            tracing::warn!(
                skipped,
                limit = MAX_CERTIFICATES,
                "more certificates than OCSP stapling covers: these are served without a staple"
            );
        }
        self.skipped = skipped;
        self.chains.retain(|key, _| wanted.contains_key(key));
        let now = unix_now();
        for (key, certificates) in wanted {
            let chain = self
                .chains
                .entry(key)
                .or_insert_with(|| Chain::new(&certificates, now));
            if let Some(current) = &chain.current {
                for certificate in &certificates {
                    if !chain
                        .certificates
                        .iter()
                        .any(|c| Arc::ptr_eq(c, certificate))
                    {
                        certificate.set_staple(current.response.clone(), current.expires_at);
                    }
                }
            }
            chain.certificates = certificates;
        }
    }

    /// Stops stapling responses that ran out.
    fn expire(&mut self, now: i64) {
        for chain in self.chains.values_mut() {
            if chain.current.as_ref().is_some_and(|c| c.expires_at <= now) {
                tracing::warn!(
                    certificate = %describe(&chain.certificates),
                    "the OCSP response expired before a fresh one came: served without a staple"
                );
                chain.clear();
                chain.current = None;
            }
        }
    }

    /// Starts the fetches that are due, within [`MAX_IN_FLIGHT`].
    fn start_fetches(&mut self, now: i64, done: &mpsc::Sender<Fetched>) {
        for (key, chain) in &self.chains {
            if self.fetching.len() >= MAX_IN_FLIGHT {
                return;
            }
            let Ok(target) = &chain.target else { continue };
            if chain.due > now || self.fetching.contains(key) {
                continue;
            }
            self.fetching.insert(*key);
            let (key, target, done) = (*key, target.clone(), done.clone());
            tokio::spawn(async move {
                let outcome = fetch_and_verify(&target).await;
                let _ = done.send(Fetched { key, outcome }).await;
            });
        }
    }

    /// Staples what a fetch brought, or schedules another try.
    fn finish(&mut self, fetched: Fetched) {
        self.fetching.remove(&fetched.key);
        // Gone from the table (or stapling turned off) meanwhile.
        let Some(chain) = self.chains.get_mut(&fetched.key) else {
            return;
        };
        let now = unix_now();
        let result = match &fetched.outcome {
            Ok(_) => "good",
            Err(failure) => failure.label(),
        };
        if let Some(metrics) = &self.metrics {
            metrics.ocsp_fetched(result);
        }
        match fetched.outcome {
            Ok((response, verified)) => {
                if chain.failures > 0 {
                    tracing::info!(
                        certificate = %describe(&chain.certificates),
                        "OCSP response fetched again: stapled"
                    );
                }
                let expires_at = expires_at(&verified);
                for certificate in &chain.certificates {
                    certificate.set_staple(response.clone(), expires_at);
                }
                chain.current = Some(Current {
                    response,
                    expires_at,
                });
                chain.due = refresh_at(&verified, now);
                chain.failures = 0;
            }
            Err(failure) => {
                chain.failures = chain.failures.saturating_add(1);
                let stapled = chain.current.is_some();
                if let Failure::Rejected(rejected) = &failure
                    && rejected.is_not_good()
                {
                    chain.clear();
                    chain.current = None;
                }
                let certificate = describe(&chain.certificates);
                if chain.failures == 1 {
                    tracing::warn!(
                        %certificate,
                        error = %failure,
                        still_stapled = stapled && chain.current.is_some(),
                        "OCSP fetch failed: the last good response is stapled until it runs out, then none"
                    );
                } else {
                    tracing::debug!(%certificate, error = %failure, failures = chain.failures, "OCSP fetch failed again");
                }
                chain.due = retry_at(chain.failures, now);
            }
        }
    }

    /// When something is next due: a fetch, or a response running out.
    fn next_wake(&self) -> Option<i64> {
        self.chains
            .iter()
            .flat_map(|(key, chain)| {
                let fetch =
                    (chain.target.is_ok() && !self.fetching.contains(key)).then_some(chain.due);
                let expiry = chain.current.as_ref().map(|c| c.expires_at);
                fetch.into_iter().chain(expiry)
            })
            .min()
    }
}

impl Chain {
    fn new(certificates: &[Arc<Certificate>], now: i64) -> Chain {
        let target = certificates
            .first()
            .map_or(Err(NotStapled::NoIssuer), |c| {
                Target::from_chain(&c.certified_key().cert)
            })
            .map(Arc::new);
        if let Err(reason) = &target {
            tracing::info!(
                certificate = %describe(certificates),
                %reason,
                "OCSP stapling: served without a staple"
            );
        }
        Chain {
            target,
            certificates: certificates.to_vec(),
            current: None,
            due: now,
            failures: 0,
        }
    }

    /// Takes the staple off every certificate of the chain.
    fn clear(&self) {
        for certificate in &self.certificates {
            certificate.clear_staple();
        }
    }
}

async fn fetch_and_verify(target: &Target) -> Result<(Vec<u8>, Verified), Failure> {
    let response = fetch(&target.url, &target.request).await?;
    let verified = verify(&response, target, unix_now())?;
    Ok((response, verified))
}

fn chain_key(certificate: &Certificate) -> ChainKey {
    let mut hash = Sha256::new();
    for der in &certificate.certified_key().cert {
        hash.update((der.len() as u64).to_be_bytes());
        hash.update(der.as_ref());
    }
    hash.finalize().into()
}

/// The certificate for log lines: its Secret and its first name.
fn describe(certificates: &[Arc<Certificate>]) -> String {
    let Some(first) = certificates.first() else {
        return String::new();
    };
    let name = first.names().first().map_or("", String::as_str);
    match first.source() {
        Some((namespace, secret)) => format!("{namespace}/{secret} ({name})"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_ca::{Answer, TestCa};
    use super::*;
    use crate::host::HostPattern;
    use crate::policy::Globals;
    use crate::table::{RouteTableBuilder, TableHandle};
    use arc_swap::ArcSwap;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn table(certs: &[(&str, &Arc<Certificate>)], stapling: bool) -> crate::RouteTable {
        let mut b = RouteTableBuilder::default();
        for (host, cert) in certs {
            b.set_certificate(&HostPattern::Exact((*host).into()), (*cert).clone());
        }
        b.set_globals(Globals {
            ocsp_stapling: stapling,
            ..Globals::default()
        });
        b.build()
    }

    /// Answers every connection on `listener` with `body` as an OCSP
    /// response.
    fn respond(listener: TcpListener, body: Vec<u8>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/ocsp-response\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            }
        })
    }

    #[tokio::test]
    async fn staples_the_table_s_certificates_and_keeps_them_across_tables() {
        let ca = TestCa::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let leaf = ca.leaf(Some(&url), 0x42);
        let target = Target::from_chain(&leaf.chain).unwrap();
        let server = respond(listener, Answer::good(ca.signer()).encode(&target.cert_id));
        let no_aia = ca.leaf(None, 0x43);

        let handle: TableHandle = Arc::new(ArcSwap::from_pointee(table(
            &[
                ("a.test", &leaf.certificate),
                ("b.test", &no_aia.certificate),
            ],
            true,
        )));
        let mut stapler = Stapler::new(handle.clone(), None);
        stapler.follow_table();
        assert_eq!(stapler.chains.len(), 2);
        let (done, mut results) = mpsc::channel(MAX_IN_FLIGHT);
        stapler.start_fetches(unix_now(), &done);
        assert_eq!(
            stapler.fetching.len(),
            1,
            "the leaf without AIA is not fetched"
        );
        let fetched = results.recv().await.unwrap();
        stapler.finish(fetched);
        let stapled = leaf.certificate.handshake_key(true, unix_now);
        assert!(stapled.ocsp.is_some(), "stapled");
        assert!(
            leaf.certificate
                .handshake_key(false, unix_now)
                .ocsp
                .is_none()
        );
        assert!(
            no_aia
                .certificate
                .handshake_key(true, unix_now)
                .ocsp
                .is_none()
        );

        // The same chain under another certificate object gets the staple
        // without a fetch.
        let again =
            Arc::new(Certificate::from_pem(leaf.pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap());
        handle.store(Arc::new(table(&[("c.test", &again)], true)));
        stapler.follow_table();
        assert!(again.handshake_key(true, unix_now).ocsp.is_some());
        assert!(stapler.fetching.is_empty());

        // Stapling turned off: staples are taken off.
        handle.store(Arc::new(table(&[("c.test", &again)], false)));
        stapler.follow_table();
        assert!(stapler.chains.is_empty());
        assert!(again.handshake_key(true, unix_now).ocsp.is_none());
        server.abort();
    }

    #[tokio::test]
    async fn a_responder_that_is_down_leaves_no_staple_and_retries_later() {
        let ca = TestCa::new();
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", closed.local_addr().unwrap());
        drop(closed);
        let leaf = ca.leaf(Some(&url), 0x50);
        let handle: TableHandle = Arc::new(ArcSwap::from_pointee(table(
            &[("a.test", &leaf.certificate)],
            true,
        )));
        let mut stapler = Stapler::new(handle, None);
        stapler.follow_table();
        let (done, mut results) = mpsc::channel(MAX_IN_FLIGHT);
        let now = unix_now();
        stapler.start_fetches(now, &done);
        let fetched = results.recv().await.unwrap();
        assert!(matches!(fetched.outcome, Err(Failure::Unreachable(_))));
        stapler.finish(fetched);
        assert!(
            leaf.certificate
                .handshake_key(true, unix_now)
                .ocsp
                .is_none()
        );
        let chain = stapler.chains.values().next().unwrap();
        assert_eq!(chain.failures, 1);
        assert!(chain.due > now);
    }

    #[test]
    fn expired_responses_come_off() {
        let ca = TestCa::new();
        let leaf = ca.leaf(Some("http://127.0.0.1:1/"), 0x60);
        let handle: TableHandle = Arc::new(ArcSwap::from_pointee(table(
            &[("a.test", &leaf.certificate)],
            true,
        )));
        let mut stapler = Stapler::new(handle, None);
        stapler.follow_table();
        let now = unix_now();
        let chain = stapler.chains.values_mut().next().unwrap();
        leaf.certificate.set_staple(b"response".to_vec(), now + 5);
        chain.current = Some(Current {
            response: b"response".to_vec(),
            expires_at: now + 5,
        });
        assert!(leaf.certificate.handshake_key(true, || now).ocsp.is_some());
        // The handshake itself never staples past the expiry...
        assert!(
            leaf.certificate
                .handshake_key(true, || now + 5)
                .ocsp
                .is_none()
        );
        // ...and the stapler takes it off.
        stapler.expire(now + 5);
        assert!(leaf.certificate.handshake_key(true, || now).ocsp.is_none());
        assert!(stapler.chains.values().all(|c| c.current.is_none()));
    }
}
