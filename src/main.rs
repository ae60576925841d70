//! The `edge-gateway` binary: parses the command line, sets up logging and
//! the runtime, and hands over to [`serve`] or [`demo`]; `edge-gateway
//! ingress ...` goes to [`ingress_cmd`], `edge-gateway check` to
//! [`check_cmd`], `edge-gateway convert` to [`convert_cmd`]. Usage errors
//! exit with status 2, runtime failures with 1.

mod check_cmd;
mod cli;
mod convert_cmd;
mod demo;
mod gateway_api_args;
mod ingress_cmd;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match &cli.command {
        Some(Command::Demo(args)) => args,
        // A client command: no serving logs, its own runtime and output.
        Some(Command::Ingress(args)) => return ingress_cmd::main(args),
        Some(Command::Check(args)) => return check_cmd::main(args),
        Some(Command::Convert(args)) => return convert_cmd::main(args),
        None => &cli.serve,
    };
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Demo(args)) => demo::run(args).await,
            // Returned above, before logging was set up.
            Some(Command::Ingress(_) | Command::Check(_) | Command::Convert(_)) => Ok(()),
            None => serve::run(cli.serve).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "edge-gateway stopped");
            ExitCode::from(error.exit_code())
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
