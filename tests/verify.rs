//! `sota-stage verify`: a fresh stage verifies; a changed byte, a changed
//! mode, a missing file and an extra file are each reported with exit 1, in
//! text, JSON and `sha256sum -c` form; bad manifests are refused.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::staged::{stage_device_cmd, Roots};
use common::*;
use serde_json::Value;

const FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-device-cred.toml";
const ROOT_CRT: &str = "var/sota/import/root.crt";

/// A device-cred stage of a typical archive (with a hardware ID) under
/// `image/` and `native/`, with its manifest.
struct Staged(Roots);

impl std::ops::Deref for Staged {
    type Target = Roots;

    fn deref(&self) -> &Roots {
        &self.0
    }
}

impl Staged {
    fn new() -> Staged {
        let roots = Roots::new();
        let pki = Pki::new(&roots.dir);
        let zip = Creds::typical(&pki)
            .server_ca()
            .write_to(&roots.dir, "c.zip");
        roots
            .stage_cmd(&zip, "device-cred", &["--hardware-id", "rpi4"])
            .run()
            .success();
        Staged(roots)
    }

    /// `verify` of both roots with `extra` arguments.
    fn verify(&self, extra: &[&str]) -> Run {
        self.verify_cmd().args(extra).run()
    }
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Flips one bit of the byte at `at`: same size, different content.
fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 1;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_fresh_stage_verifies() {
    let s = Staged::new();
    // 5 device files (fragment, hardware ID, gateway.url, root.json,
    // root.crt) and 6 host files.
    s.verify(&[])
        .success()
        .stdout_is("ok: 11 files checked, 0 differences\n")
        .stderr_is("");
    // The device root alone: host entries are skipped, not missing.
    sota(["verify", "--manifest"])
        .arg(&s.manifest)
        .arg("--device-root")
        .arg(&s.dev)
        .run()
        .success()
        .stdout_is("ok: 5 files checked, 0 differences\n");
    let json = s.verify(&["--format", "json"]);
    json.success();
    assert_eq!(
        json.json(),
        serde_json::json!({"schema": 1, "ok": true, "checked": 11, "differences": []})
    );
}

#[test]
fn each_kind_of_difference_is_reported_alone() {
    let s = Staged::new();
    let fragment = s.dev.join(FRAGMENT);
    let original = fs::read(&fragment).unwrap();

    // A changed byte, same size.
    flip(&fragment, 40);
    s.verify(&[]).code(1).stdout_is(&format!(
        "changed: device:{FRAGMENT} (content differs)\nnot ok: 11 files checked, 1 difference\n"
    ));
    fs::write(&fragment, &original).unwrap();
    s.verify(&[]).success();

    // A changed mode.
    chmod(&s.host.join("treehub.json"), 0o644);
    s.verify(&[]).code(1).stdout_is(
        "mode: host:treehub.json is 0644, the manifest says 0600\nnot ok: 11 files checked, 1 difference\n",
    );
    chmod(&s.host.join("treehub.json"), 0o600);

    // A missing file.
    let crt = s.dev.join(ROOT_CRT);
    let crt_bytes = fs::read(&crt).unwrap();
    fs::remove_file(&crt).unwrap();
    s.verify(&[]).code(1).stdout_is(&format!(
        "missing: device:{ROOT_CRT}\nnot ok: 11 files checked, 1 difference\n"
    ));
    fs::write(&crt, &crt_bytes).unwrap();
    chmod(&crt, 0o644);

    // An extra file where aktualizr imports from, and an extra fragment.
    let planted = s.dev.join("var/sota/import/client.pem");
    fs::write(&planted, "-----BEGIN CERTIFICATE-----\n").unwrap();
    s.verify(&[]).code(1).stdout_is(
        "extra: device:var/sota/import/client.pem is not in the manifest\nnot ok: 11 files checked, 1 difference\n",
    );
    fs::remove_file(&planted).unwrap();
    fs::write(
        s.dev.join("usr/lib/sota/conf.d/99-override.toml"),
        "[tls]\n",
    )
    .unwrap();
    s.verify(&[])
        .code(1)
        .stdout_has("extra: device:usr/lib/sota/conf.d/99-override.toml is not in the manifest\n");
    fs::remove_file(s.dev.join("usr/lib/sota/conf.d/99-override.toml")).unwrap();
    s.verify(&[]).success();

    // A file replaced by a link or a folder is reported as what it is,
    // never followed or read.
    fs::remove_file(&crt).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &crt).unwrap();
    s.verify(&[]).code(1).stdout_is(&format!(
        "type: device:{ROOT_CRT} is a symlink, the manifest says a file\nnot ok: 11 files checked, 1 difference\n"
    ));
    fs::remove_file(&crt).unwrap();
    fs::create_dir(&crt).unwrap();
    s.verify(&[]).code(1).stdout_is(&format!(
        "type: device:{ROOT_CRT} is a folder, the manifest says a file\nnot ok: 11 files checked, 1 difference\n"
    ));
    fs::remove_dir(&crt).unwrap();
    fs::write(&crt, &crt_bytes).unwrap();
    s.verify(&[]).success();
}

#[test]
fn folder_modes_of_the_tools_own_folders_are_verified() {
    let s = Staged::new();
    // aktualizr keeps the device's keys in var/sota: 0755 lets anyone list
    // and read what is not 0600.
    chmod(&s.dev.join("var/sota"), 0o755);
    s.verify(&[]).code(1).stdout_is(
        "mode: device:var/sota is 0755, the manifest says 0700\nnot ok: 11 files checked, 1 difference\n",
    );
    chmod(&s.dev.join("var/sota"), 0o700);
    chmod(&s.dev.join("usr/lib/sota/conf.d"), 0o700);
    s.verify(&["--format", "json"]).code(1).stdout_has(
        r#""kind": "moded",
      "root": "device",
      "path": "usr/lib/sota/conf.d",
      "expected": "0755",
      "actual": "0700""#,
    );
    chmod(&s.dev.join("usr/lib/sota/conf.d"), 0o755);
    s.verify(&[]).success();
    // The recipe's folders are not the manifest's business.
    chmod(&s.dev.join("usr"), 0o700);
    s.verify(&[]).success();

    // A manifest of schema 1 written before folders were recorded still
    // reads; its folders are not checked.
    let mut old = s.manifest();
    assert!(
        old["dirs"].as_array().is_some_and(|d| !d.is_empty()),
        "{old}"
    );
    old.as_object_mut().unwrap().remove("dirs");
    fs::write(&s.manifest, serde_json::to_string_pretty(&old).unwrap()).unwrap();
    chmod(&s.dev.join("var/sota"), 0o755);
    s.verify(&[]).success();
}

#[test]
fn all_differences_at_once_in_text_and_json() {
    let s = Staged::new();
    flip(&s.dev.join("var/sota/import/gateway.url"), 0);
    chmod(&s.dev.join(FRAGMENT), 0o600);
    fs::remove_file(s.host.join("targets.pub")).unwrap();
    fs::write(s.host.join("notes.txt"), "hello\n").unwrap();
    // Files outside the folders that hold staged files are the recipe's
    // business, not the manifest's.
    fs::create_dir_all(s.dev.join("etc")).unwrap();
    fs::write(s.dev.join("etc/hostname"), "rpi4\n").unwrap();

    s.verify(&[]).code(1).stdout_is(
        "mode: device:usr/lib/sota/conf.d/20-sota-device-cred.toml is 0600, the manifest says 0644\n\
         changed: device:var/sota/import/gateway.url (content differs)\n\
         missing: host:targets.pub\n\
         extra: host:notes.txt is not in the manifest\n\
         not ok: 11 files checked, 4 differences\n",
    );
    let json = s.verify(&["--format", "json"]);
    json.code(1);
    assert_eq!(
        json.json(),
        serde_json::json!({
            "schema": 1,
            "ok": false,
            "checked": 11,
            "differences": [
                {"kind": "moded", "root": "device", "path": FRAGMENT, "expected": "0644", "actual": "0600"},
                {"kind": "changed", "root": "device", "path": "var/sota/import/gateway.url"},
                {"kind": "missing", "root": "host", "path": "targets.pub"},
                {"kind": "extra", "root": "host", "path": "notes.txt"},
            ]
        })
    );
    // Verify never writes: the manifest is as stage left it.
    assert_eq!(s.manifest()["method"], "device-cred");
}

/// Runs `sha256sum -c` on `listing` in `cwd`; returns its success and
/// output.
fn sha256sum_check(cwd: &Path, listing: &str) -> (bool, String) {
    let mut child = Command::new("sha256sum")
        .arg("-c")
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils) is needed for this test");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(listing.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn sha256sum_format_feeds_sha256sum_c() {
    let s = Staged::new();
    let run = s.verify(&["--format", "sha256sum"]);
    run.success().stderr_is("");
    let manifest = s.manifest();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(run.stdout.lines().count(), files.len());
    for f in files {
        let root = if f["root"] == "device" {
            &s.dev
        } else {
            &s.host
        };
        let line = format!(
            "{}  {}/{}",
            f["sha256"].as_str().unwrap(),
            root.display(),
            f["path"].as_str().unwrap()
        );
        assert!(run.stdout.lines().any(|l| l == line), "{line}");
    }
    let (ok, out) = sha256sum_check(s.dir.path(), &run.stdout);
    assert!(ok, "{out}");
    assert_eq!(out.matches(": OK").count(), 11, "{out}");

    // Relative roots, as a recipe writes them: paths relative to the same
    // working folder.
    let relative = sota(["verify", "--format", "sha256sum", "--manifest"])
        .arg(&s.manifest)
        .args(["--device-root", "image"])
        .current_dir(s.dir.path())
        .run();
    relative
        .success()
        .stdout_has("  image/var/sota/import/root.crt\n");
    let (ok, out) = sha256sum_check(s.dir.path(), &relative.stdout);
    assert!(ok, "{out}");

    // After a change, sha256sum -c fails too, and verify says why on
    // stderr with exit 1.
    flip(&s.dev.join(ROOT_CRT), 100);
    let changed = s.verify(&["--format", "sha256sum"]);
    changed
        .code(1)
        .stderr_is(&format!("changed: device:{ROOT_CRT} (content differs)\n"));
    let (ok, out) = sha256sum_check(s.dir.path(), &changed.stdout);
    assert!(!ok);
    assert!(out.contains("root.crt: FAILED"), "{out}");
}

#[test]
fn a_root_that_is_not_there_is_one_error_not_a_missing_line_per_file() {
    let s = Staged::new();
    // A mistyped device root: one line naming it, exit 3 (I/O).
    let typo = s.dir.join("imgae");
    let run = sota(["verify", "--manifest"])
        .arg(&s.manifest)
        .arg("--device-root")
        .arg(&typo)
        .run();
    run.code(3).stdout_is("").stderr_is(&format!(
        "error: cannot read the device root `{}`: No such file or directory (os error 2)\n",
        typo.display()
    ));
    // The same for the host root, in every format; a file is not a root.
    for format in ["text", "json", "sha256sum"] {
        s.verify(&["--format", format]).success();
        sota(["verify", "--format", format, "--manifest"])
            .arg(&s.manifest)
            .arg("--device-root")
            .arg(&s.dev)
            .arg("--host-root")
            .arg(&s.manifest)
            .run()
            .code(3)
            .stdout_is("")
            .stderr_is(&format!(
                "error: cannot read the host root `{}`: Not a directory (os error 20)\n",
                s.manifest.display()
            ));
    }
}

#[test]
fn bad_manifests_are_refused() {
    let s = Staged::new();
    let original: Value = s.manifest();
    let write = |v: &Value| {
        let path = s.dir.join("bad.json");
        fs::write(&path, serde_json::to_vec(v).unwrap()).unwrap();
        path
    };
    let verify = |manifest: &Path| {
        sota(["verify", "--manifest"])
            .arg(manifest)
            .arg("--device-root")
            .arg(&s.dev)
            .run()
    };

    let not_json = s.dir.write("not.json", "{ nope");
    verify(&not_json)
        .code(1)
        .stderr_has("not.json: not a sota-stage manifest");
    let mut v = original.clone();
    v["schema"] = 2.into();
    verify(&write(&v)).code(1).stderr_is(
        "error: bad.json: manifest schema 2 is not supported (this sota-stage reads schema 1)\n",
    );
    for bad in ["../../etc/passwd", "/etc/passwd", "var//x", "var/./x", ""] {
        let mut v = original.clone();
        v["files"][0]["path"] = bad.into();
        verify(&write(&v))
            .code(1)
            .stderr_has("has an unsafe path or a bad mode");
    }
    for bad in ["644", "0o644", "06444", "rw-r"] {
        let mut v = original.clone();
        v["files"][0]["mode"] = bad.into();
        verify(&write(&v))
            .code(1)
            .stderr_has("has an unsafe path or a bad mode");
    }
    let mut v = original.clone();
    v["surprise"] = true.into();
    verify(&write(&v))
        .code(1)
        .stderr_has("not a sota-stage manifest");
    verify(&s.dir.join("missing.json"))
        .code(3)
        .stderr_has("cannot read `");
}

#[test]
fn strays_in_the_tools_own_folders_are_found_and_the_recipes_are_not() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "c.zip");
    let dev = dir.join("image");
    let manifest = dir.join("m.json");
    stage_device_cmd(&zip, "shared-cred", &dev)
        .arg("--manifest")
        .arg(&manifest)
        .run()
        .success();
    // var/sota/import holds no staged file of its own for shared-cred (only
    // repo/), yet it is the tool's folder: a planted file there is found.
    fs::write(dev.join("var/sota/import/planted.pem"), "x").unwrap();
    fs::create_dir(dev.join("usr/lib/sota/extra")).unwrap();
    // The recipe's own files beside them are not the manifest's business.
    fs::create_dir_all(dev.join("usr/bin")).unwrap();
    fs::write(dev.join("usr/bin/tool"), "x").unwrap();
    fs::write(dev.join("var/other"), "x").unwrap();
    let run = sota(["verify", "--manifest"])
        .arg(&manifest)
        .arg("--device-root")
        .arg(&dev)
        .run();
    run.code(1)
        .stdout_has("extra: device:var/sota/import/planted.pem is not in the manifest")
        .stdout_has("extra: device:usr/lib/sota/extra is not in the manifest")
        .stdout_lacks("usr/bin")
        .stdout_lacks("var/other")
        .stdout_has("2 differences");
}

/// A staged file that grew to 64 GiB (sparse) is reported as changed, and
/// verify holds no more than a buffer of it: it runs with 1 GiB of address
/// space, so a verify that reads the whole file into memory fails here
/// (seen: it aborts at once) instead of filling the machine's memory. That
/// verify decides from the size without reading is not asserted (with the
/// size check removed, this passes after hashing 64 GiB of zeros, 91 s).
#[test]
fn a_huge_file_in_place_of_a_staged_one_is_changed_in_bounded_memory() {
    let s = Staged::new();
    let fragment = s.dev.join(FRAGMENT);
    fs::File::options()
        .write(true)
        .open(&fragment)
        .unwrap()
        .set_len(64 << 30)
        .unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_sota-stage"))
        .arg("verify")
        .arg("--manifest")
        .arg(&s.manifest)
        .arg("--device-root")
        .arg(&s.dev)
        .arg("--host-root")
        .arg(&s.host)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned()),
        (
            Some(1),
            format!(
                "changed: device:{FRAGMENT} (content differs)\nnot ok: 11 files checked, 1 difference\n"
            )
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
