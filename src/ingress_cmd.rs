//! `edge-gateway ingress create|delete|list`: the Ingress client API
//! (`controller::client`) on the command line, for operators and scripts.
//! `create` prints the URL alone on stdout; errors go to stderr, with exit
//! status 2 when nothing was sent (invalid input or configuration) and 1
//! when the API call failed.

use std::io::Write;
use std::process::ExitCode;

use controller::client::{
    ClientConfig, ClientError, IngressClient, ManagedIngress, check_ingress_name, check_namespace,
};
use controller::cluster::{self, ClusterError};

use crate::cli::{IngressAction, IngressArgs};

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
enum CommandError {
    /// The kubeconfig could not be read or used.
    #[error("{0}")]
    Connect(#[source] ClusterError),
    /// The client refused the input or the API call failed.
    #[error("{0}")]
    Client(#[source] ClientError),
}

impl CommandError {
    /// 2 when nothing was sent (bad input, configuration or kubeconfig), 1
    /// when the API server refused or could not be reached.
    fn exit_code(&self) -> u8 {
        match self {
            Self::Client(error) if error.is_invalid() => 2,
            Self::Connect(ClusterError::Config(_)) => 2,
            Self::Client(_) | Self::Connect(_) => 1,
        }
    }
}

impl From<ClientError> for CommandError {
    fn from(error: ClientError) -> Self {
        Self::Client(error)
    }
}

/// Runs the command on a runtime of its own and returns the exit status.
pub(crate) fn main(args: &IngressArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}"), 1),
    };
    match runtime.block_on(run(args)) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => fail(&error.to_string(), error.exit_code()),
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    let _ = writeln!(std::io::stderr().lock(), "edge-gateway ingress: {message}");
    ExitCode::from(code)
}

/// Does what `args` asks; returns what goes to stdout.
async fn run(args: &IngressArgs) -> Result<String, CommandError> {
    let config = ClientConfig::from_env()?;
    check(&config, &args.action)?;
    let kube = cluster::connect(args.kubeconfig.as_deref())
        .await
        .map_err(CommandError::Connect)?;
    let client = IngressClient::new(kube, config);
    match &args.action {
        IngressAction::Create(create) => {
            let url = client
                .create_ingress(
                    &create.ingress.namespace,
                    &create.ingress.name,
                    &create.service,
                    create.service_port,
                    create.host.as_deref(),
                    create.path.as_deref(),
                )
                .await?;
            Ok(format!("{url}\n"))
        }
        IngressAction::Delete(delete) => {
            client
                .delete_ingress(&delete.namespace, &delete.name)
                .await?;
            Ok(String::new())
        }
        IngressAction::List(list) => {
            let found = client.list_ingresses(list.namespace.as_deref()).await?;
            Ok(table(&found))
        }
    }
}

/// Refuses bad input before the kubeconfig is read (the client checks
/// again before its API calls).
fn check(config: &ClientConfig, action: &IngressAction) -> Result<(), ClientError> {
    match action {
        IngressAction::Create(create) => config
            .check_create(
                &create.ingress.namespace,
                &create.ingress.name,
                &create.service,
                create.service_port,
                create.host.as_deref(),
                create.path.as_deref(),
            )
            .map(drop),
        IngressAction::Delete(delete) => check_ingress_name(&delete.namespace, &delete.name),
        IngressAction::List(list) => list.namespace.as_deref().map_or(Ok(()), check_namespace),
    }
}

/// `NAMESPACE NAME URL SERVICE` columns, like kubectl's tables.
fn table(ingresses: &[ManagedIngress]) -> String {
    let rows: Vec<[String; 4]> = ingresses
        .iter()
        .map(|i| {
            let service = match i.service_port {
                Some(port) => format!("{}:{port}", i.service),
                None => i.service.clone(),
            };
            [i.namespace.clone(), i.name.clone(), i.url.clone(), service]
        })
        .collect();
    let header = ["NAMESPACE", "NAME", "URL", "SERVICE"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_columns() {
        let rows = [ManagedIngress {
            namespace: "user-1".to_owned(),
            name: "model-serving-3".to_owned(),
            host: "localhost".to_owned(),
            path: "/api/v1/predict/3".to_owned(),
            service: "model-serving-3".to_owned(),
            service_port: Some(80),
            url: "http://localhost:30080/api/v1/predict/3".to_owned(),
        }];
        assert_eq!(
            table(&rows),
            "NAMESPACE   NAME              URL                                       SERVICE\n\
             user-1      model-serving-3   http://localhost:30080/api/v1/predict/3   model-serving-3:80\n"
        );
        assert_eq!(table(&[]), "NAMESPACE   NAME   URL   SERVICE\n");
    }

    #[test]
    fn exit_codes_tell_input_errors_from_api_errors() {
        let invalid = CommandError::Client(ClientError::Invalid {
            field: "name",
            reason: "x".to_owned(),
        });
        assert_eq!(invalid.exit_code(), 2);
        let refused = CommandError::Client(ClientError::Forbidden("no".to_owned()));
        assert_eq!(refused.exit_code(), 1);
        let config = CommandError::Connect(ClusterError::Config("no kubeconfig".to_owned()));
        assert_eq!(config.exit_code(), 2);
    }
}
