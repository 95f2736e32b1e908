//! Certificates and keys found in credentials archives: PKCS#12 bundles
//! ([`pkcs12`]), X.509 certificates ([`x509`]), private keys
//! ([`private_key`]), PEM text ([`pem`]) and garage-sign's JSON key form
//! ([`garage_keys`]); [`error`] says why one is refused.
//!
//! Everything here is a pure function of bytes: no file is read, nothing is
//! printed. Private key material and passwords are kept in
//! [`crate::secret::Secret`] and never reach an error message or a `Debug`
//! output; errors say what is wrong with a key, never what is in it.
//! docs/crypto.md lists the accepted formats and algorithms, and what is
//! deliberately not checked.
//!
//! The modules import one another in one direction only: `error` <- `pem`
//! <- `x509` <- `private_key` <- `pkcs12`, `garage_keys`. None of them
//! imports from this file, except their tests (`test_support`).

pub mod error;
pub mod garage_keys;
pub mod pem;
pub mod pkcs12;
pub mod private_key;
pub mod x509;

/// Helpers for the tests of this module: the upstream samples, and key
/// material made at test time by the `openssl` command.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// `../shared` next to the crate (the main checkout), else
    /// `/work/shared` (a worktree elsewhere). Fails loudly when neither
    /// exists: the samples are part of the test suite, never skipped.
    pub fn shared_dir() -> PathBuf {
        let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
        let fixed = PathBuf::from("/work/shared");
        for dir in [beside, fixed] {
            if dir.join("fixtures/upstream").is_dir() {
                return dir;
            }
        }
        panic!(
            "the upstream samples are missing: neither {}/../shared nor /work/shared \
             holds fixtures/upstream",
            env!("CARGO_MANIFEST_DIR")
        );
    }

    /// One entry of an upstream credentials archive, read through the
    /// tool's own archive intake.
    pub fn upstream_entry(archive: &str, entry: &str) -> Vec<u8> {
        let path = shared_dir()
            .join("fixtures/upstream/credentials")
            .join(archive);
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

    /// A fresh folder under the system temp folder, removed on drop, in
    /// which `openssl` makes keys, certificates and bundles.
    pub struct Workdir {
        pub path: PathBuf,
    }

    impl Drop for Workdir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    impl Workdir {
        pub fn new(tag: &str) -> Workdir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let path = std::env::temp_dir().join(format!(
                "sota-stage-crypto-{}-{n}-{tag}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
            let dir = Workdir { path };
            dir.write("openssl.cnf", OPENSSL_CNF.as_bytes());
            dir
        }

        /// Run `openssl` in the folder; panic with its stderr on failure,
        /// and with an install hint when the command is missing.
        pub fn openssl(&self, args: &[&str]) -> Vec<u8> {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&self.path)
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot run `openssl` ({e}); these tests make their keys and \
                         bundles with it: install OpenSSL 3 (e.g. `apt-get install openssl`)"
                    )
                });
            assert!(
                output.status.success(),
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
            output.stdout
        }

        pub fn read(&self, name: &str) -> Vec<u8> {
            let path = self.path.join(name);
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        }

        pub fn write(&self, name: &str, bytes: &[u8]) {
            let path = self.path.join(name);
            std::fs::write(&path, bytes)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }

        /// A PKCS#8 PEM key: `rsa` (2048 bits), `rsa1024`, `ec` (P-256),
        /// `ec384` or `ed25519`.
        pub fn key(&self, name: &str, kind: &str) {
            let opts: &[&str] = match kind {
                "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                "rsa1024" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
                "ec" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "ec384" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
                "ed25519" => &["-algorithm", "ED25519"],
                other => panic!("unknown key kind {other}"),
            };
            let mut args = vec!["genpkey"];
            args.extend_from_slice(opts);
            args.extend_from_slice(&["-out", name]);
            self.openssl(&args);
        }

        /// The same key in OpenSSL's traditional form (SEC1 for EC,
        /// PKCS#1 for RSA).
        pub fn traditional(&self, key: &str, out: &str) {
            self.openssl(&["pkey", "-in", key, "-traditional", "-out", out]);
        }

        /// A self-signed CA certificate (basicConstraints CA:TRUE).
        pub fn ca(&self, key: &str, cert: &str, subject: &str, days: u32) {
            let days = days.to_string();
            self.openssl(&[
                "req",
                "-config",
                "openssl.cnf",
                "-x509",
                "-new",
                "-key",
                key,
                "-subj",
                subject,
                "-days",
                &days,
                "-extensions",
                "ca_ext",
                "-set_serial",
                "0x0a0b",
                "-out",
                cert,
            ]);
        }

        /// A client certificate for `key`, issued by `ca_cert`/`ca_key`.
        pub fn client(&self, key: &str, cert: &str, subject: &str, ca: (&str, &str), days: u32) {
            let csr = format!("{cert}.csr");
            let days = days.to_string();
            self.openssl(&[
                "req",
                "-config",
                "openssl.cnf",
                "-new",
                "-key",
                key,
                "-subj",
                subject,
                "-out",
                &csr,
            ]);
            self.openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
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
}
