//! `edge-gateway webhook-certgen create|patch`: what ingress-nginx's chart
//! runs from the `kube-webhook-certgen` image, built in, so the chart needs
//! no third-party image.
//!
//! - `create` (a pre-install hook): unless the Secret exists, generates a
//!   CA and a serving certificate for `--host` signed by it (ECDSA P-256,
//!   valid 100 years, as kube-webhook-certgen), and stores them in the
//!   Secret under `ca`, `cert` and `key`. The controller mounts it and
//!   serves the webhook with `cert` and `key`.
//! - `patch` (a post-install hook): reads `ca` from the Secret and writes
//!   it into every webhook of the configuration(s) named `--webhook-name`
//!   (`clientConfig.caBundle`), with `--patch-failure-policy` if given, so
//!   the API server trusts the webhook.
//!
//! Every API call is bounded ([`CALL_TIMEOUT`]); a replaced configuration
//! that changed meanwhile (409) is read and patched again, a few times.
//! Exit status: 0 done, 1 the API failed, 2 usage or configuration errors.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use controller::cluster::{self, ClusterError};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::cli::{CertgenAction, CertgenArgs, CreateArgs, PatchArgs};

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at replacing a configuration that others change meanwhile.
const ATTEMPTS: usize = 3;
/// The certificates' lifetime (kube-webhook-certgen's: nothing renews them).
const VALIDITY_DAYS: i64 = 100 * 365;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
enum CertgenError {
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}: timed out after {CALL_TIMEOUT:?}")]
    Timeout(String),
    #[error("{0}")]
    NotFound(String),
    #[error("cannot generate the certificates: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("{0}")]
    Usage(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl CertgenError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Cluster(ClusterError::Config(_)) | Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// Runs the step; returns the exit status.
pub(crate) fn main(args: &CertgenArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CertgenError::Runtime)
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(message) => {
            let _ = writeln!(std::io::stderr().lock(), "webhook-certgen: {message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "webhook-certgen: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

async fn run(args: &CertgenArgs) -> Result<String, CertgenError> {
    let client = cluster::connect(args.kubeconfig.as_deref()).await?;
    match &args.action {
        CertgenAction::Create(create_args) => create(client, create_args).await,
        CertgenAction::Patch(patch_args) => patch(client, patch_args).await,
    }
}

/// Bounds an API call and names it in errors.
async fn call<T>(
    what: impl Into<String>,
    future: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, CertgenError> {
    let what = what.into();
    match tokio::time::timeout(CALL_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(source)) => Err(CertgenError::Api { what, source }),
        Err(_) => Err(CertgenError::Timeout(what)),
    }
}

async fn create(client: kube::Client, args: &CreateArgs) -> Result<String, CertgenError> {
    let secrets: Api<Secret> = Api::namespaced(client, &args.namespace);
    let id = format!("Secret {}/{}", args.namespace, args.secret_name);
    let existing = call(format!("reading {id}"), secrets.get_opt(&args.secret_name)).await?;
    if existing.is_some() {
        return Ok(format!("{id} already exists; nothing to do"));
    }
    let generated = generate(&args.host)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(args.secret_name.clone()),
            namespace: Some(args.namespace.clone()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("ca".to_owned(), ByteString(generated.ca.into_bytes())),
            (
                args.cert_name.clone(),
                ByteString(generated.cert.into_bytes()),
            ),
            (
                args.key_name.clone(),
                ByteString(generated.key.into_bytes()),
            ),
        ])),
        ..Secret::default()
    };
    match tokio::time::timeout(
        CALL_TIMEOUT,
        secrets.create(&PostParams::default(), &secret),
    )
    .await
    {
        Ok(Ok(_)) => Ok(format!("created {id} for {}", args.host.join(", "))),
        // Another run created it meanwhile: it holds a CA already.
        Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
            Ok(format!("{id} already exists; nothing to do"))
        }
        Ok(Err(source)) => Err(CertgenError::Api {
            what: format!("creating {id}"),
            source,
        }),
        Err(_) => Err(CertgenError::Timeout(format!("creating {id}"))),
    }
}

/// A CA and a serving certificate signed by it, PEM.
struct Generated {
    ca: String,
    cert: String,
    key: String,
}

fn generate(hosts: &[String]) -> Result<Generated, CertgenError> {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        return Err(CertgenError::Usage("--host names no host".to_owned()));
    }
    let now = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let not_after = now + time::Duration::days(VALIDITY_DAYS);

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "edge-gateway admission webhook CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = (now, not_after);
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(hosts.clone())?;
    leaf.distinguished_name
        .push(DnType::CommonName, hosts[0].as_str());
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    (leaf.not_before, leaf.not_after) = (now, not_after);
    let cert = leaf.signed_by(&key, &issuer)?;
    Ok(Generated {
        ca: ca_pem,
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

async fn patch(client: kube::Client, args: &PatchArgs) -> Result<String, CertgenError> {
    if !args.patch_validating && !args.patch_mutating {
        return Err(CertgenError::Usage(
            "--patch-validating=false and --patch-mutating=false: nothing to patch".to_owned(),
        ));
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &args.namespace);
    let id = format!("Secret {}/{}", args.namespace, args.secret_name);
    let ca = call(format!("reading {id}"), secrets.get_opt(&args.secret_name))
        .await?
        .and_then(|s| s.data)
        .and_then(|mut data| data.remove("ca"))
        .filter(|ca| !ca.0.is_empty())
        .ok_or_else(|| CertgenError::NotFound(format!("{id} has no key ca (run create first)")))?;
    let policy = Some(args.patch_failure_policy.clone()).filter(|p| !p.is_empty());
    let mut done = Vec::new();
    if args.patch_validating {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        replace(&api, &args.webhook_name, |config| {
            for webhook in config.webhooks.iter_mut().flatten() {
                set_ca(&mut webhook.client_config, &ca);
                if let Some(policy) = &policy {
                    webhook.failure_policy = Some(policy.clone());
                }
            }
        })
        .await?;
        done.push("ValidatingWebhookConfiguration");
    }
    if args.patch_mutating {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client);
        replace(&api, &args.webhook_name, |config| {
            for webhook in config.webhooks.iter_mut().flatten() {
                set_ca(&mut webhook.client_config, &ca);
                if let Some(policy) = &policy {
                    webhook.failure_policy = Some(policy.clone());
                }
            }
        })
        .await?;
        done.push("MutatingWebhookConfiguration");
    }
    Ok(format!(
        "patched {} {} with the CA of {id}",
        done.join(" and "),
        args.webhook_name
    ))
}

fn set_ca(config: &mut WebhookClientConfig, ca: &ByteString) {
    config.ca_bundle = Some(ca.clone());
}

/// Reads the object `name`, changes it and replaces it, again when it
/// changed meanwhile.
async fn replace<K>(api: &Api<K>, name: &str, change: impl Fn(&mut K)) -> Result<(), CertgenError>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let id = format!("{} {name}", K::kind(&()));
    for attempt in 1..=ATTEMPTS {
        let mut object = call(format!("reading {id}"), api.get_opt(name))
            .await?
            .ok_or_else(|| CertgenError::NotFound(format!("{id} not found")))?;
        change(&mut object);
        match tokio::time::timeout(
            CALL_TIMEOUT,
            api.replace(name, &PostParams::default(), &object),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(kube::Error::Api(status))) if status.code == 409 && attempt < ATTEMPTS => {}
            Ok(Err(source)) => {
                return Err(CertgenError::Api {
                    what: format!("replacing {id}"),
                    source,
                });
            }
            Err(_) => return Err(CertgenError::Timeout(format!("replacing {id}"))),
        }
    }
    Err(CertgenError::NotFound(format!("{id} kept changing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::tls::Certificate;

    #[test]
    fn the_serving_certificate_is_for_the_hosts_and_signed_by_the_ca() {
        let hosts = vec![
            "edge-gateway-controller-admission".to_owned(),
            "edge-gateway-controller-admission.ingress-nginx.svc".to_owned(),
        ];
        let generated = generate(&hosts).unwrap();
        let cert = Certificate::from_pem(generated.cert.as_bytes(), generated.key.as_bytes())
            .expect("the key matches the certificate");
        assert_eq!(cert.names(), hosts);
        assert!(cert.not_after() - cert.not_before() > 99 * 365 * 86_400);
        assert!(
            cert.issuer().contains("edge-gateway admission webhook CA"),
            "{}",
            cert.issuer()
        );
        assert!(generated.ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(matches!(
            generate(&[" ".to_owned()]),
            Err(CertgenError::Usage(_))
        ));
    }
}
