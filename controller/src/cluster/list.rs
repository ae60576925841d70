//! One list of every kind the watchers would watch, for commands that read
//! a cluster once and never watch (`edge-gateway check`).

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::{ClusterError, SECRET_TYPES, scoped};
use crate::objects::{NsName, Object};

/// Objects per list page.
const PAGE: u32 = 500;

/// Lists the Ingresses, IngressClasses, Services, EndpointSlices, TLS and
/// Opaque Secrets, the ConfigMaps of the controller ConfigMap's
/// namespace (if one is named) and, with `namespaces`, every Namespace
/// once, with the same scope and selectors as [`super::watch`], within
/// `timeout` in all.
pub async fn list_once(
    client: &Client,
    watch_namespace: Option<&str>,
    configmap: Option<&NsName>,
    namespaces: bool,
    timeout: Duration,
) -> Result<Vec<Object>, ClusterError> {
    let all = async {
        let ns = watch_namespace;
        let mut objects = Vec::new();
        list(scoped::<Ingress>(client, ns), "", &mut objects).await?;
        list(Api::<IngressClass>::all(client.clone()), "", &mut objects).await?;
        list(scoped::<Service>(client, ns), "", &mut objects).await?;
        list(scoped::<EndpointSlice>(client, ns), "", &mut objects).await?;
        for secret_type in SECRET_TYPES {
            list(scoped::<Secret>(client, ns), secret_type, &mut objects).await?;
        }
        if let Some(id) = configmap {
            // Its namespace's ConfigMaps: the controller's and those its
            // `proxy-set-headers` and `add-headers` name.
            let api = Api::<ConfigMap>::namespaced(client.clone(), &id.namespace);
            list(api, "", &mut objects).await?;
        }
        if namespaces {
            list(Api::<Namespace>::all(client.clone()), "", &mut objects).await?;
        }
        Ok(objects)
    };
    tokio::time::timeout(timeout, all)
        .await
        .map_err(|_| ClusterError::Timeout("listing objects from the Kubernetes API"))?
}

/// Appends every object of `api` matching the field selector `fields`
/// (none if empty), page by page.
async fn list<K>(api: Api<K>, fields: &str, into: &mut Vec<Object>) -> Result<(), ClusterError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    Object: From<K>,
{
    let mut params = ListParams::default().limit(PAGE);
    if !fields.is_empty() {
        params = params.fields(fields);
    }
    loop {
        let page = api.list(&params).await.map_err(ClusterError::Api)?;
        let next = page.metadata.continue_.filter(|token| !token.is_empty());
        into.extend(page.items.into_iter().map(Object::from));
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}
