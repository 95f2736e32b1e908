//! meta-updater's provisioning recipes switched over to sota-stage by the
//! dynamic layer's `.bbappend`s, with a real BitBake: the stand-in
//! meta-updater (`tests/bitbake/meta-updater-standin`, its recipes reduced
//! to their SRC_URI, DEPENDS, do_install and FILES) on the stand-in OE-core
//! of `tests/bitbake.rs` (whose opening comment tells the build folder).
//!
//! Every test here needs a BitBake and is `#[ignore = "needs BITBAKE"]`, so
//! a plain `cargo test` lists them as ignored, never as passed. `.ci/run`
//! sets `BITBAKE` and runs them with `--include-ignored`; run that way
//! without `BITBAKE`, they fail and say how to get one.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;

use common::bitbake_checks::{
    assert_no_leak, assert_tree, credentials_build, read, secret_needles, sstate_recipes,
    tasks_after_check, with_typical_archive, write_input, zip_names, PIN,
};
use common::{bitbake, Creds, Pki, OAUTH2_SECRET};

/// meta-updater's recipes for shared credentials, switched over by the
/// dynamic layer's .bbappends.
#[test]
#[ignore = "needs BITBAKE"]
fn meta_updater_shared_cred_recipes_stage_with_sota_stage() {
    let (mut build, pki, archive) = with_typical_archive(&bitbake("bitbake_meta_updater"), true);
    let recipes = [
        "aktualizr-shared-prov-creds",
        "aktualizr-shared-prov",
        "aktualizr-hwid",
    ];

    let run = build.run(&recipes);
    run.ok();
    assert!(
        run.ran
            .iter()
            .all(|t| !t.starts_with("aktualizr:") && !t.starts_with("zip-native:")),
        "aktualizr and zip-native are not needed any more: {:?}",
        run.ran
    );
    let creds = build.image("aktualizr-shared-prov-creds-1.0-r0");
    assert_tree(
        &creds,
        &[
            ("var/sota/sota_provisioning_credentials.zip", 0o600),
            ("var/sota/import/repo/root.json", 0o644),
        ],
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    assert_eq!(
        zip_names(&creds.join("var/sota/sota_provisioning_credentials.zip")),
        ["autoprov.url", "autoprov_credentials.p12"]
    );
    assert!(
        !build
            .top()
            .join("tmp/work/aktualizr-shared-prov-creds-1.0-r0/credentials.zip")
            .exists(),
        "meta-updater's SRC_URI entry for the archive is gone"
    );
    assert_eq!(
        sstate_recipes(&build),
        ["aktualizr-hwid", "sota-stage-prebuilt-native"],
        "only the recipes without secrets are in the sstate cache"
    );
    let shared = build.image("aktualizr-shared-prov-1.0-r0");
    assert_tree(
        &shared,
        &[("usr/lib/sota/conf.d/20-sota-shared-cred.toml", 0o644)],
        &[],
    );
    assert!(
        read(shared.join("usr/lib/sota/conf.d/20-sota-shared-cred.toml"))
            .contains("provision_path = \"/var/sota/sota_provisioning_credentials.zip\"")
    );
    let hwid = build.image("aktualizr-hwid-1.0-r0");
    assert_tree(
        &hwid,
        &[("usr/lib/sota/conf.d/40-hardware-id.toml", 0o644)],
        &[],
    );
    assert_eq!(
        read(hwid.join("usr/lib/sota/conf.d/40-hardware-id.toml")),
        "# The hardware ID of the primary ECU (sota-stage).\n[provision]\nprimary_ecu_hardware_id = \"test-board\"\n"
    );

    // Moving the archive re-runs nothing; other content re-runs only the
    // recipe that stages it.
    let moved = build.input("moved/credentials.zip");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&archive, &moved).unwrap();
    build.set("SOTA_PACKED_CREDENTIALS", &moved);
    build.run(&recipes).ok().ran_nothing();
    write_input(
        &moved,
        Creds::typical(&pki)
            .tufrepo_url("https://tuf.example.test/other")
            .build(),
    );
    build
        .run(&recipes)
        .ok()
        .ran_exactly(&tasks_after_check("aktualizr-shared-prov-creds"));
    // meta-updater copied the whole archive into WORKDIR: no more.
    let needles = secret_needles(
        &build.dir,
        &[("the OAuth2 client secret", OAUTH2_SECRET)],
        &[],
    );
    assert_no_leak(&build, &needles);
}

/// meta-updater's recipes for device credentials (with and without an HSM),
/// switched over by the dynamic layer's .bbappends.
#[test]
#[ignore = "needs BITBAKE"]
fn meta_updater_device_cred_recipes_stage_with_sota_stage() {
    let mut build = credentials_build(&bitbake("bitbake_meta_updater"), true);
    let pki = Pki::new(&build.dir);
    let recipes = ["aktualizr-device-prov", "aktualizr-device-prov-hsm"];
    let dirs = [("var/sota", 0o700), ("var/sota/import", 0o700)];

    // Without an archive: the fragments only, as meta-updater does.
    let run = build.run(&recipes);
    run.ok().log_has("SOTA_HSM_PIN_FILE is not set");
    assert_tree(
        &build.image("aktualizr-device-prov-1.0-r0"),
        &[("usr/lib/sota/conf.d/20-sota-device-cred.toml", 0o644)],
        &[],
    );
    assert_tree(
        &build.image("aktualizr-device-prov-hsm-1.0-r0"),
        &[("usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml", 0o600)],
        &[],
    );

    // With one: the server URL, its CA and the pinned root too.
    let archive = build.input("credentials.zip");
    write_input(&archive, Creds::typical(&pki).build());
    write_input(&build.input("pin"), PIN);
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    build.set("SOTA_HSM_PIN_FILE", build.input("pin"));
    build
        .run(&recipes)
        .ok()
        .log_lacks("SOTA_HSM_PIN_FILE is not set");
    let common_files = [
        ("var/sota/import/gateway.url", 0o644),
        ("var/sota/import/root.crt", 0o644),
        ("var/sota/import/repo/root.json", 0o644),
    ];
    let mut files = common_files.to_vec();
    files.push(("usr/lib/sota/conf.d/20-sota-device-cred.toml", 0o644));
    assert_tree(&build.image("aktualizr-device-prov-1.0-r0"), &files, &dirs);
    let mut files = common_files.to_vec();
    files.push(("usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml", 0o600));
    let hsm = build.image("aktualizr-device-prov-hsm-1.0-r0");
    assert_tree(&hsm, &files, &dirs);
    assert!(
        read(hsm.join("usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml"))
            .contains(&format!("pass = \"{PIN}\""))
    );

    assert_eq!(
        sstate_recipes(&build),
        ["aktualizr-device-prov", "sota-stage-prebuilt-native"],
        "the HSM fragment (PIN) is not in the sstate cache"
    );
    let needles = secret_needles(&build.dir, &[], &[("the PIN", PIN)]);
    assert_no_leak(&build, &needles);
}
