//! deploy/k8s/: the Indexed Job and its Secret read as Kubernetes objects
//! (k8s-openapi's types, from the YAML), and what matters asserted: N pods
//! at once, each share K = index + 1 of N, the target from the Secret, and
//! a redlab command line that this redlab parses. Neither Docker nor
//! Kubernetes runs here: this is what can be checked without them.

use std::collections::BTreeMap;

use clap::Parser;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, Secret};

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn job() -> Job {
    serde_saphyr::from_str(&read("deploy/k8s/perf-job.yaml"))
        .unwrap_or_else(|e| panic!("perf-job.yaml is not a batch/v1 Job: {e}"))
}

fn container(job: &Job) -> Container {
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1);
    pod.containers[0].clone()
}

fn env(c: &Container) -> BTreeMap<String, k8s_openapi::api::core::v1::EnvVar> {
    c.env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.clone()))
        .collect()
}

#[test]
fn the_job_runs_n_indexed_shares_at_once() {
    let job = job();
    assert_eq!(job.metadata.name.as_deref(), Some("redlab-perf"));
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    let n = spec.completions.expect("completions");
    assert!(n >= 2, "a split needs at least two clients: {n}");
    assert_eq!(spec.parallelism, Some(n), "every share at once");
    // A retried pod would run its share twice.
    assert_eq!(spec.backoff_limit, Some(0));
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let c = container(&job);
    let vars = env(&c);
    assert_eq!(
        vars["CLIENTS"].value.as_deref(),
        Some(n.to_string().as_str()),
        "CLIENTS must be completions"
    );
    assert!(vars.contains_key("START_AT"));
    let script = c.args.as_ref().unwrap().join("\n");
    assert_eq!(
        c.command.as_deref(),
        Some(&["/bin/sh".to_string(), "-c".into()][..])
    );
    assert!(
        script.contains("--client \"$((JOB_COMPLETION_INDEX + 1))/$CLIENTS\""),
        "{script}"
    );
    assert!(script.contains("--start-at \"$START_AT\""), "{script}");
    assert!(script.contains("cat /tmp/report.json"), "{script}");
}

#[test]
fn the_target_comes_from_the_secret() {
    let job = job();
    let secret: Secret = serde_saphyr::from_str(&read("deploy/k8s/secret.example.yaml"))
        .unwrap_or_else(|e| panic!("secret.example.yaml is not a v1 Secret: {e}"));
    let name = secret.metadata.name.clone().unwrap();
    let keys = secret.string_data.clone().unwrap();
    let vars = env(&container(&job));
    for var in ["REDLAB_MASTER", "REDLAB_PASSWORD"] {
        let r = vars[var]
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap_or_else(|| panic!("{var} is not from a Secret"));
        assert_eq!(r.name, name, "{var}");
        assert!(
            keys.contains_key(&r.key),
            "{var}: no key {} in the Secret",
            r.key
        );
    }
    assert!(keys["REDLAB_MASTER"].starts_with("redis://"));
    // redlab reads the target from these names in the environment.
    use clap::CommandFactory;
    let cmd = redlab::cli::Cli::command();
    let envs: Vec<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for var in ["REDLAB_MASTER", "REDLAB_PASSWORD"] {
        assert!(
            envs.contains(&var.to_string()),
            "redlab reads no {var}: {envs:?}"
        );
    }
}

/// The pod's redlab command line, as the shell would pass it for pod
/// `index`, parses as this redlab's: every flag exists and its value is valid.
#[test]
fn the_pods_command_line_parses_for_every_share() {
    let job = job();
    let c = container(&job);
    let n = job.spec.as_ref().unwrap().completions.unwrap();
    let script = c.args.as_ref().unwrap().join("\n");
    let line: String = script
        .lines()
        .take_while(|l| !l.trim_start().starts_with("rc="))
        .map(|l| l.trim_end().trim_end_matches('\\'))
        .collect::<Vec<_>>()
        .join(" ");
    for index in 0..n {
        // The shell's expansions for this pod, then its words.
        let expanded = line
            .replace(
                "$((JOB_COMPLETION_INDEX + 1))/$CLIENTS",
                &format!("{}/{n}", index + 1),
            )
            .replace("$START_AT", "2026-12-07T10:00:00Z");
        assert!(!expanded.contains('$'), "an expansion left: {expanded}");
        let words: Vec<String> = expanded
            .split_whitespace()
            .filter(|w| !w.starts_with("2>"))
            .map(|w| w.trim_matches('"').to_string())
            .collect();
        assert_eq!(words[0], "redlab", "{line}");
        let cli =
            redlab::cli::Cli::try_parse_from(&words).unwrap_or_else(|e| panic!("{words:?}: {e}"));
        let (settings, run) =
            redlab::config::resolve(&cli).unwrap_or_else(|e| panic!("{words:?}: {e:#}"));
        drop(settings);
        match run {
            redlab::app::job::Mode::Run(redlab::app::job::Job::Perf(o)) => {
                let s = o.split.expect("a share");
                assert_eq!((s.index, s.of), (index as u32 + 1, n as u32));
                assert!(o.start_at.is_some());
            }
            _ => panic!("not perf: {words:?}"),
        }
    }
}

#[test]
fn the_image_is_multi_stage_and_puts_redlab_on_the_path() {
    let docker = read("Dockerfile");
    let stages = docker.lines().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "not multi-stage: {docker}");
    assert!(
        docker.contains("COPY --from=build /src/target/dist/redlab /usr/local/bin/redlab"),
        "{docker}"
    );
}

/// The build stage copies everything cargo reads to build the binary: a
/// missing build.rs builds without a word, but a different binary (a PIE,
/// its code not laid out as link/hot-symbols.txt says).
#[test]
fn the_image_builds_from_every_build_input() {
    let docker = read("Dockerfile");
    // Everything before the second FROM: the comments and the build stage.
    let build_stage: String = docker.split("\nFROM ").take(2).collect();
    let copied: Vec<&str> = build_stage
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignored = read(".dockerignore");
    for input in ["Cargo.toml", "Cargo.lock", "build.rs", "src", "link"] {
        if !root.join(input).exists() {
            continue;
        }
        assert!(
            copied.iter().any(|c| c.trim_end_matches('/') == input),
            "the Dockerfile's build stage does not copy {input}: {copied:?}"
        );
        assert!(
            !ignored
                .lines()
                .any(|l| l.trim().trim_end_matches('/') == input),
            ".dockerignore leaves out {input}"
        );
    }
}
