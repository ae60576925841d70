//! The Ingress client API of the model-serving platform: the platform's
//! backend creates one Ingress per model deployment and gets its public URL
//! back, and deletes it when the deployment goes. `edge-gateway ingress
//! create|delete|list` is the same API on the command line;
//! `docs/client-api.md` is the user's guide.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use controller::client::{ClientConfig, IngressClient};
//!
//! let kube = kube::Client::try_default().await?;
//! let client = IngressClient::new(kube, ClientConfig::from_env()?);
//! let url = client
//!     .create_ingress("user-1", "model-serving-1", "model-serving-1", 80, None, None)
//!     .await?;
//! assert_eq!(url, "http://localhost:30080/api/v1/predict/1");
//! client.delete_ingress("user-1", "model-serving-1").await?;
//! # Ok(()) }
//! ```
//!
//! - **What is written**: an Ingress of class `nginx` with one rule: the
//!   host (the call's, else `INGRESS_HOST`), one `Prefix` path (the call's,
//!   else [`ClientConfig::default_path`]: `<INGRESS_BASE_PATH>/<id>`), the
//!   backend `service:port`, TLS for the host when `INGRESS_TLS_SECRET` is
//!   set, and the label `app.kubernetes.io/managed-by=edge-gateway-client`.
//! - **Idempotent**: creating an existing Ingress updates it in place
//!   (replace with its resourceVersion; one retry on 409), never a second
//!   object. Deleting a missing Ingress succeeds.
//! - **Never someone else's**: an existing Ingress without the managed-by
//!   label (made by Helm, kubectl, another tool) is neither changed nor
//!   deleted: [`ClientError::NotManaged`].
//! - **Validated first**: names, the Service, port, host and path are
//!   checked against the API server's rules before any call
//!   ([`ClientError::Invalid`] names the field).

mod config;
mod error;
mod object;
mod request;
mod validate;

use std::future::Future;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use kube::{Api, Client};

pub use config::{
    ClientConfig, ENV_BASE_PATH, ENV_CLASS, ENV_HOST, ENV_HTTP_PORT, ENV_HTTPS_PORT,
    ENV_TLS_SECRET, MODEL_NAME_PREFIX,
};
pub use error::ClientError;
pub use object::ManagedIngress;
pub use request::{CreateRequest, check_ingress_name, check_namespace};

/// The label that marks Ingresses the client created.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "edge-gateway-client";
/// The label selector for the client's Ingresses.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=edge-gateway-client";
/// The field manager named in the client's writes.
const FIELD_MANAGER: &str = "edge-gateway-client";
/// Calls made for one create: the first try and one retry after a 409.
const CREATE_ATTEMPTS: usize = 2;

/// Creates, deletes and lists the platform's Ingresses through the
/// Kubernetes API.
#[derive(Clone)]
pub struct IngressClient {
    client: Client,
    config: ClientConfig,
}

impl std::fmt::Debug for IngressClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl IngressClient {
    /// A client writing through `client` with `config` (e.g.
    /// [`ClientConfig::from_env`]).
    pub fn new(client: Client, config: ClientConfig) -> Self {
        IngressClient { client, config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Creates, or updates in place, the Ingress `namespace/name` routing
    /// `ingress_host` (default: the configured host) and the `Prefix` path
    /// `ingress_path` (default: [`ClientConfig::default_path`] of `name`) to
    /// `service_name:service_port`, and returns its public URL, e.g.
    /// `http://localhost:30080/api/v1/predict/1`.
    ///
    /// Refuses with [`ClientError::NotManaged`] an existing Ingress of that
    /// name that the client did not create.
    pub async fn create_ingress(
        &self,
        namespace: &str,
        name: &str,
        service_name: &str,
        service_port: u16,
        ingress_host: Option<&str>,
        ingress_path: Option<&str>,
    ) -> Result<String, ClientError> {
        let request = self.config.check_create(
            namespace,
            name,
            service_name,
            service_port,
            ingress_host,
            ingress_path,
        )?;
        let want = object::desired(&self.config, &request);
        self.write(namespace, name, want).await?;
        Ok(request.url)
    }

    /// Creates `want`, or replaces the existing managed Ingress with it.
    async fn write(&self, namespace: &str, name: &str, want: Ingress) -> Result<(), ClientError> {
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), namespace);
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        for attempt in 1..=CREATE_ATTEMPTS {
            let result = match self.call(api.get_opt(name)).await? {
                None => self.call(api.create(&params, &want)).await,
                Some(existing) => {
                    if !object::is_managed(&existing) {
                        return Err(not_managed(namespace, name));
                    }
                    if existing.metadata.deletion_timestamp.is_some() {
                        return Err(ClientError::Conflict(format!(
                            "Ingress {namespace}/{name} is being deleted; try again when it is gone"
                        )));
                    }
                    let update = object::update_of(existing, want.clone());
                    self.call(api.replace(name, &params, &update)).await
                }
            };
            match result {
                // Someone else created or changed it since we looked: look again.
                Err(ClientError::Conflict(_)) if attempt < CREATE_ATTEMPTS => {}
                other => return other.map(drop),
            }
        }
        Err(ClientError::Conflict(format!(
            "Ingress {namespace}/{name} kept changing"
        )))
    }

    /// Deletes the Ingress `namespace/name` if the client created it.
    /// Deleting a missing Ingress succeeds; one the client did not create is
    /// refused with [`ClientError::NotManaged`].
    pub async fn delete_ingress(&self, namespace: &str, name: &str) -> Result<(), ClientError> {
        check_ingress_name(namespace, name)?;
        let api: Api<Ingress> = Api::namespaced(self.client.clone(), namespace);
        let Some(existing) = self.call(api.get_opt(name)).await? else {
            return Ok(());
        };
        if !object::is_managed(&existing) {
            return Err(not_managed(namespace, name));
        }
        // Only the object we checked: not one recreated by someone else since.
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: existing.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.call(api.delete(name, &params)).await {
            Ok(_) | Err(ClientError::NotFound(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// The Ingresses the client manages, in `namespace` or in all
    /// namespaces, sorted by namespace and name.
    pub async fn list_ingresses(
        &self,
        namespace: Option<&str>,
    ) -> Result<Vec<ManagedIngress>, ClientError> {
        let api: Api<Ingress> = match namespace {
            Some(ns) => {
                check_namespace(ns)?;
                Api::namespaced(self.client.clone(), ns)
            }
            None => Api::all(self.client.clone()),
        };
        let list = self
            .call(api.list(&ListParams::default().labels(MANAGED_SELECTOR)))
            .await?;
        let mut found: Vec<ManagedIngress> = list
            .items
            .iter()
            .filter(|ingress| object::is_managed(ingress))
            .map(|ingress| object::read(&self.config, ingress))
            .collect();
        found.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(found)
    }

    /// Runs one API call within the configured timeout.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ClientError> {
        match tokio::time::timeout(self.config.timeout, request).await {
            Ok(result) => result.map_err(ClientError::from),
            Err(_) => Err(ClientError::Unreachable(format!(
                "no answer within {:?}",
                self.config.timeout
            ))),
        }
    }
}

fn not_managed(namespace: &str, name: &str) -> ClientError {
    ClientError::NotManaged {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_is_the_label() {
        assert_eq!(
            MANAGED_SELECTOR,
            format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
        );
    }
}
