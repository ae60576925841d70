//! The validating admission webhook's decisions (`--validating-webhook`):
//! an `admission.k8s.io/v1` AdmissionReview of an Ingress in, the review
//! with the verdict out. The HTTPS server around it is the binary's.
//!
//! The same [`compile`](crate::compile()) that builds the served table
//! decides: the reviewed Ingress is put into the objects of the last
//! compile ([`Baseline`]) and everything is compiled again. An Ingress of
//! ours that would be refused, in part or in whole, is denied with every
//! diagnostic as the message; what would still serve (a Service not there
//! yet, a certificate cert-manager has not issued yet, an unknown
//! annotation) is allowed with warnings, which kubectl prints. An Ingress
//! of another class or namespace is allowed untouched. Nothing is rendered
//! or run: ingress-nginx's webhook ran `nginx -t` on the Ingress, which
//! made CVE-2025-1974 possible.
//!
//! - [`review`]: the wire format (bytes in, bytes out);
//! - [`verdict`]: the decision.

mod review;
pub mod verdict;

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::compile::CompileOptions;
use crate::diagnostics::Diagnostic;
use crate::snapshot::Snapshot;

pub use review::{MAX_REVIEW_BYTES, ReviewError, answer};
pub use verdict::{Verdict, judge};

/// What reviews are judged against: the objects, options and diagnostics
/// of the last compile. The reconciler publishes one after every compile.
#[derive(Debug)]
pub struct Baseline {
    /// The watched objects.
    pub snapshot: Snapshot,
    /// The compile options (the command line's).
    pub options: CompileOptions,
    /// The diagnostics of that compile.
    pub diagnostics: Vec<Diagnostic>,
}

/// Where the reconciler publishes the [`Baseline`]; empty until the first
/// full sync.
pub type BaselineHandle = Arc<ArcSwapOption<Baseline>>;
