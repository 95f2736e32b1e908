//! The archives and certificates of the test kit in `tests/common` are what
//! they claim, by independent tools: [`RawZip`] and [`Creds`] by python's
//! `zipfile`/`zlib`, `unzip` and the `zip` crate, [`Pki`] by `openssl`.
//! The kit's plumbing (folders, runs, fixture paths) is proven by the tests
//! that use it, and fails them loudly when it breaks.

// Test helpers panic on purpose: a failed set-up is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const MIB: usize = 1024 * 1024;

/// Every entry of the zip at `path` as python's zipfile sees it, plus what
/// its data really holds (read and inflated by hand from the local header
/// on, so lying sizes cannot hide it), plus `testzip()`'s verdict.
const PY_ZIP_REPORT: &str = r#"
import json, struct, sys, zipfile, zlib
path = sys.argv[1]
zf = zipfile.ZipFile(path)
raw = open(path, "rb").read()
entries = []
for i in zf.infolist():
    enc = "utf-8" if i.flag_bits & 0x800 else "cp437"
    h = i.header_offset
    n, m = struct.unpack("<HH", raw[h + 26:h + 30])
    data = raw[h + 30 + n + m:h + 30 + n + m + i.compress_size]
    if i.compress_type == zipfile.ZIP_DEFLATED:
        data = zlib.decompressobj(-15).decompress(data)
    entries.append(dict(
        raw_name=i.orig_filename.encode(enc).hex(),
        name=i.filename,
        central_size=i.file_size,
        local_size=struct.unpack("<I", raw[h + 22:h + 26])[0],
        compressed=i.compress_size,
        actual_size=len(data),
        crc=i.CRC,
        actual_crc=zlib.crc32(data),
        flags=i.flag_bits,
        system=i.create_system,
        mode=i.external_attr >> 16,
        method=i.compress_type,
        is_dir=i.is_dir(),
    ))
try:
    bad = zf.testzip()
except Exception as e:
    bad = "error: %s" % e
print(json.dumps(dict(entries=entries, testzip=bad)))
"#;

fn py_zip(path: &Path) -> Value {
    let out = tool(
        "python3",
        [
            OsStr::new("-c"),
            OsStr::new(PY_ZIP_REPORT),
            path.as_os_str(),
        ],
    );
    assert!(
        out.0,
        "python3 zipfile cannot read {}:\n{}",
        path.display(),
        out.1
    );
    serde_json::from_str(&out.1).unwrap_or_else(|e| panic!("python output: {e}\n{}", out.1))
}

/// (success, stdout + stderr) of `program args`.
fn tool<I, S>(program: &str, args: I) -> (bool, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

fn entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["entries"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no entry {name:?} in {report:#}"))
}

/// The entry names of a report, in archive order, one space apart.
fn names(report: &Value) -> String {
    let all = report["entries"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let names: Vec<&str> = all
        .iter()
        .map(|e| e["name"].as_str().unwrap_or("?"))
        .collect();
    names.join(" ")
}

// ---- RawZip ---------------------------------------------------------------

#[test]
fn crc32_matches_the_check_value() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    for len in [0, 1, 7, 258, 259, 1000, 100_003] {
        assert_eq!(
            crc32_of_zeros(len),
            crc32(&vec![0; len as usize]),
            "{len} zeros"
        );
    }
}

#[test]
fn deflated_zeros_inflate_to_zeros() {
    // The zip crate is an independent inflater here; python's zlib checks
    // the 64 MiB bomb below.
    for len in [0u32, 1, 2, 257, 258, 259, 516, 1000, 70_000] {
        let zip = RawZip::new().entry(ZipEntry::zeros("z", len)).finish();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_index(0).unwrap(), &mut data).unwrap();
        assert_eq!(data, vec![0; len as usize], "{len} zeros");
    }
}

#[test]
fn a_normal_raw_zip_is_a_valid_zip_with_unix_modes() {
    let dir = TestDir::new();
    let text = "https://gw.example.test:443\n".repeat(50);
    let zip = RawZip::new()
        .file("autoprov.url", "https://gw.example.test:443")
        .dir("keys/")
        .entry(ZipEntry::file("keys/private.key", "k").mode(0o100_600))
        .entry(ZipEntry::deflated("treehub.json", text.as_bytes()))
        .entry(ZipEntry::file("dos.txt", "d").msdos())
        .file("tufrepo.url", "");
    let path = zip.write_to(&dir, "normal.zip");
    assert_eq!(zip.finish(), zip.finish(), "deterministic");

    let report = py_zip(&path);
    assert_eq!(report["testzip"], Value::Null, "{report:#}");
    assert_eq!(
        names(&report),
        "autoprov.url keys/ keys/private.key treehub.json dos.txt tufrepo.url"
    );
    let url = entry(&report, "autoprov.url");
    assert_eq!(url["central_size"], 27);
    assert_eq!(url["system"], 3);
    assert_eq!(url["mode"], MODE_FILE);
    assert_eq!(url["method"], 0);
    let keys = entry(&report, "keys/");
    assert_eq!(keys["is_dir"], true);
    assert_eq!(keys["mode"], MODE_DIR);
    assert_eq!(entry(&report, "keys/private.key")["mode"], 0o100_600);
    let deflated = entry(&report, "treehub.json");
    assert_eq!(deflated["method"], 8);
    assert_eq!(deflated["central_size"], text.len());
    assert!(deflated["compressed"].as_u64().unwrap() < text.len() as u64 / 4);
    assert_eq!(entry(&report, "dos.txt")["system"], 0);
    assert_eq!(entry(&report, "tufrepo.url")["central_size"], 0);

    let (ok, out) = tool("unzip", [OsStr::new("-t"), path.as_os_str()]);
    assert!(ok && out.contains("No errors detected"), "{out}");
    // The crate the tool reads with agrees.
    let bytes = std::fs::read(&path).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), 6);
    assert_eq!(
        archive.by_name("keys/private.key").unwrap().unix_mode(),
        Some(0o100_600)
    );
}

#[test]
fn hostile_names_are_written_byte_for_byte() {
    let dir = TestDir::new();
    let hostile: [&[u8]; 8] = [
        b"a\0b.url",
        b"..\\evil",
        b"../up.url",
        b"/etc/passwd",
        b"\xff\xfe.url",
        b"creds/autoprov.url",
        "\u{fc}n\u{ef}code.url".as_bytes(),
        b"autoprov.url",
    ];
    let mut zip = RawZip::new();
    for name in hostile {
        zip = zip.file(name, "x");
    }
    let zip = zip.file("autoprov.url", "duplicate");
    let report = py_zip(&zip.write_to(&dir, "names.zip"));
    let raw: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["raw_name"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = hostile.iter().map(|n| hex(n)).collect();
    expected.push(hex(b"autoprov.url"));
    assert_eq!(raw, expected);
    let flags: Vec<u64> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["flags"].as_u64().unwrap())
        .collect();
    assert_eq!(
        flags,
        [0, 0, 0, 0, 0, 0, 0x800, 0, 0],
        "UTF-8 flag only on the UTF-8 name"
    );
}

#[test]
fn lying_sizes_really_lie() {
    let dir = TestDir::new();
    let data = "https://gw.example.test:443/".repeat(4);
    let zip = RawZip::new()
        .entry(
            ZipEntry::file("smaller", data.clone())
                .local_size(5)
                .central_size(7),
        )
        .entry(ZipEntry::file("larger", data.clone()).declared_size(1_000_000));
    let report = py_zip(&zip.write_to(&dir, "lies.zip"));
    let smaller = entry(&report, "smaller");
    assert_eq!(smaller["local_size"], 5);
    assert_eq!(smaller["central_size"], 7);
    assert_eq!(smaller["actual_size"], data.len());
    assert_eq!(smaller["actual_crc"], smaller["crc"], "only the size lies");
    let larger = entry(&report, "larger");
    assert_eq!(larger["local_size"], 1_000_000);
    assert_eq!(larger["central_size"], 1_000_000);
    assert_eq!(larger["actual_size"], data.len());
    assert_ne!(
        report["testzip"],
        Value::Null,
        "a reader trusting the sizes fails"
    );
}

#[test]
fn a_bomb_inflates_to_far_more_than_it_declares() {
    let dir = TestDir::new();
    let zip = RawZip::new().entry(ZipEntry::bomb("autoprov.url", 64 << 20, 1024));
    let path = zip.write_to(&dir, "bomb.zip");
    assert!(std::fs::metadata(&path).unwrap().len() < MIB as u64);
    let report = py_zip(&path);
    let bomb = entry(&report, "autoprov.url");
    assert_eq!(bomb["method"], 8);
    assert_eq!(bomb["local_size"], 1024);
    assert_eq!(bomb["central_size"], 1024);
    assert_eq!(bomb["actual_size"], 64 * MIB);
    assert_eq!(bomb["actual_crc"], bomb["crc"], "only the size lies");
    assert!(bomb["compressed"].as_u64().unwrap() < MIB as u64);
}

#[test]
fn encrypted_flag_symlinks_and_bad_crcs_are_written() {
    let dir = TestDir::new();
    let zip = RawZip::new()
        .entry(ZipEntry::file("locked", "plain").encrypted())
        .entry(ZipEntry::symlink("autoprov.url", "/etc/passwd"));
    let report = py_zip(&zip.write_to(&dir, "odd.zip"));
    assert_eq!(entry(&report, "locked")["flags"], 1);
    let testzip = report["testzip"].as_str().unwrap_or_default();
    assert!(testzip.contains("encrypted"), "{report:#}");
    let link = entry(&report, "autoprov.url");
    assert_eq!(link["mode"], MODE_SYMLINK);
    assert_eq!(link["system"], 3);
    assert_eq!(link["actual_size"], "/etc/passwd".len());

    let zip = RawZip::new()
        .file("good", "x")
        .entry(ZipEntry::file("bad", "y").bad_crc());
    let report = py_zip(&zip.write_to(&dir, "crc.zip"));
    assert_eq!(report["testzip"], "bad");
    assert_ne!(
        entry(&report, "bad")["crc"],
        entry(&report, "bad")["actual_crc"]
    );
}

#[test]
fn many_entries() {
    let dir = TestDir::new();
    let mut zip = RawZip::new();
    for i in 0..1000 {
        zip = zip.file(format!("f{i}"), "");
    }
    let report = py_zip(&zip.write_to(&dir, "many.zip"));
    assert_eq!(report["entries"].as_array().unwrap().len(), 1000);
    assert_eq!(report["testzip"], Value::Null);
}

// ---- Pki ------------------------------------------------------------------

/// What `openssl pkcs12 -info` says of `p12`.
fn p12_info(pki: &Pki, p12: &[u8], password: &str) -> String {
    let path = pki.dir().join("info.p12");
    std::fs::write(&path, p12).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pass = format!("pass:{password}");
    let args = ["pkcs12", "-info", "-noout", "-legacy", "-passin", &pass];
    let (ok, out) = openssl_status(pki.dir(), args.iter().chain(&["-in", "info.p12"]));
    assert!(ok, "{out}");
    out
}

/// `openssl x509 -noout -in CERT` with `args`: success and output.
fn x509(cert: &Cert, args: &[&str]) -> (bool, String) {
    let dir = cert.cert.parent().unwrap();
    let name = cert.cert.file_name().unwrap().to_str().unwrap();
    openssl_status(dir, ["x509", "-noout", "-in", name].iter().chain(args))
}

#[test]
fn p12_forms_are_what_they_claim() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Normal);
    // (bundle, its password, what `openssl pkcs12 -info` says of it, how
    // many certificates it lists: the client's and the CA copies)
    let cases: [(Vec<u8>, &str, &[&str], usize); 4] = [
        (
            pki.p12(&client, "", P12Form::Legacy, 2),
            "",
            &[
                "PKCS7 Encrypted data: pbeWithSHA1And40BitRC2-CBC",
                "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC",
                "MAC: sha1, Iteration 1024",
            ],
            3,
        ),
        (
            pki.p12(&client, "s3cret", P12Form::Aes, 1),
            "s3cret",
            &[
                "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC",
                "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC",
                "MAC: sha256",
            ],
            2,
        ),
        (
            pki.p12_parts(Some(&client), None, "", P12Form::Aes, 1),
            "",
            &[],
            2,
        ),
        (
            pki.p12_parts(None, Some(&client), "", P12Form::Legacy, 0),
            "",
            &["Shrouded Keybag"],
            0,
        ),
    ];
    let mut infos = Vec::new();
    for (p12, password, says, bags) in cases {
        let info = p12_info(&pki, &p12, password);
        for line in says {
            assert!(info.contains(line), "{line:?} in\n{info}");
        }
        assert_eq!(info.matches("Certificate bag").count(), bags, "{info}");
        infos.push(info);
    }
    assert!(!infos[1].contains("RC2"), "{}", infos[1]);
    assert!(!infos[2].contains("Keybag"), "{}", infos[2]);
}

#[test]
fn certificates_have_the_intended_validity_and_issuer() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let (_, ca) = x509(pki.ca(), &["-subject", "-ext", "basicConstraints"]);
    assert!(ca.contains(&format!("CN = {CA_UUID}")), "{ca}");
    assert!(ca.contains("CA:TRUE"), "{ca}");
    assert_eq!(pki.uuid(), CA_UUID);
    assert!(pki
        .server_ca_pem()
        .starts_with("-----BEGIN CERTIFICATE-----"));

    let expired = pki.client(KeyAlg::Ec, Validity::Expired);
    let (_, dates) = x509(&expired, &["-startdate", "-enddate"]);
    assert!(
        dates.contains("notBefore=Jan  1 00:00:00 2019 GMT"),
        "{dates}"
    );
    assert!(
        dates.contains("notAfter=Jan  1 00:00:00 2020 GMT"),
        "{dates}"
    );

    let day = 86_400;
    let soon = pki.client(KeyAlg::Ec, Validity::ExpiresInDays(10));
    assert!(
        x509(&soon, &["-checkend", &(9 * day).to_string()]).0,
        "valid in 9 days"
    );
    assert!(
        !x509(&soon, &["-checkend", &(11 * day).to_string()]).0,
        "expired in 11 days"
    );

    let normal = pki.client(KeyAlg::Ec, Validity::Normal);
    assert!(x509(&normal, &["-checkend", &(364 * day).to_string()]).0);
    assert!(!x509(&normal, &["-checkend", &(366 * day).to_string()]).0);
    let (_, text) = x509(&normal, &["-text"]);
    assert!(text.contains("NIST CURVE: P-256"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains(&format!("Issuer: CN = {CA_UUID}")), "{text}");
    assert!(normal.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));

    let future = pki.client(
        KeyAlg::Ec,
        Validity::Range("20990101000000Z", "21000101000000Z"),
    );
    let (_, dates) = x509(&future, &["-startdate"]);
    assert!(
        dates.contains("notBefore=Jan  1 00:00:00 2099 GMT"),
        "{dates}"
    );

    let (ok, out) = openssl_status(
        pki.dir(),
        [OsStr::new("verify"), OsStr::new("-CAfile")]
            .into_iter()
            .chain([pki.ca().cert.as_os_str(), normal.cert.as_os_str()]),
    );
    assert!(ok, "{out}");
}

#[test]
fn rsa_ca_and_rsa_client() {
    let dir = TestDir::new();
    let pki = Pki::with_ca(&dir, KeyAlg::Rsa);
    let other = Pki::new(&dir);
    assert_ne!(pki.dir(), other.dir(), "two Pkis share no folder");
    let (_, ca) = x509(pki.ca(), &["-text"]);
    assert!(
        ca.contains("rsaEncryption") && ca.contains("CA:TRUE"),
        "{ca}"
    );
    let client = pki.client(KeyAlg::Rsa, Validity::Normal);
    let (_, text) = x509(&client, &["-text"]);
    assert!(
        text.contains("Public-Key: (2048 bit)") && text.contains("rsaEncryption"),
        "{text}"
    );
    let p12 = p12_info(&pki, &pki.p12(&client, "", P12Form::Aes, 1), "");
    assert_eq!(p12.matches("Certificate bag").count(), 2);
}

/// The key values of a garage-sign pair (`targets.pub`, `targets.sec`),
/// both of `keytype`.
fn garage_key_values((public, private): (String, String), keytype: &str) -> (String, String) {
    let value = |json: &str, part: &str| {
        let key: Value = serde_json::from_str(json).unwrap();
        assert_eq!(key["keytype"], keytype, "{json}");
        key["keyval"][part].as_str().unwrap().to_owned()
    };
    (value(&public, "public"), value(&private, "private"))
}

#[test]
fn garage_sign_rsa_keys_match() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let (public_pem, private_pem) = garage_key_values(pki.targets_rsa(), "RSA");
    assert!(
        public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{public_pem}"
    );
    assert!(private_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    let sec = dir.write("sec.pem", &private_pem);
    let derived = openssl(
        dir.path(),
        [
            OsStr::new("rsa"),
            OsStr::new("-in"),
            sec.as_os_str(),
            OsStr::new("-pubout"),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&derived), public_pem);
}

#[test]
fn garage_sign_ed25519_keys_are_raw_hex_and_match() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let (public, private) = garage_key_values(pki.targets_ed25519(), "ED25519");
    assert_eq!(public.len(), 64);
    assert_eq!(private.len(), 128);
    assert!(private.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(&private[64..], public, "seed then public key");
    // Rebuild the PKCS#8 key from the seed (RFC 8410) and let openssl derive
    // the public key: it must be the one given.
    let seed: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&private[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let pkcs8 = [
        &[
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ][..],
        &seed,
    ]
    .concat();
    let key = dir.write("seed.der", pkcs8);
    let spki = openssl(
        dir.path(),
        [
            "pkey",
            "-inform",
            "DER",
            "-in",
            &key.to_string_lossy(),
            "-pubout",
            "-outform",
            "DER",
        ],
    );
    assert_eq!(hex(&spki[spki.len() - 32..]), public);
}

// ---- Creds ----------------------------------------------------------------

#[test]
fn typical_credentials_zip() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let creds = Creds::typical(&pki);
    assert_eq!(creds.build(), creds.build(), "deterministic");
    let path = creds.write_to(&dir, "credentials.zip");
    assert_eq!(path, dir.join("credentials.zip"));
    let report = py_zip(&path);
    assert_eq!(report["testzip"], Value::Null);
    assert_eq!(
        names(&report),
        "autoprov.url autoprov_credentials.p12 treehub.json root.json targets.pub targets.sec tufrepo.url"
    );
    let bytes = std::fs::read(&path).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let read = |archive: &mut zip::ZipArchive<_>, name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    assert_eq!(
        read(&mut archive, "autoprov.url"),
        format!("https://{CA_UUID}.device-gateway.example.test:443")
    );
    let treehub: Value = serde_json::from_str(&read(&mut archive, "treehub.json")).unwrap();
    assert_eq!(treehub["oauth2"]["client_secret"], OAUTH2_SECRET);
    assert!(treehub["ostree"]["server"]
        .as_str()
        .unwrap()
        .ends_with(".example.test/api/v3"));
    let root: Value = serde_json::from_str(&read(&mut archive, "root.json")).unwrap();
    assert_eq!(root["signed"]["_type"], "Root");
    let mut p12 = Vec::new();
    std::io::Read::read_to_end(
        &mut archive.by_name("autoprov_credentials.p12").unwrap(),
        &mut p12,
    )
    .unwrap();
    let info = p12_info(&pki, &p12, "");
    assert!(info.contains("pbeWithSHA1And40BitRC2-CBC"), "{info}");
    assert_eq!(info.matches("Certificate bag").count(), 3);
}

#[test]
fn creds_builder_replaces_removes_and_adds() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let client = pki.client(KeyAlg::Ec, Validity::Expired);
    let creds = Creds::new(&pki)
        .url("https://a1b2c3.device-gateway.example.test:443")
        .p12(pki.p12(&client, "pw", P12Form::Aes, 1))
        .treehub_oauth2()
        .treehub_no_auth()
        .root_json()
        .tufrepo_url("")
        .api_gateway_url("https://api.example.test")
        .server_ca()
        .file("key.txt", "x")
        .dir("keys/")
        .without("key.txt");
    let raw = creds.raw().file("autoprov.url", "https://dup.example.test");
    let report = py_zip(&dir.write("c.zip", raw.finish()));
    assert_eq!(
        names(&report),
        "autoprov.url autoprov_credentials.p12 treehub.json root.json tufrepo.url api_gateway.url server_ca.pem keys/ autoprov.url"
    );
    assert_eq!(entry(&report, "tufrepo.url")["actual_size"], 0);
    assert_eq!(entry(&report, "keys/")["is_dir"], true);
    let treehub = entry(&report, "treehub.json");
    assert!(
        treehub["actual_size"].as_u64().unwrap() < 100,
        "no_auth replaced oauth2 in place"
    );
}
