//! `sota-stage-audit.bbclass` with a real BitBake: an image whose root file
//! system holds a planted host secret fails in `do_sota_audit` with the
//! tool's message (paths, never the secret) before `do_image`; a clean one
//! passes; no secret and no archive path reaches a signature; with
//! `SOTA_STAGE_TOOL = "host"` the image builds no `sota-stage-native` and
//! audits with the tool in `HOSTTOOLS_DIR`, by version in the signature.
//!
//! The build folder: `tests/bitbake/meta-test` (the stand-in for OE-core's
//! base classes, and `sota-stage-native` as the binary cargo just built),
//! `tests/bitbake_audit/meta-image-standin` (an image class whose
//! `do_rootfs` copies a tree the test staged with `sota-stage stage`), and
//! the real `meta-layer-snippets`.
//!
//! Every test here needs a BitBake and is `#[ignore = "needs BITBAKE"]`;
//! `.ci/run` runs the ignored tests with `BITBAKE` set.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{bitbake, walk, write_dated, Build, Creds, Outcome, Pki, OAUTH2_SECRET};

/// A build folder with an image recipe, `test-image`, whose root file
/// system is `rootfs-src` (staged by the test): the stand-in OE-core, the
/// stand-in image class and the real meta-layer-snippets.
fn image_build(bitbake: &Path) -> Build {
    let mut build = Build::new(
        bitbake,
        &[
            "tests/bitbake/meta-test",
            "tests/bitbake_audit/meta-image-standin",
            "meta-layer-snippets",
        ],
    );
    build.set("TEST_ROOTFS_SOURCE", rootfs_src(&build));
    build.set("IMAGE_CLASSES", "sota-stage-audit");
    build
}

fn rootfs_src(build: &Build) -> PathBuf {
    build.dir.join("rootfs-src")
}

fn image_tar(build: &Build) -> PathBuf {
    build
        .top()
        .join("tmp/work/test-image-1.0-r0/test-image.rootfs.tar")
}

/// `bitbake -S none test-image`: do_sota_audit's newest sigdata, decompressed.
fn audit_sigdata(build: &Build) -> serde_json::Value {
    build.run(&["-S", "none", "test-image"]).ok();
    build.sigdata("test-image-1.0-r0", "do_sota_audit")
}

/// An [`image_build`] whose root file system is staged for shared-cred from
/// a typical archive, which `SOTA_PACKED_CREDENTIALS` names: the build, its
/// PKI and the archive.
fn staged_build() -> (Build, Pki, PathBuf) {
    let mut build = image_build(&bitbake("bitbake_audit"));
    let pki = Pki::new(&build.dir);
    let zip = Creds::typical(&pki).write_to(&build.dir, "inputs/credentials.zip");
    common::sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .arg("--device-root")
        .arg(rootfs_src(&build))
        .run()
        .success();
    // A root file system has more than the credentials.
    build.dir.write("rootfs-src/etc/hostname", "test-board\n");
    build.set("SOTA_PACKED_CREDENTIALS", &zip);
    (build, pki, zip)
}

/// Adds the client secret to the image only (`TEST_IMAGE_EXTRA`, not to the
/// root file system) and builds: the build fails, without the secret in
/// its output.
#[track_caller]
fn fails_with_a_leak_in_the_image_only(build: &mut Build) -> Outcome {
    let extra = build.dir.write(
        "extra/push.conf",
        format!("client_secret={OAUTH2_SECRET}\n"),
    );
    build.set("TEST_IMAGE_EXTRA", &extra);
    let out = build.run(&["test-image"]);
    out.failed();
    assert!(!out.log.contains(OAUTH2_SECRET));
    out
}

#[test]
#[ignore = "needs BITBAKE"]
fn a_clean_image_passes_the_audit_and_is_built() {
    let (build, _, _) = staged_build();
    let out = build.run(&["test-image"]);
    out.ok();
    out.task_ran("do_sota_audit");
    assert!(image_tar(&build).is_file());
    let log = fs::read_to_string(
        walk(&build.top().join("tmp/work/test-image-1.0-r0/temp"), |_| {
            false
        })
        .into_iter()
        .find(|(rel, _)| rel.to_string_lossy().starts_with("log.do_sota_audit."))
        .expect("a log of do_sota_audit")
        .1
        .path(),
    )
    .unwrap();
    assert!(log.contains("ok: "), "{log}");
}

#[test]
#[ignore = "needs BITBAKE"]
fn a_planted_leak_fails_the_build_with_the_paths_and_no_secret() {
    let (build, _, zip) = staged_build();
    // As meta-updater once did: the whole archive on the device; and a
    // recipe that put the client secret into a config file.
    fs::copy(&zip, rootfs_src(&build).join("var/sota/credentials.zip")).unwrap();
    build.dir.write(
        "rootfs-src/etc/garage/push.conf",
        format!("client_secret={OAUTH2_SECRET}\n"),
    );
    let out = build.run(&["test-image"]);
    out.failed();
    out.task_ran("do_sota_audit");
    out.task_not_run("do_image");
    assert!(!image_tar(&build).exists());
    for needle in [
        "sota-stage audit: host secrets of SOTA_PACKED_CREDENTIALS",
        "error: var/sota/credentials.zip: is the credentials archive",
        r#"error: etc/garage/push.conf: holds the value of "oauth2.client_secret" in treehub.json"#,
    ] {
        out.log_has(needle);
    }
    assert!(!out.log.contains(OAUTH2_SECRET), "{}", out.log);
    // Nothing of the secret anywhere bitbake wrote but the image itself:
    // logs, run files, signatures.
    let rootfs = Path::new("tmp/work/test-image-1.0-r0/rootfs");
    let top = build.top();
    for (rel, entry) in walk(&top, |rel| rel == rootfs) {
        if !entry.file_type().is_file() || rel.to_string_lossy().contains("fifo.") {
            continue;
        }
        let bytes = fs::read(entry.path()).unwrap();
        assert!(
            !bytes
                .windows(OAUTH2_SECRET.len())
                .any(|w| w == OAUTH2_SECRET.as_bytes()),
            "the client secret is in {}",
            rel.display()
        );
    }
}

#[test]
#[ignore = "needs BITBAKE"]
fn a_readable_var_sota_fails_and_without_credentials_there_is_no_audit() {
    let (mut build, _, _) = staged_build();
    fs::set_permissions(
        rootfs_src(&build).join("var/sota"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = build.run(&["test-image"]);
    out.failed();
    out.log_has("error: var/sota: is aktualizr's storage folder with mode 0755");
    // No archive configured: nothing to audit against, no task.
    build.set("SOTA_PACKED_CREDENTIALS", "");
    let out = build.run(&["test-image"]);
    out.ok();
    out.task_not_run("do_sota_audit");
    out.task_ran("do_image");
}

#[test]
#[ignore = "needs BITBAKE"]
fn the_archive_is_in_the_signature_by_content_not_by_path() {
    let (mut build, pki, zip) = staged_build();
    build.run(&["test-image"]).ok();
    // The task's own part of its signature (the stand-in's do_rootfs is
    // nostamp, so the whole task hash changes on every run): the hash of
    // its variables and the checksums of its files.
    let sig = |build: &Build| {
        let json = audit_sigdata(build);
        let text = json.to_string();
        assert!(
            !text.contains("credentials.zip\"/")
                && !text.contains(&build.dir.path().display().to_string()),
            "a path in the signature: {text}"
        );
        (
            json["basehash"].clone(),
            json["file_checksum_values"].clone(),
        )
    };
    let first = sig(&build);
    let moved = build.dir.join("elsewhere/credentials.zip");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::copy(&zip, &moved).unwrap();
    build.set("SOTA_PACKED_CREDENTIALS", &moved);
    assert_eq!(
        sig(&build),
        first,
        "moving the archive changed the signature"
    );
    // Other bytes: another signature.
    let other = Creds::typical(&pki).build();
    fs::remove_file(&moved).unwrap();
    write_dated(&moved, other, SystemTime::now() + Duration::from_secs(5));
    assert_ne!(sig(&build), first, "new credentials, same signature");
}

/// `SOTA_STAGE_AUDIT_SECRET_FILES`: a fleet CA key planted in the image
/// fails the audit, named by the file's name; the key's content is in the
/// task's signature, its path is not.
#[test]
#[ignore = "needs BITBAKE"]
fn a_secret_file_of_the_layer_variable_fails_the_audit_and_is_signed_by_content() {
    let (mut build, pki, _) = staged_build();
    let key = build.dir.join("keys/fleet-ca.key");
    fs::create_dir_all(key.parent().unwrap()).unwrap();
    fs::write(&key, pki.ca().key_pem()).unwrap();
    fs::create_dir_all(rootfs_src(&build).join("etc/ssl/private")).unwrap();
    fs::copy(&key, rootfs_src(&build).join("etc/ssl/private/ca.key")).unwrap();
    // Not named: the image passes (the fleet CA is not in the archive).
    build.run(&["test-image"]).ok();
    build.set("SOTA_STAGE_AUDIT_SECRET_FILES", &key);
    let out = build.run(&["test-image"]);
    out.failed();
    out.log_has("error: etc/ssl/private/ca.key: is the secret file 'fleet-ca.key'");
    assert!(!out.log.contains("BEGIN EC PRIVATE KEY") && !out.log.contains("BEGIN PRIVATE KEY"));
    // Signed by content, not by path.
    fs::remove_file(rootfs_src(&build).join("etc/ssl/private/ca.key")).unwrap();
    build.run(&["test-image"]).ok();
    let json = audit_sigdata(&build);
    let text = json.to_string();
    assert!(
        text.contains("fleet-ca.key"),
        "no checksum of the key: {text}"
    );
    assert!(
        !text.contains(&key.display().to_string()),
        "the key's path is signed: {text}"
    );
    assert!(
        !text.contains(&build.dir.path().display().to_string()),
        "{text}"
    );
}

/// With `ext4` in `IMAGE_FSTYPES`, the image file is audited after it is
/// made and before `do_image_complete`: a file added to the image only
/// (not to the root file system) fails the build there.
#[test]
#[ignore = "needs BITBAKE"]
fn an_image_file_of_image_fstypes_is_audited_before_it_is_deployed() {
    let (mut build, _, _) = staged_build();
    build.set("IMAGE_FSTYPES", "ext4 ext4.gz");
    let out = build.run(&["test-image"]);
    out.ok();
    out.task_ran("do_sota_audit_images");
    out.task_ran("do_image_complete");
    let out = fails_with_a_leak_in_the_image_only(&mut build);
    out.task_ran("do_sota_audit"); // the root file system is clean
    out.task_not_run("do_image_complete");
    out.log_has("in the image file test-image.rootfs.ext4")
        .log_has("error: etc/push.conf: holds");
}

/// With meta-updater's `ostreepush` in `IMAGE_FSTYPES`, the commit the
/// build makes is audited after `do_image_ostreecommit` and before
/// `do_image_ostreepush`, under the repository's lock; only that commit:
/// an earlier leaky commit in the repository does not fail a clean build.
#[test]
#[ignore = "needs BITBAKE"]
fn the_ostree_commit_of_the_build_is_audited_before_it_is_pushed() {
    let (mut build, _, _) = staged_build();
    build.set("IMAGE_FSTYPES", "ostreepush");
    let repo = build.dir.join("ostree_repo");
    build.set("OSTREE_REPO", &repo);
    // An earlier build's commit, with the secret, on another branch.
    let old = build.dir.write(
        "old-tree/etc/push.conf",
        format!("client_secret={OAUTH2_SECRET}\n"),
    );
    common::Cmd::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["init", "--mode=archive-z2"])
        .run()
        .success();
    common::Cmd::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["commit", "--branch=old", "--subject=old"])
        .arg(format!(
            "--tree=dir={}",
            old.parent().unwrap().parent().unwrap().display()
        ))
        .run()
        .success();
    let out = build.run(&["test-image"]);
    out.ok();
    out.task_ran("do_sota_audit_ostree");
    out.task_ran("do_image_ostreepush");
    // This build's commit has it: stopped before the push.
    let out = fails_with_a_leak_in_the_image_only(&mut build);
    out.task_ran("do_sota_audit_ostree");
    out.task_not_run("do_image_ostreepush"); // a leaky commit is not pushed
    out.log_has("in the OSTree commit")
        .log_has("!/etc/push.conf");
}

/// `SOTA_STAGE_TOOL = "host"`, as with `sota-stage.bbclass`: the image has
/// no `sota-stage-native` in its graph and audits with the build host's
/// tool, found in `HOSTTOOLS_DIR` (on `PATH` after the sysroot, as OE-core
/// puts it, before anything of the host's PATH: a `sota-stage` the machine
/// has installed must not shadow it); the tool's version is in
/// `do_sota_audit`'s signature, its path
/// is not; a too old or missing tool stops the parse with
/// `sota-stage.bbclass`'s message.
#[test]
#[ignore = "needs BITBAKE"]
fn in_host_tool_mode_the_image_audits_with_the_host_tool_and_builds_no_native_tool() {
    let (mut build, _, _) = staged_build();
    // The default (native): the tool's recipe is in the graph.
    let graph = build.graph("test-image");
    assert!(
        graph.iter().any(|pn| pn == "sota-stage-prebuilt-native"),
        "{graph:?}"
    );

    // The host tool: a script that records its arguments, then runs the
    // binary cargo built.
    let calls = build.dir.join("host-tool-calls");
    let tool = build.dir.write(
        "hosttools/sota-stage",
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            env!("CARGO_BIN_EXE_sota-stage")
        ),
    );
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    let hosttools = tool.parent().unwrap().display().to_string();
    build.set("SOTA_STAGE_TOOL", "host");
    build.set("HOSTTOOLS_DIR", &hosttools);
    // Before the PATH the test inherited, after the sysroot (the harness's
    // bitbake.conf prepends that later): as OE-core, whose PATH is the
    // sysroot then HOSTTOOLS_DIR and nothing of the host's. Appended, a
    // sota-stage of the machine's (/usr/local/bin, ~/.cargo/bin) came
    // first and the recording script never ran.
    build.set("PATH:prepend", "${HOSTTOOLS_DIR}:");
    let graph = build.graph("test-image");
    assert!(
        !graph.iter().any(|pn| pn.contains("sota-stage")),
        "the tool's recipe is in the graph: {graph:?}"
    );
    assert!(graph.iter().any(|pn| pn == "test-image"), "{graph:?}");

    let out = build.run(&["test-image"]);
    out.ok();
    out.task_ran("do_sota_audit");
    out.task_not_run("do_populate_sysroot");
    assert!(image_tar(&build).is_file());
    let calls = fs::read_to_string(&calls).unwrap();
    assert!(
        calls.lines().any(|l| l.starts_with("audit --credentials ")),
        "the host tool did not audit: {calls}"
    );

    let sig = audit_sigdata(&build);
    assert_eq!(
        sig["varvals"]["SOTA_STAGE_TOOL_VERSION"],
        env!("CARGO_PKG_VERSION"),
        "{}",
        sig["varvals"]
    );
    assert!(
        !sig.to_string().contains(&hosttools),
        "the host tool's path is in the signature: {sig}"
    );

    let how = "install it on the build host (`cargo install --path . --locked` in the \
               sota-stage checkout) and add HOSTTOOLS += \"sota-stage\" to local.conf";
    build.set("SOTA_STAGE_HOST_MIN_VERSION:pn-test-image", "99.0");
    let out = build.run(&["test-image"]);
    out.failed();
    let older = format!(
        "SOTA_STAGE_TOOL is \"host\" but the host's sota-stage is {}, older than 99.0: {how}",
        env!("CARGO_PKG_VERSION")
    );
    out.log_has(&older);
    out.task_not_run("do_sota_audit");

    build.set("SOTA_STAGE_HOST_MIN_VERSION:pn-test-image", "0.1.0");
    build.set("HOSTTOOLS_DIR:pn-test-image", "/nonexistent");
    let out = build.run(&["test-image"]);
    out.failed();
    let missing = format!(
        "SOTA_STAGE_TOOL is \"host\" but the tasks have no sota-stage \
         (/nonexistent/sota-stage is missing): {how}"
    );
    out.log_has(&missing);
}
