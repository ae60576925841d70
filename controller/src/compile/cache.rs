//! What one compile leaves to the next ([`CompileCache`]), so that a
//! reload neither re-parses keys nor resets limits.

use std::sync::Arc;

use foldhash::HashMap;
use gateway::table::RouteTable;
use k8s_openapi::api::networking::v1::Ingress;

use super::{AdmissionCache, CertCache, ClientAuthCache};
use super::{Prepared, regex_paths};
use crate::objects::NsName;

/// What one compile leaves to the next: parsed certificates, and the
/// admission checks with their state (rate-limit buckets, verified
/// passwords, auth caches), so that a reload neither re-parses keys nor
/// resets limits.
#[derive(Debug, Default)]
pub struct CompileCache {
    pub(super) certs: CertCache,
    pub(super) admissions: AdmissionCache,
    pub(super) regexes: regex_paths::RegexCache,
    pub(super) client_auths: ClientAuthCache,
    /// The version of each Ingress the last compile served.
    pub(super) served_versions: HashMap<NsName, Arc<Ingress>>,
    /// The table serving now, whose backends the next compile takes over.
    pub(super) live: Option<Arc<RouteTable>>,
}

impl CompileCache {
    /// Builds the next compile's table onto `live`, the table serving now:
    /// its backends are taken over as the table is built rather than made
    /// anew and merged at publish (see
    /// [`gateway::table::RouteTableBuilder::adopting`]). Only for a table
    /// that is published right after.
    pub fn adopt_from(&mut self, live: Arc<RouteTable>) {
        self.live = Some(live);
    }

    /// Keeps the version of each Ingress `served` (in the order of
    /// `prepared`, of which it is a subsequence), reusing the last
    /// compile's keys.
    pub(super) fn remember_served(&mut self, prepared: &[Prepared<'_>], served: &[NsName]) {
        let mut last = std::mem::take(&mut self.served_versions);
        let mut versions = HashMap::with_capacity_and_hasher(served.len(), Default::default());
        let mut next_served = served.iter().peekable();
        for p in prepared {
            if next_served.next_if(|id| *id == p.id).is_some() {
                let id = last
                    .remove_entry(p.id)
                    .map_or_else(|| p.id.clone(), |(id, _)| id);
                versions.insert(id, p.ingress.clone());
            }
        }
        self.served_versions = versions;
    }

    /// Compiles new regex paths on a thread of their own from now on (see
    /// [`regex_paths`]).
    pub fn compile_regexes_in_background(&mut self) -> std::io::Result<()> {
        self.regexes.compile_in_background()
    }

    /// Whether regex paths are being compiled in the background.
    pub fn regexes_pending(&self) -> bool {
        self.regexes.pending()
    }

    /// Whether the background regex compiles all finished, and no compile
    /// took them in yet.
    pub fn regexes_arrived(&self) -> bool {
        self.regexes.arrived()
    }
}
