//! `edge-gateway convert`: reads the Ingresses once (a folder or a
//! cluster, as `check` does), converts those of our class
//! ([`controller::gateway_api::convert`]) and prints the objects as YAML
//! after a report in comment lines.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use controller::NsName;
use controller::gateway_api::convert::{Conversion, ConvertOptions, convert};

use crate::gateway_api_args::ConvertArgs;

/// Runs the command (see [`ConvertArgs`]).
pub(crate) fn main(args: &ConvertArgs) -> ExitCode {
    let snapshot = match crate::check_cmd::read_source(
        args.manifests.as_deref(),
        args.kubeconfig.as_deref(),
        &args.class,
        args.request_timeout,
    ) {
        Ok(snapshot) => snapshot,
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "edge-gateway convert: {error}");
            return ExitCode::from(2);
        }
    };
    let options = ConvertOptions {
        compile: args.class.compile_options(),
        gateway: NsName::new(args.gateway.0.clone(), args.gateway.1.clone()),
        gateway_class: args.gateway_class.clone(),
        controller_name: args.gateway_controller_name.clone(),
    };
    let conversion = convert(&snapshot, &options);
    let output = match render(&conversion) {
        Ok(output) => output,
        Err(error) => {
            let _ = writeln!(std::io::stderr().lock(), "edge-gateway convert: {error}");
            return ExitCode::from(2);
        }
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(output.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

/// The report as comment lines, then the objects as YAML documents.
fn render(conversion: &Conversion) -> Result<String, String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# edge-gateway convert: {} Ingress(es) converted, {} kept",
        conversion.converted.len(),
        conversion.kept.len()
    );
    for (id, differs) in &conversion.converted {
        let _ = writeln!(out, "# converted {id}");
        for note in differs {
            let _ = writeln!(out, "#   differs: {}", one_line(note));
        }
    }
    for (id, reasons) in &conversion.kept {
        let _ = writeln!(out, "# stays on the Ingress: {id}");
        for reason in reasons {
            let _ = writeln!(out, "#   - {}", one_line(reason));
        }
    }
    for object in &conversion.objects {
        let yaml = serde_saphyr::to_string(object).map_err(|e| e.to_string())?;
        out.push_str("---\n");
        out.push_str(&yaml);
        if !yaml.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// A message on one comment line.
fn one_line(message: &str) -> String {
    message.replace(['\n', '\r'], " ")
}
