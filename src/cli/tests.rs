//! Tests of the command line: ingress-nginx's defaults and value syntax,
//! every ingress-nginx flag accepted, the docs table in step.

use super::*;
use controller::NsName;
use std::time::Duration;

#[test]
fn definition_is_valid() {
    command().debug_assert();
}

#[test]
fn defaults_match_ingress_nginx() {
    let cli = try_parse(["edge-gateway"]).unwrap();
    let s = cli.serve;
    assert_eq!(
        (s.http_port, s.https_port, s.metrics_port),
        (30080, 30443, 10254)
    );
    assert_eq!(s.class.ingress_class, "nginx");
    assert_eq!(s.class.controller_class, "k8s.io/ingress-nginx");
    assert!(!s.class.watch_ingress_without_class);
    assert!(s.class.watch_namespace.is_none());
}

#[test]
fn go_style_booleans() {
    for (arg, want) in [
        ("--watch-ingress-without-class", true),
        ("--watch-ingress-without-class=true", true),
        ("--watch-ingress-without-class=false", false),
    ] {
        let cli = try_parse(["edge-gateway", arg]).unwrap();
        assert_eq!(cli.serve.class.watch_ingress_without_class, want, "{arg}");
    }
}

#[test]
fn bad_flags_are_usage_errors() {
    let error = try_parse(["edge-gateway", "--http-port", "x"]).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    let error = try_parse(["edge-gateway", "--no-such-flag"]).unwrap_err();
    assert_eq!(error.exit_code(), 2);
}

#[test]
fn cluster_flags_parse_like_ingress_nginx() {
    let cli = try_parse([
        "edge-gateway",
        "--publish-service=ingress-nginx/ingress-nginx-controller",
        "--publish-status-address=10.0.0.1,lb.example.com",
        "--election-id=ingress-nginx-leader",
        "--election-ttl=1m30s",
        "--configmap=ingress-nginx/ingress-nginx-controller",
        "--update-status-on-shutdown=false",
    ])
    .unwrap();
    let s = cli.serve;
    assert_eq!(
        s.publish_service,
        Some((
            "ingress-nginx".to_owned(),
            "ingress-nginx-controller".to_owned()
        ))
    );
    assert_eq!(s.publish_status_address, ["10.0.0.1", "lb.example.com"]);
    assert_eq!(s.election_ttl, Duration::from_secs(90));
    assert!(!s.update_status_on_shutdown);
    assert!(s.update_status);
    assert!(try_parse(["edge-gateway", "--configmap=nope"]).is_err());
    assert!(try_parse(["edge-gateway", "--election-ttl=5x"]).is_err());
}

#[test]
fn demo_takes_serving_options() {
    let cli = try_parse(["edge-gateway", "demo", "--http-port", "8080"]).unwrap();
    let Some(Command::Demo(args)) = cli.command else {
        panic!("not the demo command");
    };
    assert_eq!(args.http_port, 8080);
}

#[test]
fn ingress_create_takes_the_client_arguments() {
    let cli = try_parse([
        "edge-gateway",
        "ingress",
        "create",
        "--namespace",
        "user-1",
        "--name",
        "model-serving-3",
        "--service",
        "model-serving-3",
        "--kubeconfig",
        "/tmp/kc",
    ])
    .unwrap();
    let Some(Command::Ingress(args)) = cli.command else {
        panic!("not the ingress command");
    };
    assert_eq!(args.kubeconfig, Some(PathBuf::from("/tmp/kc")));
    let IngressAction::Create(create) = args.action else {
        panic!("not create");
    };
    assert_eq!(create.ingress.namespace, "user-1");
    assert_eq!(create.service_port, 80);
    assert_eq!((create.host, create.path), (None, None));
}

#[test]
fn check_takes_the_class_flags_of_serving() {
    let cli = try_parse([
        "edge-gateway",
        "check",
        "--manifests",
        "/tmp/m",
        "--ingress-class=internal",
        "--watch-ingress-without-class",
        "--configmap=ingress-nginx/controller",
        "--default-backend-service=ingress-nginx/default-http-backend",
        "--output=json",
    ])
    .unwrap();
    let Some(Command::Check(args)) = cli.command else {
        panic!("not the check command");
    };
    assert_eq!(args.manifests, Some(PathBuf::from("/tmp/m")));
    assert_eq!(args.output, CheckOutput::Json);
    assert_eq!(args.request_timeout, Duration::from_secs(30));
    let options = args.class.compile_options();
    assert_eq!(options.class.ingress_class, "internal");
    assert!(options.class.watch_without_class);
    assert_eq!(
        options.configmap,
        Some(NsName::new("ingress-nginx", "controller"))
    );
    assert_eq!(
        options.default_backend_service,
        Some(NsName::new("ingress-nginx", "default-http-backend"))
    );
    for bad in [
        &["check", "--default-backend-service", "default-http-backend"][..],
        &["check", "--manifests", "a", "--kubeconfig", "b"],
        &["check", "--output", "yaml"],
        &["check", "--http-port", "1"],
    ] {
        let error = try_parse(["edge-gateway"].iter().chain(bad)).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad:?}");
    }
}

#[test]
fn ingress_arguments_are_required_where_they_must_be() {
    for args in [
        &["ingress", "create", "--namespace", "a", "--name", "b"][..],
        &["ingress", "delete", "--name", "b"],
        &[
            "ingress",
            "create",
            "-n",
            "a",
            "--name",
            "b",
            "--service",
            "s",
            "--service-port",
            "x",
        ],
        &["ingress"],
    ] {
        let error = try_parse(["edge-gateway"].iter().chain(args)).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{args:?}");
    }
    let cli = try_parse(["edge-gateway", "ingress", "list"]).unwrap();
    assert!(matches!(
        cli.command,
        Some(Command::Ingress(IngressArgs {
            action: IngressAction::List(IngressListArgs { namespace: None }),
            ..
        }))
    ));
}

/// Parses like the binary does, keeping only the arguments.
fn try_parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    parse_from(args).map(|p| p.cli)
}

/// `--name=<ingress-nginx's default>` for every ingress-nginx flag but
/// `--version` (which prints and exits); ports become 0.
fn every_flag_at_its_default() -> Vec<String> {
    ingress_nginx::FLAGS
        .iter()
        .filter(|f| f.name != "version")
        .map(|f| match f.name {
            "http-port" | "https-port" | "healthz-port" => format!("--{}=0", f.name),
            name => format!("--{name}={}", f.default),
        })
        .collect()
}

#[test]
fn every_ingress_nginx_flag_is_accepted_with_its_default_value() {
    for arg in every_flag_at_its_default() {
        let parsed = parse_from(["edge-gateway", arg.as_str()]);
        assert!(parsed.is_ok(), "{arg}: {}", parsed.unwrap_err());
    }
    let mut all = vec!["edge-gateway".to_owned()];
    all.extend(every_flag_at_its_default());
    let parsed = parse_from(&all).unwrap();
    // Every ignored or refused flag is reported (but `--name=` for empty
    // text, which is left out as the default), at values that start.
    let want: Vec<&str> = ingress_nginx::FLAGS
        .iter()
        .filter(|f| !matches!(f.here, ingress_nginx::Here::Applied(_)))
        .filter(|f| !(f.syntax == ingress_nginx::Syntax::Text && f.default.is_empty()))
        .map(|f| f.name)
        .collect();
    let reported: Vec<&str> = parsed.ingress_nginx.iter().map(|g| g.flag.name).collect();
    assert_eq!(reported, want);
    assert!(ingress_nginx::apply(&parsed.ingress_nginx).is_ok());
}

#[test]
fn boolean_flags_take_go_forms_and_others_take_values() {
    for f in ingress_nginx::FLAGS.iter().filter(|f| f.name != "version") {
        if f.syntax == ingress_nginx::Syntax::Bool {
            for form in [
                format!("--{}", f.name),
                format!("--{}=false", f.name),
                format!("--{}=T", f.name),
            ] {
                assert!(parse_from(["edge-gateway", &form]).is_ok(), "{form}");
            }
            let bad = format!("--{}=maybe", f.name);
            assert_eq!(
                parse_from(["edge-gateway", &bad]).unwrap_err().exit_code(),
                2,
                "{bad}"
            );
        } else {
            let missing = format!("--{}", f.name);
            assert!(parse_from(["edge-gateway", &missing]).is_err(), "{missing}");
        }
    }
}

#[test]
fn ignored_flags_are_reported_once_with_their_value() {
    let parsed = parse_from([
        "edge-gateway",
        "--profiling=false",
        "--sync-rate-limit",
        "1.5",
        "--logtostderr",
        "--stderrthreshold=WARNING",
        "--maxmind-license-key=secret",
    ])
    .unwrap();
    let given: Vec<(&str, &str)> = parsed
        .ingress_nginx
        .iter()
        .map(|g| (g.flag.name, g.value.as_str()))
        .collect();
    assert_eq!(
        given,
        [
            ("profiling", "false"),
            ("sync-rate-limit", "1.5"),
            ("maxmind-license-key", "secret"),
            ("logtostderr", "true"),
            ("stderrthreshold", "WARNING"),
        ]
    );
    assert!(ingress_nginx::apply(&parsed.ingress_nginx).is_ok());
    for bad in [
        "--sync-rate-limit=fast",
        "--profiler-address=nowhere",
        "--stderrthreshold=LOUD",
    ] {
        let error = parse_from(["edge-gateway", bad]).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad}");
    }
}

#[test]
fn unbuilt_features_refuse_to_start_only_when_they_would_change_behaviour() {
    for (args, refused) in [
        (&["--disable-svc-external-name"][..], true),
        (&["--disable-svc-external-name=false"], false),
        (&["--tcp-services-configmap=ingress-nginx/tcp"], false),
        (&["--udp-services-configmap", "ns/udp"], false),
        (&["--enable-ssl-passthrough"], false),
    ] {
        let parsed = parse_from(["edge-gateway"].iter().chain(args)).unwrap();
        let result = ingress_nginx::apply(&parsed.ingress_nginx);
        assert_eq!(result.is_err(), refused, "{args:?}");
        if let Err(refusal) = result {
            assert!(refusal.to_string().contains("not built"), "{refusal}");
        }
    }
}

#[test]
fn edge_flags_parse_like_ingress_nginx() {
    let cli = try_parse([
        "edge-gateway",
        "--enable-ssl-passthrough",
        "--tcp-services-configmap=ingress-nginx/tcp-services",
        "--udp-services-configmap",
        "ingress-nginx/udp-services",
    ])
    .unwrap();
    let edge = cli.serve.edge;
    assert!(edge.enable_ssl_passthrough);
    assert_eq!(
        edge.tcp_services_configmap,
        Some(("ingress-nginx".to_owned(), "tcp-services".to_owned()))
    );
    assert!(edge.udp_services_configmap.is_some());
    let off = try_parse(["edge-gateway", "--enable-ssl-passthrough=false"]).unwrap();
    assert!(!off.serve.edge.enable_ssl_passthrough);
    assert!(try_parse(["edge-gateway", "--tcp-services-configmap=tcp"]).is_err());
}

#[test]
fn klog_verbosity_in_every_go_form() {
    for args in [
        &["-v=2"][..],
        &["-v", "2"],
        &["-v2"],
        &["--v=2"],
        &["--v", "2"],
    ] {
        let cli = try_parse(["edge-gateway"].iter().chain(args)).unwrap();
        assert_eq!(cli.serve.verbosity, 2, "{args:?}");
    }
}

#[test]
fn ingress_nginx_chart_arguments_parse_unchanged() {
    // What ingress-nginx's chart renders (charts/ingress-nginx/templates/
    // _params.tpl) with the admission webhook and metrics on, plus typical
    // extraArgs.
    let parsed = parse_from([
        "edge-gateway",
        "/nginx-ingress-controller",
        "--publish-service=$(POD_NAMESPACE)/ingress-nginx-controller",
        "--election-id=ingress-nginx-leader",
        "--controller-class=k8s.io/ingress-nginx",
        "--ingress-class=nginx",
        "--configmap=$(POD_NAMESPACE)/ingress-nginx-controller",
        "--validating-webhook=:8443",
        "--validating-webhook-certificate=/usr/local/certificates/cert",
        "--validating-webhook-key=/usr/local/certificates/key",
        "--enable-metrics=true",
        "--v=2",
        "--enable-ssl-chain-completion=false",
        "--watch-ingress-without-class=true",
        "--default-ssl-certificate=",
    ])
    .unwrap();
    let s = &parsed.cli.serve;
    assert!(s.enable_metrics && s.class.watch_ingress_without_class);
    assert_eq!(s.validating_webhook.map(|w| w.port), Some(8443));
    assert!(s.default_ssl_certificate.is_none());
    assert_eq!(
        parsed
            .dropped
            .iter()
            .map(|(a, _)| a.as_str())
            .collect::<Vec<_>>(),
        ["/nginx-ingress-controller", "--default-ssl-certificate="]
    );
    // The webhook needs its certificate and key.
    let error = parse_from(["edge-gateway", "--validating-webhook=:8443"]).unwrap_err();
    assert_eq!(error.exit_code(), 2);
}

#[test]
fn repeated_flags_take_the_last_value_and_conflicts_are_usage_errors() {
    let cli = try_parse(["edge-gateway", "--http-port=1", "--http-port=2"]).unwrap();
    assert_eq!(cli.serve.http_port, 2);
    for bad in [
        &["--watch-namespace=a", "--watch-namespace-selector=x=y"][..],
        &["--metrics-per-host=false", "--metrics-per-undefined-host"],
        &["--watch-namespace-selector=a in b"],
        &["--health-check-path=healthz"],
    ] {
        let error = parse_from(["edge-gateway"].iter().chain(bad)).unwrap_err();
        assert_eq!(error.exit_code(), 2, "{bad:?}");
    }
    let cli = try_parse([
        "edge-gateway",
        "--watch-namespace-selector=team in (a,b)",
        "--annotations-prefix=ingress.example.com",
        "--disable-catch-all",
    ])
    .unwrap();
    let options = cli.serve.class.compile_options();
    assert!(options.namespace_selector.is_some() && options.disable_catch_all);
    assert_eq!(
        options.annotations_prefix.as_deref(),
        Some("ingress.example.com/")
    );
}

#[test]
fn compatibility_page_lists_every_flag() {
    let table = ingress_nginx::table();
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/compatibility.md");
    let page = std::fs::read_to_string(file).expect("docs/compatibility.md");
    let (begin, end) = ("<!-- flags:begin -->\n", "<!-- flags:end -->");
    let start = page.find(begin).expect("begin marker") + begin.len();
    let stop = page.find(end).expect("end marker");
    if page[start..stop] != table && std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{table}{}", &page[..start], &page[stop..]);
        std::fs::write(file, updated).expect("write docs/compatibility.md");
        return;
    }
    assert!(
        page[start..stop] == table,
        "docs/compatibility.md is out of date: run UPDATE_DOCS=1 cargo test --bin edge-gateway compatibility_page"
    );
}

#[test]
fn webhook_certgen_takes_kube_webhook_certgens_arguments() {
    // As ingress-nginx's chart runs the image (job-createSecret.yaml,
    // job-patchWebhook.yaml), plus its global flags.
    let cli = try_parse([
        "edge-gateway",
        "webhook-certgen",
        "create",
        "--host=a-admission,a-admission.ns.svc",
        "--namespace=ns",
        "--secret-name=a-admission",
        "--log-format=json",
        "--log-level=info",
    ])
    .unwrap();
    let Some(Command::WebhookCertgen(args)) = cli.command else {
        panic!("not webhook-certgen");
    };
    let CertgenAction::Create(create) = args.action else {
        panic!("not create");
    };
    assert_eq!(create.host, ["a-admission", "a-admission.ns.svc"]);
    assert_eq!(
        (create.cert_name.as_str(), create.key_name.as_str()),
        ("cert", "key")
    );
    let cli = try_parse([
        "edge-gateway",
        "webhook-certgen",
        "patch",
        "--webhook-name=a-admission",
        "--namespace=ns",
        "--patch-mutating=false",
        "--secret-name=a-admission",
        "--patch-failure-policy=Fail",
    ])
    .unwrap();
    let Some(Command::WebhookCertgen(args)) = cli.command else {
        panic!("not webhook-certgen");
    };
    let CertgenAction::Patch(patch) = args.action else {
        panic!("not patch");
    };
    assert!(patch.patch_validating && !patch.patch_mutating);
    assert_eq!(patch.patch_failure_policy, "Fail");
}

#[test]
fn the_registry_lists_each_flag_of_ingress_nginx_once() {
    // 72 in pkg/flags/flags.go, 15 registered by klog v2.140's InitFlags.
    assert_eq!(ingress_nginx::FLAGS.len(), 87);
    let mut names: Vec<&str> = ingress_nginx::FLAGS.iter().map(|f| f.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 87, "a flag is listed twice");
    // Every one is an argument of the serving command, and of `demo`.
    let command = command();
    let demo = command.find_subcommand("demo").unwrap();
    for f in ingress_nginx::FLAGS.iter().filter(|f| f.name != "version") {
        for cmd in [&command, demo] {
            assert!(
                cmd.get_arguments().any(|a| a.get_long() == Some(f.name)
                    || a.get_all_aliases().is_some_and(|all| all.contains(&f.name))),
                "--{} is not an argument of {}",
                f.name,
                cmd.get_name()
            );
        }
    }
}
