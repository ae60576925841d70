//! `gen-manifests`: writes a synthetic fleet (see `edge_gateway_benches::fleet`)
//! into a manifests folder for `edge-gateway --manifests`, as one
//! `kind: List` JSON file, to measure the gateway's memory with many
//! Ingresses.
//!
//! `gen-manifests DIR [--ingresses 10000] [--hosts 1000] [--mix mixed|prefix|exact]`

use std::io::Write as _;
use std::process::ExitCode;

use edge_gateway_benches::fleet::{Fleet, Mix};

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "gen-manifests: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut dir = None;
    let mut ingresses = 10_000usize;
    let mut hosts = None;
    let mut mix = Mix::Mixed;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--ingresses" | "--hosts" | "--mix" => {
                let value = args.next().unwrap_or_default();
                match (arg.as_str(), value.as_str()) {
                    ("--mix", "mixed") => mix = Mix::Mixed,
                    ("--mix", "prefix") => mix = Mix::Prefix,
                    ("--mix", "exact") => mix = Mix::Exact,
                    ("--ingresses", v) => match v.parse() {
                        Ok(n) => ingresses = n,
                        Err(_) => return fail(&format!("bad --ingresses {v:?}")),
                    },
                    ("--hosts", v) => match v.parse() {
                        Ok(n) => hosts = Some(n),
                        Err(_) => return fail(&format!("bad --hosts {v:?}")),
                    },
                    (_, v) => return fail(&format!("bad {arg} {v:?}")),
                }
            }
            _ if dir.is_none() => dir = Some(std::path::PathBuf::from(arg)),
            _ => return fail(&format!("unexpected argument {arg:?}")),
        }
    }
    let Some(dir) = dir else {
        return fail(
            "usage: gen-manifests DIR [--ingresses N] [--hosts N] [--mix mixed|prefix|exact]",
        );
    };
    let fleet = Fleet::new(ingresses, hosts.unwrap_or(ingresses / 10), mix);
    let list = match fleet.manifest_list() {
        Ok(list) => list,
        Err(error) => return fail(&format!("cannot serialise the fleet: {error}")),
    };
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let text = serde_json::to_vec(&list).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("fleet.json"), text)
    });
    match written {
        Ok(()) => {
            println!(
                "wrote {} Ingresses over {} hosts ({}) to {}",
                fleet.ingresses,
                fleet.hosts,
                fleet.id(),
                dir.join("fleet.json").display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => fail(&format!("cannot write {}: {error}", dir.display())),
    }
}
