//! `edge-gateway webhook-certgen`: the options of ingress-nginx's
//! `kube-webhook-certgen` image, which its chart runs as Helm hooks.

use std::path::PathBuf;

use clap::{ArgAction, Args, Subcommand};

use super::values;

/// `webhook-certgen create|patch`.
#[derive(Debug, Args)]
pub(crate) struct CertgenArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) action: CertgenAction,
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the
    /// in-cluster service account).
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Accepted for kube-webhook-certgen compatibility; messages go to
    /// stderr as text.
    #[arg(
        long = "log-format",
        id = "certgen_log_format",
        global = true,
        value_name = "FORMAT",
        hide = true
    )]
    pub(crate) log_format: Option<String>,
    /// Accepted for kube-webhook-certgen compatibility.
    #[arg(
        long = "log-level",
        id = "certgen_log_level",
        global = true,
        value_name = "LEVEL",
        hide = true
    )]
    pub(crate) log_level: Option<String>,
}

/// The two steps: before install, the Secret; after, the webhook's CA.
#[derive(Debug, Subcommand)]
pub(crate) enum CertgenAction {
    /// Create the Secret with a new CA, and a serving certificate for
    /// --host signed by it (keys `ca`, `cert`, `key`), unless it exists.
    Create(CreateArgs),
    /// Put the Secret's CA into the webhook configurations named
    /// --webhook-name (clientConfig.caBundle), and optionally their
    /// failurePolicy.
    Patch(PatchArgs),
}

/// `webhook-certgen create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Comma-separated host names and IPs the certificate is for (the
    /// webhook Service's names).
    #[arg(long, value_name = "HOSTS", value_delimiter = ',', required = true)]
    pub(crate) host: Vec<String>,
    /// The Secret to create.
    #[arg(long, value_name = "NAME")]
    pub(crate) secret_name: String,
    /// Its namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub(crate) namespace: String,
    /// The Secret key of the certificate.
    #[arg(long, default_value = "cert", value_name = "KEY")]
    pub(crate) cert_name: String,
    /// The Secret key of the private key.
    #[arg(long, default_value = "key", value_name = "KEY")]
    pub(crate) key_name: String,
}

/// `webhook-certgen patch`.
#[derive(Debug, Args)]
pub(crate) struct PatchArgs {
    /// The webhook configuration(s) to patch.
    #[arg(long, value_name = "NAME")]
    pub(crate) webhook_name: String,
    /// The Secret holding the CA (key `ca`).
    #[arg(long, value_name = "NAME")]
    pub(crate) secret_name: String,
    /// Its namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub(crate) namespace: String,
    /// Patch the ValidatingWebhookConfiguration.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) patch_validating: bool,
    /// Patch the MutatingWebhookConfiguration.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL", value_parser = values::go_bool)]
    pub(crate) patch_mutating: bool,
    /// Also set every webhook's failurePolicy (Fail or Ignore); empty
    /// leaves it.
    #[arg(long, default_value = "", value_name = "POLICY", value_parser = failure_policy)]
    pub(crate) patch_failure_policy: String,
}

/// `Fail`, `Ignore`, or empty.
fn failure_policy(value: &str) -> Result<String, String> {
    match value {
        "" | "Fail" | "Ignore" => Ok(value.to_owned()),
        _ => Err(format!("{value:?}: Fail or Ignore")),
    }
}
