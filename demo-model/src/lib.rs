//! Demo model.
