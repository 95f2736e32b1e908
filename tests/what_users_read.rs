//! Snapshots of what a user reads first: every command's `--help`, and the
//! errors users meet most, stderr byte for byte. A change of wording shows
//! up here as a diff to review (`UPDATE_SNAPSHOTS=1` rewrites them).
//!
//! Runs happen inside the test's folder with relative paths, so no
//! temporary path reaches a snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

#[test]
fn help_of_every_command() {
    for (name, args) in [
        ("help-sota-stage.txt", vec!["--help"]),
        ("help-inspect.txt", vec!["inspect", "--help"]),
        ("help-stage.txt", vec!["stage", "--help"]),
        ("help-render.txt", vec!["render", "--help"]),
        ("help-verify.txt", vec!["verify", "--help"]),
        ("help-lint.txt", vec!["lint", "--help"]),
        ("help-audit.txt", vec!["audit", "--help"]),
        ("help-device-certs.txt", vec!["device-certs", "--help"]),
    ] {
        let run = sota(args).run();
        run.success().stderr_is("");
        assert_snapshot(name, run.stdout.as_bytes());
    }
}

/// One scenario: a command run in `dir`, shown with its exit code, its
/// exact stderr and, when there is one, its report on stdout.
fn scenario(dir: &TestDir, args: &[&str]) -> String {
    let run = sota(args.iter().copied()).current_dir(dir.path()).run();
    assert_ne!(run.code, 0, "{}", run.command);
    let mut out = format!("$ sota-stage {}\nexit {}\n", args.join(" "), run.code);
    if !run.stdout.is_empty() {
        out.push_str(&format!("[stdout]\n{}", run.stdout));
    }
    out.push_str(&format!("[stderr]\n{}\n", run.stderr));
    out
}

#[test]
fn the_errors_users_meet_most() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    dir.write("typical.zip", Creds::typical(&pki).build());
    dir.write(
        "unknown.zip",
        Creds::typical(&pki).file("notes.txt", "x").build(),
    );
    dir.write(
        "ce.zip",
        Creds::typical(&pki)
            .without("autoprov_credentials.p12")
            .server_ca()
            .build(),
    );
    dir.write("not-a-zip.zip", "this is no zip archive\n");
    dir.write(
        "upstream.zip",
        std::fs::read(upstream("aktualizr-credentials.zip")).expect("fixture"),
    );
    dir.write("bad.toml", "[provision]\nprovision_path = /var/sota/x.zip\"\n[tls]\nserver = \"https://a\"\n[tls]\nca_source = \"file\"\n");
    let stage = |zip: &str, method: &str| {
        vec![
            "stage".to_string(),
            "--method".into(),
            method.into(),
            "--credentials".into(),
            zip.into(),
            "--device-root".into(),
            "image".into(),
        ]
    };
    let owned = |v: Vec<String>| v;
    let cases: Vec<Vec<String>> = vec![
        // 1. The archive is not where the recipe says.
        owned(stage("missing.zip", "shared-cred")),
        // 2. Not a zip at all.
        owned(stage("not-a-zip.zip", "shared-cred")),
        // 3. The archive holds a file nobody said what to do with.
        owned(stage("unknown.zip", "shared-cred")),
        // 4. The archive cannot serve the method.
        owned(stage("ce.zip", "shared-cred")),
        // 5. Its certificates expired (aktualizr's own sample, from 2018).
        owned(stage("upstream.zip", "shared-cred")),
        // 6. A method name that does not exist.
        owned(stage("typical.zip", "shared")),
        // 7. An option of another method.
        {
            let mut v = stage("typical.zip", "shared-cred");
            v.extend(["--p11-pin-file".into(), "pin".into()]);
            v
        },
        // 8. A hardware ID aktualizr's recipes would not accept.
        {
            let mut v = stage("typical.zip", "shared-cred");
            v.extend(["--hardware-id".into(), "my board".into()]);
            v
        },
        // 9. A template folder that is not there.
        {
            let mut v = stage("typical.zip", "shared-cred");
            v.extend(["--template-dir".into(), "templates".into()]);
            v
        },
        // 10. A config aktualizr would not start with.
        vec!["lint".into(), "bad.toml".into()],
        // 11. The device root was not given.
        vec![
            "stage".into(),
            "--method".into(),
            "shared-cred".into(),
            "--credentials".into(),
            "typical.zip".into(),
        ],
    ];
    let mut all = String::new();
    for case in &cases {
        let args: Vec<&str> = case.iter().map(String::as_str).collect();
        all.push_str(&scenario(&dir, &args));
    }
    // 12. Staging again over a changed file.
    sota(stage("typical.zip", "shared-cred"))
        .current_dir(dir.path())
        .run()
        .success();
    dir.write(
        "image/usr/lib/sota/conf.d/20-sota-shared-cred.toml",
        "# edited\n",
    );
    all.push_str(&scenario(
        &dir,
        &stage("typical.zip", "shared-cred")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    assert_snapshot("errors.txt", all.as_bytes());
}
