//! The hand-over of an upgraded HTTP/1.1 client connection: the request
//! that asks for an upgrade waits here for the socket, and the
//! connection's loop puts it here once hyper has
//! written the `101 Switching Protocols` and given the socket back.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;

/// A client stream a tunnel can use.
pub(crate) trait ClientStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> ClientStream for T {}

impl fmt::Debug for dyn ClientStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientStream")
    }
}

/// An upgraded client connection: its socket, replaying first what hyper
/// had read past the request that asked for the upgrade.
pub(crate) type Upgraded = Box<dyn ClientStream>;

/// Where a connection's loop hands its socket to the tunnel of an upgrade
/// the proxy answered `101 Switching Protocols`.
#[derive(Default)]
pub(crate) struct UpgradeSlot(Mutex<Option<oneshot::Sender<Upgraded>>>);

impl fmt::Debug for UpgradeSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeSlot").finish_non_exhaustive()
    }
}

impl UpgradeSlot {
    /// Taken by a request that asks for an upgrade: the socket comes once
    /// hyper has written the `101` and given it back. Dropping the receiver
    /// (the upgrade was refused) withdraws it.
    pub(crate) fn expect(&self) -> oneshot::Receiver<Upgraded> {
        let (tx, rx) = oneshot::channel();
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        rx
    }

    /// The tunnel still waiting for the socket, if any.
    pub(crate) fn take(&self) -> Option<oneshot::Sender<Upgraded>> {
        let waiting = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        waiting.filter(|tx| !tx.is_closed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_upgrade_is_withdrawn_and_a_waiting_one_taken_once() {
        let slot = UpgradeSlot::default();
        assert!(slot.take().is_none());
        drop(slot.expect());
        assert!(slot.take().is_none(), "the receiver is gone");
        let _waiting = slot.expect();
        assert!(slot.take().is_some());
        assert!(slot.take().is_none());
    }
}
