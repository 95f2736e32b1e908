//! meta-layer-snippets with the real OpenEmbedded-Core, BitBake,
//! meta-updater and meta-openembedded of scarthgap and wrynose, offline
//! (`../shared/tools/oe`), without building anything: `bitbake -p`, `-e`,
//! `-g` and `-S none` (signatures of every task, no task run). The build
//! folders ([`Oe`]) are `tests/common/oe.rs`; the image audit class's tests
//! with real images are `tests/oe_audit.rs`, in the same folders.
//!
//! Build folders come from `scripts/oe/oe-build-dir.sh`, one per release and
//! kind, under `target/oe/<release>/<kind>`, kept between runs. Each masks
//! every recipe of OE-core, meta-openembedded and meta-updater outside the
//! task graphs checked here (`tests/oe/keep-recipes`, written by
//! `scripts/oe/oe-keep-recipes.sh`): a cold parse of about 130 recipes takes
//! 20 s here instead of 4 minutes for all 2771, a warm one 3 s.
//! - `plain`: OE-core and meta-updater with the layers it needs, no
//!   meta-layer-snippets: what a meta-updater build is before the layer;
//! - `layer`: plus meta-layer-snippets and a test layer of bbappends
//!   (`meta-sota-stage-test`) the tests fill in for single recipes;
//! - `opt-in`: plus `DISTRO_FEATURES:append = " sota-stage"` and
//!   `SOTA_STAGE_TOOL = "host"` (`scripts/oe/oe-build-check.sh` builds there).
//!
//! OE-core refuses to run as root: bitbake runs as `OE_TEST_USER` (`.ci/run`
//! makes the user `oe` and installs the Debian packages OE-core's sanity
//! check wants). The host-tool mode's `sota-stage` is the binary cargo built,
//! copied to `target/oe/hostbin` and put first on bitbake's PATH. Every test
//! here is `#[ignore = "needs OE_TEST_USER"]`; run them with
//! `OE_TEST_USER=oe cargo test --locked --test oe -- --ignored` as root
//! (`.ci/run` does).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;

use common::oe::{assert_tasks_changed, changed, host_bin, release_tests, write_fresh, Oe};
use common::{repo, walk, Creds, KeyAlg, P12Form, Pki, TestDir, Validity, OAUTH2_SECRET};
use sha2::{Digest, Sha256};

const P12_PASSWORD: &str = "TEST-ONLY-p12-pass-7f3a";

/// meta-updater's recipes that the dynamic layer switches over.
const SWITCHED: [&str; 5] = [
    "aktualizr-shared-prov-creds",
    "aktualizr-shared-prov",
    "aktualizr-device-prov",
    "aktualizr-device-prov-hsm",
    "aktualizr-hwid",
];
/// Recipes that build Rust.
const RUST: [&str; 4] = [
    "rust-native",
    "cargo-native",
    "rust-llvm-native",
    "sota-stage-native",
];

fn read_entry(zip: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut text = String::new();
    archive
        .by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// The layer parses with meta-updater and meta-openembedded: no error, no
/// warning that names it; meta-updater's five recipes get its bbappends.
fn parses_with_meta_updater(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let run = oe.ok(&["bitbake", "-p"]);
    let out = format!("{}{}", run.stdout, run.stderr);
    assert!(!out.contains("ERROR:"), "{out}");
    for line in out.lines().filter(|l| l.contains("WARNING:")) {
        assert!(
            !line.contains("meta-layer-snippets") && !line.contains("sota-stage"),
            "a warning from the layer: {line}"
        );
    }
    let appends = oe.ok(&["bitbake-layers", "show-appends"]).stdout;
    for recipe in SWITCHED {
        assert!(
            appends.contains(&format!(
                "meta-layer-snippets/dynamic-layers/sota/recipes-sota/aktualizr/{recipe}.bbappend"
            )),
            "{recipe}'s bbappend is not applied:\n{appends}"
        );
    }
}

/// Out of the box (the layer added, SOTA_* set, nothing else):
/// sota-credentials resolves, sota-stage-native builds from the checkout
/// around the layer, whose path is in no signature and whose content is.
fn out_of_the_box(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let env = oe.ok(&["bitbake", "-e", "sota-credentials"]).stdout;
    assert!(env.contains("\nDEPENDS=\"") && env.contains("sota-stage-native"));
    let graph = oe.graph("sota-credentials");
    assert!(graph.contains("sota-stage-native"), "{graph:?}");
    let env = oe.ok(&["bitbake", "-e", "sota-stage-native"]).stdout;
    let src_uri = env
        .lines()
        .find(|l| l.starts_with("SRC_URI=\""))
        .unwrap()
        .to_owned();
    assert!(
        src_uri.contains("file://src;subdir=sota-stage-0.1.0")
            && src_uri.contains("file://Cargo.lock;subdir=sota-stage-0.1.0"),
        "{src_uri}"
    );

    let checkout = repo().display().to_string();
    let here = oe.sigs(&["sota-stage-native"]);
    let fetch = oe.sigdata("sota-stage-native", "do_fetch");
    let checksums = fetch["file_checksum_values"].to_string();
    assert!(
        checksums.contains("main.rs") && checksums.contains("Cargo.lock"),
        "the checkout's files are in do_fetch's signature: {checksums}"
    );
    for (path, text) in oe.sigdata_texts() {
        let name = path.to_string_lossy();
        if name.contains("/sota-stage-native/") {
            assert!(
                !text.contains(&checkout),
                "the checkout's path is in {name}"
            );
        }
    }

    // The same sources in another folder: the same signatures.
    let copy = TestDir::new();
    for part in ["Cargo.toml", "Cargo.lock", "LICENSE-APACHE", "LICENSE-MIT"] {
        fs::copy(repo().join(part), copy.join(part)).unwrap();
    }
    for part in ["src", "templates"] {
        for (rel, entry) in walk(&repo().join(part), |_| false) {
            let to = copy.join(part).join(rel);
            if entry.file_type().is_dir() {
                fs::create_dir_all(&to).unwrap();
            } else {
                fs::copy(entry.path(), &to).unwrap();
            }
        }
    }
    oe.append(
        "sota-stage_%",
        &format!("SOTA_STAGE_CHECKOUT = \"{}\"\n", copy.path().display()),
    );
    let moved = oe.sigs(&["sota-stage-native"]);
    assert_eq!(
        changed(&here, &moved, &["sota-stage-native"]),
        BTreeSet::new(),
        "the checkout's path is in a signature"
    );
    // Other content: do_fetch and everything after it.
    let main = copy.join("src/main.rs");
    let mut text = fs::read_to_string(&main).unwrap();
    text.push_str("// another line\n");
    write_fresh(&main, text);
    let edited = oe.sigs(&["sota-stage-native"]);
    let diff = changed(&here, &edited, &["sota-stage-native"]);
    // They follow the sources.
    let tasks = ["do_fetch", "do_unpack", "do_compile", "do_install"];
    assert_tasks_changed(&diff, "sota-stage-native", &tasks, true);
    oe.append("sota-stage_%", "");

    // PACKAGECONFIG pkcs11 (the fleet CA key in an HSM): the cargo feature
    // on wrynose's Rust; on scarthgap's 1.75 the recipe is skipped, saying
    // why. Off by default.
    let flags = oe.getvar("sota-stage-native", &["CARGO_BUILD_FLAGS"]);
    assert!(!flags.contains("pkcs11"), "{flags}");
    oe.append("sota-stage_%", "PACKAGECONFIG:append = \" pkcs11\"\n");
    if release == "scarthgap" {
        let out = oe.fails(&["bitbake", "-e", "sota-stage-native"]);
        assert!(
            out.contains("PACKAGECONFIG pkcs11 (a fleet CA key in an HSM) needs Rust 1.77 or newer and RUSTVERSION is 1.75"),
            "{out}"
        );
    } else {
        let flags = oe.getvar("sota-stage-native", &["CARGO_BUILD_FLAGS"]);
        assert!(flags.ends_with(" --features pkcs11"), "{flags}");
    }
    oe.append("sota-stage_%", "");
}

/// Adding the layer changes no signature of meta-updater's recipes, nor of
/// anything they build on.
fn adding_the_layer_changes_no_signature(release: &'static str) {
    let mut targets = vec!["aktualizr"];
    targets.extend(SWITCHED);
    let plain = Oe::open(release, "plain").sigs(&targets);
    let layer = Oe::open(release, "layer");
    layer.reset_appends();
    let with = layer.sigs(&targets);
    assert_eq!(
        plain.keys().collect::<Vec<_>>(),
        with.keys().collect::<Vec<_>>(),
        "the same recipes"
    );
    assert_eq!(changed(&plain, &with, &[]), BTreeSet::new());
    let tasks: usize = plain.values().map(BTreeMap::len).sum();
    assert!(tasks > 500, "only {tasks} tasks compared");
}

/// `DISTRO_FEATURES:append = " sota-stage"` switches meta-updater's five
/// recipes over (they no longer depend on aktualizr) and changes nothing
/// of aktualizr.
fn the_opt_in_switches_meta_updater_over(release: &'static str) {
    let mut targets = vec!["aktualizr"];
    targets.extend(SWITCHED);
    let plain = Oe::open(release, "plain").sigs(&targets);
    let opt_in = Oe::open(release, "opt-in");
    let with = opt_in.sigs(&targets);
    let diff = changed(&plain, &with, &[]);
    // Switched over.
    for recipe in SWITCHED {
        assert_tasks_changed(&diff, recipe, &["do_install"], true);
    }
    // aktualizr's own build is unchanged; only its tasks that follow its
    // runtime dependencies (meta-updater makes it recommend the switched
    // recipes: do_package_qa, do_package_write_rpm, do_build, runtime SPDX)
    // follow them.
    let build = [
        "do_fetch",
        "do_unpack",
        "do_patch",
        "do_configure",
        "do_compile",
        "do_install",
        "do_package",
        "do_packagedata",
        "do_populate_sysroot",
    ];
    for task in build {
        assert!(with["aktualizr"].contains_key(task), "no aktualizr:{task}");
    }
    assert_tasks_changed(&diff, "aktualizr", &build, false);
    for recipe in ["aktualizr-shared-prov", "aktualizr-device-prov"] {
        let env = opt_in.ok(&["bitbake", "-e", recipe]).stdout;
        let depends = env.lines().find(|l| l.starts_with("DEPENDS=")).unwrap();
        assert!(
            !depends
                .trim_start_matches("DEPENDS=")
                .trim_matches('"')
                .split_whitespace()
                .any(|d| d == "aktualizr"),
            "{recipe} still depends on aktualizr: {depends}"
        );
    }
}

/// `SOTA_STAGE_TOOL = "host"`: no Rust recipe in the graph; the host tool's
/// version is in the signatures, its path is not; a too old one stops the
/// parse with what to do.
fn host_tool_mode(release: &'static str) {
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    oe.append("sota-credentials", "SOTA_STAGE_TOOL = \"host\"\n");
    let graph = oe.graph("sota-credentials");
    for rust in RUST {
        assert!(!graph.contains(rust), "{rust} in {graph:?}");
    }
    assert!(graph.contains("sota-credentials"));
    oe.sigs(&["sota-credentials"]);
    let install = oe.sigdata("sota-credentials", "do_install");
    assert_eq!(
        install["varvals"]["SOTA_STAGE_TOOL_VERSION"],
        env!("CARGO_PKG_VERSION"),
        "{}",
        install["varvals"]
    );
    let bin = host_bin().display().to_string();
    for (path, text) in oe.sigdata_texts() {
        assert!(
            !text.contains(&bin),
            "{} names the host tool's path",
            path.display()
        );
    }

    oe.append(
        "sota-credentials",
        "SOTA_STAGE_TOOL = \"host\"\nSOTA_STAGE_HOST_MIN_VERSION = \"99.0\"\n",
    );
    let out = oe.fails(&["bitbake", "-e", "sota-credentials"]);
    assert!(
        out.contains(&format!(
            "the host's sota-stage is {}, older than 99.0",
            env!("CARGO_PKG_VERSION")
        )) && out.contains("cargo install --path . --locked"),
        "{out}"
    );
    oe.append(
        "sota-credentials",
        "SOTA_STAGE_TOOL = \"host\"\nHOSTTOOLS_DIR = \"/nonexistent\"\n",
    );
    let out = oe.fails(&["bitbake", "-e", "sota-credentials"]);
    assert!(
        out.contains("SOTA_STAGE_TOOL is \"host\" but the tasks have no sota-stage")
            && out.contains("HOSTTOOLS += \"sota-stage\""),
        "{out}"
    );
    oe.append("sota-credentials", "");
}

/// sota-credentials and sota-credentials-host-native: the archive's content
/// change re-runs from do_sota_check, each side following only its own
/// entries; a move or rename changes nothing; no secret (OAuth2 secret,
/// key text, p12 password) and no input's path in any sigdata.
fn credentials_signatures(release: &'static str) {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, P12_PASSWORD, P12Form::Aes, 1);
    let (targets_pub, targets_sec) = pki.targets_ed25519();
    let url = format!("https://{}.device-gateway.example.test:443", pki.uuid());
    let base = || {
        Creds::typical(&pki)
            .p12(p12.clone())
            .url(&url)
            .file("targets.pub", targets_pub.as_str())
            .file("targets.sec", targets_sec.as_str())
    };
    let password = dir.join("secrets/p12-password");
    write_fresh(&password, format!("{P12_PASSWORD}\n"));
    let archive = dir.join("a/credentials.zip");
    write_fresh(&archive, base().build());
    let oe = Oe::open(release, "layer");
    oe.reset_appends();
    let settings = |archive: &Path| {
        format!(
            "SOTA_STAGE_TOOL = \"host\"\nSOTA_PACKED_CREDENTIALS = \"{}\"\nSOTA_P12_PASSWORD_FILE = \"{}\"\n",
            archive.display(),
            password.display()
        )
    };
    oe.append("sota-credentials", &settings(&archive));
    oe.append("sota-credentials-host-native", &settings(&archive));
    oe.append("sota-stage_%", "");
    let targets = ["sota-credentials", "sota-credentials-host-native"];
    let device = ["sota-credentials"];
    let host = ["sota-credentials-host-native"];
    let first = oe.sigs(&targets);

    // No secret and no input's path in any sigdata file.
    let targets_key = serde_json::from_str::<serde_json::Value>(&targets_sec).unwrap()["keyval"]
        ["private"]
        .as_str()
        .unwrap()
        .to_owned();
    let treehub = read_entry(&base().build(), "treehub.json");
    assert!(treehub.contains(OAUTH2_SECRET));
    let pem_line = client.key_pem().lines().nth(1).unwrap().to_owned();
    let sha = |s: &str| format!("{:x}", Sha256::digest(s.as_bytes()));
    let needles = [
        ("the OAuth2 secret", OAUTH2_SECRET.to_owned()),
        ("targets.sec's key", targets_key.clone()),
        ("the p12 client key", pem_line),
        ("the p12 password", P12_PASSWORD.to_owned()),
        ("the p12 password's sha256", sha(P12_PASSWORD)),
        (
            "the p12 password file's sha256",
            sha(&format!("{P12_PASSWORD}\n")),
        ),
        ("an input's path", dir.path().display().to_string()),
    ];
    let texts = oe.sigdata_texts();
    assert!(texts.len() > 20, "only {} sigdata files", texts.len());
    for (path, text) in &texts {
        for (what, needle) in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} is in {}",
                path.display()
            );
        }
    }

    // The same bytes moved and renamed: no signature changes.
    let moved = dir.join("elsewhere/renamed.zip");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&archive, &moved).unwrap();
    oe.append("sota-credentials", &settings(&moved));
    oe.append("sota-credentials-host-native", &settings(&moved));
    let after_move = oe.sigs(&targets);
    assert_eq!(
        changed(&first, &after_move, &[]),
        BTreeSet::new(),
        "a move changed signatures"
    );

    // Host-only content (treehub.json's OAuth2 secret, targets.sec): no
    // device signature changes; the host recipe re-runs from its check on.
    let from_check = |sigs: &BTreeMap<String, BTreeMap<String, String>>, recipe: &str| {
        let diff = changed(&first, sigs, &[recipe]);
        let from = ["do_sota_check", "do_install", "do_build"];
        assert_tasks_changed(&diff, recipe, &from, true);
        let before = [
            "do_fetch",
            "do_unpack",
            "do_patch",
            "do_prepare_recipe_sysroot",
        ];
        assert_tasks_changed(&diff, recipe, &before, false);
    };
    let (_, other_sec) = pki.targets_ed25519();
    let variants: [(&str, Vec<u8>); 2] = [
        (
            "treehub.json",
            base()
                .treehub_json(&treehub.replace(OAUTH2_SECRET, "TEST-ONLY-rotated-secret"))
                .build(),
        ),
        (
            "targets.sec",
            base().file("targets.sec", other_sec.as_str()).build(),
        ),
    ];
    // Each variant in turn: no signature of `still` (the `side` recipe)
    // changes; `rerun` re-runs from its check on.
    let each = |variants: [(&str, Vec<u8>); 2], still: &[&str], side: &str, rerun: &str| {
        for (what, bytes) in variants {
            write_fresh(&moved, bytes);
            let sigs = oe.sigs(&targets);
            assert_eq!(
                changed(&first, &sigs, still),
                BTreeSet::new(),
                "a change of {what} changed {side} signatures"
            );
            from_check(&sigs, rerun);
        }
    };
    each(variants, &device, "device", host[0]);

    // Device content (autoprov.url, the p12): the device recipe re-runs from
    // do_sota_check on; the host recipe never gets them.
    let other_p12 = pki.p12(
        &pki.client(KeyAlg::Ec, Validity::Normal),
        P12_PASSWORD,
        P12Form::Aes,
        1,
    );
    let variants: [(&str, Vec<u8>); 2] = [
        (
            "autoprov.url",
            base()
                .url(&format!(
                    "https://{}.other-gateway.example.test:443",
                    pki.uuid()
                ))
                .build(),
        ),
        ("the p12", base().p12(other_p12).build()),
    ];
    each(variants, &host, "host", device[0]);
    oe.append("sota-credentials", "");
    oe.append("sota-credentials-host-native", "");
}

release_tests!(scarthgap, wrynose: [
    parses_with_meta_updater,
    out_of_the_box,
    adding_the_layer_changes_no_signature,
    the_opt_in_switches_meta_updater_over,
    host_tool_mode,
    credentials_signatures,
]);
