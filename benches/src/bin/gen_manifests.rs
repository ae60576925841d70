//! `gen-manifests`: writes a synthetic fleet (see `edge_gateway_benches::fleet`)
//! into a manifests folder for `edge-gateway --manifests` (or
//! `fake-apiserver --seed`), to measure the gateway with many Ingresses.
//!
//! `gen-manifests DIR [--ingresses 10000] [--hosts N/10] [--mix mixed|prefix|exact]
//!  [--layout list|files] [--format json|yaml] [--change K:GEN] [--only K]`
//!
//! - `--layout list` (default): one `kind: List` file, `fleet.json` or
//!   `fleet.yaml`; `--layout files`: `ingress-class.*` and one file per model
//!   (`model-<i>.*`: its Service, EndpointSlice and Ingress).
//! - `--change K:GEN`: Ingress K at generation GEN (a `permanent-redirect`
//!   to `https://changed.example/GEN`, see `Fleet::ingress_at`).
//! - `--only K` (files layout): writes model K's file only, as one change.
//!
//! Every file is written beside its place and renamed into it, as a careful
//! writer (or a ConfigMap volume) does.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use edge_gateway_benches::fleet::{Fleet, Mix};
use serde_json::Value;

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "gen-manifests: {message}");
    ExitCode::from(2)
}

const USAGE: &str = "usage: gen-manifests DIR [--ingresses N] [--hosts N] [--mix mixed|prefix|exact] \
[--layout list|files] [--format json|yaml] [--change K:GEN] [--only K]";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    List,
    Files,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Yaml => "yaml",
        }
    }

    /// The documents as one file: a JSON document per line is not valid
    /// JSON, so JSON files hold one document (a List when there are many).
    fn render(self, documents: &[Value]) -> Result<Vec<u8>, String> {
        match (self, documents) {
            (Self::Json, [one]) => serde_json::to_vec(one).map_err(|e| e.to_string()),
            (Self::Json, many) => serde_json::to_vec(
                &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": many}),
            )
            .map_err(|e| e.to_string()),
            (Self::Yaml, many) => {
                let mut text = String::new();
                for document in many {
                    text.push_str("---\n");
                    text.push_str(&serde_saphyr::to_string(document).map_err(|e| e.to_string())?);
                }
                Ok(text.into_bytes())
            }
        }
    }
}

struct Args {
    dir: PathBuf,
    ingresses: usize,
    hosts: Option<usize>,
    mix: Mix,
    layout: Layout,
    format: Format,
    change: Option<(usize, u32)>,
    only: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut dir = None;
    let mut args = Args {
        dir: PathBuf::new(),
        ingresses: 10_000,
        hosts: None,
        mix: Mix::Mixed,
        layout: Layout::List,
        format: Format::Json,
        change: None,
        only: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        if !arg.starts_with("--") {
            if dir.replace(PathBuf::from(&arg)).is_some() {
                return Err(format!("unexpected argument {arg:?}"));
            }
            continue;
        }
        let value = argv.next().unwrap_or_default();
        let bad = || format!("bad {arg} {value:?}");
        match (arg.as_str(), value.as_str()) {
            ("--mix", "mixed") => args.mix = Mix::Mixed,
            ("--mix", "prefix") => args.mix = Mix::Prefix,
            ("--mix", "exact") => args.mix = Mix::Exact,
            ("--layout", "list") => args.layout = Layout::List,
            ("--layout", "files") => args.layout = Layout::Files,
            ("--format", "json") => args.format = Format::Json,
            ("--format", "yaml") => args.format = Format::Yaml,
            ("--ingresses", v) => args.ingresses = v.parse().map_err(|_| bad())?,
            ("--hosts", v) => args.hosts = Some(v.parse().map_err(|_| bad())?),
            ("--only", v) => args.only = Some(v.parse().map_err(|_| bad())?),
            ("--change", v) => {
                let (k, g) = v.split_once(':').ok_or_else(bad)?;
                args.change = Some((k.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?));
            }
            _ => return Err(bad()),
        }
    }
    args.dir = dir.ok_or_else(|| USAGE.to_owned())?;
    if args.only.is_some() && args.layout == Layout::List {
        return Err("--only needs --layout files".to_owned());
    }
    Ok(args)
}

/// Writes `bytes` to `dir/name` through a hidden temporary file and a rename.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)))
        .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
}

fn write(args: &Args) -> Result<usize, String> {
    let fleet = Fleet::new(
        args.ingresses,
        args.hosts.unwrap_or(args.ingresses / 10),
        args.mix,
    );
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let ext = args.format.extension();
    let generation = |i: usize| args.change.filter(|(k, _)| *k == i).map_or(0, |(_, g)| g);
    match args.layout {
        Layout::List => {
            let list = fleet
                .manifest_list(args.change)
                .map_err(|e| e.to_string())?;
            let bytes = args.format.render(&[list])?;
            write_atomically(&args.dir, &format!("fleet.{ext}"), &bytes)?;
            Ok(1)
        }
        Layout::Files => {
            let models: Vec<usize> = match args.only {
                Some(k) => vec![k],
                None => {
                    let class = Fleet::ingress_class_document().map_err(|e| e.to_string())?;
                    let bytes = args.format.render(&[class])?;
                    write_atomically(&args.dir, &format!("ingress-class.{ext}"), &bytes)?;
                    (0..fleet.ingresses).collect()
                }
            };
            for &i in &models {
                let documents = fleet
                    .model_documents(i, generation(i))
                    .map_err(|e| e.to_string())?;
                let bytes = args.format.render(&documents)?;
                write_atomically(&args.dir, &format!("model-{i}.{ext}"), &bytes)?;
            }
            Ok(models.len())
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => return fail(&message),
    };
    match write(&args) {
        Ok(files) => {
            if args.only.is_none() {
                println!(
                    "wrote {} Ingresses in {files} file(s) to {}",
                    args.ingresses,
                    args.dir.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(message) => fail(&message),
    }
}
