use std::sync::Arc;

use http::{HeaderValue, Request};

use super::*;
use crate::telemetry::config::{SamplerKind, TracingConfig};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

fn route() -> Route {
    let mut route = crate::table::tests_support::route("/api");
    route.source = Some(RouteSource {
        namespace: "models".into(),
        name: "llm".into(),
    });
    route
}
