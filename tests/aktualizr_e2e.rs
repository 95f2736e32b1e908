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
    Outcome, Request, HARDWARE_ID, SOFTHSM_MODULE,
};
use common::softhsm::softhsm2_conf;
use common::{ec_p256_key, openssl, sota, Cmd, Creds, TestDir};

/// One test's folder, its fleet and the fleet's archive
/// (`credentials.zip`), and what the tests do with them.
struct Case {
    dir: TestDir,
    fleet: Fleet,
    zip: PathBuf,
}

impl Case {
    /// [`Fleet::new`] and its archive, [`Fleet::creds`].
    #[track_caller]
    fn new() -> Case {
        Case::with(Fleet::new, Fleet::creds)
    }

    /// The fleet `fleet` makes, and the archive `creds` gives for it.
    #[track_caller]
    fn with(fleet: fn(&TestDir) -> Fleet, creds: fn(&Fleet) -> Creds<'_>) -> Case {
        let dir = TestDir::new();
        let fleet = fleet(&dir);
        let zip = creds(&fleet).write_to(&dir, "credentials.zip");
        Case { dir, fleet, zip }
    }

    /// [`Case::new`] with a [`ChainedFleetCa`] whose root is the only CA
    /// the server trusts for client certificates.
    #[track_caller]
    fn chained() -> (Case, ChainedFleetCa) {
        let case = Case::new();
        let chain = ChainedFleetCa::new(&case.dir);
        let fleet = case.fleet.trusting_clients_of(&chain.root);
        (Case { fleet, ..case }, chain)
    }

    /// `stage --method METHOD` of the archive with the tests' hardware id
    /// and `extra` options, into `dir/device`; returns the device root.
    #[track_caller]
    fn stage(&self, method: &str, extra: &[&str]) -> PathBuf {
        self.stage_as(method, HARDWARE_ID, extra)
    }

    /// [`Case::stage`] with the hardware id `hardware_id`.
    #[track_caller]
    fn stage_as(&self, method: &str, hardware_id: &str, extra: &[&str]) -> PathBuf {
        let root = self.dir.join("device");
        sota(["stage", "--method", method, "--credentials"])
            .arg(&self.zip)
            .arg("--device-root")
            .arg(&root)
            .args(["--hardware-id", hardware_id])
            .args(extra)
            .run()
            .success();
        root
    }

    /// `stage --method device-cred` with the device certificate `cert`
    /// and its key `key` files.
    #[track_caller]
    fn stage_device_cert(&self, cert: &Path, key: &Path) -> PathBuf {
        let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
        self.stage("device-cred", &["--device-cert", cert, "--device-key", key])
    }

    /// [`run_device`] on the staged `root`.
    #[track_caller]
    fn run(&self, root: &Path, env: &DeviceEnv) -> Outcome {
        run_device(&self.dir, &self.fleet, root, env)
    }

    /// `device-certs --format tar --credentials zip` for `id`, unpacked
    /// over `root` as a factory would (`tar -xpf ID.tar -C ROOT`), without
    /// the files named in `leave_out`.
    #[track_caller]
    fn unpack_bundle(&self, id: &str, root: &Path, leave_out: &[&str]) {
        let ca = self.fleet.pki.ca();
        let out = self.tar_bundles(&ca.cert, &ca.key, &["--device-id", id]);
        unpack(&out.join(format!("{id}.tar")), root, leave_out);
    }

    /// `device-certs --format tar --credentials zip` with the fleet CA
    /// `ca` and its key, for the devices `devices` (`--device-id ID`,
    /// `--csr FILE`), into `dir/bundles`, which it returns.
    #[track_caller]
    fn tar_bundles(&self, ca: &Path, key: &Path, devices: &[&str]) -> PathBuf {
        let out = self.dir.join("bundles");
        sota(["device-certs", "--fleet-ca"])
            .arg(ca)
            .arg("--fleet-ca-key")
            .arg(key)
            .args(devices)
            .args(["--format", "tar", "--out"])
            .arg(&out)
            .arg("--credentials")
            .arg(&self.zip)
            .run()
            .success();
        out
    }
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
    let case = Case::new();
    let root = case.stage("shared-cred", &[]);
    let outcome = case.run(&root, &DeviceEnv::default());
    outcome.assert_provisioned(Expect::SHARED);
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
    let case = Case::with(Fleet::new, |fleet| {
        fleet.creds_at(&format!("{}/", fleet.url()))
    });
    let root = case.stage("shared-cred", &[]);
    let outcome = case.run(&root, &DeviceEnv::default());
    outcome.assert_provisioned(Expect::SHARED);
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
    provisions_with_the_device_cert_staged(Case::new());
}

/// `stage --method device-cred` of the case's archive with a device
/// certificate and key of the fleet CA: the device provisions as the
/// certificate's CN.
#[track_caller]
fn provisions_with_the_device_cert_staged(case: Case) {
    let device = device_cert(&case.fleet);
    let root = case.stage_device_cert(&device.cert, &device.key);
    case.run(&root, &DeviceEnv::default())
        .assert_provisioned(Expect::device(&device.cn));
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn device_cred_generic_image_completed_by_a_device_certs_bundle() {
    let case = Case::new();
    let root = case.stage("device-cred", &[]);
    case.unpack_bundle("e2e-device-0042", &root, &[]);
    case.run(&root, &DeviceEnv::default())
        .assert_provisioned(Expect::device("e2e-device-0042"));
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
    let case = Case::new();
    let hsm = SoftHsm::new(&case.dir, PIN);
    let (device_id, cert) = hsm.tls_identity(&case.fleet, TlsKey::EcP256Imported, false);
    let cert = cert.to_str().unwrap();
    let root = case.stage(
        "device-cred-hsm",
        &hsm.stage_options(&["--device-cert", cert]),
    );
    assert!(root.join("var/sota/import/client.pem").is_file());
    assert!(!root.join("var/sota/import/pkey.pem").exists());
    case.run(&root, &DeviceEnv::softhsm(hsm.conf))
        .assert_provisioned(Expect::device(&device_id));
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
    let (case, chain) = Case::chained();
    let hsm = SoftHsm::new(&case.dir, PIN);
    hsm.tls_keypair("EC:prime256v1");
    let id = "e2e-factory-0001";
    let csr = hsm.request("tls", id);
    let out = case.tar_bundles(
        &chain.issuing,
        &chain.issuing_key,
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
    let options = hsm.stage_options(&["--p11-cert-source", "file"]);
    let root = case.stage("device-cred-hsm", &options);
    unpack(&tar, &root, &[]);
    assert!(!root.join("var/sota/import/pkey.pem").exists());
    assert_client_pem_carries(&root, &chain.issuing);
    case.run(&root, &DeviceEnv::softhsm(hsm.conf))
        .assert_provisioned(Expect::device(id));
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
    let (case, chain) = Case::chained();
    let id = "e2e-factory-0003";
    let out = case.dir.join("bundles");
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
    let root = case.stage_device_cert(&import.join("client.pem"), &import.join("pkey.pem"));
    assert_client_pem_carries(&root, &chain.issuing);
    case.run(&root, &DeviceEnv::default())
        .assert_provisioned(Expect::device(id));
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
    let (case, chain) = Case::chained();
    let root = case.stage("device-cred", &[]);
    let id = "e2e-factory-0002";
    let out = case.tar_bundles(&chain.issuing, &chain.issuing_key, &["--device-id", id]);
    unpack(&out.join(format!("{id}.tar")), &root, &[]);
    assert!(root.join("var/sota/import/pkey.pem").is_file());
    let client = assert_client_pem_carries(&root, &chain.issuing);
    if !leaf_only {
        case.run(&root, &DeviceEnv::default())
            .assert_provisioned(Expect::device(id));
        return;
    }
    let leaf = pem_certificates(&client)
        .first()
        .copied()
        .unwrap()
        .to_owned();
    fs::write(root.join("var/sota/import/client.pem"), leaf + "\n").unwrap();
    case.run(&root, &DeviceEnv::once())
        .assert_handshakes_failed();
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

/// The user PIN of every test's token.
const PIN: &str = "e2e-pin-5678";

/// device-cred-hsm: the certificate and TLS key in a SoftHSM token, the
/// Uptane key made in the token by aktualizr (id 03), a PIN from a file.
#[track_caller]
fn device_cred_hsm(tls: TlsKey, extra: &[&str]) {
    let case = Case::new();
    let hsm = SoftHsm::new(&case.dir, PIN);
    let (device_id, _) = hsm.tls_identity(&case.fleet, tls, true);
    let root = case.stage("device-cred-hsm", &hsm.stage_options(extra));
    let outcome = case.run(&root, &DeviceEnv::softhsm(hsm.conf));
    outcome.assert_provisioned(Expect::device(&device_id));
    // What reached the server: the PIN only when told to send it.
    let sent: Vec<&Request> = [&outcome.first, &outcome.second]
        .iter()
        .flat_map(|pass| pass.requests.iter())
        .collect();
    let configs = sent
        .iter()
        .filter(|r| r.is("POST", "/system_info/config"))
        .count();
    let leaked = sent.iter().any(|r| r.holds(PIN));
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

/// A SoftHSM token of the test's own (its `SOFTHSM2_CONF` in the test's
/// folder), labelled `sota-e2e`, with the user PIN `pin` (also in the
/// file `pin` for `--p11-pin-file`).
struct SoftHsm<'a> {
    dir: &'a TestDir,
    conf: PathBuf,
    pin: &'a str,
    pin_file: PathBuf,
}

impl<'a> SoftHsm<'a> {
    #[track_caller]
    fn new(dir: &'a TestDir, pin: &'a str) -> SoftHsm<'a> {
        let conf = softhsm2_conf(dir, "softhsm-tokens");
        let pin_file = dir.write("pin", pin);
        let hsm = SoftHsm {
            dir,
            conf,
            pin,
            pin_file,
        };
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

    /// `stage`'s options for this token (`--p11-module`,
    /// `--p11-pin-file`), then `extra`.
    fn stage_options<'s>(&'s self, extra: &[&'s str]) -> Vec<&'s str> {
        let pin_file = self.pin_file.to_str().unwrap();
        let mut args = vec!["--p11-module", SOFTHSM_MODULE, "--p11-pin-file", pin_file];
        args.extend_from_slice(extra);
        args
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

    /// A key pair of `key_type` (`pkcs11-tool --key-type`) made by the
    /// token, labelled `tls`, under the fragment's default TLS key id (02).
    #[track_caller]
    fn tls_keypair(&self, key_type: &str) {
        self.p11(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            "02",
            "--label",
            "tls",
        ]);
    }

    /// The DER file `file` written into the token as an object of `kind`
    /// (`privkey`, `pubkey`, `cert`) with `id`, labelled `tls`.
    #[track_caller]
    fn write_tls_object(&self, file: &str, kind: &str, id: &str) {
        self.p11(&[
            "--write-object",
            file,
            "--type",
            kind,
            "--id",
            id,
            "--label",
            "tls",
        ]);
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

    /// The device's TLS key (id 02) in the token as `tls` says, and its
    /// certificate of the fleet CA, written into the token (id 01) only
    /// when `cert_in_token`. Returns the device id (the certificate's CN)
    /// and the certificate file.
    #[track_caller]
    fn tls_identity(&self, fleet: &Fleet, tls: TlsKey, cert_in_token: bool) -> (String, PathBuf) {
        let work = self.dir.path();
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
                self.write_tls_object("tls.key.der", "privkey", "02");
                self.write_tls_object("tls.pub.der", "pubkey", "02");
                (device.cert, device.cn)
            }
            TlsKey::Rsa3072MadeByToken => {
                self.tls_keypair("rsa:3072");
                self.p11(&[
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
                ec_p256_key(work, "csr.key");
                let subject = format!("/CN={id}");
                openssl(
                    work,
                    [
                        "req", "-new", "-key", "csr.key", "-subj", &subject, "-out", "tls.csr",
                    ],
                );
                let ca = fleet.pki.ca();
                let cert = self.dir.join("tls.pem");
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
            let cert = cert.to_str().unwrap();
            openssl(
                work,
                [
                    "x509",
                    "-in",
                    cert,
                    "-outform",
                    "DER",
                    "-out",
                    "tls.cert.der",
                ],
            );
            self.write_tls_object("tls.cert.der", "cert", "01");
        }
        (device_id, cert)
    }
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn both_roots_pinned_with_director_root_json() {
    let case = Case::with(Fleet::new, |fleet| {
        fleet
            .creds()
            .file("director.root.json", fleet.director_root())
    });
    let root = case.stage("shared-cred", &[]);
    case.run(&root, &DeviceEnv::default())
        .assert_provisioned(Expect {
            director_pinned: true,
            ..Expect::SHARED
        });
}

#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn server_ca_pem_archive_without_p12_provisions_with_device_cred() {
    provisions_with_the_device_cert_staged(Case::with(Fleet::new, Fleet::ce_creds));
}

/// Negative control: the server's certificate comes from a CA other than
/// the one the archive gives the device. aktualizr must refuse the server:
/// every handshake fails, nothing is registered.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn negative_a_server_of_another_ca_is_refused() {
    let case = Case::with(Fleet::with_foreign_server_ca, Fleet::creds);
    let root = case.stage("shared-cred", &[]);
    case.run(&root, &DeviceEnv::once())
        .assert_handshakes_failed();
}

/// Negative control: a generic device-cred image whose bundle lacks the
/// device key. aktualizr cannot provision; nothing is registered.
#[test]
#[ignore = "needs root (namespaces), openssl, and the real aktualizr built by ../shared/tools/aktualizr/setup.sh: set AKTUALIZR_BIN"]
fn negative_a_missing_device_key_registers_nothing() {
    let case = Case::new();
    let root = case.stage("device-cred", &[]);
    case.unpack_bundle("e2e-device-0043", &root, &["var/sota/import/pkey.pem"]);
    assert!(root.join("var/sota/import/client.pem").is_file());
    assert!(!root.join("var/sota/import/pkey.pem").exists());
    let outcome = case.run(&root, &DeviceEnv::once());
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
    let case = Case::new();
    let staged_elsewhere = "sota-e2e-other-board";
    let root = case.stage_as("shared-cred", staged_elsewhere, &[]);
    let outcome = case.run(&root, &DeviceEnv::default());
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
