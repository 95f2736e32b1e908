//! `sota-stage stage`: the exact trees each method stages (files, modes,
//! contents, times), the device zip byte by byte, host secrets kept off the
//! device, reproducibility, and all-or-nothing writes (design.md 4-6).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::*;

/// The time every staged file and zip entry gets in these tests, odd on
/// purpose: zip times count seconds in twos.
const EPOCH: i64 = 1_700_000_001;
/// OE-core's `SOURCE_DATE_EPOCH_FALLBACK`, used when the variable is unset.
const DEFAULT_EPOCH: i64 = 1_302_044_400;

const SHARED_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-shared-cred.toml";
const DEVICE_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-device-cred.toml";
const HSM_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml";
const HARDWARE_FRAGMENT: &str = "usr/lib/sota/conf.d/40-hardware-id.toml";
const DEVICE_ZIP: &str = "var/sota/sota_provisioning_credentials.zip";

// --- the kit of this file ---------------------------------------------------

/// The files of a tree: path -> (permission bits, bytes).
fn files(tree: &BTreeMap<String, Node>) -> BTreeMap<String, (u32, Vec<u8>)> {
    tree.iter()
        .filter_map(|(p, n)| n.bytes.clone().map(|b| (p.clone(), (n.mode & 0o7777, b))))
        .collect()
}

/// The folders of a tree, root excluded: path -> permission bits.
fn folders(tree: &BTreeMap<String, Node>) -> BTreeMap<String, u32> {
    tree.iter()
        .filter(|(p, n)| n.bytes.is_none() && !p.is_empty())
        .map(|(p, n)| (p.clone(), n.mode & 0o7777))
        .collect()
}

/// The file names of `files`, sorted, with their modes.
fn listing(files: &BTreeMap<String, (u32, Vec<u8>)>) -> Vec<(&str, u32)> {
    files.iter().map(|(p, (m, _))| (p.as_str(), *m)).collect()
}

/// One test's folders: the device root, the host root, the manifest path.
struct Roots {
    dir: TestDir,
    dev: PathBuf,
    host: PathBuf,
    manifest: PathBuf,
}

impl Roots {
    fn new() -> Roots {
        let dir = TestDir::new();
        Roots {
            dev: dir.join("image"),
            host: dir.join("native"),
            manifest: dir.join("manifest.json"),
            dir,
        }
    }

    /// `stage` with both roots and the manifest, `SOURCE_DATE_EPOCH` =
    /// [`EPOCH`].
    fn stage(&self, zip: &Path, method: &str, extra: &[&str]) -> Run {
        self.stage_cmd(zip, method, extra)
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .run()
    }

    fn stage_cmd(&self, zip: &Path, method: &str, extra: &[&str]) -> Cmd {
        sota(["stage", "--method", method, "--credentials"])
            .arg(zip)
            .arg("--device-root")
            .arg(&self.dev)
            .arg("--host-root")
            .arg(&self.host)
            .arg("--manifest")
            .arg(&self.manifest)
            .args(extra)
    }

    fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(&fs::read(&self.manifest).unwrap()).unwrap()
    }
}

/// Every mtime in the tree (folders and files) is `epoch`.
#[track_caller]
fn assert_times(tree: &BTreeMap<String, Node>, epoch: i64) {
    for (path, node) in tree {
        assert_eq!(node.mtime, (epoch, 0), "mtime of `{path}`");
    }
}

/// The entries of an archive the tests built, by name.
fn entries_of(creds: &Creds<'_>) -> BTreeMap<String, Vec<u8>> {
    zip_entries(&creds.build())
}

/// Name -> bytes of every entry of a zip, through the zip crate.
fn zip_entries(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        out.insert(f.name().to_string(), data);
    }
    out
}

/// The PEM blocks in `text`, in order.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end_marker = "-----END CERTIFICATE-----";
        let end = rest[start..].find(end_marker).unwrap() + start + end_marker.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    out
}

fn upstream_entry(name: &str, entry: &str) -> Vec<u8> {
    zip_entries(&fs::read(upstream(name)).unwrap())
        .remove(entry)
        .unwrap()
}

// --- the device zip, read byte by byte --------------------------------------

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One entry as the central directory and its local header describe it.
#[derive(Debug)]
struct RawEntry {
    name: String,
    made_by: u16,
    flags: u16,
    method: u16,
    dos_time: u16,
    dos_date: u16,
    external: u32,
    central_extra: u16,
    comment: u16,
    local_extra: u16,
    data: Vec<u8>,
}

/// Parses a zip by hand, so nothing a zip library hides (extra fields,
/// flags, attributes) goes unseen. Panics on anything but the simple shape
/// the tool writes: no zip64, no data descriptors, no archive comment.
fn raw_entries(b: &[u8]) -> Vec<RawEntry> {
    let eocd = b.len() - 22;
    assert_eq!(u32_at(b, eocd), 0x0605_4b50, "EOCD at the very end");
    assert_eq!(u16_at(b, eocd + 20), 0, "no archive comment");
    let count = usize::from(u16_at(b, eocd + 10));
    let mut at = u32_at(b, eocd + 16) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(b, at), 0x0201_4b50, "central header");
        let name_len = usize::from(u16_at(b, at + 28));
        let central_extra = u16_at(b, at + 30);
        let comment = u16_at(b, at + 32);
        let offset = u32_at(b, at + 42) as usize;
        let size = u32_at(b, at + 20) as usize;
        let name = String::from_utf8(b[at + 46..at + 46 + name_len].to_vec()).unwrap();
        assert_eq!(u32_at(b, offset), 0x0403_4b50, "local header");
        let local_extra = u16_at(b, offset + 28);
        let start = offset + 30 + usize::from(u16_at(b, offset + 26)) + usize::from(local_extra);
        let data = b[start..start + size].to_vec();
        assert_eq!(u32_at(b, at + 16), crc32(&data), "crc of {name}");
        assert_eq!(u32_at(b, at + 24) as usize, size, "stored: same sizes");
        for (what, central, local) in [
            ("flags", 8, 6),
            ("method", 10, 8),
            ("time", 12, 10),
            ("date", 14, 12),
            ("crc", 16, 14),
        ] {
            assert_eq!(
                u16_at(b, at + central),
                u16_at(b, offset + local),
                "{name}: local and central {what} agree"
            );
        }
        out.push(RawEntry {
            name,
            made_by: u16_at(b, at + 4),
            flags: u16_at(b, at + 8),
            method: u16_at(b, at + 10),
            dos_time: u16_at(b, at + 12),
            dos_date: u16_at(b, at + 14),
            external: u32_at(b, at + 38),
            central_extra,
            comment,
            local_extra,
            data,
        });
        at += 46 + name_len + usize::from(central_extra) + usize::from(comment);
    }
    out
}

/// The zip as the tool must write it: exactly these entries, sorted,
/// stored, at `epoch` as UTC in DOS form `(date, time)`, mode 0600, no
/// extra field, no comment, no flag.
#[track_caller]
fn assert_fixed_zip(bytes: &[u8], expected: &[(&str, &[u8])], dos: (u16, u16)) {
    let entries = raw_entries(bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names, "exactly these entries, sorted");
    for (e, (_, data)) in entries.iter().zip(expected) {
        assert_eq!(
            e.data, *data,
            "{}: the bytes of the archive's entry",
            e.name
        );
        assert_eq!(e.method, 0, "{}: stored", e.name);
        assert_eq!(e.flags, 0, "{}: no data descriptor, no encryption", e.name);
        assert_eq!((e.dos_date, e.dos_time), dos, "{}: fixed time", e.name);
        assert_eq!(e.external >> 16, 0o100_600, "{}: a 0600 file", e.name);
        assert_eq!(e.made_by >> 8, 3, "{}: Unix attributes", e.name);
        assert_eq!(
            (e.local_extra, e.central_extra, e.comment),
            (0, 0, 0),
            "{}: no extra fields, no comment",
            e.name
        );
    }
}

/// DOS (date, time) of a UTC calendar time, seconds rounded down to even.
fn dos(year: u16, month: u16, day: u16, hour: u16, minute: u16, second: u16) -> (u16, u16) {
    (
        ((year - 1980) << 9) | (month << 5) | day,
        (hour << 11) | (minute << 5) | (second / 2),
    )
}

/// [`EPOCH`]: 2023-11-14T22:13:21Z.
fn dos_epoch() -> (u16, u16) {
    dos(2023, 11, 14, 22, 13, 21)
}

// --- each method, exactly ----------------------------------------------------

/// The host side of [`Creds::typical`]: every entry a host tool reads, as
/// files, and the host-only credentials.zip of the same entries.
#[track_caller]
fn assert_typical_host(roots: &Roots, creds: &Creds<'_>) {
    let host = tree(&roots.host);
    let files = files(&host);
    assert_eq!(listing(&files), HOST_FILES);
    let entries = entries_of(creds);
    for (name, (_, bytes)) in &files {
        if name != "credentials.zip" {
            assert_eq!(bytes, &entries[name], "host {name}");
        }
    }
    let host_zip: Vec<(&str, &[u8])> = [
        "root.json",
        "targets.pub",
        "targets.sec",
        "treehub.json",
        "tufrepo.url",
    ]
    .iter()
    .map(|n| (*n, entries[*n].as_slice()))
    .collect();
    assert_fixed_zip(&files["credentials.zip"].1, &host_zip, dos_epoch());
    assert!(folders(&host).is_empty());
    assert_times(&host, EPOCH);
}

#[test]
fn shared_cred_stages_exactly_these_files() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&roots.dir, "c.zip");
    roots
        .stage(&zip, "shared-cred", &["--hardware-id", "raspberrypi4-64"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 10 files written, 0 already in place\n");

    let dev = tree(&roots.dev);
    assert_eq!(
        folders(&dev),
        BTreeMap::from(
            [
                ("usr", 0o755),
                ("usr/lib", 0o755),
                ("usr/lib/sota", 0o755),
                ("usr/lib/sota/conf.d", 0o755),
                ("var", 0o755),
                ("var/sota", 0o700),
                ("var/sota/import", 0o700),
                ("var/sota/import/repo", 0o755),
            ]
            .map(|(p, m)| (p.to_string(), m))
        )
    );
    let files = files(&dev);
    assert_eq!(
        listing(&files),
        [
            (SHARED_FRAGMENT, 0o644),
            (HARDWARE_FRAGMENT, 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            (DEVICE_ZIP, 0o600),
        ]
    );
    assert_snapshot("20-sota-shared-cred.toml", &files[SHARED_FRAGMENT].1);
    assert_eq!(
        files[HARDWARE_FRAGMENT].1,
        b"# The hardware ID of the primary ECU (sota-stage).\n[provision]\nprimary_ecu_hardware_id = \"raspberrypi4-64\"\n"
    );
    assert_eq!(
        files["var/sota/import/repo/root.json"].1,
        ROOT_JSON.as_bytes()
    );
    let entries = entries_of(&creds);
    assert_fixed_zip(
        &files[DEVICE_ZIP].1,
        &[
            ("autoprov.url", &entries["autoprov.url"]),
            (
                "autoprov_credentials.p12",
                &entries["autoprov_credentials.p12"],
            ),
        ],
        dos_epoch(),
    );
    assert_times(&dev, EPOCH);
    assert_typical_host(&roots, &creds);

    // Again: everything is in place, nothing under the roots changes, the
    // manifest is the same.
    let before = (
        tree(&roots.dev),
        tree(&roots.host),
        fs::read(&roots.manifest).unwrap(),
    );
    roots
        .stage(&zip, "shared-cred", &["--hardware-id", "raspberrypi4-64"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 0 files written, 10 already in place\n");
    assert_eq!(
        (
            tree(&roots.dev),
            tree(&roots.host),
            fs::read(&roots.manifest).unwrap()
        ),
        before
    );
    // One file gone: one written, in the singular.
    fs::remove_file(roots.dev.join(HARDWARE_FRAGMENT)).unwrap();
    roots
        .stage(&zip, "shared-cred", &["--hardware-id", "raspberrypi4-64"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 1 file written, 9 already in place\n");
}

#[test]
fn the_device_zip_time_is_source_date_epoch_as_utc() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&dir, "c.zip");
    let entries = entries_of(&creds);
    let expected: [(&str, &[u8]); 2] = [
        ("autoprov.url", &entries["autoprov.url"]),
        (
            "autoprov_credentials.p12",
            &entries["autoprov_credentials.p12"],
        ),
    ];
    let mut first: Option<Vec<u8>> = None;
    for (epoch, dos_time, tz) in [
        ("1700000001", dos(2023, 11, 14, 22, 13, 21), "UTC"),
        (
            "1700000001",
            dos(2023, 11, 14, 22, 13, 21),
            "Pacific/Kiritimati",
        ),
        (
            "1700000001",
            dos(2023, 11, 14, 22, 13, 21),
            "America/Los_Angeles",
        ),
        // Unset: 2011-04-05T23:00:00Z.
        ("", dos(2011, 4, 5, 23, 0, 0), "UTC"),
        // Before 1980: the earliest DOS time.
        ("0", dos(1980, 1, 1, 0, 0, 0), "UTC"),
    ] {
        let dev = dir.join(format!("dev-{epoch}-{}", tz.replace('/', "-")));
        let mut cmd = sota(["stage", "--method", "shared-cred", "--credentials"])
            .arg(&zip)
            .arg("--device-root")
            .arg(&dev)
            .env("TZ", tz);
        if !epoch.is_empty() {
            cmd = cmd.env("SOURCE_DATE_EPOCH", epoch);
        }
        cmd.run().success();
        let bytes = fs::read(dev.join(DEVICE_ZIP)).unwrap();
        assert_fixed_zip(&bytes, &expected, dos_time);
        let mtime = fs::metadata(dev.join(DEVICE_ZIP)).unwrap().mtime();
        let expected_mtime = if epoch.is_empty() {
            DEFAULT_EPOCH
        } else {
            epoch.parse().unwrap()
        };
        assert_eq!(mtime, expected_mtime);
        if epoch == "1700000001" {
            // The time zone changes nothing.
            match &first {
                None => first = Some(bytes),
                Some(f) => assert_eq!(&bytes, f, "TZ={tz}"),
            }
        }
    }
}

#[test]
fn device_cred_takes_root_crt_from_server_ca_pem() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let creds = Creds::typical(&pki).server_ca();
    let zip = creds.write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "device-cred", &[]).success();
    let dev = tree(&roots.dev);
    let files = files(&dev);
    assert_eq!(
        listing(&files),
        [
            (DEVICE_FRAGMENT, 0o644),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    assert_snapshot("20-sota-device-cred.toml", &files[DEVICE_FRAGMENT].1);
    let entries = entries_of(&creds);
    assert_eq!(
        files["var/sota/import/gateway.url"].1,
        entries["autoprov.url"]
    );
    assert_eq!(
        files["var/sota/import/root.crt"].1,
        pki.server_ca_pem().as_bytes()
    );
    assert_eq!(folders(&dev)["var/sota/import"], 0o700);
    assert_eq!(folders(&dev)["var/sota"], 0o700);
    assert_times(&dev, EPOCH);
    assert_typical_host(&roots, &creds);
}

#[test]
fn device_cred_takes_root_crt_from_the_p12_chain_once() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    // The typical p12 holds the CA twice, as aktualizr's sample does.
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "device-cred", &[]).success();
    assert_eq!(
        fs::read_to_string(roots.dev.join("var/sota/import/root.crt")).unwrap(),
        pki.server_ca_pem()
    );
}

#[test]
fn device_cred_hsm_with_the_certificate_as_a_file_and_the_key_in_the_token() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    let device = pki.client(KeyAlg::Ec, Validity::Normal);
    let cert = device.cert.to_str().unwrap();
    let fragment = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml";

    // Refused: a certificate from the token and a file at once; the
    // certificate's object id when the certificate is a file.
    roots
        .stage(
            &zip,
            "device-cred-hsm",
            &["--device-cert", cert, "--p11-cert-source", "pkcs11"],
        )
        .code(2)
        .stderr_has("--device-cert with --p11-cert-source pkcs11");
    roots
        .stage(
            &zip,
            "device-cred-hsm",
            &["--device-cert", cert, "--p11-tls-cert-id", "01"],
        )
        .code(2)
        .stderr_has("--p11-tls-cert-id names the certificate's token object");
    assert!(!roots.dev.exists());

    // The certificate staged, no key; the fragment reads it from the file.
    roots
        .stage(&zip, "device-cred-hsm", &["--device-cert", cert])
        .success();
    assert_eq!(
        fs::read(roots.dev.join("var/sota/import/client.pem")).unwrap(),
        fs::read(&device.cert).unwrap()
    );
    assert!(!roots.dev.join("var/sota/import/pkey.pem").exists());
    let text = String::from_utf8(fs::read(roots.dev.join(fragment)).unwrap()).unwrap();
    for line in [
        "cert_source = \"file\"\n",
        "pkey_source = \"pkcs11\"\n",
        "tls_pkey_id = \"02\"\n",
        "tls_clientcert_path = \"client.pem\"\n",
    ] {
        assert!(text.contains(line), "{line}in\n{text}");
    }
    assert!(!text.contains("tls_clientcert_id"), "{text}");
    sota(["lint"]).arg(roots.dev.join(fragment)).run().success();

    // A generic image: the same fragment without a certificate, which a
    // bundle brings later; without the option, the certificate is the
    // token's, as before.
    let generic = roots.dir.join("generic.toml");
    sota([
        "render",
        "--method",
        "device-cred-hsm",
        "--p11-cert-source",
        "file",
        "--output",
    ])
    .arg(&generic)
    .run()
    .success();
    assert_eq!(fs::read(&generic).unwrap(), text.as_bytes());
    let token = roots.dir.join("token.toml");
    sota(["render", "--method", "device-cred-hsm", "--output"])
        .arg(&token)
        .run()
        .success();
    let token = fs::read_to_string(&token).unwrap();
    assert!(token.contains("cert_source = \"pkcs11\"\n"), "{token}");
    assert!(token.contains("tls_clientcert_id = \"01\"\n"), "{token}");
    assert!(!token.contains("tls_clientcert_path"), "{token}");
}

#[test]
fn device_cred_with_a_device_certificate_and_key() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    let device = pki.client(KeyAlg::Ec, Validity::Normal);
    let other = pki.client(KeyAlg::Ec, Validity::Normal);
    let expired = pki.client(KeyAlg::Ec, Validity::Expired);
    let args = |c: &Cert, k: &Cert| {
        vec![
            "--device-cert".to_string(),
            c.cert.to_str().unwrap().to_string(),
            "--device-key".to_string(),
            k.key.to_str().unwrap().to_string(),
        ]
    };
    let run_with = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        roots.stage(&zip, "device-cred", &a)
    };

    // Refused: the key of another certificate; an expired certificate.
    run_with(args(&device, &other))
        .code(1)
        .stderr_has("the device key `client-")
        .stderr_has("` does not match the device certificate `client-")
        .output_lacks("BEGIN");
    run_with(args(&expired, &expired))
        .code(1)
        .stderr_has("the device certificate `client-")
        .stderr_has("expired on 2020-01-01");
    assert!(!roots.dev.exists() && !roots.host.exists() && !roots.manifest.exists());
    // Half a pair is a usage error.
    sota(["stage", "--method", "device-cred", "--credentials"])
        .arg(&zip)
        .arg("--device-root")
        .arg(&roots.dev)
        .arg("--device-cert")
        .arg(&device.cert)
        .run()
        .code(2)
        .stderr_has("--device-key");
    // Not for shared-cred; device-cred-hsm takes the certificate alone
    // (its key is in the token).
    let a = args(&device, &device);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    roots.stage(&zip, "shared-cred", &a).code(2).stderr_is(
        "error: `--device-cert` does not apply to shared-cred: it is for device-cred and device-cred-hsm\n",
    );
    roots.stage(&zip, "device-cred-hsm", &a).code(2).stderr_is(
        "error: --device-key does not apply to device-cred-hsm: the device's key is in its token; give only --device-cert\n",
    );
    // A certificate file with the root after the device's own: the root
    // stays out (a chain below an intermediate: tests/device_certs_ca.rs).
    let chain = roots.dir.write(
        "chain.pem",
        format!("{}{}", device.cert_pem(), pki.server_ca_pem()),
    );
    roots
        .stage_cmd(&zip, "device-cred", &[])
        .arg("--device-cert")
        .arg(&chain)
        .arg("--device-key")
        .arg(&device.key)
        .run()
        .code(1)
        .stderr_has("certificate 2 of `chain.pem`")
        .stderr_has("is a root (self-signed): leave it out of the file");
    assert!(!roots.dev.exists());

    // Matching and valid: client.pem 0644, pkey.pem 0600.
    run_with(args(&device, &device)).success();
    let files = files(&tree(&roots.dev));
    assert_eq!(
        listing(&files),
        [
            (DEVICE_FRAGMENT, 0o644),
            ("var/sota/import/client.pem", 0o644),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/pkey.pem", 0o600),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    assert_eq!(
        files["var/sota/import/client.pem"].1,
        device.cert_pem().as_bytes()
    );
    assert_eq!(
        files["var/sota/import/pkey.pem"].1,
        device.key_pem().as_bytes()
    );
    let manifest = roots.manifest();
    let pkey = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "var/sota/import/pkey.pem")
        .unwrap();
    assert_eq!(pkey["secret"], true);
    assert_eq!(pkey["mode"], "0600");
}

#[test]
fn device_cred_hsm_stages_a_0600_fragment() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let creds = Creds::typical(&pki);
    let zip = creds.write_to(&roots.dir, "c.zip");
    roots
        .stage(&zip, "aktualizr-device-prov-hsm", &[])
        .success();
    let dev = tree(&roots.dev);
    let files = files(&dev);
    assert_eq!(
        listing(&files),
        [
            (HSM_FRAGMENT, 0o600),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    assert_snapshot("20-sota-device-cred-hsm.toml", &files[HSM_FRAGMENT].1);
    assert_times(&dev, EPOCH);
    assert_typical_host(&roots, &creds);
    assert_eq!(roots.manifest()["method"], "device-cred-hsm");

    // Every option, the PIN from a file: the fragment render snapshots too.
    let again = Roots::new();
    let pin = again.dir.write("pin", "7 seven 7\n");
    again
        .stage_cmd(&zip, "device-cred-hsm", &HSM_OPTIONS)
        .arg("--p11-pin-file")
        .arg(&pin)
        .run()
        .success()
        .output_lacks("seven");
    assert_snapshot(
        "20-sota-device-cred-hsm.custom.toml",
        &fs::read(again.dev.join(HSM_FRAGMENT)).unwrap(),
    );
}

#[test]
fn values_that_cannot_be_written_safely_stage_nothing() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    let cases: &[(&str, &[&str], i32, &str)] = &[
        (
            "device-cred",
            &["--hardware-id", "rpi\"4"],
            2,
            "hardware ID `rpi\\\"4` is not allowed",
        ),
        (
            "shared-cred",
            &["--hardware-id", "rpi 4"],
            2,
            "is not allowed",
        ),
        (
            "device-cred-hsm",
            &["--p11-pin", "TEST-ONLY-12\"34"],
            2,
            "the PKCS#11 PIN given with --p11-pin contains `\"`",
        ),
        (
            "device-cred-hsm",
            &["--p11-module", "/opt/my hsm/p11.so"],
            2,
            "--p11-module `/opt/my hsm/p11.so` contains whitespace",
        ),
        (
            "device-cred-hsm",
            &["--p11-module", "/opt/a&b/p11.so"],
            2,
            "--p11-module `/opt/a&b/p11.so` contains `&`",
        ),
    ];
    for (method, args, code, message) in cases {
        roots
            .stage(&zip, method, args)
            .code(*code)
            .stderr_has(message)
            .output_lacks("TEST-ONLY-12");
        assert!(!roots.dev.exists(), "{method} {args:?}");
        assert!(!roots.host.exists(), "{method} {args:?}");
        assert!(!roots.manifest.exists(), "{method} {args:?}");
    }
    // From the environment, as bitbake passes it: refused the same way.
    roots
        .stage_cmd(&zip, "shared-cred", &[])
        .env("SOTA_HARDWARE_ID", "rpi'4")
        .run()
        .code(2)
        .stderr_is(
            "error: hardware ID `rpi\\'4` is not allowed: use letters, digits, `.`, `_` and `-` \
             only (meta-updater's rule)\n",
        );
    assert!(!roots.dev.exists());
}

#[test]
fn device_cred_with_the_server_ca_only_in_a_p12_that_does_not_open_names_its_mac() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, "TEST-ONLY-p12 pw", P12Form::Aes, 1);
    let zip = Creds::typical(&pki).p12(p12).write_to(&roots.dir, "c.zip");
    // The CA is only in the p12, and a wrong password keeps it shut: the
    // run says why (the MAC), not only that a server CA is missing.
    for method in ["device-cred", "device-cred-hsm"] {
        roots
            .stage_cmd(&zip, method, &[])
            .env("SOTA_P12_PASSWORD", "TEST-ONLY-wrong")
            .run()
            .code(1)
            .stderr_is(&format!(
                "error: c.zip: cannot stage for {method}:\n  - the archive does not support \
                 {method}: it lacks a server CA (`server_ca.pem`, or CA certificates in \
                 `autoprov_credentials.p12`)\n  - entry 'autoprov_credentials.p12' does not \
                 open with the given password (its MAC does not verify); give the right one \
                 with --p12-password-file or SOTA_P12_PASSWORD\n"
            ))
            .output_lacks("TEST-ONLY");
        assert!(!roots.dev.exists());
    }
    // With server_ca.pem, the p12 is not needed and does not block.
    let zip = Creds::typical(&pki)
        .p12(pki.p12(&client, "TEST-ONLY-p12 pw", P12Form::Aes, 1))
        .server_ca()
        .write_to(&roots.dir, "ca.zip");
    roots
        .stage_cmd(&zip, "device-cred", &[])
        .env("SOTA_P12_PASSWORD", "TEST-ONLY-wrong")
        .run()
        .success();
}

#[test]
fn a_p12_password_lands_in_a_0600_fragment() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    let p12 = pki.p12(&client, "TEST-ONLY-p12 pw", P12Form::Aes, 1);
    let zip = Creds::typical(&pki).p12(p12).write_to(&roots.dir, "c.zip");
    // Without the password the p12 does not open: refused.
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: c.zip: cannot stage for shared-cred:\n  - the archive does not support \
             shared-cred: it lacks an `autoprov_credentials.p12` that opens and holds a client \
             certificate with its key\n  - entry 'autoprov_credentials.p12' does not open with \
             the empty password (its MAC does not verify); give the right one with \
             --p12-password-file or SOTA_P12_PASSWORD\n",
    );
    assert!(!roots.dev.exists());
    roots
        .stage_cmd(&zip, "shared-cred", &[])
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .env("SOTA_P12_PASSWORD", "TEST-ONLY-p12 pw")
        .run()
        .success()
        .output_lacks("TEST-ONLY");
    let files = files(&tree(&roots.dev));
    assert_eq!(files[SHARED_FRAGMENT].0, 0o600);
    assert_snapshot(
        "20-sota-shared-cred.p12-password.toml",
        &files[SHARED_FRAGMENT].1,
    );
    let manifest = roots.manifest();
    let fragment = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == SHARED_FRAGMENT)
        .unwrap();
    assert_eq!(
        (fragment["mode"].as_str(), fragment["secret"].as_bool()),
        (Some("0600"), Some(true))
    );
    // The manifest holds no secret either.
    assert!(!fs::read_to_string(&roots.manifest)
        .unwrap()
        .contains("TEST-ONLY"));
}

// --- the upstream samples -----------------------------------------------------

#[test]
fn upstream_credentials_zip_refused_for_shared_cred_staged_for_device_cred() {
    // Its shared client certificate expired in 2018.
    let roots = Roots::new();
    let zip = upstream("aktualizr-credentials.zip");
    roots
        .stage(&zip, "shared-cred", &[])
        .code(1)
        .stderr_is(
            "error: aktualizr-credentials.zip: cannot stage for shared-cred:\n  - entry \
             'autoprov_credentials.p12': the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18; ask your OTA server for new credentials\n",
        );
    assert!(!roots.dev.exists() && !roots.host.exists() && !roots.manifest.exists());

    // device-cred uses only its URL and the CA inside the p12 (still valid).
    for (method, fragment) in [
        ("device-cred", DEVICE_FRAGMENT),
        ("device-cred-hsm", HSM_FRAGMENT),
    ] {
        let roots = Roots::new();
        let run = roots.stage(&zip, method, &[]);
        let hsm = if method == "device-cred-hsm" {
            "warning: no --p11-pin-file given: the device gets aktualizr's example PKCS#11 PIN 1234; give the token's user PIN with --p11-pin-file\n\
             note: 20-sota-device-cred-hsm.toml holds a password or PIN: it sets `[telemetry] report_config = false`, so aktualizr does not send its configuration to the server (--report-config on leaves aktualizr's default)\n"
        } else {
            ""
        };
        run.success().stderr_is(&format!(
            "{hsm}warning: aktualizr-credentials.zip: entry 'autoprov_credentials.p12': \
             the client certificate `47ff9a99-7a8d-42f9-ae28-f7f0332016b5` expired on 2018-07-18; ask your OTA server for new credentials (not staged for {method})\n\
             staged aktualizr-credentials.zip for {method}: 5 files written, 0 already in place\n"
        ));
        let files = files(&tree(&roots.dev));
        let mode = if method == "device-cred" {
            0o644
        } else {
            0o600
        };
        assert_eq!(
            listing(&files),
            [
                (fragment, mode),
                ("var/sota/import/gateway.url", 0o644),
                ("var/sota/import/root.crt", 0o644),
            ]
        );
        assert_eq!(
            files["var/sota/import/gateway.url"].1,
            upstream_entry("aktualizr-credentials.zip", "autoprov.url")
        );
        // root.crt: the p12's CA certificates (the same one twice), once;
        // openssl reads the same out of the p12.
        let p12 = roots.dir.write(
            "sample.p12",
            upstream_entry("aktualizr-credentials.zip", "autoprov_credentials.p12"),
        );
        let cas = openssl(
            roots.dir.path(),
            [
                os("pkcs12"),
                os("-in"),
                p12.as_os_str(),
                os("-legacy"),
                os("-passin"),
                os("pass:"),
                os("-nokeys"),
                os("-cacerts"),
            ],
        );
        let mut blocks = pem_blocks(&String::from_utf8(cas).unwrap());
        assert_eq!(blocks.len(), 2, "the sample holds its CA twice");
        blocks.dedup();
        assert_eq!(
            String::from_utf8(files["var/sota/import/root.crt"].1.clone()).unwrap(),
            blocks.concat()
        );
        // Host: treehub.json, and the host-only zip; never the p12.
        let host = files_of(&roots.host);
        assert_eq!(
            listing(&host),
            [("credentials.zip", 0o600), ("treehub.json", 0o600)]
        );
        assert_eq!(
            host["treehub.json"].1,
            upstream_entry("aktualizr-credentials.zip", "treehub.json")
        );
        assert_eq!(
            zip_entries(&host["credentials.zip"].1)
                .into_keys()
                .collect::<Vec<_>>(),
            ["treehub.json"]
        );
    }
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn files_of(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    files(&tree(root))
}

#[test]
fn upstream_offline_signing_set() {
    let zip = upstream("aktualizr-auth_test_good_offline.zip");
    let roots = Roots::new();
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: aktualizr-auth_test_good_offline.zip: cannot stage for shared-cred:\n  - \
             entry 'autoprov_credentials.p12': the client certificate \
             `79561c6d-416c-4588-89f5-9053bef6a66b` expired on 2018-11-11; ask your OTA server \
             for new credentials\n",
    );
    let roots = Roots::new();
    roots.stage(&zip, "device-cred", &[]).success().stderr_is(
        "warning: aktualizr-auth_test_good_offline.zip: entry 'autoprov_credentials.p12': \
             the client certificate `79561c6d-416c-4588-89f5-9053bef6a66b` expired on \
             2018-11-11; ask your OTA server for new credentials (not staged for device-cred)\n\
             warning: aktualizr-auth_test_good_offline.zip: entry 'root.json': `signed.expires` \
             is 2018-11-10T11:15:27Z, in the past; aktualizr can still rotate from it to the \
             newer roots of the repository, but check that it has them\n\
             warning: aktualizr-auth_test_good_offline.zip: entry 'tufrepo.url' is empty; \
             garage-sign cannot reach the image repository from it (real archives sometimes \
             ship it empty)\n\
             staged aktualizr-auth_test_good_offline.zip for device-cred: 10 files written, 0 \
             already in place\n",
    );
    let dev = files_of(&roots.dev);
    assert_eq!(
        listing(&dev),
        [
            (DEVICE_FRAGMENT, 0o644),
            ("var/sota/import/gateway.url", 0o644),
            ("var/sota/import/repo/root.json", 0o644),
            ("var/sota/import/root.crt", 0o644),
        ]
    );
    let root_json = upstream_entry("aktualizr-auth_test_good_offline.zip", "root.json");
    assert_eq!(dev["var/sota/import/repo/root.json"].1, root_json);
    let host = files_of(&roots.host);
    assert_eq!(listing(&host), HOST_FILES);
    for &(name, _) in &HOST_FILES[1..] {
        let bytes = upstream_entry("aktualizr-auth_test_good_offline.zip", name);
        assert_eq!(host[name].1, bytes, "{name}");
        assert_eq!(
            zip_entries(&host["credentials.zip"].1)[name],
            bytes,
            "zip {name}"
        );
    }
}

#[test]
fn upstream_archives_without_what_a_method_needs_are_refused() {
    let cannot = "cannot stage for";
    let lacks = "the archive does not support";
    let shared_needs = "an `autoprov_credentials.p12` that opens and holds a client certificate \
                        with its key";
    let device_needs = "a server CA (`server_ca.pem`, or CA certificates in \
                        `autoprov_credentials.p12`)";
    // (archive, method, stderr after `error: ARCHIVE: `)
    for (name, method, message) in [
        (
            "aktualizr-cred.zip",
            "device-cred",
            format!(
                "{cannot} device-cred:\n  - {lacks} device-cred: it lacks a valid `autoprov.url`"
            ),
        ),
        (
            "aktualizr-auth_test_noauth_good.zip",
            "device-cred",
            format!(
                "{cannot} device-cred:\n  - {lacks} device-cred: it lacks a valid `autoprov.url` \
                 and {device_needs}"
            ),
        ),
        (
            "aktualizr-auth_test_noauth_good.zip",
            "shared-cred",
            format!(
                "{cannot} shared-cred:\n  - {lacks} shared-cred: it lacks a valid `autoprov.url` \
                 and {shared_needs}"
            ),
        ),
        (
            "aktualizr-auth_test_no_json.zip",
            "shared-cred",
            format!(
                "{cannot} shared-cred:\n  - entry 'autoprov_credentials.p12': the client \
                 certificate `b003ba3d-d854-4703-9e6e-c73b395b4281` expired on 2020-07-22; ask \
                 your OTA server for new credentials"
            ),
        ),
        (
            "aktualizr-invalid-credentials.zip",
            "device-cred",
            "not a zip archive (Could not find EOCD); pass the credentials.zip your OTA server \
             gave you"
                .to_owned(),
        ),
    ] {
        let roots = Roots::new();
        roots
            .stage(&upstream(name), method, &[])
            .code(1)
            .stderr_is(&format!("error: {name}: {message}\n"));
        assert!(
            !roots.dev.exists() && !roots.host.exists() && !roots.manifest.exists(),
            "{name}"
        );
    }
    // The no-json sample works for device-cred and has no host files.
    let roots = Roots::new();
    roots
        .stage(
            &upstream("aktualizr-auth_test_no_json.zip"),
            "device-cred",
            &[],
        )
        .success();
    assert_eq!(files_of(&roots.dev).len(), 3);
    assert!(files_of(&roots.host).is_empty());
}

// --- host secrets never reach the device -------------------------------------

#[test]
fn no_byte_of_a_host_only_entry_reaches_the_device() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki)
        .server_ca()
        .api_gateway_url("https://TEST-ONLY-api.example.test/api")
        .file("TEST-ONLY-notes.txt", "TEST-ONLY-unknown-entry-payload");
    let zip = creds.write_to(&dir, "c.zip");
    let entries = entries_of(&creds);
    let targets_sec: serde_json::Value = serde_json::from_slice(&entries["targets.sec"]).unwrap();
    let private_hex = targets_sec["keyval"]["private"]
        .as_str()
        .unwrap()
        .to_string();
    let device_cert = pki.client(KeyAlg::Ec, Validity::Normal);

    for (method, extra) in [
        ("shared-cred", vec![]),
        (
            "device-cred",
            vec![
                "--device-cert",
                device_cert.cert.to_str().unwrap(),
                "--device-key",
                device_cert.key.to_str().unwrap(),
            ],
        ),
        ("device-cred-hsm", vec![]),
    ] {
        for unknown in ["host", "drop"] {
            let roots = Roots::new();
            let mut args = extra.clone();
            args.extend(["--unknown", unknown, "--hardware-id", "rpi4"]);
            roots
                .stage(&zip, method, &args)
                .success()
                .output_lacks(OAUTH2_SECRET);
            let host = files_of(&roots.host);
            // The needles: every host-only entry's bytes, the OAuth2
            // secret, the signing key's private half, the host zip.
            let mut needles: Vec<(String, Vec<u8>)> = vec![
                ("OAuth2 secret".into(), OAUTH2_SECRET.as_bytes().to_vec()),
                (
                    "targets.sec private key".into(),
                    private_hex.as_bytes().to_vec(),
                ),
                (
                    "host credentials.zip".into(),
                    host["credentials.zip"].1.clone(),
                ),
            ];
            for name in [
                "treehub.json",
                "targets.sec",
                "targets.pub",
                "tufrepo.url",
                "api_gateway.url",
                "TEST-ONLY-notes.txt",
            ] {
                needles.push((name.into(), entries[name].clone()));
            }
            needles.push(("host-only names".into(), b"TEST-ONLY".to_vec()));
            let mut searched = 0;
            for (path, (_, bytes)) in files_of(&roots.dev) {
                let mut blobs = vec![(path.clone(), bytes.clone())];
                if path.ends_with(".zip") {
                    for (name, data) in zip_entries(&bytes) {
                        blobs.push((format!("{path}!{name}"), data));
                    }
                }
                for (where_, blob) in blobs {
                    searched += 1;
                    for (what, needle) in &needles {
                        assert!(
                            !blob.windows(needle.len()).any(|w| w == needle.as_slice()),
                            "{method}: {what} found in device file {where_}"
                        );
                    }
                }
            }
            assert!(searched >= 4, "{method}: searched {searched} device files");
            // Where the host-only entries went.
            assert_eq!(host.contains_key("TEST-ONLY-notes.txt"), unknown == "host");
            assert_eq!(host["treehub.json"].1, entries["treehub.json"]);
            assert!(!host.contains_key("autoprov_credentials.p12"));
            assert!(
                !zip_entries(&host["credentials.zip"].1).contains_key("autoprov_credentials.p12")
            );
        }
    }
}

// --- reproducible --------------------------------------------------------------

/// Runs `stage` with `umask`, in `cwd`, with `TZ`.
fn stage_with_umask(umask: u32, cwd: &Path, tz: &str, args: &[&std::ffi::OsStr]) {
    sota(args)
        .umask(umask)
        .current_dir(cwd)
        .env("TZ", tz)
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .run()
        .success();
}

#[test]
fn two_runs_in_different_folders_times_and_umasks_give_identical_trees() {
    let one = TestDir::new();
    let two = TestDir::new();
    let pki = Pki::new(&one);
    let device = pki.client(KeyAlg::Ec, Validity::Normal);
    let zip_bytes = Creds::typical(&pki).server_ca().build();
    let zip_one = one.write("in/credentials.zip", &zip_bytes);
    let zip_two = two.write("elsewhere/deeper/c.zip", &zip_bytes);
    let cert_two = two.write("d.pem", device.cert_pem());
    let key_two = two.write("d.key", device.key_pem());
    let methods: [(&str, Vec<&std::ffi::OsStr>, Vec<&std::ffi::OsStr>); 3] = [
        ("shared-cred", vec![], vec![]),
        (
            "device-cred",
            vec![
                os("--device-cert"),
                device.cert.as_os_str(),
                os("--device-key"),
                device.key.as_os_str(),
            ],
            vec![
                os("--device-cert"),
                cert_two.as_os_str(),
                os("--device-key"),
                key_two.as_os_str(),
            ],
        ),
        ("device-cred-hsm", vec![], vec![]),
    ];
    let run = |dir: &TestDir,
               umask: u32,
               tz: &str,
               zip: &Path,
               method: &str,
               extra: &[&std::ffi::OsStr],
               relative: bool| {
        // Roots the tool creates, given as absolute paths in one run and
        // relative to the working folder in the other.
        let base = if relative {
            PathBuf::from(method)
        } else {
            dir.join("build").join(method)
        };
        let cwd = if relative {
            dir.mkdir("build")
        } else {
            dir.path().to_path_buf()
        };
        let (dev, host, manifest) = (base.join("image"), base.join("native"), base.join("m.json"));
        let mut args: Vec<&std::ffi::OsStr> = vec![
            os("stage"),
            os("--method"),
            os(method),
            os("--credentials"),
            zip.as_os_str(),
        ];
        args.extend([
            os("--device-root"),
            dev.as_os_str(),
            os("--host-root"),
            host.as_os_str(),
            os("--hardware-id"),
            os("rpi4"),
        ]);
        fs::create_dir_all(cwd.join(&base)).unwrap();
        args.extend([os("--manifest"), manifest.as_os_str()]);
        args.extend(extra);
        stage_with_umask(umask, &cwd, tz, &args);
        let base = cwd.join(base);
        (
            tree(&base.join("image")),
            tree(&base.join("native")),
            fs::read(base.join("m.json")).unwrap(),
        )
    };
    let mut first = Vec::new();
    for (method, extra, _) in &methods {
        first.push(run(&one, 0o022, "UTC", &zip_one, method, extra, false));
    }
    // A later wall clock: the times in the tree must not follow it.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for ((method, _, extra), (dev, host, manifest)) in methods.iter().zip(first) {
        let (dev2, host2, manifest2) =
            run(&two, 0o077, "Asia/Kolkata", &zip_two, method, extra, true);
        assert_eq!(dev, dev2, "{method}: device tree");
        assert_eq!(host, host2, "{method}: host tree");
        assert_eq!(manifest, manifest2, "{method}: manifest");
        assert_times(&dev, EPOCH);
        // The roots the tool made have the folder mode, whatever the umask.
        assert_eq!(dev[""].mode & 0o7777, 0o755, "{method}: device root");
        assert_eq!(host[""].mode & 0o7777, 0o755, "{method}: host root");
        let text = String::from_utf8(manifest).unwrap();
        for path in [one.path(), two.path()] {
            assert!(
                !text.contains(path.to_str().unwrap()),
                "{method}: no path in the manifest"
            );
        }
    }
}

// --- all or nothing --------------------------------------------------------------

/// A device root and a host root that already hold the recipe's own files.
fn populated() -> (Roots, PathBuf) {
    let roots = Roots::new();
    fs::create_dir_all(roots.dev.join("etc")).unwrap();
    fs::write(roots.dev.join("etc/hostname"), "rpi\n").unwrap();
    fs::create_dir_all(roots.dev.join("var")).unwrap();
    fs::create_dir_all(&roots.host).unwrap();
    fs::write(roots.host.join("README"), "host things\n").unwrap();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki).write_to(&roots.dir, "c.zip");
    (roots, zip)
}

/// Runs `stage`, expects it to fail with `code` and `message`, and checks
/// that nothing under the test folder changed, the manifest included.
#[track_caller]
fn fails_untouched(
    roots: &Roots,
    zip: &Path,
    method: &str,
    extra: &[&str],
    code: i32,
    message: &str,
) {
    let before = tree(roots.dir.path());
    roots
        .stage(zip, method, extra)
        .code(code)
        .stderr_has(message);
    assert_eq!(
        tree(roots.dir.path()),
        before,
        "{method} {extra:?}: {message}"
    );
    assert!(!roots.manifest.is_file());
}

#[test]
fn a_refused_archive_changes_nothing() {
    let (roots, _) = populated();
    let pki = Pki::new(&roots.dir);
    let expired = pki.client(KeyAlg::Ec, Validity::Expired);
    let zip = Creds::typical(&pki)
        .p12(pki.p12(&expired, "", P12Form::Legacy, 1))
        .write_to(&roots.dir, "expired.zip");
    fails_untouched(&roots, &zip, "shared-cred", &[], 1, "expired on 2020-01-01");
    let not_zip = roots.dir.write("not.zip", "not a zip\n");
    fails_untouched(&roots, &not_zip, "device-cred", &[], 1, "not a zip archive");
    let http = Creds::typical(&pki)
        .url("http://gw.example.test")
        .write_to(&roots.dir, "http.zip");
    fails_untouched(&roots, &http, "shared-cred", &[], 1, "autoprov.url");
    let missing = roots.dir.join("missing.zip");
    fails_untouched(&roots, &missing, "shared-cred", &[], 3, "missing.zip");
}

#[test]
fn a_file_where_a_folder_must_be_changes_nothing() {
    // Tests run as root, so a read-only folder would not stop a write: a
    // regular file where a folder goes does.
    let (roots, zip) = populated();
    fs::write(roots.dev.join("var/sota"), "in the way\n").unwrap();
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        1,
        "device:var/sota exists and is not a folder; remove it",
    );
    fs::remove_file(roots.dev.join("var/sota")).unwrap();

    // A host root that is a file.
    let (roots, zip) = populated();
    fs::remove_file(roots.host.join("README")).unwrap();
    fs::remove_dir(&roots.host).unwrap();
    fs::write(&roots.host, "a file\n").unwrap();
    fails_untouched(&roots, &zip, "device-cred", &[], 3, "native");

    // A folder where the fragment goes.
    let (roots, zip) = populated();
    fs::create_dir_all(roots.dev.join(SHARED_FRAGMENT)).unwrap();
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        1,
        "exists and is not a regular file",
    );

    // A manifest that cannot be written: found before the roots change.
    let (mut roots, zip) = populated();
    roots.manifest = roots.dir.join("no-such-folder/manifest.json");
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        3,
        "cannot write the manifest in `",
    );
    roots.manifest = roots.dir.mkdir("a-folder");
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        3,
        "a-folder`: it is a folder",
    );
}

#[test]
fn a_manifest_beside_roots_that_staging_creates_is_written() {
    // `--device-root out/image --manifest out/manifest.json` in a fresh
    // folder: `out` does not exist until the roots are made.
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki).write_to(&dir, "c.zip");
    sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .args(["--device-root", "out/image", "--host-root", "out/native"])
        .args(["--manifest", "out/manifest.json"])
        .current_dir(dir.path())
        .run()
        .success();
    assert!(dir.join("out/manifest.json").is_file());
    assert_eq!(
        fs::metadata(dir.join("out")).unwrap().mode() & 0o7777,
        0o755
    );
    // A missing folder that is no root's parent is still refused up front.
    sota(["stage", "--method", "shared-cred", "--credentials"])
        .arg(&zip)
        .args([
            "--device-root",
            "out2/image",
            "--manifest",
            "elsewhere/m.json",
        ])
        .current_dir(dir.path())
        .run()
        .code(3)
        .stderr_is(
            "error: cannot write the manifest in `elsewhere`: No such file or directory (os error 2)\n",
        );
    assert!(!dir.join("out2").exists());
}

#[test]
fn an_existing_different_file_is_refused_unless_forced() {
    let (roots, zip) = populated();
    // verify would report it as an extra file of the host root.
    fs::remove_file(roots.host.join("README")).unwrap();
    roots.stage(&zip, "shared-cred", &[]).success();
    let staged = tree(roots.dir.path());
    let verify = || {
        sota(["verify", "--manifest"])
            .arg(&roots.manifest)
            .arg("--device-root")
            .arg(&roots.dev)
            .arg("--host-root")
            .arg(&roots.host)
            .run()
    };
    verify().success();
    fs::remove_file(&roots.manifest).unwrap();

    // Different content.
    fs::write(
        roots.dev.join(SHARED_FRAGMENT),
        "[provision]\nprovision_path = \"/x\"\n",
    )
    .unwrap();
    fails_untouched(
        &roots,
        &zip,
        "shared-cred",
        &[],
        1,
        "staging would change files that are already there; nothing was written (pass --force to replace them):\n  - device:usr/lib/sota/conf.d/20-sota-shared-cred.toml exists with different content",
    );
    // A different mode on a file, and on a folder of the recipe's (the
    // tool's own folders are repaired on every run: see
    // `its_own_folder_modes_are_repaired_without_force`).
    fs::set_permissions(
        roots.host.join("treehub.json"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::set_permissions(roots.dev.join("usr/lib"), fs::Permissions::from_mode(0o700)).unwrap();
    let before = tree(roots.dir.path());
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: staging would change files that are already there; nothing was written \
             (pass --force to replace them):\n\
             \x20 - device:usr/lib exists with mode 0700, not 0755\n\
             \x20 - device:usr/lib/sota/conf.d/20-sota-shared-cred.toml exists with different \
             content\n\
             \x20 - host:treehub.json exists with mode 0644, not 0600\n",
    );
    assert_eq!(tree(roots.dir.path()), before);

    // --force puts everything back as staged.
    roots
        .stage(&zip, "shared-cred", &["--force"])
        .success()
        .stderr_is("staged c.zip for shared-cred: 2 files written, 7 already in place\n");
    verify().success();
    let mut after = tree(roots.dir.path());
    let mut expected = staged;
    // Folders whose entries changed have a new mtime; files do not.
    for t in [&mut after, &mut expected] {
        t.retain(|_, n| n.bytes.is_some());
    }
    assert_eq!(after, expected);
    assert_eq!(
        fs::metadata(roots.dev.join("usr/lib")).unwrap().mode() & 0o7777,
        0o755
    );
}

// --- options that shape the split --------------------------------------------------

#[test]
fn unknown_entries_are_refused_unless_told_where() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki)
        .file("notes.txt", "keep me\n")
        .file("extra.bin", "0")
        .write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "shared-cred", &[]).code(1).stderr_is(
        "error: c.zip: cannot stage for shared-cred:\n  - unknown entries 'notes.txt', \
             'extra.bin': say what to do with them with --unknown host (stage them with the host \
             files) or --unknown drop\n",
    );
    assert!(!roots.dev.exists() && !roots.host.exists());
    roots
        .stage(&zip, "shared-cred", &["--unknown", "refuse"])
        .code(2);

    roots
        .stage(&zip, "shared-cred", &["--unknown", "host"])
        .success();
    let host = files_of(&roots.host);
    // Nothing says they are not secrets: 0600.
    assert_eq!(host["notes.txt"], (0o600, b"keep me\n".to_vec()));
    assert_eq!(host["extra.bin"].0, 0o600);
    assert!(zip_entries(&host["credentials.zip"].1).contains_key("notes.txt"));
    let manifest = roots.manifest();
    assert!(manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["path"] == "notes.txt" && f["secret"] == true && f["root"] == "host"));

    let dropped = Roots::new();
    dropped
        .stage(&zip, "shared-cred", &["--unknown", "drop"])
        .success();
    let host = files_of(&dropped.host);
    assert!(!host.contains_key("notes.txt") && !host.contains_key("extra.bin"));
    assert!(!zip_entries(&host["credentials.zip"].1).contains_key("notes.txt"));
    // On the device either way: only what the method stages.
    assert_eq!(
        files_of(&roots.dev).keys().collect::<Vec<_>>(),
        files_of(&dropped.dev).keys().collect::<Vec<_>>()
    );
}

#[test]
fn root_metadata_is_pinned_unless_turned_off() {
    let pki_dir = TestDir::new();
    let pki = Pki::new(&pki_dir);
    let director = ROOT_JSON.replace("\"version\":1", "\"version\":2");
    let creds = Creds::typical(&pki).file("director.root.json", director.as_str());
    let zip = creds.write_to(&pki_dir, "c.zip");
    for method in ["shared-cred", "device-cred", "device-cred-hsm"] {
        let roots = Roots::new();
        roots.stage(&zip, method, &[]).success();
        let dev = files_of(&roots.dev);
        assert_eq!(
            dev["var/sota/import/repo/root.json"],
            (0o644, ROOT_JSON.as_bytes().to_vec())
        );
        assert_eq!(
            dev["var/sota/import/director/root.json"],
            (0o644, director.as_bytes().to_vec())
        );
        let host = files_of(&roots.host);
        assert_eq!(host["director.root.json"].1, director.as_bytes());
        assert_eq!(host["root.json"].1, ROOT_JSON.as_bytes());

        let off = Roots::new();
        off.stage(&zip, method, &["--no-root-pinning"]).success();
        let dev = tree(&off.dev);
        assert!(
            dev.keys().all(|p| !p.contains("root.json")
                && !p.contains("/repo")
                && !p.contains("/director")),
            "{method}: {:?}",
            dev.keys().collect::<Vec<_>>()
        );
        if method == "shared-cred" {
            assert!(!dev.contains_key("var/sota/import"), "nothing to import");
        }
        // The host tools still get them.
        assert!(files_of(&off.host).contains_key("director.root.json"));
    }
}

#[test]
fn plain_http_device_url_only_with_allow_http() {
    let roots = Roots::new();
    let pki = Pki::new(&roots.dir);
    let zip = Creds::typical(&pki)
        .server_ca()
        .url("http://gw.example.test:8080")
        .write_to(&roots.dir, "c.zip");
    roots.stage(&zip, "device-cred", &[]).code(1).stderr_is(
        "error: c.zip: cannot stage for device-cred:\n  - the archive does not support \
             device-cred: it lacks a valid `autoprov.url`\n  - entry 'autoprov.url' is plain \
             http: devices would provision over an unencrypted connection; use https, or pass \
             --allow-http for a local test server\n",
    );
    assert!(!roots.dev.exists());
    roots
        .stage(&zip, "device-cred", &["--allow-http"])
        .success();
    assert_eq!(
        fs::read(roots.dev.join("var/sota/import/gateway.url")).unwrap(),
        b"http://gw.example.test:8080"
    );
}

#[test]
fn the_example_archive_manifests() {
    // examples/credentials.zip is committed: its manifests are stable.
    let zip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/credentials.zip");
    for method in ["shared-cred", "device-cred", "device-cred-hsm"] {
        let roots = Roots::new();
        roots
            .stage_cmd(&zip, method, &["--hardware-id", "qemux86-64"])
            .run()
            .success();
        assert_snapshot(
            &format!("manifest-example-{method}.json"),
            &fs::read(&roots.manifest).unwrap(),
        );
        assert_times(&tree(&roots.dev), DEFAULT_EPOCH);
        assert_eq!(
            fs::metadata(&roots.manifest).unwrap().mtime(),
            DEFAULT_EPOCH
        );
    }
}
