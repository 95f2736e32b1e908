//! `sota-stage lint` end to end: the real binary on files the tests write,
//! and on aktualizr's own example configs.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// `sota-stage` with `args`, run in `dir`.
fn run_in(dir: impl AsRef<Path>, args: &[&str]) -> Run {
    sota(args).current_dir(dir).run()
}

/// The JSON report of `lint --explain` with `args` in `dir`, which must
/// exit 0.
#[track_caller]
fn explained(dir: &TestDir, args: &[&str]) -> Value {
    let args = [&["lint", "--explain", "--format", "json"][..], args].concat();
    run_in(dir, &args).success().json()
}

/// `dir` as an argument.
fn arg(dir: &TestDir) -> String {
    dir.path().display().to_string()
}

// ---------------------------------------------------------------------------
// aktualizr's own configs

#[test]
fn upstream_example_configs_lint_clean() {
    let dir = upstream_config("");
    let run = run_in(&dir, &["lint", "."]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "7 files checked: no problems\n");

    let run = run_in(&dir, &["lint", ".", "--format", "json", "--deny-warnings"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let json = run.json();
    assert_eq!(json["problems"], Value::Array(vec![]));
    assert_eq!(json["files"].as_array().map(Vec::len), Some(7));

    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let run = run_in(&dir, &["lint", "--deny-warnings", path.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}: {}", path.display(), run.stdout);
        assert!(run.stdout.ends_with("1 file checked: no problems\n"));
    }
}

#[test]
fn upstream_hsm_config_explained_with_its_pin_masked() {
    let dir = upstream_config("");
    let run = run_in(&dir, &["lint", "--explain", "sota-device-cred-hsm.toml"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("1234"), "{}", run.stdout);
    assert!(run.stdout.contains("pass = ********"), "{}", run.stdout);
    // The default report_config sends the PIN to the server.
    assert!(
        run.stdout.contains(
            "sota-device-cred-hsm.toml:8:1: warning: `[telemetry] report_config` is true"
        ),
        "{}",
        run.stdout
    );
    let run = run_in(
        &dir,
        &[
            "lint",
            "--explain",
            "--deny-warnings",
            "sota-device-cred-hsm.toml",
        ],
    );
    assert_eq!(run.code, 1);
}

// ---------------------------------------------------------------------------
// Output and exit status

#[test]
fn text_output_names_file_line_column_and_fix() {
    let tree = TestDir::new().with_file(
        "conf.d/20-x.toml",
        "[tls]\nserver = \"https://a\" # prod\n[uptane]\npolling_sec = \"30\"\n",
    );
    let run = run_in(&tree, &["lint", "conf.d"]);
    assert_eq!(run.code, 0, "warnings alone exit 0: {}", run.stdout);
    assert_eq!(
        run.stdout,
        "conf.d/20-x.toml:2:22: warning: aktualizr does not support inline comments: it reads \
         the value as `https://a # prod`; move the comment to its own line\n\
         \x20 fix: write `server = \"https://a\"` and put the comment on the line above\n\
         conf.d/20-x.toml:4:15: warning: a quoted number: aktualizr ignores `polling_sec` (it \
         keeps the value from an earlier file, else the default `10`)\n\
         \x20 fix: write `polling_sec = 30`\n\
         1 file checked: 0 errors, 2 warnings\n"
    );
    assert_eq!(run.stderr, "");
}

#[test]
fn exit_status_0_1_2_3() {
    let tree = TestDir::new()
        .with_file("ok.toml", "[uptane]\npolling_sec = 30\n")
        .with_file("warn.toml", "[uptane]\npolling_sec = \"30\"\n")
        .with_file("err.toml", "[uptane]\npolling_sec = 30\npolling_sec = 40\n")
        .with_dir("empty");
    assert_eq!(run_in(&tree, &["lint", "ok.toml"]).code, 0);
    assert_eq!(run_in(&tree, &["lint", "warn.toml"]).code, 0);
    assert_eq!(
        run_in(&tree, &["lint", "--deny-warnings", "ok.toml"]).code,
        0
    );
    assert_eq!(
        run_in(&tree, &["lint", "--deny-warnings", "warn.toml"]).code,
        1
    );
    let run = run_in(&tree, &["lint", "err.toml"]);
    assert_eq!(run.code, 1);
    assert!(run
        .stdout
        .contains("err.toml:3:1: error: `polling_sec` is set twice"));

    // Usage: no PATH, an unknown format, a root that is a file.
    assert_eq!(run_in(&tree, &["lint"]).code, 2);
    assert_eq!(
        run_in(&tree, &["lint", "--format", "xml", "ok.toml"]).code,
        2
    );
    run_in(&tree, &["lint", "--root", "ok.toml"])
        .code(2)
        .stderr_is("error: --root `ok.toml` is not a folder; give the image's root folder\n");

    // I/O: a PATH that is not there, a root that is not there.
    run_in(&tree, &["lint", "ok.toml", "missing.toml"])
        .code(3)
        .stdout_is("")
        .stderr_is("error: cannot read `missing.toml`: No such file or directory (os error 2)\n");
    assert_eq!(run_in(&tree, &["lint", "--root", "no-such-root"]).code, 3);

    // Nothing to check is not a success.
    run_in(&tree, &["lint", "empty"]).code(1).stderr_is(
        "error: no aktualizr configuration file found: the folders given hold no *.toml file\n",
    );
}

#[test]
fn json_report_shape() {
    let tree = TestDir::new().with_file(
        "a.toml",
        "[tls]\nserver = \"https://a\"\n[uptane]\npolling_sec = \"30\"\nbogus_key_xyz = 1\n[x\n",
    );
    let run = run_in(&tree, &["lint", "--format", "json", "a.toml"]);
    assert_eq!(run.code, 1);
    let json = run.json();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["files"], serde_json::json!(["a.toml"]));
    assert_eq!(json["errors"], 1);
    assert_eq!(json["warnings"], 2);
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3);
    let first = problems[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["column", "file", "fix", "line", "message", "severity"]
    );
    assert_eq!(first["file"], "a.toml");
    assert_eq!(first["line"], 4);
    assert_eq!(first["column"], 15);
    assert_eq!(first["severity"], "warning");
    assert_eq!(first["fix"], "write `polling_sec = 30`");
    // No fix: the key is left out, not null.
    assert_eq!(problems[1]["line"], 5);
    assert!(problems[1].get("fix").is_none(), "{}", problems[1]);
    assert_eq!(problems[2]["severity"], "error");
    // Explain fields only with --explain.
    assert!(json.get("effective").is_none());

    let json = run_in(&tree, &["lint", "--format", "json", "--explain", "a.toml"]).json();
    assert_eq!(
        json["effective"]["tls"]["server"],
        serde_json::json!({"value": "https://a", "file": "a.toml", "line": 2})
    );
    assert_eq!(json["servers"]["repo"], "https://a/repo");
    assert_eq!(json["servers"]["director"], "https://a/director");
    assert_eq!(json["servers"]["treehub"], "https://a/treehub");
    assert_eq!(
        json["servers"]["ecu_registration"],
        "https://a/director/ecus"
    );
    assert_eq!(json["applied"], serde_json::json!(["a.toml"]));
    assert_eq!(json["hidden"], serde_json::json!([]));
}

// ---------------------------------------------------------------------------
// --explain: aktualizr's merge order

/// An image root with both conf.d folders.
fn image() -> TestDir {
    TestDir::new()
        .with_file(
            "usr/lib/sota/conf.d/10-y.toml",
            "[tls]\nserver = \"https://y\"\n[uptane]\npolling_sec = 10\n",
        )
        .with_file("etc/sota/conf.d/9-x.toml", "[uptane]\npolling_sec = 90\n")
        .with_file(
            "usr/lib/sota/conf.d/20-a.toml",
            "[provision]\ndevice_id = \"from-usr-lib\"\nprimary_ecu_serial = \"only-in-usr-lib\"\n",
        )
        .with_file(
            "etc/sota/conf.d/20-a.toml",
            "[provision]\ndevice_id = \"from-etc\"\n",
        )
        .with_file(
            "usr/lib/sota/conf.d/.50-hidden.toml",
            "[logger]\nloglevel = 4\n",
        )
        .with_file("usr/lib/sota/conf.d/30-b.conf", "[logger]\nloglevel = 0\n")
        .with_file(
            "usr/lib/sota/conf.d/30-c.toml.bak",
            "[logger]\nloglevel = 0\n",
        )
        .with_file(
            "usr/lib/sota/conf.d/sub/60-sub.toml",
            "[logger]\nloglevel = 0\n",
        )
        .with_file(
            "etc/sota/conf.d/70-dir.toml/x.toml",
            "[logger]\nloglevel = 0\n",
        )
        .with_file("etc/sota/conf.d/Z.toml", "[pacman]\ntype = \"none\"\n")
        .with_file("etc/sota/conf.d/a.toml", "[pacman]\ntype = \"ostree\"\n")
}

#[test]
fn explain_applies_files_in_byte_order_across_folders() {
    let tree = image();
    let json = explained(&tree, &["--root", &arg(&tree)]);
    assert_eq!(
        json["applied"],
        serde_json::json!([
            "usr/lib/sota/conf.d/.50-hidden.toml",
            "usr/lib/sota/conf.d/10-y.toml",
            "etc/sota/conf.d/20-a.toml",
            "etc/sota/conf.d/9-x.toml",
            "etc/sota/conf.d/Z.toml",
            "etc/sota/conf.d/a.toml",
        ])
    );
    assert_eq!(
        json["hidden"],
        serde_json::json!([{
            "file": "usr/lib/sota/conf.d/20-a.toml",
            "hidden_by": "etc/sota/conf.d/20-a.toml"
        }])
    );
    let eff = &json["effective"];
    // 9-x.toml comes after 10-y.toml and overrides only polling_sec.
    assert_eq!(
        eff["uptane"]["polling_sec"],
        serde_json::json!({"value": 90, "file": "etc/sota/conf.d/9-x.toml", "line": 2})
    );
    assert_eq!(
        eff["tls"]["server"]["file"],
        "usr/lib/sota/conf.d/10-y.toml"
    );
    // The etc file hides the usr/lib one whole: none of its keys remain.
    assert_eq!(eff["provision"]["device_id"]["value"], "from-etc");
    assert!(eff["provision"].get("primary_ecu_serial").is_none());
    // Hidden (dot) files are read; other names, subfolders are not.
    assert_eq!(
        eff["logger"]["loglevel"],
        serde_json::json!({"value": 4, "file": "usr/lib/sota/conf.d/.50-hidden.toml", "line": 2})
    );
    // `Z` sorts before `a` byte-wise.
    assert_eq!(eff["pacman"]["type"]["value"], "ostree");
    // Server URLs derive from tls.server.
    assert_eq!(json["servers"]["repo"], "https://y/repo");
    // Paths are relative to the root: nothing depends on where it is.
    assert!(!json.to_string().contains(&arg(&tree)), "{json}");
}

#[test]
fn explain_text_lists_order_hidden_files_values_and_urls() {
    let tree = image();
    let run = run_in(&tree, &["lint", "--root", &arg(&tree), "--explain"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let out = &run.stdout;
    assert!(
        out.contains(
            "aktualizr applies these files, in this order:\n\
             \x20 1. usr/lib/sota/conf.d/.50-hidden.toml\n\
             \x20 2. usr/lib/sota/conf.d/10-y.toml\n\
             \x20 3. etc/sota/conf.d/20-a.toml\n\
             \x20 4. etc/sota/conf.d/9-x.toml\n"
        ),
        "{out}"
    );
    assert!(out.contains(
        "hidden, never read:\n  usr/lib/sota/conf.d/20-a.toml (hidden by etc/sota/conf.d/20-a.toml)\n"
    ));
    assert!(
        out.contains("polling_sec = 90    # etc/sota/conf.d/9-x.toml:2\n"),
        "{out}"
    );
    assert!(
        out.contains("  repo:             https://y/repo\n"),
        "{out}"
    );
    assert!(
        out.contains("  ECU registration: https://y/director/ecus\n"),
        "{out}"
    );
    assert!(out.ends_with("7 files checked: no problems\n"), "{out}");
    assert!(!out.contains(&arg(&tree)));
}

#[test]
fn root_without_etc_folder_reads_usr_lib_only() {
    let tree = TestDir::new().with_file(
        "usr/lib/sota/conf.d/20-sota-shared-cred.toml",
        "[provision]\nprovision_path = \"/var/sota/sota_provisioning_credentials.zip\"\n",
    );
    let run = run_in(&tree, &["lint", "--root", &arg(&tree), "--explain"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run
        .stdout
        .contains("1. usr/lib/sota/conf.d/20-sota-shared-cred.toml"));
    assert!(run
        .stdout
        .contains("read at run time from /var/sota/sota_provisioning_credentials.zip"));

    let empty = TestDir::new().with_dir("etc");
    run_in(&empty, &["lint", "--root", "."]).code(1).stderr_is(
        "error: no aktualizr configuration under `.`: no *.toml file in `usr/lib/sota/conf.d` or \
         `etc/sota/conf.d`\n",
    );
}

#[test]
fn root_with_paths_reads_them_inside_the_root() {
    let tree = TestDir::new()
        .with_file(
            "usr/lib/sota/conf.d/10-a.toml",
            "[uptane]\npolling_sec = 1\n",
        )
        .with_file("opt/sota/10-a.toml", "[uptane]\npolling_sec = 2\n");
    let json = explained(&tree, &["--root", &arg(&tree), "/opt/sota"]);
    assert_eq!(json["applied"], serde_json::json!(["opt/sota/10-a.toml"]));
    assert_eq!(json["effective"]["uptane"]["polling_sec"]["value"], 2);
}

#[test]
fn paths_on_the_command_line_merge_like_aktualizr_config() {
    let tree = TestDir::new()
        .with_file("one/20-x.toml", "[uptane]\npolling_sec = 1\n")
        .with_file("two/20-x.toml", "[uptane]\npolling_sec = 2\n")
        .with_file("extra.conf", "[logger]\nloglevel = 3\n");
    // A later PATH's file hides an earlier one of the same name; a file
    // given by name is read whatever its extension.
    let json = explained(&tree, &["one", "two/", "extra.conf"]);
    assert_eq!(
        json["applied"],
        serde_json::json!(["two/20-x.toml", "extra.conf"])
    );
    assert_eq!(
        json["hidden"],
        serde_json::json!([{"file": "one/20-x.toml", "hidden_by": "two/20-x.toml"}])
    );
    assert_eq!(json["effective"]["uptane"]["polling_sec"]["value"], 2);
    assert_eq!(
        json["effective"]["logger"]["loglevel"]["file"],
        "extra.conf"
    );
    // Hidden files are checked too.
    assert_eq!(json["files"].as_array().map(Vec::len), Some(3));
}

#[test]
fn explain_shows_what_aktualizr_really_reads() {
    let tree = TestDir::new()
        .with_file(
            "a.toml",
            "[tls]\nserver = \"https://a\" # prod\n[storage]\npath = \"/var/my&dir\"\n\
         [uptane]\npolling_sec = 30\n",
        )
        .with_file("b.toml", "[uptane]\npolling_sec = 60 # one minute\n");
    let json = explained(&tree, &["a.toml", "b.toml"]);
    let eff = &json["effective"];
    assert_eq!(eff["tls"]["server"]["value"], "https://a # prod");
    assert_eq!(json["servers"]["repo"], "https://a # prod/repo");
    assert_eq!(eff["storage"]["path"]["value"], "/var/mydir");
    // A value aktualizr ignores overrides nothing.
    assert_eq!(
        eff["uptane"]["polling_sec"],
        serde_json::json!({"value": 30, "file": "a.toml", "line": 6})
    );
}

// ---------------------------------------------------------------------------
// Secrets

#[test]
fn secrets_are_masked_and_never_printed() {
    let tree = TestDir::new()
        .with_file(
            "20-a.toml",
            "[provision]\np12_password = \"hunter2-p12\" # comment\n[p11]\npass = 'hunter2-pin'\n",
        )
        .with_file("30-b.toml", "[p11]\npass = \"hunter2-pin\\\"x\"\n")
        .with_file(
            "40-c.toml",
            "[provision]\np12_password = \"\"\"\nhunter2-multi\n\"\"\"\n",
        );
    for args in [
        vec!["lint", "."],
        vec!["lint", ".", "--explain"],
        vec!["lint", ".", "--format", "json"],
        vec!["lint", ".", "--explain", "--format", "json"],
    ] {
        let run = run_in(&tree, &args);
        assert!(!run.stdout.is_empty());
        for out in [&run.stdout, &run.stderr] {
            assert!(!out.contains("hunter2"), "{args:?}: {out}");
        }
    }
    let json = run_in(&tree, &["lint", ".", "--explain", "--format", "json"]).json();
    assert_eq!(
        json["effective"]["provision"]["p12_password"]["value"],
        "********"
    );
    assert_eq!(json["effective"]["p11"]["pass"]["value"], "********");
    let telemetry: Vec<&Value> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["message"].as_str().unwrap().contains("report_config"))
        .collect();
    assert_eq!(telemetry.len(), 2, "{json:#}");
}

#[test]
fn report_config_false_silences_the_telemetry_warning() {
    let tree = TestDir::new()
        .with_file("20-hsm.toml", "[p11]\npass = \"1234\"\n")
        .with_file("90-telemetry.toml", "[telemetry]\nreport_config = false\n");
    let run = run_in(&tree, &["lint", ".", "--explain", "--deny-warnings"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("1234"));
}

/// The text before `=` of a broken line can be a secret (a password wrapped
/// onto the next line, a PIN typed without its key): no message quotes it.
/// Each line is still found, by line and column, and said what is wrong.
#[test]
fn the_text_before_equals_of_a_broken_line_is_never_quoted() {
    let tree = TestDir::new().with_file(
        "20-broken.toml",
        "hunter2 root = 1\n\
         [provision]\n\
         p12_password = \"first half\n\
         hunter2-rest\" = x\n\
         [p11]\n\
         hunter2 pin = 1\n\
         hunter2 pin = 2\n\
         [pacman]\n\
         hunter2 extra = y\n",
    );
    for args in [vec!["lint", "."], vec!["lint", ".", "--format", "json"]] {
        let run = run_in(&tree, &args);
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        for out in [&run.stdout, &run.stderr] {
            assert!(!out.contains("hunter2"), "{args:?}: {out}");
        }
    }
    let json = run_in(&tree, &["lint", ".", "--format", "json"]).json();
    let problems: Vec<(u64, &str)> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["line"].as_u64().unwrap(), p["message"].as_str().unwrap()))
        .collect();
    let not_a_name = "the text before `=` is not a key name (letters, digits, `_`, `-` and `.` \
                      only): aktualizr takes it for a key it does not know";
    for line in [1, 4, 6, 9] {
        assert!(
            problems
                .iter()
                .any(|(l, m)| *l == line && m.starts_with(not_a_name)),
            "line {line}: {problems:#?}"
        );
    }
    assert!(
        problems.iter().any(|(l, m)| *l == 7
            && m.starts_with("a key that is not a name (not quoted here: it may be part of a secret) is set twice in `[p11]`")),
        "{problems:#?}"
    );
}
