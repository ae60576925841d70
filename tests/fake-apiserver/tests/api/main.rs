//! Black-box tests of the fake API server: raw HTTP, kube-rs, kubectl and
//! admission webhooks.

mod cluster;
mod http;
mod inference;
mod kube_rs;
mod kubectl;
mod kubectl_checks;
mod raw;
mod reads;
mod watch;
mod webhook;
