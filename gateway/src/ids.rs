//! The indexes a route table hands out: servers, routes, backends.
//!
//! A leaf module (it imports nothing of the crate) so that every layer can
//! name a route or a backend without depending on the table itself.

/// Index of a server (one per host) in a route table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServerId(pub(crate) usize);

impl ServerId {
    /// The default server (`_`): rules without a host, and every request
    /// whose host matches no server.
    pub const DEFAULT: ServerId = ServerId(0);
}

/// Index of a route in a route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteId(pub(crate) usize);

/// Index of a backend in a route table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendId(pub(crate) usize);

impl BackendId {
    /// An id for unit tests that need one without a table.
    #[cfg(test)]
    pub(crate) fn for_tests(index: usize) -> Self {
        Self(index)
    }
}
