//! The image QA class `sota-stage-audit` with the real OpenEmbedded-Core,
//! BitBake and meta-updater of scarthgap and wrynose, offline, parse only
//! (`bitbake-getvar`): its tasks' place in real images, with OE-core's image
//! classes and meta-updater's image types, and their signature flags. The
//! build folders, the user bitbake runs as and how to run these tests are
//! those of `tests/oe.rs` (its opening comment); every test here is
//! `#[ignore = "needs OE_TEST_USER"]`: run them with
//! `OE_TEST_USER=oe cargo test --locked --test oe_audit -- --ignored` as
//! root (`.ci/run` does).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::oe::{release_tests, write_fresh, Oe};
use common::repo;

/// The image QA class `sota-stage-audit` with OE-core's real image classes:
/// an image recipe with `IMAGE_CLASSES += "sota-stage-audit"` parses, gets
/// `do_sota_audit` after `do_rootfs` and before `do_image`, reads the
/// archive's content through `file-checksums` (the path excluded from the
/// signature), and builds on `sota-stage-native`; with `SOTA_STAGE_TOOL =
/// "host"` it does not, the host tool's version is in `do_sota_audit`'s
/// signature, and a too old tool stops the parse. `bitbake-getvar` parses
/// only the recipe: the image's own graph (kernel, rootfs tools) is masked.
fn audit_class_in_an_image(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let text = "SUMMARY = \"An image the sota-stage-audit class checks (tests/oe_audit.rs)\"\n\
                LICENSE = \"MIT\"\n\
                IMAGE_CLASSES += \"sota-stage-audit\"\n\
                IMAGE_INSTALL = \"sota-credentials\"\n\
                IMAGE_LINGUAS = \"\"\n\
                inherit core-image\n";
    oe.recipe("sota-audit-test-image", text);
    // Its settings (a failed run may have left some); never without the
    // recipe, which would make it a dangling bbappend.
    oe.append("sota-audit-test-image", "");
    let value = |args: &[&str]| oe.getvar("sota-audit-test-image", args);
    let tasks = value(&["__BBTASKS"]);
    assert!(tasks.contains("'do_sota_audit'"), "{tasks}");
    assert_eq!(value(&["-f", "deps", "do_sota_audit"]), "['do_rootfs']");
    let image = value(&["-f", "deps", "do_image"]);
    assert!(image.contains("'do_sota_audit'"), "{image}");
    let archive = repo().join("examples/credentials.zip");
    assert_eq!(
        value(&["-f", "file-checksums", "do_sota_audit"]),
        format!("{}:True", archive.display())
    );
    let excluded = value(&["-f", "vardepsexclude", "do_sota_audit"]);
    assert!(
        excluded
            .split_whitespace()
            .any(|v| v == "SOTA_PACKED_CREDENTIALS"),
        "{excluded}"
    );
    let depends = value(&["DEPENDS"]);
    assert!(
        depends.split_whitespace().any(|d| d == "sota-stage-native"),
        "{depends}"
    );
    let audit = value(&["do_sota_audit"]);
    assert!(
        audit.contains("sota-stage audit") && audit.contains("--credentials"),
        "{audit}"
    );

    // Host-tool mode: no sota-stage-native (so no Rust), the tool's version
    // in the task's signature.
    oe.append("sota-audit-test-image", "SOTA_STAGE_TOOL = \"host\"\n");
    let depends = value(&["DEPENDS"]);
    assert!(
        !depends.split_whitespace().any(|d| d == "sota-stage-native"),
        "{depends}"
    );
    let vardeps = value(&["-f", "vardeps", "do_sota_audit"]);
    assert!(
        vardeps
            .split_whitespace()
            .any(|v| v == "SOTA_STAGE_TOOL_VERSION"),
        "{vardeps}"
    );
    assert_eq!(
        value(&["SOTA_STAGE_TOOL_VERSION"]),
        env!("CARGO_PKG_VERSION")
    );
    oe.append(
        "sota-audit-test-image",
        "SOTA_STAGE_TOOL = \"host\"\nSOTA_STAGE_HOST_MIN_VERSION = \"99.0\"\n",
    );
    let out = oe.fails(&[
        "bitbake-getvar",
        "-r",
        "sota-audit-test-image",
        "--value",
        "DEPENDS",
    ]);
    assert!(
        out.contains(&format!(
            "SOTA_STAGE_TOOL is \"host\" but the host's sota-stage is {}, older than 99.0",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    oe.append("sota-audit-test-image", "");
}

/// The class's audits of what meta-updater's image types make, with the
/// real OE-core and meta-updater classes (`image_types_ostree`,
/// `image_types_ota`, OE-core's `wic` and conversions): an image of
/// `ostreecommit ostreepush garagesign ota-ext4 wic.gz ext4.xz` gets
/// `do_sota_audit_ostree` after `do_image_ostreecommit` and before
/// `do_image_ostreepush`, `do_image_garagesign` and `do_image_complete`,
/// under meta-updater's `${OSTREE_REPO}/ostree.lock`, auditing the commit
/// named in `${WORKDIR}/ostree_manifest`; and `do_sota_audit_images` after
/// the image types it reads (the compressed ones by their base type) and
/// before `do_image_complete`. The archive and each
/// `SOTA_STAGE_AUDIT_SECRET_FILES` file are in every audit task's
/// signature by content (`file-checksums`), never by path. meta-updater's
/// image types need `usrmerge`, which its distro sets: the recipe adds it.
/// What the tasks' shell does is run for real by tests/bitbake_audit.rs
/// (a real OSTree repository and real images); a real image build needs
/// natives that cannot be built offline.
fn audit_class_with_meta_updater_images(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let text = "SUMMARY = \"An OTA image the sota-stage-audit class checks (tests/oe_audit.rs)\"\n\
                LICENSE = \"MIT\"\n\
                DISTRO_FEATURES:append = \" usrmerge\"\n\
                IMAGE_CLASSES += \"image_types_ostree image_types_ota sota-stage-audit\"\n\
                IMAGE_INSTALL = \"sota-credentials\"\n\
                IMAGE_LINGUAS = \"\"\n\
                inherit core-image\n\
                IMAGE_FSTYPES = \"ostreecommit ostreepush garagesign ota-ext4 wic.gz ext4.xz\"\n";
    oe.recipe("sota-audit-ota-image", text);
    let secret = oe.dir.join("meta-sota-stage-test/fleet-ca.key");
    if !secret.exists() {
        write_fresh(&secret, "TEST-ONLY not a key\n");
    }
    oe.append(
        "sota-audit-ota-image",
        &format!("SOTA_STAGE_AUDIT_SECRET_FILES = \"{}\"\n", secret.display()),
    );
    let value = |args: &[&str]| oe.getvar("sota-audit-ota-image", args);
    let deps = |task: &str| -> BTreeSet<String> {
        value(&["-f", "deps", task])
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|t| t.trim().trim_matches('\'').to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    };
    let has = |set: &BTreeSet<String>, task: &str| set.contains(task);

    // The OSTree commit: after it is made, before it is pushed or signed.
    assert_eq!(
        deps("do_sota_audit_ostree"),
        BTreeSet::from(["do_image_ostreecommit".to_owned()])
    );
    for later in [
        "do_image_ostreepush",
        "do_image_garagesign",
        "do_image_complete",
    ] {
        let d = deps(later);
        assert!(has(&d, "do_sota_audit_ostree"), "{later}: {d:?}");
    }
    assert_eq!(
        value(&["-f", "lockfiles", "do_sota_audit_ostree"]).trim(),
        "${OSTREE_REPO}/ostree.lock"
    );
    assert_eq!(
        value(&["-f", "lockfiles", "do_image_ostreecommit"]).trim(),
        "${OSTREE_REPO}/ostree.lock",
        "meta-updater's own lock, which the audit must share"
    );
    let body = value(&["do_sota_audit_ostree"]);
    assert!(
        body.contains("--ostree-ref") && body.contains("/ostree_manifest"),
        "{body}"
    );

    // The image files: after the types it reads, before do_image_complete.
    assert_eq!(
        deps("do_sota_audit_images"),
        BTreeSet::from(["do_image_ext4", "do_image_ota_ext4", "do_image_wic"].map(str::to_owned))
    );
    assert!(has(&deps("do_image_complete"), "do_sota_audit_images"));
    assert_eq!(
        value(&["SOTA_STAGE_AUDIT_IMAGES"]),
        "ota-ext4 wic.gz ext4.xz"
    );

    // Every audit task: the archive and the secret file by content, their
    // paths out of the signature.
    let archive = repo().join("examples/credentials.zip");
    for task in [
        "do_sota_audit",
        "do_sota_audit_ostree",
        "do_sota_audit_images",
    ] {
        let sums: BTreeSet<String> = value(&["-f", "file-checksums", task])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            sums,
            BTreeSet::from([
                format!("{}:True", archive.display()),
                format!("{}:True", secret.display())
            ]),
            "{task}"
        );
        let excluded = value(&["-f", "vardepsexclude", task]);
        for var in ["SOTA_PACKED_CREDENTIALS", "SOTA_STAGE_AUDIT_SECRET_FILES"] {
            assert!(
                excluded.split_whitespace().any(|v| v == var),
                "{task}: {excluded}"
            );
        }
    }

    // Without meta-updater's types there is nothing more to audit.
    oe.append("sota-audit-ota-image", "IMAGE_FSTYPES = \"tar.bz2\"\n");
    let tasks = value(&["__BBTASKS"]);
    assert!(tasks.contains("'do_sota_audit'"), "{tasks}");
    assert!(!tasks.contains("do_sota_audit_ostree"), "{tasks}");
    assert!(!tasks.contains("do_sota_audit_images"), "{tasks}");
    oe.append("sota-audit-ota-image", "");
}

release_tests!(scarthgap, wrynose: [
    audit_class_with_meta_updater_images,
    audit_class_in_an_image,
]);
