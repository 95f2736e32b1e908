//! meta-layer-snippets with a real BitBake: the real `sota-stage.bbclass`,
//! `sota-credentials.bb`, `sota-credentials-host-native.bb` and the
//! meta-updater `.bbappend`s, run by the `bitbake` named in `BITBAKE`.
//!
//! The build folder comes from `tests/bitbake/`: `meta-test` stands in for
//! OE-core (its task names and order, OE-core's signature settings, a
//! stand-in sstate cache and installed-vs-shipped check) and provides
//! `sota-stage-native` as the binary cargo just built; the real
//! `sota-stage_*.bb` is parsed with stub cargo classes and skips itself (no
//! source URL). `meta-updater-standin` holds meta-updater's provisioning
//! recipes reduced to their SRC_URI, DEPENDS, do_install and FILES.
//!
//! Every test here needs a BitBake and is `#[ignore = "needs BITBAKE"]`, so
//! a plain `cargo test` lists them as ignored, never as passed. `.ci/run`
//! sets `BITBAKE` and runs them with `--include-ignored`; run that way
//! without `BITBAKE`, they fail and say how to get one.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;

use common::bitbake_checks::{
    assert_no_leak, assert_tree, credentials_build, pem_body_line, read, secret_needles,
    sstate_recipes, tasks_after_check, tree_modes, with_typical_archive, write_input, zip_names,
    PIN,
};
use common::{
    bitbake, copy_tree, repo, upstream, Creds, KeyAlg, P12Form, Pki, Validity, HOST_FILES,
    OAUTH2_SECRET,
};

const P12_PASSWORD: &str = "TEST-ONLY-p12-pass-7319";
const PIN_2: &str = "TEST-ONLY-pin-5150";

#[test]
#[ignore = "needs BITBAKE"]
fn shared_cred_device_and_host_files_and_their_signatures() {
    let mut build = credentials_build(&bitbake("bitbake"), false);
    let pki = Pki::new(&build.dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, P12_PASSWORD, P12Form::Aes, 1);
    let (targets_pub, targets_sec) = pki.targets_rsa();
    let rsa_pem = serde_json::from_str::<serde_json::Value>(&targets_sec).unwrap()["keyval"]
        ["private"]
        .as_str()
        .unwrap()
        .to_owned();
    let creds_at = |tufrepo: &str, url: &str| {
        Creds::typical(&pki)
            .p12(p12.clone())
            .file("targets.pub", targets_pub.as_str())
            .file("targets.sec", targets_sec.as_str())
            .tufrepo_url(tufrepo)
            .url(url)
            .build()
    };
    let device_url = format!("https://{}.device-gateway.example.test:443", pki.uuid());
    let creds = |tufrepo: &str| creds_at(tufrepo, &device_url);

    let archive = build.input("a/credentials.zip");
    write_input(&archive, creds("https://tuf.example.test/api/v1/user_repo"));
    write_input(&build.input("p12-password"), format!("{P12_PASSWORD}\n"));
    build.set("SOTA_PACKED_CREDENTIALS", &archive);
    build.set("SOTA_P12_PASSWORD_FILE", build.input("p12-password"));
    build.set("SOTA_CLIENT_PROV", "aktualizr-shared-prov");
    let both = ["sota-credentials", "sota-credentials-host-native"];

    // The device files in ${D}, packaged; the host files in the native sysroot.
    build.run(&both).ok();
    let image = build.image("sota-credentials-1.0-r0");
    assert_tree(
        &image,
        &[
            ("var/sota/sota_provisioning_credentials.zip", 0o600),
            ("var/sota/import/repo/root.json", 0o644),
            // It holds the p12 password.
            ("usr/lib/sota/conf.d/20-sota-shared-cred.toml", 0o600),
            ("usr/lib/sota/conf.d/40-hardware-id.toml", 0o644),
        ],
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    assert_eq!(
        zip_names(&image.join("var/sota/sota_provisioning_credentials.zip")),
        ["autoprov.url", "autoprov_credentials.p12"]
    );
    let fragment = read(image.join("usr/lib/sota/conf.d/20-sota-shared-cred.toml"));
    assert!(
        fragment.contains("provision_path = \"/var/sota/sota_provisioning_credentials.zip\""),
        "{fragment}"
    );
    assert!(
        fragment.contains(&format!("p12_password = \"{P12_PASSWORD}\"")),
        "{fragment}"
    );
    assert!(read(image.join("usr/lib/sota/conf.d/40-hardware-id.toml"))
        .contains("primary_ecu_hardware_id = \"test-board\""));
    let packaged = build
        .top()
        .join("tmp/work/sota-credentials-1.0-r0/packages-split/sota-credentials");
    assert_eq!(
        tree_modes(&packaged),
        tree_modes(&image),
        "the package ships all of ${{D}}"
    );
    assert!(
        build
            .top()
            .join("tmp/work/sota-credentials-1.0-r0/deploy-ipks/qemux86_64/sota-credentials.tar")
            .is_file(),
        "PACKAGE_ARCH is MACHINE_ARCH"
    );

    assert_tree(&build.host_files(), &HOST_FILES, &[]);
    assert_eq!(
        zip_names(&build.host_files().join("credentials.zip")),
        [
            "root.json",
            "targets.pub",
            "targets.sec",
            "treehub.json",
            "tufrepo.url"
        ],
        "the host-only archive has no device secret"
    );
    // The stand-in sstate cache: the tool is cached, the credentials never.
    assert_eq!(sstate_recipes(&build), ["sota-stage-prebuilt-native"]);
    let target_sysroot = build.top().join("tmp/sysroots/qemux86-64");
    assert!(
        !target_sysroot.exists() || tree_modes(&target_sysroot).is_empty(),
        "nothing of the device recipe in a sysroot"
    );

    // An unrelated setting, an unrelated file, the same bytes rewritten: nothing re-runs.
    let sig_before = build.sigdata("sota-credentials-1.0-r0", "do_install");
    build.set("UNRELATED_SETTING", "1");
    write_input(&build.input("a/notes.txt"), "unrelated");
    write_input(&archive, creds("https://tuf.example.test/api/v1/user_repo"));
    build.run(&both).ok().ran_nothing();

    // The same bytes at another path (and the password file moved too): nothing re-runs.
    let moved = build.input("elsewhere/renamed.zip");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&archive, &moved).unwrap();
    fs::rename(build.input("p12-password"), build.input("elsewhere/pw")).unwrap();
    build.set("SOTA_PACKED_CREDENTIALS", &moved);
    build.set("SOTA_P12_PASSWORD_FILE", build.input("elsewhere/pw"));
    build.run(&both).ok().ran_nothing();

    // Other content at the same path, host side only (tufrepo.url): exactly
    // the host recipe's tasks that read it, and those after them, re-run;
    // the device recipe's signatures follow only the device's entries.
    let digest = |sig: &serde_json::Value| sig["varvals"]["SOTA_STAGE_CONTENT_DIGEST"].to_string();
    write_input(
        &moved,
        creds("https://tuf.example.test/api/v1/another_repo"),
    );
    build
        .run(&both)
        .ok()
        .ran_exactly(&tasks_after_check("sota-credentials-host-native"));
    assert_eq!(
        read(build.host_files().join("tufrepo.url")),
        "https://tuf.example.test/api/v1/another_repo"
    );
    let sig_host_change = build.sigdata("sota-credentials-1.0-r0", "do_install");
    assert_eq!(digest(&sig_before), digest(&sig_host_change));

    // Device side (autoprov.url): the device recipe re-runs from its check on,
    // the host recipe (which never gets autoprov.url) and the tool do not.
    write_input(
        &moved,
        creds_at(
            "https://tuf.example.test/api/v1/another_repo",
            &format!("https://{}.other-gateway.example.test:443", pki.uuid()),
        ),
    );
    build
        .run(&both)
        .ok()
        .ran_exactly(&tasks_after_check("sota-credentials"));
    let sig_after = build.sigdata("sota-credentials-1.0-r0", "do_install");
    assert!(
        digest(&sig_before).len() > 60,
        "the side's content digest is in the signature: {}",
        digest(&sig_before)
    );
    assert_ne!(
        digest(&sig_before),
        digest(&sig_after),
        "the content is in the signature"
    );

    // No secret in any signature file, task script, log, cache or sstate
    // archive; no input's path in any signature.
    let needles = secret_needles(
        &build.dir,
        &[
            ("the OAuth2 client secret", OAUTH2_SECRET),
            ("targets.sec's RSA key", &pem_body_line(&rsa_pem)),
            ("the p12 client key", &pem_body_line(&client.key_pem())),
        ],
        &[("the p12 password", P12_PASSWORD)],
    );
    let inputs = build.dir.join("inputs").display().to_string();
    for (path, text) in assert_no_leak(&build, &needles) {
        if path.to_string_lossy().contains(".sigdata.") {
            assert!(
                !text.contains(&inputs),
                "an input's path is in the signature {}",
                path.display()
            );
        }
    }
}

#[test]
#[ignore = "needs BITBAKE"]
fn device_cred_and_hsm_files_and_the_pin_file() {
    let (mut build, pki, _) = with_typical_archive(&bitbake("bitbake"), false);
    build.set("SOTA_CLIENT_PROV", "device-cred");
    let image = build.image("sota-credentials-1.0-r0");

    build.run(&["sota-credentials"]).ok();
    let device_cred_files = |fragment: (&'static str, u32)| {
        vec![
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/root.crt", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            fragment,
            ("usr/lib/sota/conf.d/40-hardware-id.toml", 0o644),
        ]
    };
    assert_tree(
        &image,
        &device_cred_files(("usr/lib/sota/conf.d/20-sota-device-cred.toml", 0o644)),
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    assert_eq!(
        read(image.join("var/sota/import/gateway.url")).trim(),
        format!("https://{}.device-gateway.example.test:443", pki.uuid())
    );
    assert!(read(image.join("var/sota/import/root.crt")).contains("BEGIN CERTIFICATE"));

    // device-cred-hsm by meta-updater's name, the PIN from a file, an id changed.
    write_input(&build.input("pin"), format!("{PIN}\n"));
    build.set("SOTA_CLIENT_PROV", "aktualizr-device-prov-hsm");
    build.set("SOTA_HSM_PIN_FILE", build.input("pin"));
    build.set("SOTA_HSM_UPTANE_KEY_ID", "07");
    build.run(&["sota-credentials"]).ok();
    let fragment_path = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml";
    assert_tree(
        &image,
        &device_cred_files((fragment_path, 0o600)),
        &[("var/sota", 0o700), ("var/sota/import", 0o700)],
    );
    let fragment = read(image.join(fragment_path));
    for line in [
        format!("pass = \"{PIN}\""),
        // The stand-in's libdir is /usr/lib64, as on a multilib machine.
        "module = \"/usr/lib64/softhsm/libsofthsm2.so\"".to_owned(),
        "uptane_key_id = \"07\"".to_owned(),
        "tls_clientcert_id = \"01\"".to_owned(),
    ] {
        assert!(fragment.contains(&line), "{line} in\n{fragment}");
    }

    // Another PIN in the same file re-runs the tasks that read it ...
    write_input(&build.input("pin"), format!("{PIN_2}\n"));
    build
        .run(&["sota-credentials"])
        .ok()
        .ran_exactly(&tasks_after_check("sota-credentials"));
    assert!(read(image.join(fragment_path)).contains(&format!("pass = \"{PIN_2}\"")));
    // ... the same PIN in another file re-runs nothing.
    fs::rename(build.input("pin"), build.input("pin-moved")).unwrap();
    build.set("SOTA_HSM_PIN_FILE", build.input("pin-moved"));
    build.run(&["sota-credentials"]).ok().ran_nothing();

    let needles = secret_needles(
        &build.dir,
        &[],
        &[("the first PIN", PIN), ("the second PIN", PIN_2)],
    );
    assert_no_leak(&build, &needles);
}

/// `SOTA_STAGE_REPORT_CONFIG` reaches the tool: by default a fragment
/// with a PIN tells aktualizr not to send its configuration (which holds
/// the PIN) to the server and one without a secret leaves aktualizr's
/// default; `off` writes it into every fragment; `on` leaves it out, and
/// `do_sota_verify` then fails on the PIN that would be sent.
#[test]
#[ignore = "needs BITBAKE"]
fn sota_stage_report_config_decides_what_aktualizr_sends() {
    let (mut build, _, _) = with_typical_archive(&bitbake("bitbake"), false);
    write_input(&build.input("pin"), format!("{PIN}\n"));
    build.set("SOTA_HSM_PIN_FILE", build.input("pin"));
    let image = build.image("sota-credentials-1.0-r0");
    let off = "[telemetry]\nreport_config = false\n";
    let fragment =
        |method: &str| read(image.join(format!("usr/lib/sota/conf.d/20-sota-{method}.toml")));

    build.set("SOTA_CLIENT_PROV", "device-cred-hsm");
    build.run(&["sota-credentials"]).ok();
    assert!(fragment("device-cred-hsm").ends_with(off));
    build.set("SOTA_CLIENT_PROV", "device-cred");
    build.run(&["sota-credentials"]).ok();
    assert!(!fragment("device-cred").contains("[telemetry]"));

    build.set("SOTA_STAGE_REPORT_CONFIG", "off");
    build.run(&["sota-credentials"]).ok();
    assert!(fragment("device-cred").ends_with(off));

    build.set("SOTA_STAGE_REPORT_CONFIG", "on");
    build.set("SOTA_CLIENT_PROV", "device-cred-hsm");
    build
        .run(&["sota-credentials"])
        .failed()
        .log_has("`[telemetry] report_config` is true (aktualizr's default): aktualizr sends its whole configuration, this `p11.pass` included");
}

#[test]
#[ignore = "needs BITBAKE"]
fn an_unusable_archive_fails_the_check_with_the_tools_message() {
    let mut build = credentials_build(&bitbake("bitbake"), false);

    // Not a zip: do_sota_check fails, do_install never runs.
    let bad = build.input("bad.zip");
    write_input(&bad, "this is not a zip archive");
    build.set("SOTA_PACKED_CREDENTIALS", &bad);
    let run = build.run(&["sota-credentials"]);
    run.failed()
        .log_has("error: bad.zip: not a zip archive")
        .log_has("sota-credentials.bb:do_sota_check) failed");
    assert!(
        !run.ran.contains("sota-credentials:do_install"),
        "{:?}",
        run.ran
    );

    // aktualizr's sample: its shared client certificate expired in 2018.
    let expired = build.input("expired/credentials.zip");
    write_input(
        &expired,
        fs::read(upstream("aktualizr-credentials.zip")).unwrap(),
    );
    build.set("SOTA_PACKED_CREDENTIALS", &expired);
    build
        .run(&["sota-credentials-host-native"])
        .failed()
        .log_has("error: credentials.zip: cannot stage for shared-cred")
        .log_has("expired on 2018-07-18")
        .log_has("sota-credentials-host-native.bb:do_sota_check) failed");

    // A relative path is refused when the recipes are parsed.
    build.set("SOTA_PACKED_CREDENTIALS", "inputs/credentials.zip");
    build
        .run(&["sota-credentials"])
        .failed()
        .log_has("SOTA_PACKED_CREDENTIALS must be an absolute path");
}

/// The real tool recipe parses (with stub cargo classes), takes its crates
/// from the generated .inc and, out of the box, its sources from the checkout
/// the layer sits in; `SOTA_STAGE_SRC_URI` overrides that for a release; a
/// layer copied out of its checkout skips the recipe and says what it needs.
#[test]
#[ignore = "needs BITBAKE"]
fn the_tool_recipe_parses_and_says_what_it_needs() {
    let mut build = credentials_build(&bitbake("bitbake"), false);
    let env = build.run(&["-e", "sota-stage"]);
    env.ok()
        .log_has("file://Cargo.lock;subdir=${BP}")
        .log_has("file://src;subdir=${BP}")
        .log_has("crate://crates.io/serde/")
        .log_has("[serde-1.")
        .log_has(".sha256sum] \"")
        .log_has("\nLICENSE=\"MIT | Apache-2.0\"")
        .log_has("\nBBCLASSEXTEND=\"native\"")
        .log_has("\nS=\"")
        .log_has("/sota-stage-0.1.0\"");
    // The value `-e` shows (its history above it quotes the expression).
    let flags = |log: &str| {
        log.lines()
            .find(|l| l.starts_with("CARGO_BUILD_FLAGS="))
            .unwrap_or_default()
            .to_string()
    };
    assert!(!flags(&env.log).contains("pkcs11"), "{}", flags(&env.log));

    // PACKAGECONFIG pkcs11: the cargo feature; with a Rust older than 1.77
    // the recipe is skipped, saying why.
    build.set("PACKAGECONFIG:pn-sota-stage", "pkcs11");
    let env = build.run(&["-e", "sota-stage"]);
    env.ok();
    assert!(
        flags(&env.log).ends_with(" --features pkcs11\""),
        "{}",
        flags(&env.log)
    );
    build.set("RUSTVERSION", "1.75%");
    build
        .run(&["sota-stage"])
        .failed()
        .log_has("PACKAGECONFIG pkcs11 (a fleet CA key in an HSM) needs Rust 1.77 or newer and RUSTVERSION is 1.75: drop pkcs11 from PACKAGECONFIG, or build with a newer Rust");
    build.conf.remove("RUSTVERSION");
    build.conf.remove("PACKAGECONFIG:pn-sota-stage");

    build.set(
        "SOTA_STAGE_SRC_URI",
        "git://git.example.test/sota-stage.git;protocol=https;branch=main;destsuffix=${BP}",
    );
    build.set(
        "SOTA_STAGE_SRCREV",
        "0123456789abcdef0123456789abcdef01234567",
    );
    build
        .run(&["-e", "sota-stage"])
        .ok()
        .log_has("\nSRC_URI=\"git://git.example.test/sota-stage.git");

    // The layer alone, outside a sota-stage checkout.
    let lone = build.dir.join("lone/meta-layer-snippets");
    copy_tree(&repo().join("meta-layer-snippets"), &lone);
    let bblayers = build.dir.join("build/conf/bblayers.conf");
    let layers = fs::read_to_string(&bblayers).unwrap().replace(
        &repo().join("meta-layer-snippets").display().to_string(),
        &lone.display().to_string(),
    );
    fs::write(&bblayers, layers).unwrap();
    build.conf.remove("SOTA_STAGE_SRC_URI");
    build
        .run(&["sota-stage"])
        .failed()
        .log_has("meta-layer-snippets is not inside a sota-stage checkout: set SOTA_STAGE_SRC_URI and SOTA_STAGE_SRCREV");
}

/// An append that edits or adds a staged file after the class staged it
/// fails `do_sota_verify`, before anything is packaged, with verify's report;
/// the staging manifest is in `${WORKDIR}`, never in `${D}`.
#[test]
#[ignore = "needs BITBAKE"]
fn a_staged_file_changed_after_staging_fails_before_packaging() {
    let (build, _, _) = with_typical_archive(&bitbake("bitbake"), false);
    build.run(&["sota-credentials"]).ok();
    let image = build.image("sota-credentials-1.0-r0");
    assert!(
        tree_modes(&image).keys().all(|p| !p.contains("manifest")),
        "no manifest in ${{D}}: {:?}",
        tree_modes(&image).keys()
    );
    assert!(build
        .top()
        .join("tmp/work/sota-credentials-1.0-r0/sota-stage-manifests/0-device.json")
        .is_file());

    // A layer whose append edits the staged fragment.
    let appends = build.dir.join("meta-appends");
    build.dir.write(
        "meta-appends/conf/layer.conf",
        "BBPATH .= \":${LAYERDIR}\"\nBBFILES += \"${LAYERDIR}/*.bbappend\"\n\
         BBFILE_COLLECTIONS += \"extras\"\nBBFILE_PATTERN_extras = \"^${LAYERDIR}/\"\n",
    );
    let bblayers = build.dir.join("build/conf/bblayers.conf");
    let layers = fs::read_to_string(&bblayers).unwrap().replace(
        "BBLAYERS = \"",
        &format!("BBLAYERS = \"{} ", appends.display()),
    );
    fs::write(&bblayers, layers).unwrap();
    build.dir.write(
        "meta-appends/sota-credentials.bbappend",
        "do_install:append() {\n    echo '# edited' >> ${D}/usr/lib/sota/conf.d/20-sota-shared-cred.toml\n}\n",
    );
    let run = build.run(&["sota-credentials"]);
    run.failed()
        .log_has("sota-stage verify failed for sota-credentials")
        .log_has("usr/lib/sota/conf.d/20-sota-shared-cred.toml")
        .log_has("do_sota_verify) failed");
    assert!(
        !run.ran.contains("sota-credentials:do_package"),
        "{:?}",
        run.ran
    );

    // One that adds a file next to the staged ones.
    build.dir.write(
        "meta-appends/sota-credentials.bbappend",
        "do_install:append() {\n    echo x > ${D}/var/sota/import/extra.pem\n}\n",
    );
    build
        .run(&["sota-credentials"])
        .failed()
        .log_has("extra: device:var/sota/import/extra.pem is not in the manifest")
        .log_has("do_sota_verify) failed");

    // Without the append, the build passes again.
    build
        .dir
        .write("meta-appends/sota-credentials.bbappend", "");
    build.run(&["sota-credentials"]).ok();
}
