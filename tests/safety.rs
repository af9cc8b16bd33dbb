//! redlab never changes data it did not write and leaves none of its own.

use crate::common::*;
use redlab::lab::LabOptions;

#[test]
fn user_keys_are_unchanged_and_no_redlab_key_remains() {
    let lab = lab(2);
    let mut m = conn(lab.master.port);
    seed_user_data(&mut m);
    wait_sync(&lab);
    let before = snapshot(&mut m);
    assert_eq!(before.len(), 3 * 23);
    for sub in [&["replicate-check", "--probes", "5"][..], &["keycount"][..]] {
        let mut args = topo_args(&lab);
        args.extend(["--format", "json"].map(String::from));
        args.extend(sub.iter().map(|s| s.to_string()));
        let run = redlab(&args);
        assert_eq!(run.code, 0, "{sub:?}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(
            snapshot(&mut m),
            before,
            "{sub:?} changed user data on the master"
        );
        for r in &lab.replicas {
            assert_eq!(
                snapshot(&mut conn(r.port)),
                before,
                "{sub:?} changed user data on {}",
                r.name
            );
        }
        assert_no_redlab_keys(&ports(&lab));
    }
}

#[test]
fn password_protected_topology_works_with_the_password_only() {
    let lab = lab_with(LabOptions {
        replicas: 1,
        password: Some("s3cret-pw".into()),
        ..LabOptions::default()
    });
    let run = redlab_at(
        &lab,
        &[
            "--password",
            "s3cret-pw",
            "--format",
            "json",
            "replicate-check",
            "--probes",
            "3",
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        !run.stdout.contains("s3cret-pw"),
        "the password leaked into the report"
    );

    let run = redlab_at(&lab, &["replicate-check"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("master") && run.stderr.contains("authentication required"),
        "{}",
        run.stderr
    );

    let run = redlab_at(&lab, &["--password", "wrong-guess", "keycount"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("authentication failed") && !run.stderr.contains("wrong-guess"),
        "{}",
        run.stderr
    );
}
