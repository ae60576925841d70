//! The `edge-gateway` binary: parses the command line, sets up logging and
//! the runtime, and hands over to [`serve`] or [`demo`]; `edge-gateway
//! ingress ...` goes to [`ingress_cmd`], `edge-gateway check` to
//! [`check_cmd`] (`check --live` to [`live_cmd`]), `edge-gateway
//! webhook-certgen` to [`certgen`], `edge-gateway convert` to
//! [`convert_cmd`]. Usage errors exit with status 2, runtime failures (and
//! an ingress-nginx flag whose feature is not built yet) with 1.

mod allocator;
mod certgen;
mod check_cmd;
mod cli;
mod convert_cmd;
mod demo;
mod gateway_api_args;
mod ingress_cmd;
mod live_cmd;
mod serve;
mod webhook;

use std::process::ExitCode;

use cli::{Command, LogFormat, ServeArgs, ingress_nginx};

fn main() -> ExitCode {
    let parsed = cli::parse();
    let cli = parsed.cli;
    let args: &ServeArgs = match &cli.command {
        Some(Command::Demo(args)) => args,
        // A client command: no serving logs, its own runtime and output.
        Some(Command::Ingress(args)) => return ingress_cmd::main(args),
        Some(Command::Check(args)) => return check_cmd::main(args),
        Some(Command::WebhookCertgen(args)) => return certgen::main(args),
        Some(Command::Convert(args)) => return convert_cmd::main(args),
        None => &cli.serve,
    };
    init_logging(args.log_format, args.verbosity);
    for (arg, reason) in &parsed.dropped {
        tracing::info!(argument = %arg, "argument left out: {reason}");
    }
    if let Err(refusal) = ingress_nginx::apply(&parsed.ingress_nginx) {
        tracing::error!("cannot start: {refusal}");
        return ExitCode::FAILURE;
    }
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
    allocator::keep_purging();
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Demo(args)) => demo::run(args).await,
            // Returned above, before logging was set up.
            Some(
                Command::Ingress(_)
                | Command::Check(_)
                | Command::WebhookCertgen(_)
                | Command::Convert(_),
            ) => Ok(()),
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

/// Logs to stderr at RUST_LOG's levels when set, else at the level klog's
/// `-v` stands for: 0-2 info, 3-4 debug, 5 and more trace.
fn init_logging(format: LogFormat, verbosity: u32) {
    let level = match verbosity {
        0..=2 => "info",
        3..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
