//! The real aktualizr (upstream, with PKCS#11) provisions from what `stage`
//! writes, against a server of our own (tests/aktualizr/server.py): each
//! method, the archive variants, and the negative controls. Each test
//! judges from aktualizr's storage (`aktualizr-info`) and the server's
//! log, never from sota-stage's output, and runs aktualizr twice to show
//! the second run registers nothing again. How a run works:
//! tests/aktualizr/mod.rs. Every test needs root (namespaces, mounts),
//! openssl, python3 and `AKTUALIZR_BIN`; without it each fails, saying how
//! to build aktualizr.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aktualizr;
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use aktualizr::{
    device_cert, hardware_id_mismatch, run_device, ChainedFleetCa, DeviceEnv, Expect, Fleet,
    Request, HARDWARE_ID, SOFTHSM_MODULE,
};
use common::{openssl, sota, Cmd, TestDir};

/// `stage --method METHOD` of `zip` with the tests' hardware id and
/// `extra` options, into `dir/device`; returns the device root.
#[track_caller]
fn stage(dir: &TestDir, zip: &Path, method: &str, extra: &[&str]) -> PathBuf {
    let root = dir.join("device");
    sota(["stage", "--method", method, "--credentials"])
        .arg(zip)
        .arg("--device-root")
        .arg(&root)
        .args(["--hardware-id", HARDWARE_ID])
        .args(extra)
        .run()
        .success();
    root
}

/// `device-certs --format tar --credentials zip` for `id`, unpacked over
/// `root` as a factory would (`tar -xpf ID.tar -C ROOT`), without the
/// files named in `leave_out`.
#[track_caller]
fn unpack_bundle(
    dir: &TestDir,
    fleet: &Fleet,
    zip: &Path,
    id: &str,
    root: &Path,
    leave_out: &[&str],
) {
    let ca = fleet.pki.ca();
    let out = tar_bundles(dir, &ca.cert, &ca.key, zip, &["--device-id", id]);
    unpack(&out.join(format!("{id}.tar")), root, leave_out);
}

/// `device-certs --format tar --credentials zip` with the fleet CA `ca`
/// and its key, for the devices `devices` (`--device-id ID`, `--csr
/// FILE`), into `dir/bundles`, which it returns.
#[track_caller]
fn tar_bundles(dir: &TestDir, ca: &Path, key: &Path, zip: &Path, devices: &[&str]) -> PathBuf {
    let out = dir.join("bundles");
    sota(["device-certs", "--fleet-ca"])
        .arg(ca)
        .arg("--fleet-ca-key")
        .arg(key)
        .args(devices)
        .args(["--format", "tar", "--out"])
        .arg(&out)
        .arg("--credentials")
        .arg(zip)
        .run()
        .success();
    out
}

/// `tar` unpacked over `root` (`tar -xpf TAR -C ROOT`), without the files
/// named in `leave_out`.
#[track_caller]
fn unpack(tar: &Path, root: &Path, leave_out: &[&str]) {
    let mut cmd = Cmd::new("tar").arg("-xpf").arg(tar).arg("-C").arg(root);
    for name in leave_out {
        cmd = cmd.arg(format!("--exclude={name}"));
    }
    cmd.run().success();
}

/// The PEM certificates of `pem`, each from its BEGIN line through its
/// END line.
fn pem_certificates(pem: &str) -> Vec<&str> {
    const END: &str = "-----END CERTIFICATE-----";
    pem.match_indices("-----BEGIN CERTIFICATE-----")
        .map(|(start, _)| {
            let end = pem[start..]
                .find(END)
                .map_or(pem.len(), |e| start + e + END.len());
            &pem[start..end]
        })
        .collect()
}

/// The bundle's `client.pem` below `root`: the device certificate, then
/// the issuing CA (`issuing`, below the root the server trusts), which is
/// what curl sends for aktualizr.
#[track_caller]
fn assert_client_pem_carries(root: &Path, issuing: &Path) -> String {
    let client = fs::read_to_string(root.join("var/sota/import/client.pem")).unwrap();
    let issuing = fs::read_to_string(issuing).unwrap();
    let certs = pem_certificates(&client);
    assert_eq!(certs.len(), 2, "client.pem: {client}");
    assert_eq!(
        certs.get(1).copied(),
        pem_certificates(&issuing).first().copied(),
        "client.pem does not end with the issuing CA: {client}"
    );
    client
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn shared_cred_provisions_registers_and_updates_once() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let root = stage(&dir, &zip, "shared-cred", &[]);
    let outcome = run_device(&dir, &fleet, &root, &DeviceEnv::default());
    outcome.assert_provisioned(Expect {
        shared: true,
        device_id: None,
        director_pinned: false,
    });
    // The device id aktualizr chose is the one it asked a certificate for.
    let devices = outcome
        .first
        .requests
        .iter()
        .find(|r| r.is("POST", "/devices"))
        .unwrap();
    assert_eq!(
        devices.body["deviceId"].as_str(),
        outcome.first.info.device_id().as_deref(),
        "{}",
        outcome.transcript
    );
}

/// A gateway URL ending in `/`: aktualizr appends paths to it (`//devices`),
/// which this server, like any that does not merge slashes, answers with
/// 404; `stage` writes the URL without the slash and the device provisions.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn a_gateway_url_ending_in_a_slash_still_provisions() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = common::Creds::new(&fleet.pki)
        .url(&format!("{}/", fleet.url()))
        .shared_p12()
        .treehub_oauth2()
        .file("root.json", fleet.image_root())
        .targets_ed25519()
        .write_to(&dir, "credentials.zip");
    let root = stage(&dir, &zip, "shared-cred", &[]);
    let outcome = run_device(&dir, &fleet, &root, &DeviceEnv::default());
    outcome.assert_provisioned(Expect {
        shared: true,
        device_id: None,
        director_pinned: false,
    });
    let doubled = outcome
        .first
        .requests
        .iter()
        .filter(|r| r.path.starts_with("//"))
        .count();
    assert_eq!(doubled, 0, "{}", outcome.transcript);
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn device_cred_with_the_device_cert_staged() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let device = device_cert(&fleet);
    let cert = device.cert.to_str().unwrap();
    let key = device.key.to_str().unwrap();
    let root = stage(
        &dir,
        &zip,
        "device-cred",
        &["--device-cert", cert, "--device-key", key],
    );
    run_device(&dir, &fleet, &root, &DeviceEnv::default()).assert_provisioned(Expect {
        shared: false,
        device_id: Some(&device.cn),
        director_pinned: false,
    });
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn device_cred_generic_image_completed_by_a_device_certs_bundle() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let root = stage(&dir, &zip, "device-cred", &[]);
    unpack_bundle(&dir, &fleet, &zip, "e2e-device-0042", &root, &[]);
    run_device(&dir, &fleet, &root, &DeviceEnv::default()).assert_provisioned(Expect {
        shared: false,
        device_id: Some("e2e-device-0042"),
        director_pinned: false,
    });
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn device_cred_hsm_with_softhsm_ec_p256_key_imported() {
    device_cred_hsm(TlsKey::EcP256Imported, &[]);
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn device_cred_hsm_with_softhsm_rsa_3072_key_made_by_the_token() {
    device_cred_hsm(TlsKey::Rsa3072MadeByToken, &[]);
}

/// The control of the PIN check above: with `--report-config on` aktualizr
/// posts its whole configuration, the token's PIN in it, to
/// `/system_info/config` (what `stage` prevents by default).
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn negative_report_config_on_sends_the_pin_to_the_server() {
    device_cred_hsm(TlsKey::Rsa3072MadeByToken, &["--report-config", "on"]);
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn device_cred_hsm_key_in_the_token_certificate_from_the_file() {
    // The CSR side of issue 20: the device's key stays in its token and
    // only the certificate is delivered. The key (EC P-256, with its
    // public key object) is imported into SoftHSM; its certificate, issued
    // by the fleet CA (by openssl here: the whole factory flow, with
    // `device-certs --csr`, is the test after this one), is staged as a
    // file with `--device-cert` and never written into the token.
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let pin = "e2e-pin-5678";
    let (conf, device_id, cert) =
        softhsm_token_with(&dir, &fleet, pin, TlsKey::EcP256Imported, false);
    let pin_file = dir.write("pin", pin);
    let root = stage(
        &dir,
        &zip,
        "device-cred-hsm",
        &[
            "--p11-module",
            SOFTHSM_MODULE,
            "--p11-pin-file",
            pin_file.to_str().unwrap(),
            "--device-cert",
            cert.to_str().unwrap(),
        ],
    );
    assert!(root.join("var/sota/import/client.pem").is_file());
    assert!(!root.join("var/sota/import/pkey.pem").exists());
    let env = DeviceEnv {
        softhsm2_conf: Some(conf),
        once: false,
    };
    run_device(&dir, &fleet, &root, &env).assert_provisioned(Expect {
        shared: false,
        device_id: Some(&device_id),
        director_pinned: false,
    });
}

/// Issue 20's factory flow, the device side in a token: the device key is
/// made IN SoftHSM (an EC P-256 pair: the public key object is there, as
/// libp11 needs for an EC key), the device's request is signed by that
/// key through openssl's PKCS#11 engine, `device-certs --csr` signs it
/// with a fleet CA that is an intermediate below a root of its own, and
/// the tar bundle (client.pem only: the device certificate and the
/// intermediate, no key) is unpacked over a generic device-cred-hsm image
/// (`--p11-cert-source file`). The server trusts only the root for client
/// certificates: aktualizr provisions only because curl sends the chain
/// of client.pem beside the token's key.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn factory_flow_csr_from_the_token_signed_by_an_intermediate_ca() {
    let dir = TestDir::new();
    let chain = ChainedFleetCa::new(&dir);
    let fleet = Fleet::new(&dir).trusting_clients_of(&chain.root);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let pin = "e2e-pin-5678";
    let hsm = SoftHsm::new(&dir, pin);
    // The TLS key's id is the fragment's default (02).
    hsm.p11(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "02",
        "--label",
        "tls",
    ]);
    let id = "e2e-factory-0001";
    let csr = hsm.request("tls", id);
    let out = tar_bundles(
        &dir,
        &chain.issuing,
        &chain.issuing_key,
        &zip,
        &["--csr", csr.to_str().unwrap()],
    );
    let tar = out.join(format!("{id}.tar"));
    let listing = Cmd::new("tar").arg("-tf").arg(&tar).run();
    listing.success();
    assert!(
        listing.stdout.contains("var/sota/import/client.pem") && !listing.stdout.contains("pkey"),
        "the bundle of a request must hold client.pem and no key:\n{}",
        listing.stdout
    );
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("devices.json")).unwrap()).unwrap();
    assert_eq!(record["devices"][0]["id"], id, "{record}");
    assert_eq!(record["devices"][0]["key_source"], "csr", "{record}");
    let pin_file = dir.write("pin", pin);
    let root = stage(
        &dir,
        &zip,
        "device-cred-hsm",
        &[
            "--p11-module",
            SOFTHSM_MODULE,
            "--p11-pin-file",
            pin_file.to_str().unwrap(),
            "--p11-cert-source",
            "file",
        ],
    );
    unpack(&tar, &root, &[]);
    assert!(!root.join("var/sota/import/pkey.pem").exists());
    assert_client_pem_carries(&root, &chain.issuing);
    let env = DeviceEnv {
        softhsm2_conf: Some(hsm.conf.clone()),
        once: false,
    };
    run_device(&dir, &fleet, &root, &env).assert_provisioned(Expect {
        shared: false,
        device_id: Some(id),
        director_pinned: false,
    });
}

/// Issue 20's factory flow with keys made at the station: `device-certs`
/// mints the key with a fleet CA that is an intermediate below a root of
/// its own, and the `--format tar` bundle is unpacked over a generic
/// device-cred image. The server trusts only the root for client
/// certificates: the device provisions through the chain client.pem
/// carries.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn factory_flow_minted_keys_below_an_intermediate_ca() {
    minted_below_an_intermediate_ca(false);
}

/// The same bundle for one device staged by `stage --device-cert` (its
/// client.pem: the device's certificate, then the issuing CA) with
/// `--device-key`: the chain is staged as the bundle holds it, and the
/// server that trusts only the root accepts the device.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn factory_flow_stage_device_cert_with_its_chain() {
    let dir = TestDir::new();
    let chain = ChainedFleetCa::new(&dir);
    let fleet = Fleet::new(&dir).trusting_clients_of(&chain.root);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let id = "e2e-factory-0003";
    let out = dir.join("bundles");
    sota(["device-certs", "--format", "dir", "--fleet-ca"])
        .arg(&chain.issuing)
        .arg("--fleet-ca-key")
        .arg(&chain.issuing_key)
        .arg("--out")
        .arg(&out)
        .args(["--device-id", id])
        .run()
        .success();
    let import = out.join(id).join("var/sota/import");
    let root = stage(
        &dir,
        &zip,
        "device-cred",
        &[
            "--device-cert",
            import.join("client.pem").to_str().unwrap(),
            "--device-key",
            import.join("pkey.pem").to_str().unwrap(),
        ],
    );
    assert_client_pem_carries(&root, &chain.issuing);
    run_device(&dir, &fleet, &root, &DeviceEnv::default()).assert_provisioned(Expect {
        shared: false,
        device_id: Some(id),
        director_pinned: false,
    });
}

/// Negative control of the test above: the same bundle with client.pem
/// cut to the device certificate alone. The server, trusting only the
/// root, cannot build the path: every handshake fails, nothing is
/// registered.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn negative_client_pem_without_the_intermediate_is_refused_by_a_root_only_server() {
    minted_below_an_intermediate_ca(true);
}

#[track_caller]
fn minted_below_an_intermediate_ca(leaf_only: bool) {
    let dir = TestDir::new();
    let chain = ChainedFleetCa::new(&dir);
    let fleet = Fleet::new(&dir).trusting_clients_of(&chain.root);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let root = stage(&dir, &zip, "device-cred", &[]);
    let id = "e2e-factory-0002";
    let out = tar_bundles(
        &dir,
        &chain.issuing,
        &chain.issuing_key,
        &zip,
        &["--device-id", id],
    );
    unpack(&out.join(format!("{id}.tar")), &root, &[]);
    assert!(root.join("var/sota/import/pkey.pem").is_file());
    let client = assert_client_pem_carries(&root, &chain.issuing);
    if !leaf_only {
        run_device(&dir, &fleet, &root, &DeviceEnv::default()).assert_provisioned(Expect {
            shared: false,
            device_id: Some(id),
            director_pinned: false,
        });
        return;
    }
    let leaf = pem_certificates(&client)
        .first()
        .copied()
        .unwrap()
        .to_owned();
    fs::write(root.join("var/sota/import/client.pem"), leaf + "\n").unwrap();
    let once = DeviceEnv {
        once: true,
        ..DeviceEnv::default()
    };
    let outcome = run_device(&dir, &fleet, &root, &once);
    outcome.assert_nothing_registered();
    if outcome.first.tls_errors() == 0 || !outcome.first.served().is_empty() {
        outcome.fail("expected failed TLS handshakes and no request served");
    }
}

/// The device's TLS key in the token.
#[derive(Debug, Clone, Copy)]
enum TlsKey {
    /// An EC P-256 key made outside and imported, with its public key
    /// object under the same id: libp11 cannot use an EC private key
    /// without it ("unable to set private key", then curl error 58).
    EcP256Imported,
    /// An RSA 3072 key pair the token makes itself (`--keypairgen`); the
    /// certificate is issued for the public key read back from the token.
    Rsa3072MadeByToken,
}

/// device-cred-hsm: the certificate and TLS key in a SoftHSM token, the
/// Uptane key made in the token by aktualizr (id 03), a PIN from a file.
#[track_caller]
fn device_cred_hsm(tls: TlsKey, extra: &[&str]) {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let pin = "e2e-pin-5678";
    let (conf, device_id) = softhsm_token(&dir, &fleet, pin, tls);
    let pin_file = dir.write("pin", pin);
    let mut args = vec![
        "--p11-module",
        SOFTHSM_MODULE,
        "--p11-pin-file",
        pin_file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let root = stage(&dir, &zip, "device-cred-hsm", &args);
    let env = DeviceEnv {
        softhsm2_conf: Some(conf),
        once: false,
    };
    let outcome = run_device(&dir, &fleet, &root, &env);
    outcome.assert_provisioned(Expect {
        shared: false,
        device_id: Some(&device_id),
        director_pinned: false,
    });
    // What reached the server: the PIN only when told to send it.
    let sent: Vec<&Request> = [&outcome.first, &outcome.second]
        .iter()
        .flat_map(|pass| pass.requests.iter())
        .collect();
    let configs = sent
        .iter()
        .filter(|r| r.is("POST", "/system_info/config"))
        .count();
    let leaked = sent.iter().any(|r| r.holds(pin));
    if extra.contains(&"on") {
        assert!(configs > 0 && leaked, "{}", outcome.transcript);
    } else {
        assert_eq!(configs, 0, "{}", outcome.transcript);
        assert!(
            !leaked,
            "the PIN reached the server\n{}",
            outcome.transcript
        );
    }
}

/// A SoftHSM token in `dir` (its own SOFTHSM2_CONF) holding the device
/// certificate (id 01) and its TLS key (id 02) as `tls` says. Returns the
/// configuration file and the device id (the certificate's CN).
#[track_caller]
fn softhsm_token(dir: &TestDir, fleet: &Fleet, pin: &str, tls: TlsKey) -> (PathBuf, String) {
    let (conf, device_id, _) = softhsm_token_with(dir, fleet, pin, tls, true);
    (conf, device_id)
}

/// A SoftHSM token of the test's own (its `SOFTHSM2_CONF` in the test's
/// folder), labelled `sota-e2e`, with the user PIN `pin`.
struct SoftHsm<'a> {
    dir: &'a TestDir,
    conf: PathBuf,
    pin: &'a str,
}

impl<'a> SoftHsm<'a> {
    #[track_caller]
    fn new(dir: &'a TestDir, pin: &'a str) -> SoftHsm<'a> {
        let tokens = dir.mkdir("softhsm-tokens");
        let conf = dir.write(
            "softhsm2.conf",
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        );
        let hsm = SoftHsm { dir, conf, pin };
        hsm.tool("softhsm2-util")
            .args([
                "--init-token",
                "--free",
                "--label",
                "sota-e2e",
                "--pin",
                pin,
            ])
            .args(["--so-pin", "e2e-so-pin-0000"])
            .run()
            .success();
        hsm
    }

    /// `program` with this token's configuration, in the test's folder.
    fn tool(&self, program: &str) -> Cmd {
        Cmd::new(program)
            .env("SOFTHSM2_CONF", &self.conf)
            .current_dir(self.dir.path())
    }

    /// `pkcs11-tool`, logged in to the token, with `args`.
    #[track_caller]
    fn p11(&self, args: &[&str]) {
        self.tool("pkcs11-tool")
            .args(["--module", SOFTHSM_MODULE, "--token-label", "sota-e2e"])
            .args(["--login", "--pin", self.pin])
            .args(args)
            .run()
            .success();
    }

    /// A certificate request for `/CN=cn` signed by the token's private
    /// key `label`, as a device makes it: openssl through the PKCS#11
    /// engine (pointed at SoftHSM itself, not at p11-kit's proxy), so the
    /// key never leaves the token. Returns the request's file.
    #[track_caller]
    fn request(&self, label: &str, cn: &str) -> PathBuf {
        let openssl_conf = self.dir.write(
            "engine.cnf",
            format!(
                "openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = pkcs11\n\
                 [pkcs11]\nengine_id = pkcs11\nMODULE_PATH = {SOFTHSM_MODULE}\ninit = 0\n\
                 [req]\ndistinguished_name = dn\n[dn]\n"
            ),
        );
        let out = self.dir.join(format!("{cn}.csr"));
        self.tool("openssl")
            .env("OPENSSL_CONF", &openssl_conf)
            .args(["req", "-new", "-engine", "pkcs11", "-keyform", "engine"])
            .arg("-key")
            .arg(format!(
                "pkcs11:token=sota-e2e;object={label};type=private?pin-value={}",
                self.pin
            ))
            .args(["-subj", &format!("/CN={cn}"), "-out"])
            .arg(&out)
            .run()
            .success();
        out
    }
}

/// [`softhsm_token`], the certificate written into the token only when
/// `cert_in_token`; also returns the certificate file.
#[track_caller]
fn softhsm_token_with(
    dir: &TestDir,
    fleet: &Fleet,
    pin: &str,
    tls: TlsKey,
    cert_in_token: bool,
) -> (PathBuf, String, PathBuf) {
    let hsm = SoftHsm::new(dir, pin);
    let p11 = |args: &[&str]| hsm.p11(args);
    let work = dir.path();
    let (cert, device_id) = match tls {
        TlsKey::EcP256Imported => {
            let device = device_cert(fleet);
            let key = device.key.to_str().unwrap();
            openssl(
                work,
                ["pkey", "-in", key, "-outform", "DER", "-out", "tls.key.der"],
            );
            openssl(
                work,
                [
                    "pkey",
                    "-in",
                    key,
                    "-pubout",
                    "-outform",
                    "DER",
                    "-out",
                    "tls.pub.der",
                ],
            );
            p11(&[
                "--write-object",
                "tls.key.der",
                "--type",
                "privkey",
                "--id",
                "02",
                "--label",
                "tls",
            ]);
            p11(&[
                "--write-object",
                "tls.pub.der",
                "--type",
                "pubkey",
                "--id",
                "02",
                "--label",
                "tls",
            ]);
            (device.cert, device.cn)
        }
        TlsKey::Rsa3072MadeByToken => {
            p11(&[
                "--keypairgen",
                "--key-type",
                "rsa:3072",
                "--id",
                "02",
                "--label",
                "tls",
            ]);
            p11(&[
                "--read-object",
                "--type",
                "pubkey",
                "--id",
                "02",
                "--output-file",
                "tls.pub.der",
            ]);
            openssl(
                work,
                [
                    "pkey",
                    "-pubin",
                    "-inform",
                    "DER",
                    "-in",
                    "tls.pub.der",
                    "-out",
                    "tls.pub.pem",
                ],
            );
            // A request signed by a throw-away key; the certificate gets the
            // token's public key (-force_pubkey).
            let id = "e2e-hsm-rsa-device";
            openssl(
                work,
                [
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    "csr.key",
                ],
            );
            openssl(
                work,
                [
                    "req",
                    "-new",
                    "-key",
                    "csr.key",
                    "-subj",
                    &format!("/CN={id}"),
                    "-out",
                    "tls.csr",
                ],
            );
            let ca = fleet.pki.ca();
            let cert = dir.join("tls.pem");
            openssl(
                fleet.pki.dir(),
                [
                    "x509",
                    "-req",
                    "-in",
                    work.join("tls.csr").to_str().unwrap(),
                    "-force_pubkey",
                    work.join("tls.pub.pem").to_str().unwrap(),
                    "-CA",
                    ca.cert.to_str().unwrap(),
                    "-CAkey",
                    ca.key.to_str().unwrap(),
                    "-set_serial",
                    "0x3072",
                    "-days",
                    "365",
                    "-extfile",
                    "openssl.cnf",
                    "-extensions",
                    "client_ext",
                    "-out",
                    cert.to_str().unwrap(),
                ],
            );
            (cert, id.to_owned())
        }
    };
    if cert_in_token {
        openssl(
            work,
            [
                "x509",
                "-in",
                cert.to_str().unwrap(),
                "-outform",
                "DER",
                "-out",
                "tls.cert.der",
            ],
        );
        p11(&[
            "--write-object",
            "tls.cert.der",
            "--type",
            "cert",
            "--id",
            "01",
            "--label",
            "tls",
        ]);
    }
    (hsm.conf, device_id, cert)
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn both_roots_pinned_with_director_root_json() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet
        .creds()
        .file("director.root.json", fleet.director_root())
        .write_to(&dir, "credentials.zip");
    let root = stage(&dir, &zip, "shared-cred", &[]);
    run_device(&dir, &fleet, &root, &DeviceEnv::default()).assert_provisioned(Expect {
        shared: true,
        device_id: None,
        director_pinned: true,
    });
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn server_ca_pem_archive_without_p12_provisions_with_device_cred() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.ce_creds().write_to(&dir, "credentials.zip");
    let device = device_cert(&fleet);
    let cert = device.cert.to_str().unwrap();
    let key = device.key.to_str().unwrap();
    let root = stage(
        &dir,
        &zip,
        "device-cred",
        &["--device-cert", cert, "--device-key", key],
    );
    run_device(&dir, &fleet, &root, &DeviceEnv::default()).assert_provisioned(Expect {
        shared: false,
        device_id: Some(&device.cn),
        director_pinned: false,
    });
}

/// Negative control: the server's certificate comes from a CA other than
/// the one the archive gives the device. aktualizr must refuse the server:
/// every handshake fails, nothing is registered.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn negative_a_server_of_another_ca_is_refused() {
    let dir = TestDir::new();
    let fleet = Fleet::with_foreign_server_ca(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let root = stage(&dir, &zip, "shared-cred", &[]);
    let once = DeviceEnv {
        once: true,
        ..DeviceEnv::default()
    };
    let outcome = run_device(&dir, &fleet, &root, &once);
    outcome.assert_nothing_registered();
    if outcome.first.tls_errors() == 0 || !outcome.first.served().is_empty() {
        outcome.fail("expected failed TLS handshakes and no request served");
    }
}

/// Negative control: a generic device-cred image whose bundle lacks the
/// device key. aktualizr cannot provision; nothing is registered.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn negative_a_missing_device_key_registers_nothing() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let root = stage(&dir, &zip, "device-cred", &[]);
    unpack_bundle(
        &dir,
        &fleet,
        &zip,
        "e2e-device-0043",
        &root,
        &["var/sota/import/pkey.pem"],
    );
    assert!(root.join("var/sota/import/client.pem").is_file());
    assert!(!root.join("var/sota/import/pkey.pem").exists());
    let once = DeviceEnv {
        once: true,
        ..DeviceEnv::default()
    };
    let outcome = run_device(&dir, &fleet, &root, &once);
    outcome.assert_nothing_registered();
    if !outcome.first.served().is_empty() {
        outcome.fail("a request reached the server without a device key");
    }
}

/// Negative control: the comparison of what reached the server with what
/// was staged finds a hardware id other than the staged one. The device
/// is staged with one id and registers; held against another id, the
/// check reports the difference, held against its own it passes.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn negative_another_hardware_id_than_the_staged_one_is_detected() {
    let dir = TestDir::new();
    let fleet = Fleet::new(&dir);
    let zip = fleet.creds().write_to(&dir, "credentials.zip");
    let staged_elsewhere = "sota-e2e-other-board";
    let root = dir.join("device");
    sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .arg("--device-root")
        .arg(&root)
        .args(["--hardware-id", staged_elsewhere])
        .run()
        .success();
    let outcome = run_device(&dir, &fleet, &root, &DeviceEnv::default());
    let requests = &outcome.first.requests;
    match hardware_id_mismatch(requests, HARDWARE_ID) {
        Some(why) => assert!(why.contains(staged_elsewhere), "{why}"),
        None => outcome.fail("the check missed a hardware id other than the staged one"),
    }
    if let Some(why) = hardware_id_mismatch(requests, staged_elsewhere) {
        outcome.fail(&why);
    }
    if outcome.first.info.hardware_id().as_deref() != Some(staged_elsewhere) {
        outcome.fail("aktualizr-info: not the staged hardware id");
    }
}

/// The message without AKTUALIZR_BIN: how to build aktualizr. (Runs
/// without root or aktualizr; checks the helper fails rather than skips.)
#[test]
fn without_aktualizr_bin_the_tests_fail_saying_how_to_build_it() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "shared_cred_provisions_registers_and_updates_once",
            "--test-threads",
            "1",
        ])
        .env_remove("AKTUALIZR_BIN")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("AKTUALIZR_BIN is not set") && text.contains("setup.sh"),
        "{text}"
    );
}
