//! Black-box tests of the fake API server: raw HTTP, kube-rs and kubectl.

mod http;
mod kube_rs;
mod kubectl;
mod raw;
mod reads;
mod watch;
