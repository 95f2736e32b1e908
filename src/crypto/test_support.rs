//! Helpers for the tests of this module: the upstream samples, and key
//! material made at test time by the `openssl` command, on the crate's one
//! test kit ([`crate::test_support`]: the scratch folder, the fixture
//! locator and the openssl wrapper of `tests/common`).

use crate::test_support::{csr, genpkey, openssl, self_signed, upstream, TestDir};

/// One entry of an upstream credentials archive, read through the tool's
/// own archive intake.
pub fn upstream_entry(archive: &str, entry: &str) -> Vec<u8> {
    let path = upstream(archive);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let archive = crate::intake::archive::parse(&bytes, &Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    archive
        .entry(entry)
        .unwrap_or_else(|| panic!("{}: no entry {entry}", path.display()))
        .data
        .clone()
}

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
";

/// A test's own folder, removed on drop, in which `openssl` makes keys,
/// certificates and bundles.
#[derive(Debug)]
pub struct Workdir {
    dir: TestDir,
}

impl Workdir {
    pub fn new(tag: &str) -> Workdir {
        let dir = TestDir::named(&format!("crypto-{tag}"));
        dir.write("openssl.cnf", OPENSSL_CNF);
        Workdir { dir }
    }

    /// Run `openssl` in the folder; panic with its stderr on failure,
    /// and with an install hint when the command is missing.
    pub fn openssl(&self, args: &[&str]) -> Vec<u8> {
        openssl(self.dir.path(), args)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        self.dir.read(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) {
        self.dir.write(name, bytes);
    }

    /// A PKCS#8 PEM key: `rsa` (2048 bits), `rsa1024`, `ec` (P-256),
    /// `ec384` or `ed25519`.
    pub fn key(&self, name: &str, kind: &str) {
        let (algorithm, opts): (&str, &[&str]) = match kind {
            "rsa" => ("RSA", &["rsa_keygen_bits:2048"]),
            "rsa1024" => ("RSA", &["rsa_keygen_bits:1024"]),
            "ec" => ("EC", &["ec_paramgen_curve:P-256"]),
            "ec384" => ("EC", &["ec_paramgen_curve:P-384"]),
            "ed25519" => ("ED25519", &[]),
            other => panic!("unknown key kind {other}"),
        };
        genpkey(self.dir.path(), name, algorithm, opts);
    }

    /// The same key in OpenSSL's traditional form (SEC1 for EC,
    /// PKCS#1 for RSA).
    pub fn traditional(&self, key: &str, out: &str) {
        self.openssl(&["pkey", "-in", key, "-traditional", "-out", out]);
    }

    /// A self-signed CA certificate (basicConstraints CA:TRUE).
    pub fn ca(&self, key: &str, cert: &str, subject: &str, days: u32) {
        self.ca_with_serial(key, cert, subject, days, "0x0a0b");
    }

    /// [`Workdir::ca`] with the serial number `serial` (`0x..`).
    pub fn ca_with_serial(&self, key: &str, cert: &str, subject: &str, days: u32, serial: &str) {
        let extra = ["-set_serial", serial];
        self_signed(self.dir.path(), key, subject, days, "ca_ext", cert, &extra);
    }

    /// A client certificate for `key`, issued by `ca_cert`/`ca_key`.
    pub fn client(&self, key: &str, cert: &str, subject: &str, ca: (&str, &str), days: u32) {
        let request = format!("{cert}.csr");
        let days = days.to_string();
        csr(self.dir.path(), key, subject, &request);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &request,
            "-CA",
            ca.0,
            "-CAkey",
            ca.1,
            "-set_serial",
            "0x01f2",
            "-days",
            &days,
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "client_ext",
            "-out",
            cert,
        ]);
    }

    /// `openssl pkcs12 -export` with extra arguments; returns the bytes.
    pub fn p12(&self, out: &str, password: &str, extra: &[&str]) -> Vec<u8> {
        let pass = format!("pass:{password}");
        let mut args = vec!["pkcs12", "-export", "-passout", &pass, "-out", out];
        args.extend_from_slice(extra);
        self.openssl(&args);
        self.read(out)
    }
}
