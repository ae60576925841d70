//! SSL passthrough hosts (`ssl-passthrough` with `--enable-ssl-passthrough`),
//! as ingress-nginx's `getConfiguration`: any Ingress of a host asking for
//! it makes the host a passthrough one, and its TLS connections go to the
//! backend of the host's `/` location (whichever Ingress routes `/`, or
//! the host's default backend); a host without one keeps TLS termination.
//! ingress-nginx compares the SNI with the host literally, so only exact
//! hosts qualify.

use gateway::RouteAction;
use gateway::host::HostPattern;
use gateway::path::PathKind;

use super::Compiler;
use crate::annotations::PREFIX;
use crate::diagnostics::{Diagnostic, Reason};

impl Compiler<'_> {
    /// Gives each passthrough host its backend; `enabled`:
    /// `--enable-ssl-passthrough`.
    pub(super) fn passthrough_hosts(&mut self, enabled: bool) {
        for (host, object) in std::mem::take(&mut self.passthrough) {
            let problem = match (&host, enabled) {
                (_, false) => Some(format!(
                    "{PREFIX}ssl-passthrough needs --enable-ssl-passthrough; TLS for {} is terminated by the gateway",
                    host.as_string()
                )),
                (HostPattern::Wildcard(_) | HostPattern::Suffix(_), true) => Some(format!(
                    "{PREFIX}ssl-passthrough: {} is a wildcard; ingress-nginx matches passthrough hosts literally, so TLS is terminated by the gateway",
                    host.as_string()
                )),
                (HostPattern::Exact(name), true) => {
                    let backend = self
                        .builder
                        .find_route(Some(&host), "/", PathKind::Prefix)
                        .and_then(|id| self.builder.route(id))
                        .and_then(|route| match route.action {
                            RouteAction::Proxy(id) => Some(id),
                            RouteAction::Respond(_) => None,
                        });
                    match backend {
                        Some(id) => {
                            self.builder.set_passthrough(name, id);
                            None
                        }
                        None => Some(format!(
                            "{PREFIX}ssl-passthrough: {name} has no backend for / (a Prefix / path or a default backend); TLS is terminated by the gateway"
                        )),
                    }
                }
            };
            if let Some(message) = problem {
                self.diagnostics.push(Diagnostic {
                    object,
                    reason: Reason::InvalidAnnotation,
                    message,
                });
            }
        }
    }
}
