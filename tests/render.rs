//! `sota-stage render`: every fragment against its snapshot, the values that
//! must be refused rather than mangled, secrets kept off standard output,
//! and the fragments compared with aktualizr's own example configs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::*;

/// `render` to a file; returns its bytes and mode.
fn render_to_file(dir: &TestDir, args: &[&str]) -> (Vec<u8>, u32) {
    use std::os::unix::fs::PermissionsExt;
    let out: PathBuf = dir.join("fragment.toml");
    let _ = fs::remove_file(&out);
    sota(["render"])
        .args(args)
        .arg("--output")
        .arg(&out)
        .run()
        .success();
    let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o7777;
    (fs::read(&out).unwrap(), mode)
}

#[test]
fn device_cred_fragments_render() {
    // aktualizr reads the [import] file names relative to base_path: the
    // templates once wrote them with the absolute-path helper, so neither
    // device-credential method could be rendered or staged at all.
    let run = sota(["render", "--method", "device-cred"]).run();
    run.success();
    assert_snapshot("20-sota-device-cred.toml", run.stdout.as_bytes());
    let dir = TestDir::new();
    let (hsm, mode) = render_to_file(&dir, &["--method", "device-cred-hsm"]);
    assert_eq!(mode, 0o600, "the HSM fragment holds the PIN");
    assert_snapshot("20-sota-device-cred-hsm.toml", &hsm);
}

#[test]
fn shared_cred_fragment_and_method_aliases() {
    let run = sota(["render", "--method", "shared-cred"]).run();
    run.success().stderr_is("");
    assert_snapshot("20-sota-shared-cred.toml", run.stdout.as_bytes());
    // meta-updater's recipe name, as a flag and as SOTA_CLIENT_PROV.
    sota(["render", "--method", "aktualizr-shared-prov"])
        .run()
        .success()
        .stdout_is(&run.stdout);
    sota(["render"])
        .env("SOTA_CLIENT_PROV", "aktualizr-shared-prov")
        .run()
        .success()
        .stdout_is(&run.stdout);
    // The flag beats the environment.
    sota(["render", "--method", "device-cred"])
        .env("SOTA_CLIENT_PROV", "aktualizr-shared-prov")
        .run()
        .success()
        .stdout_has("[import]");
    let device = sota(["render", "--method", "aktualizr-device-prov"]).run();
    device
        .success()
        .stdout_has("tls_cacert_path = \"root.crt\"");
    sota(["render", "--method", "ota-plus"])
        .run()
        .code(2)
        .stderr_is(
            "error: invalid value 'ota-plus' for '--method <METHOD>': unknown provisioning \
             method `ota-plus`; use shared-cred, device-cred or device-cred-hsm (or \
             meta-updater's aktualizr-shared-prov, aktualizr-device-prov, \
             aktualizr-device-prov-hsm)\n\nFor more information, try '--help'.\n",
        );
}

#[test]
fn hardware_id_adds_a_second_fragment() {
    let run = sota([
        "render",
        "--method",
        "device-cred",
        "--hardware-id",
        "raspberrypi4-64",
    ])
    .run();
    run.success();
    assert_snapshot(
        "render-device-cred-hardware-id.stdout",
        run.stdout.as_bytes(),
    );
    sota(["render", "--method", "device-cred"])
        .env("SOTA_HARDWARE_ID", "raspberrypi4-64")
        .run()
        .success()
        .stdout_is(&run.stdout);
    // Two fragments cannot go to one file.
    let dir = TestDir::new();
    let out = dir.join("f.toml");
    sota(["render", "--method", "shared-cred", "--hardware-id", "rpi"])
        .arg("--output")
        .arg(&out)
        .run()
        .code(2)
        .stderr_is(
            "error: --output takes one fragment, but --hardware-id adds a second \
             (40-hardware-id.toml); pick one with --fragment, or use --output-dir\n",
        );
    assert!(!out.exists());
}

#[test]
fn fragments_one_by_one_or_into_a_folder() {
    let dir = TestDir::new();
    let conf = dir.mkdir("conf.d");
    // Only the hardware-ID fragment, under its own name, 0644, with the time.
    sota(["render", "--method", "shared-cred", "--hardware-id", "rpi"])
        .args(["--fragment", "hardware-id", "--output-dir"])
        .arg(&conf)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .success();
    let names: Vec<String> = fs::read_dir(&conf)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["40-hardware-id.toml"]);
    let path = conf.join("40-hardware-id.toml");
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert_eq!(
        meta.modified().unwrap(),
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000)
    );
    assert!(fs::read_to_string(&path)
        .unwrap()
        .contains("primary_ecu_hardware_id = \"rpi\""));
    // Both fragments of an HSM run: the one with the PIN is 0600.
    let both = dir.mkdir("both");
    render_hsm_rpi_into().arg(&both).run().success();
    let mode = |n: &str| fs::metadata(both.join(n)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("20-sota-device-cred-hsm.toml"), 0o600);
    assert_eq!(mode("40-hardware-id.toml"), 0o644);
    // --fragment method alone may go to --output; hardware-id needs an ID.
    let out = dir.join("m.toml");
    sota([
        "render",
        "--method",
        "device-cred",
        "--hardware-id",
        "rpi",
        "--fragment",
        "method",
        "--output",
    ])
    .arg(&out)
    .run()
    .success();
    assert!(!fs::read_to_string(&out).unwrap().contains("hardware_id"));
    sota([
        "render",
        "--method",
        "device-cred",
        "--fragment",
        "hardware-id",
    ])
    .run()
    .code(2)
    .stderr_is("error: --fragment hardware-id needs --hardware-id (or SOTA_HARDWARE_ID)\n");
}

/// `render --method device-cred-hsm --hardware-id rpi --output-dir`: the
/// folder comes next.
fn render_hsm_rpi_into() -> Cmd {
    sota([
        "render",
        "--method",
        "device-cred-hsm",
        "--hardware-id",
        "rpi",
        "--output-dir",
    ])
}

/// `--output` and `--output-dir` create the folders they need, 0755 as
/// `stage` makes them (whatever the umask), and say on stderr what was
/// written where; standard output stays empty.
#[test]
fn output_folders_are_created_and_the_run_says_what_it_wrote() {
    let dir = TestDir::new();
    let conf = dir.join("image/etc/sota/conf.d");
    render_hsm_rpi_into()
        .arg(&conf)
        .umask(0o077)
        .run()
        .success()
        .stdout_is("")
        // After the warning on aktualizr's example PIN and the note on
        // report_config (tests/report_config.rs), the summary.
        .stderr_has(&format!(
            "\nrendered 2 fragments for device-cred-hsm into `{}`: 20-sota-device-cred-hsm.toml \
         (0600), 40-hardware-id.toml (0644)\n",
            conf.display()
        ));
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for folder in [
        "image",
        "image/etc",
        "image/etc/sota",
        "image/etc/sota/conf.d",
    ] {
        assert_eq!(mode(&dir.join(folder)), 0o755, "{folder}");
    }
    assert_eq!(mode(&conf.join("20-sota-device-cred-hsm.toml")), 0o600);
    let out = dir.join("one/two/fragment.toml");
    sota(["render", "--method", "device-cred", "--output"])
        .arg(&out)
        .umask(0o077)
        .run()
        .success()
        .stdout_is("")
        .stderr_is(&format!(
            "rendered 1 fragment for device-cred into `{}`: 20-sota-device-cred.toml (0644)\n",
            out.display()
        ));
    assert_eq!(mode(&dir.join("one")), 0o755);
    assert_eq!(mode(&out), 0o644);
    // A folder that cannot be made (a file in the way): exit 3, nothing
    // left behind.
    let blocked = dir.write("file", "x");
    sota(["render", "--method", "device-cred", "--output"])
        .arg(blocked.join("sub/fragment.toml"))
        .run()
        .code(3)
        .stderr_has("cannot create folder `");
}

#[test]
fn hsm_options_are_rendered_and_the_fragment_is_secret() {
    let dir = TestDir::new();
    let pin_file = dir.write("pin", "7 seven 7\n");
    let hsm_with = |pin: &[&str]| {
        let args = [&["--method", "device-cred-hsm"][..], &HSM_OPTIONS, pin].concat();
        render_to_file(&dir, &args)
    };
    let (text, mode) = hsm_with(&["--p11-pin-file", pin_file.to_str().unwrap()]);
    assert_eq!(mode, 0o600);
    // The pin file's one trailing newline is dropped, the inner spaces kept.
    assert_snapshot("20-sota-device-cred-hsm.custom.toml", &text);
    // The PIN given as a flag gives the same fragment.
    let (same, _) = hsm_with(&["--p11-pin", "7 seven 7"]);
    assert_eq!(same, text);
    // The --p11-* options belong to device-cred-hsm only.
    for method in ["shared-cred", "device-cred"] {
        sota(["render", "--method", method, "--p11-pin", "1"])
            .run()
            .code(2)
            .stderr_is(&format!(
                "error: `--p11-pin` does not apply to {method}: it is for device-cred-hsm\n"
            ));
    }
    sota([
        "render",
        "--method",
        "device-cred-hsm",
        "--p11-pin",
        "1",
        "--p11-pin-file",
    ])
    .arg(&pin_file)
    .run()
    .code(2);
}

#[test]
fn a_p12_password_lands_in_a_0600_fragment() {
    let dir = TestDir::new();
    let (plain, mode) = render_to_file(&dir, &["--method", "shared-cred"]);
    assert_eq!(mode, 0o644);
    assert!(!String::from_utf8(plain).unwrap().contains("p12_password"));
    let (text, mode) = render_to_file(
        &dir,
        &[
            "--method",
            "shared-cred",
            "--p12-password",
            "TEST-ONLY-p12 pw",
        ],
    );
    assert_eq!(mode, 0o600);
    assert_snapshot("20-sota-shared-cred.p12-password.toml", &text);
    // From the environment and from a file: the same fragment.
    let out = dir.join("env.toml");
    sota(["render", "--method", "shared-cred", "--output"])
        .arg(&out)
        .env("SOTA_P12_PASSWORD", "TEST-ONLY-p12 pw")
        .run()
        .success()
        .output_lacks("TEST-ONLY");
    assert_eq!(fs::read(&out).unwrap(), text);
    let pw = dir.write("pw", "TEST-ONLY-p12 pw\r\n");
    let out = dir.join("file.toml");
    sota(["render", "--method", "shared-cred", "--output"])
        .arg(&out)
        .arg("--p12-password-file")
        .arg(&pw)
        .run()
        .success();
    assert_eq!(fs::read(&out).unwrap(), text);
}

#[test]
fn a_fragment_with_a_secret_is_never_printed() {
    let hsm = sota([
        "render",
        "--method",
        "device-cred-hsm",
        "--p11-pin",
        "TEST-ONLY-4711",
    ])
    .run();
    hsm.code(2)
        .stderr_is(
            "error: `20-sota-device-cred-hsm.toml` holds a password or PIN and is not printed; \
             write it with --output FILE (mode 0600)\n",
        )
        .output_lacks("TEST-ONLY-4711");
    assert!(hsm.stdout.is_empty());
    // The default PIN too: it is still a PIN.
    let default = sota(["render", "--method", "device-cred-hsm"]).run();
    default.code(2);
    assert!(default.stdout.is_empty());
    let shared = sota(["render", "--method", "shared-cred"])
        .env("SOTA_P12_PASSWORD", "TEST-ONLY-pw")
        .run();
    shared
        .code(2)
        .stderr_is(
            "error: `20-sota-shared-cred.toml` holds a password or PIN and is not printed; \
             write it with --output FILE (mode 0600)\n",
        )
        .output_lacks("TEST-ONLY-pw");
    assert!(shared.stdout.is_empty());
}

/// Values that cannot be written in aktualizr's dialect: each is refused
/// with a message that names the option, nothing is written, and a secret
/// value is never echoed (stdout is empty, stderr is exactly the message).
#[test]
fn values_that_cannot_be_written_safely_are_refused_never_mangled() {
    let dir = TestDir::new();
    let pin_file = dir.write("pin", "12\"34\n");
    let pin_file = pin_file.to_str().unwrap();
    let hardware_id = |shown: &str| {
        format!(
            "error: hardware ID `{shown}` is not allowed: use letters, digits, `.`, `_` and `-` \
             only (meta-updater's rule)\n"
        )
    };
    // Values the method writes into its fragment: refused where they are
    // given, naming the flag (a usage error), never quoting a secret.
    let secret = |what: &str, flag: &str, why: &str| {
        format!(
            "error: {what} given with {flag} {why}, so it cannot be written into aktualizr's \
             config; {what} must not contain `\"`, `\\` or control characters\n"
        )
    };
    let pin = |flag: &str, why: &str| secret("the PKCS#11 PIN", flag, why);
    let module = |shown: &str, why: &str| {
        format!(
            "error: --p11-module `{shown}` {why}, so aktualizr cannot be given it; give the \
             module's absolute path on the device (e.g. /usr/lib/softhsm/libsofthsm2.so)\n"
        )
    };
    let object_id = |flag: &str, why: &str| {
        format!(
            "error: {flag} is not a PKCS#11 object ID: {why}; give the ID as hex bytes, an even \
             number of hex digits (e.g. 01)\n"
        )
    };
    let (dev, hsm, shared) = ("device-cred", "device-cred-hsm", "shared-cred");
    let quote = "contains `\"`, which aktualizr's parser drops or mangles";
    let backslash = "contains `\\`, which aktualizr's parser drops or mangles";
    let control = "contains a control character or line break";
    // (method, option, value, exit code, stderr)
    #[rustfmt::skip]
    let cases = [
        (dev, "--hardware-id", "rpi\"4", 2, hardware_id("rpi\\\"4")),
        (dev, "--hardware-id", "rpi 4", 2, hardware_id("rpi 4")),
        (dev, "--hardware-id", "rpi\n[tls]", 2, hardware_id("rpi\\n[tls]")),
        (dev, "--hardware-id", "", 2, hardware_id("")),
        (hsm, "--p11-pin", "TEST-12\"34", 2, pin("--p11-pin", quote)),
        (hsm, "--p11-pin", "TEST-12\\34", 2, pin("--p11-pin", backslash)),
        (hsm, "--p11-pin", "TEST-12\n34", 2, pin("--p11-pin", control)),
        (hsm, "--p11-pin-file", pin_file, 2, pin("--p11-pin-file", quote)),
        (hsm, "--p11-module", "/usr/lib/soft hsm/libsofthsm2.so", 2, module("/usr/lib/soft hsm/libsofthsm2.so", "contains whitespace")),
        (hsm, "--p11-module", "/usr/lib/a&b/libsofthsm2.so", 2, module("/usr/lib/a&b/libsofthsm2.so", "contains `&`, which aktualizr reads as an escape character in paths")),
        (hsm, "--p11-module", "libsofthsm2.so", 2, module("libsofthsm2.so", "is not an absolute path")),
        (hsm, "--p11-tls-cert-id", "01\" x", 2, object_id("--p11-tls-cert-id", "it is not hex digits")),
        (hsm, "--p11-uptane-key-id", "03\t", 2, object_id("--p11-uptane-key-id", "it is not hex digits")),
        (hsm, "--p11-tls-key-id", "", 2, object_id("--p11-tls-key-id", "it is empty")),
        (hsm, "--p11-uptane-key-id", "zz", 2, object_id("--p11-uptane-key-id", "it is not hex digits")),
        (hsm, "--p11-tls-cert-id", "012", 2, object_id("--p11-tls-cert-id", "it has an odd number of hex digits")),
        (shared, "--p12-password", "TEST-pa\"ss", 2, secret("the p12 password", "--p12-password", quote)),
    ];
    for (i, (method, option, value, code, stderr)) in cases.iter().enumerate() {
        let out = dir.join(format!("out-{i}.toml"));
        sota(["render", "--method", method, option, value, "--output"])
            .arg(&out)
            .run()
            .code(*code)
            .stdout_is("")
            .stderr_is(stderr);
        assert!(!out.exists(), "case {i}: nothing is written");
    }
    // From the environment, as bitbake passes it: the variable is named.
    let out = dir.join("out-env.toml");
    sota(["render", "--method", shared, "--output"])
        .arg(&out)
        .env("SOTA_P12_PASSWORD", "TEST-pa\\ss")
        .run()
        .code(2)
        .stderr_is(&secret("the p12 password", "SOTA_P12_PASSWORD", backslash));
    assert!(!out.exists());
}

#[test]
fn render_checks_the_archive_when_given_one() {
    // The upstream sample's shared p12 expired in 2018: shared-cred is
    // refused, device-cred only needs its URL and CA.
    sota(["render", "--method", "shared-cred", "--credentials"])
        .arg(upstream("aktualizr-credentials.zip"))
        .run()
        .code(1)
        .stderr_is(
            "error: aktualizr-credentials.zip: cannot stage for shared-cred:\n  - entry \
             'autoprov_credentials.p12': the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18; ask your OTA server for new credentials\n",
        );
    let device = sota(["render", "--method", "device-cred", "--credentials"])
        .arg(upstream("aktualizr-credentials.zip"))
        .run();
    device.success();
    assert_snapshot("20-sota-device-cred.toml", device.stdout.as_bytes());
    // From the environment, as bitbake passes it.
    sota(["render", "--method", "shared-cred"])
        .env("SOTA_PACKED_CREDENTIALS", upstream("aktualizr-cred.zip"))
        .run()
        .code(1)
        .stderr_is(
            "error: aktualizr-cred.zip: cannot stage for shared-cred:\n  - the archive does not \
             support shared-cred: it lacks a valid `autoprov.url`\n  - entry \
             'autoprov_credentials.p12': the client certificate \
             `cc34f7f3-481d-443b-bceb-e838a36a2d1f` expired on 2017-04-01; ask your OTA server \
             for new credentials\n",
        );
    sota(["render", "--method", "shared-cred", "--credentials"])
        .arg(upstream("aktualizr-invalid-credentials.zip"))
        .run()
        .code(1)
        .stderr_is("error: aktualizr-invalid-credentials.zip: not a zip archive (Could not find EOCD); pass the credentials.zip your OTA server gave you\n");
    // A typical archive made here: fine for every method.
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "c.zip");
    sota(["render", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .run()
        .success()
        .output_lacks(OAUTH2_SECRET);
}

#[test]
fn the_output_file_has_the_source_date_epoch_as_mtime() {
    use std::os::unix::fs::MetadataExt;
    let dir = TestDir::new();
    let out = dir.join("f.toml");
    sota(["render", "--method", "shared-cred", "--output"])
        .arg(&out)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .success();
    assert_eq!(fs::metadata(&out).unwrap().mtime(), 1_700_000_000);
    // Unset: OE-core's SOURCE_DATE_EPOCH_FALLBACK.
    fs::remove_file(&out).unwrap();
    sota(["render", "--method", "shared-cred", "--output"])
        .arg(&out)
        .run()
        .success();
    assert_eq!(fs::metadata(&out).unwrap().mtime(), 1_302_044_400);
    sota(["render", "--method", "shared-cred"])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .run()
        .code(2)
        .stderr_is(
            "error: `SOURCE_DATE_EPOCH` must be a non-negative number of seconds, not `yesterday`\n",
        );
}

#[test]
fn template_dir_overrides_file_by_file_strictly() {
    let dir = TestDir::new();
    let templates = dir.mkdir("templates");
    fs::write(
        templates.join("20-sota-shared-cred.toml.hbs"),
        "[provision]\nprovision_path = {{path provision_path}}\nprimary_ecu_hardware_id = \"site-a\"\n",
    )
    .unwrap();
    let run = sota(["render", "--method", "shared-cred", "--hardware-id", "rpi"])
        .arg("--template-dir")
        .arg(&templates)
        .run();
    run.success()
        .stdout_has("primary_ecu_hardware_id = \"site-a\"\n")
        // The other template is still the built-in one.
        .stdout_has("# The hardware ID of the primary ECU (sota-stage).");
    // Strict: an unknown variable is an error, not an empty string.
    fs::write(
        templates.join("20-sota-shared-cred.toml.hbs"),
        "[provision]\nprovision_path = {{path provison_path}}\n",
    )
    .unwrap();
    sota(["render", "--method", "shared-cred", "--template-dir"])
        .arg(&templates)
        .run()
        .code(1)
        .stderr_has("20-sota-shared-cred.toml.hbs")
        .stderr_has("provison_path");
    // A raw value, not through a helper, is refused before rendering.
    fs::write(
        templates.join("20-sota-shared-cred.toml.hbs"),
        "[provision]\nprovision_path = {{provision_path}}\n",
    )
    .unwrap();
    let origin = templates.join("20-sota-shared-cred.toml.hbs");
    sota(["render", "--method", "shared-cred", "--template-dir"])
        .arg(&templates)
        .run()
        .code(1)
        .stderr_is(&format!(
            "error: template `{}`: line 2: `{{{{provision_path}}}}` writes a value without a \
             helper; write values only through `str`, `path`, `int` or `bool` (e.g. `{{{{str \
             provision_path}}}}`)\n",
            origin.display()
        ));
}

#[test]
fn a_template_folder_is_read_once_and_never_silently_ignored() {
    let dir = TestDir::new();
    // A folder that is not there is an error, not the built-in templates.
    let missing = dir.path().join("no-such-folder");
    sota(["render", "--method", "shared-cred", "--template-dir"])
        .arg(&missing)
        .run()
        .code(3)
        .stdout_is("")
        .stderr_has("cannot read the template folder `")
        .stderr_has("no-such-folder`: No such file or directory");
    // A misspelt template would leave the built-in one in place: refused.
    let templates = dir.mkdir("templates");
    fs::write(
        templates.join("20-sota-shared-creds.toml.hbs"),
        "[provision]\n",
    )
    .unwrap();
    fs::write(templates.join("README"), "not a template").unwrap();
    sota(["render", "--method", "shared-cred", "--template-dir"])
        .arg(&templates)
        .run()
        .code(2)
        .stderr_has("20-sota-shared-creds.toml.hbs` is not a template sota-stage knows; name a replacement after one of `20-sota-shared-cred.toml.hbs`");
    // Other files are left alone.
    fs::remove_file(templates.join("20-sota-shared-creds.toml.hbs")).unwrap();
    sota(["render", "--method", "shared-cred", "--template-dir"])
        .arg(&templates)
        .run()
        .success();
}

#[test]
fn an_option_the_method_does_not_take_is_refused_alike() {
    for (method, flag, value, takers) in [
        ("device-cred", "--p12-password", "pw", "shared-cred"),
        (
            "device-cred-hsm",
            "--p12-password-file",
            "/dev/null",
            "shared-cred",
        ),
        ("shared-cred", "--p11-module", "/x.so", "device-cred-hsm"),
        ("device-cred", "--p11-tls-key-id", "02", "device-cred-hsm"),
    ] {
        sota(["render", "--method", method, flag, value])
            .run()
            .code(2)
            .stdout_is("")
            .stderr_is(&format!(
                "error: `{flag}` does not apply to {method}: it is for {takers}\n"
            ));
    }
    // With an archive to read, the p12 password opens its p12 whatever the
    // method: accepted.
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "c.zip");
    sota(["render", "--method", "device-cred", "--p12-password", ""])
        .arg("--credentials")
        .arg(&zip)
        .run()
        .success();
}

// --- the fragments against aktualizr's own example configs -----------------

/// `section.key` -> value of an aktualizr config, read the simple way:
/// `[section]` lines and `key = value` lines; comments and blank lines
/// skipped. A key seen twice fails (aktualizr refuses that too).
fn keys(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut section = String::new();
    for line in meaningful_lines(text) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not `key = value`: {line:?}"));
        let key = format!("{section}.{}", key.trim());
        assert!(
            out.insert(key.clone(), value.trim().to_string()).is_none(),
            "{key} twice"
        );
    }
    out
}

/// The lines that mean something to aktualizr: no comment, no blank line.
fn meaningful_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Our fragment for each method means to aktualizr exactly what its own
/// example config means: the same keys with the same values, in the same
/// order. The only differences, listed and justified:
///
/// - comment lines at the top: they say which method the fragment is for
///   and that sota-stage wrote it (aktualizr skips comments);
/// - with `--hardware-id`, `[provision] primary_ecu_hardware_id` in its own
///   fragment `40-hardware-id.toml`: the examples leave it out, so
///   aktualizr falls back to the machine name; the upstream examples have
///   no counterpart.
/// - the HSM PIN and p11 ids are the examples' values by default (the
///   flags exist to change them).
/// - a fragment that holds a password or PIN (device-cred-hsm's, with the
///   example PIN) ends with `[telemetry] report_config = false`: aktualizr
///   would send its whole configuration, the PIN included, to the server.
#[test]
fn fragments_mean_what_aktualizrs_example_configs_mean() {
    let dir = TestDir::new();
    for (method, upstream_name) in [
        ("shared-cred", "sota-shared-cred.toml"),
        ("device-cred", "sota-device-cred.toml"),
        ("device-cred-hsm", "sota-device-cred-hsm.toml"),
    ] {
        let (ours, _) = render_to_file(&dir, &["--method", method]);
        let ours = String::from_utf8(ours).unwrap();
        let telemetry = "\n[telemetry]\nreport_config = false\n";
        assert_eq!(
            ours.ends_with(telemetry),
            method == "device-cred-hsm",
            "{method}: {ours}"
        );
        let ours = ours.trim_end_matches(telemetry).to_string();
        let theirs = fs::read_to_string(upstream_config(upstream_name)).unwrap();
        assert_eq!(keys(&ours), keys(&theirs), "{method} vs {upstream_name}");
        assert_eq!(
            meaningful_lines(&ours),
            meaningful_lines(&theirs),
            "{method}: same lines in the same order"
        );
        // What differs is comments only.
        let comments: Vec<&str> = ours
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .collect();
        assert!(
            comments.iter().all(|l| l.starts_with("# ")),
            "{method}: {comments:?}"
        );
        assert!(comments.iter().any(|l| l.contains("(sota-stage)")));
    }
    // The hardware ID fragment: one key, none of the examples has it.
    let run = sota(["render", "--method", "device-cred", "--hardware-id", "rpi4"]).run();
    run.success();
    let (_, hardware) = run.stdout.split_once("40-hardware-id.toml ---\n").unwrap();
    let keys = keys(hardware);
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        [(
            "provision.primary_ecu_hardware_id".to_string(),
            "\"rpi4\"".to_string()
        )]
    );
}
