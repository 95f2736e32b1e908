//! aktualizr's `[telemetry] report_config` (true by default) posts its whole
//! configuration, `[provision] p12_password` and `[p11] pass` included, to
//! the server (issue 19, section 2, defect 2). `stage` and `render` write
//! `report_config = false` into a fragment that holds one, and say so;
//! `--report-config on|off` decides otherwise. `verify` and `lint --root`
//! report a secret the merged configuration of a device root would send.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::staged::{HSM_FRAGMENT, SHARED_FRAGMENT};
use common::*;

const OFF: &str = "[telemetry]\nreport_config = false\n";
const PIN: &str = "TEST-ONLY-pin-8812";
const NOTE: &str = "note: 20-sota-device-cred-hsm.toml holds a password or PIN: it sets `[telemetry] report_config = false`, so aktualizr does not send its configuration to the server (--report-config on leaves aktualizr's default)\n";

struct Setup {
    dir: TestDir,
    zip: PathBuf,
    pin: PathBuf,
}

fn setup() -> Setup {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "credentials.zip");
    let pin = dir.write("pin", PIN);
    Setup { dir, zip, pin }
}

impl Setup {
    fn stage(&self, method: &str, root: &str, extra: &[&str]) -> (Run, PathBuf, PathBuf) {
        let dev = self.dir.join(root);
        let manifest = self.dir.join(format!("{root}.json"));
        let mut cmd = staged::stage_device_cmd(&self.zip, method, &dev)
            .arg("--manifest")
            .arg(&manifest)
            .args(extra);
        if method == "device-cred-hsm" {
            cmd = cmd.arg("--p11-pin-file").arg(&self.pin);
        }
        (cmd.run(), dev, manifest)
    }
}

fn verify(manifest: &Path, dev: &Path) -> Run {
    sota(["verify", "--manifest"])
        .arg(manifest)
        .arg("--device-root")
        .arg(dev)
        .run()
}

fn lint_root(dev: &Path) -> Run {
    sota(["lint", "--root"]).arg(dev).run()
}

/// `lint --root` and `verify` of a staged root both fail on `expected`,
/// and neither shows the PIN; verify's run, for more checks.
#[track_caller]
fn both_report(dev: &Path, manifest: &Path, expected: &str) -> Run {
    lint_root(dev)
        .code(1)
        .stdout_has(expected)
        .output_lacks(PIN);
    let run = verify(manifest, dev);
    run.code(1).stdout_has(expected).output_lacks(PIN);
    run
}

#[test]
fn a_fragment_with_a_secret_turns_report_config_off_and_says_so() {
    let s = setup();
    let (run, dev, manifest) = s.stage("device-cred-hsm", "hsm", &[]);
    run.success().stderr_has(NOTE).output_lacks(PIN);
    assert_eq!(run.stderr.matches("report_config").count(), 1);
    assert!(
        !run.stderr.contains("example PKCS#11 PIN"),
        "{}",
        run.stderr
    );
    let fragment = fs::read_to_string(dev.join(HSM_FRAGMENT)).unwrap();
    assert!(fragment.ends_with(OFF), "{fragment}");
    // The staged root is clean: lint --root and verify agree.
    lint_root(&dev).success();
    verify(&manifest, &dev).success();

    // No secret, no [telemetry]: aktualizr's example configs stay as they are.
    let (run, dev, _) = s.stage("shared-cred", "shared", &[]);
    run.success();
    assert!(!run.stderr.contains("report_config"), "{}", run.stderr);
    let fragment = fs::read_to_string(dev.join(SHARED_FRAGMENT)).unwrap();
    assert!(!fragment.contains("[telemetry]"), "{fragment}");

    // render says it too, for the file it writes.
    let out = s.dir.join("render");
    fs::create_dir_all(&out).unwrap();
    let run = sota(["render", "--method", "device-cred-hsm", "--p11-pin-file"])
        .arg(&s.pin)
        .arg("--output-dir")
        .arg(&out)
        .run();
    run.success().stderr_has(NOTE);
    // Said once (the summary line names the output folder, whose path
    // holds this test's name).
    assert_eq!(run.stderr.matches(NOTE).count(), 1);
    let rendered = fs::read_to_string(out.join("20-sota-device-cred-hsm.toml")).unwrap();
    assert!(rendered.ends_with(OFF));
}

#[test]
fn report_config_on_and_off() {
    let s = setup();
    // off: written without a secret too, and nothing to say.
    let (run, dev, _) = s.stage("shared-cred", "shared-off", &["--report-config", "off"]);
    run.success();
    assert!(!run.stderr.contains("report_config"), "{}", run.stderr);
    assert!(fs::read_to_string(dev.join(SHARED_FRAGMENT))
        .unwrap()
        .ends_with(OFF));
    // on: aktualizr's default stays, and the staged root sends the PIN.
    let (run, dev, manifest) = s.stage("device-cred-hsm", "hsm-on", &["--report-config", "on"]);
    run.success();
    assert!(!run.stderr.contains("report_config"), "{}", run.stderr);
    let fragment = fs::read_to_string(dev.join(HSM_FRAGMENT)).unwrap();
    assert!(!fragment.contains("[telemetry]"), "{fragment}");
    let expected = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml:11:1: error: `[telemetry] report_config` is true (aktualizr's default): aktualizr sends its whole configuration, this `p11.pass` included, to the server (`<server>/system_info/config`)";
    both_report(&dev, &manifest, expected)
        .stdout_has("not ok: 4 files checked, 0 differences, 1 configuration error\n")
        .output_lacks(PIN);
    sota([
        "render",
        "--method",
        "shared-cred",
        "--report-config",
        "sometimes",
    ])
    .run()
    .code(2)
    .stderr_has("--report-config");
}

#[test]
fn a_later_file_that_turns_report_config_on_again_is_an_error() {
    let s = setup();
    let (run, dev, manifest) = s.stage("device-cred-hsm", "hsm", &[]);
    run.success();
    // /etc/sota/conf.d comes after /usr/lib/sota/conf.d by file name.
    let local = dev.join("etc/sota/conf.d");
    fs::create_dir_all(&local).unwrap();
    fs::write(
        local.join("90-telemetry.toml"),
        "[telemetry]\nreport_config = true\n",
    )
    .unwrap();
    let expected = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml:11:1: error: `[telemetry] report_config` is true (set in `etc/sota/conf.d/90-telemetry.toml` line 2): aktualizr sends its whole configuration, this `p11.pass` included";
    both_report(&dev, &manifest, expected).stdout_has("; set `report_config = false` there, or in a file applied after `etc/sota/conf.d/90-telemetry.toml`\n");
    let json = sota(["verify", "--format", "json", "--manifest"])
        .arg(&manifest)
        .arg("--device-root")
        .arg(&dev)
        .run();
    json.code(1)
        .stdout_has("\"config_errors\": [")
        .stdout_has("\"ok\": false");
    // A lint of the files alone, not a root: a warning, as before.
    sota(["lint"])
        .arg(local.join("90-telemetry.toml"))
        .run()
        .success();
}

#[test]
fn device_cred_hsm_without_a_pin_warns_of_the_example_pin() {
    let s = setup();
    let dev = s.dir.join("hsm");
    let run = staged::stage_device_cmd(&s.zip, "device-cred-hsm", &dev).run();
    run.success().stderr_has(
        "warning: no --p11-pin-file given: the device gets aktualizr's example PKCS#11 PIN 1234; give the token's user PIN with --p11-pin-file\n",
    );
    let fragment = fs::read_to_string(dev.join(HSM_FRAGMENT)).unwrap();
    assert!(fragment.contains("pass = \"1234\"") && fragment.ends_with(OFF));
}
