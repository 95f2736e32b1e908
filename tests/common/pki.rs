//! [`Pki`]: certificates, PKCS#12 files and garage-sign key pairs for one
//! test, made with the `openssl` command (3.0) in the test's folder.
//!
//! OpenSSL 3.0's `x509`/`req` have no `-not_before`/`-not_after`, so client
//! certificates are issued with `openssl ca`, whose `-startdate`/`-enddate`
//! can put a validity in the past. Nothing is cached between tests; EC
//! P-256 keys keep it fast, RSA is made only where asked.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use super::openssl::{csr, genpkey, openssl, self_signed};
use super::TestDir;

/// The namespace CA's CN: a fake UUID, also the host label of
/// [`super::Creds`]'s default `autoprov.url` (in real archives the CA's CN
/// is the UUID in the URL).
pub const CA_UUID: &str = "a1b2c3d4-0000-4000-8000-00000000c0de";

/// Relative paths in it resolve in the Pki's folder, where openssl runs.
const OPENSSL_CNF: &str = "\
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ ca ]
default_ca = ca_default
[ ca_default ]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[ policy_any ]
commonName = supplied
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// EC P-256, as in OTA Connect's shared provisioning p12.
    Ec,
    /// RSA 2048 (slow to generate: use only where the test is about RSA).
    Rsa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From now for 365 days.
    Normal,
    /// From now, ending in this many days.
    ExpiresInDays(u32),
    /// 2019-01-01 to 2020-01-01.
    Expired,
    /// `openssl ca` dates, `YYYYMMDDHHMMSSZ`: (not before, not after).
    Range(&'static str, &'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P12Form {
    /// OTA Connect era: RC2-40 cert bags, 3DES key bag, SHA-1 MAC, 1024
    /// iterations (`-legacy -iter 1024`).
    Legacy,
    /// OpenSSL 3 default: PBES2 AES-256-CBC with PBKDF2-HMAC-SHA256, SHA-256
    /// MAC.
    Aes,
}

/// A key and its certificate, as files in the Pki's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    pub cn: String,
    pub alg: KeyAlg,
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8).
    pub key: PathBuf,
}

impl Cert {
    #[track_caller]
    pub fn cert_pem(&self) -> String {
        read_string(&self.cert)
    }

    #[track_caller]
    pub fn key_pem(&self) -> String {
        read_string(&self.key)
    }
}

/// A CA and what it issues, in its own subfolder of a [`TestDir`].
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
    ca: Cert,
    /// Names the files of each new key or certificate.
    next: Cell<u32>,
}

impl Pki {
    /// A self-signed EC P-256 CA, CN [`CA_UUID`], CA:TRUE, 10 years.
    #[track_caller]
    pub fn new(dir: &TestDir) -> Pki {
        Pki::with_ca(dir, KeyAlg::Ec)
    }

    /// Like [`Pki::new`] with the CA key of `alg`.
    #[track_caller]
    pub fn with_ca(dir: &TestDir, alg: KeyAlg) -> Pki {
        let mut n = 0;
        let root = loop {
            let candidate = dir.join(if n == 0 {
                "pki".to_owned()
            } else {
                format!("pki-{n}")
            });
            if !candidate.exists() {
                break candidate;
            }
            n += 1;
        };
        let issued = root.join("issued");
        fs::create_dir_all(&issued)
            .unwrap_or_else(|e| panic!("cannot create `{}`: {e}", issued.display()));
        write_file(&root.join("openssl.cnf"), OPENSSL_CNF);
        write_file(&root.join("index.txt"), "");
        write_file(&root.join("serial"), "1000\n");
        genkey(&root, "ca.key", alg);
        let subject = format!("/CN={CA_UUID}");
        self_signed(
            &root,
            "ca.key",
            &subject,
            3650,
            "v3_ca",
            "ca.pem",
            &["-sha256"],
        );
        let ca = Cert {
            cn: CA_UUID.to_owned(),
            alg,
            cert: root.join("ca.pem"),
            key: root.join("ca.key"),
        };
        Pki {
            dir: root,
            ca,
            next: Cell::new(1),
        }
    }

    /// The folder holding this Pki's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca(&self) -> &Cert {
        &self.ca
    }

    /// The CA's CN, a fake UUID.
    pub fn uuid(&self) -> &str {
        &self.ca.cn
    }

    /// PEM of the CA that a device trusts for the server (`server_ca.pem`).
    #[track_caller]
    pub fn server_ca_pem(&self) -> String {
        self.ca.cert_pem()
    }

    /// A client certificate (EKU clientAuth) issued by the CA.
    #[track_caller]
    pub fn client(&self, alg: KeyAlg, validity: Validity) -> Cert {
        let n = self.bump();
        let cn = format!("client-{n}");
        let key = format!("client-{n}.key");
        let csr_name = format!("client-{n}.csr");
        let pem = format!("client-{n}.pem");
        genkey(&self.dir, &key, alg);
        csr(&self.dir, &key, &format!("/CN={cn}"), &csr_name);
        let days;
        let dates: Vec<&str> = match validity {
            Validity::Normal => vec!["-days", "365"],
            Validity::ExpiresInDays(n) => {
                days = n.to_string();
                vec!["-days", &days]
            }
            Validity::Expired => vec![
                "-startdate",
                "20190101000000Z",
                "-enddate",
                "20200101000000Z",
            ],
            Validity::Range(from, to) => vec!["-startdate", from, "-enddate", to],
        };
        self.sign_request(&csr_name, &pem, "client_ext", &dates);
        Cert {
            cn,
            alg,
            cert: self.dir.join(pem),
            key: self.dir.join(key),
        }
    }

    /// `openssl ca`: the request `csr` in the Pki's folder signed by the
    /// CA into `out`, with the extensions of section `extensions` of its
    /// `openssl.cnf` (`client_ext`, `v3_ca`) and `dates` (`-days N`, or
    /// `-startdate`/`-enddate`).
    #[track_caller]
    pub fn sign_request(&self, csr: &str, out: &str, extensions: &str, dates: &[&str]) {
        let mut args = vec![
            "ca",
            "-batch",
            "-config",
            "openssl.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            csr,
            "-out",
            out,
            "-extensions",
            extensions,
            "-notext",
        ];
        args.extend(dates);
        openssl(&self.dir, args);
    }

    /// PKCS#12 of `client`'s certificate and key, with the CA certificate
    /// appended `include_ca_times` times (aktualizr's sample has it twice).
    #[track_caller]
    pub fn p12(
        &self,
        client: &Cert,
        password: &str,
        form: P12Form,
        include_ca_times: usize,
    ) -> Vec<u8> {
        self.p12_parts(Some(client), Some(client), password, form, include_ca_times)
    }

    /// PKCS#12 of `cert`'s certificate (none: `-nocerts`) and `key`'s
    /// private key (none: `-nokeys`), with the CA certificate appended
    /// `include_ca_times` times.
    #[track_caller]
    pub fn p12_parts(
        &self,
        cert: Option<&Cert>,
        key: Option<&Cert>,
        password: &str,
        form: P12Form,
        include_ca_times: usize,
    ) -> Vec<u8> {
        let n = self.bump();
        let out = format!("bundle-{n}.p12");
        let passout = format!("pass:{password}");
        let mut args: Vec<&OsStr> = ["pkcs12", "-export", "-passout", &passout, "-out", &out]
            .into_iter()
            .map(OsStr::new)
            .collect();
        if form == P12Form::Legacy {
            args.extend(["-legacy", "-iter", "1024"].map(OsStr::new));
        }
        match cert {
            Some(c) => args.extend([OsStr::new("-in"), c.cert.as_os_str()]),
            None => args.push(OsStr::new("-nocerts")),
        }
        match key {
            Some(k) => args.extend([OsStr::new("-inkey"), k.key.as_os_str()]),
            None => args.push(OsStr::new("-nokeys")),
        }
        let chain = format!("chain-{n}.pem");
        if include_ca_times > 0 {
            write_file(
                &self.dir.join(&chain),
                &self.ca.cert_pem().repeat(include_ca_times),
            );
            args.extend(["-certfile", &chain].map(OsStr::new));
        }
        openssl(&self.dir, args);
        read_bytes(&self.dir.join(out))
    }

    /// A garage-sign RSA pair, `targets.pub` and `targets.sec` contents:
    /// `{"keytype":"RSA","keyval":{"public":"-----BEGIN PUBLIC KEY-----..."}}`
    /// and the PKCS#1 `BEGIN RSA PRIVATE KEY` under `private`.
    #[track_caller]
    pub fn targets_rsa(&self) -> (String, String) {
        let n = self.bump();
        let sec = format!("targets-{n}.rsa.key");
        let public = format!("targets-{n}.rsa.pub");
        openssl(&self.dir, ["genrsa", "-traditional", "-out", &sec, "2048"]);
        openssl(&self.dir, ["rsa", "-in", &sec, "-pubout", "-out", &public]);
        (
            garage_key("RSA", "public", &read_string(&self.dir.join(public))),
            garage_key("RSA", "private", &read_string(&self.dir.join(sec))),
        )
    }

    /// A garage-sign ED25519 pair: the public key as 32 bytes in hex, the
    /// private one as 64 bytes in hex (seed then public key).
    #[track_caller]
    pub fn targets_ed25519(&self) -> (String, String) {
        let n = self.bump();
        let sec = format!("targets-{n}.ed25519.der");
        let public = format!("targets-{n}.ed25519.pub.der");
        openssl(
            &self.dir,
            [
                "genpkey",
                "-algorithm",
                "ed25519",
                "-outform",
                "DER",
                "-out",
                &sec,
            ],
        );
        openssl(
            &self.dir,
            [
                "pkey", "-inform", "DER", "-in", &sec, "-pubout", "-outform", "DER", "-out",
                &public,
            ],
        );
        // PKCS#8 and SPKI DER of an Ed25519 key end with the 32 raw bytes
        // (RFC 8410): the seed, and the public key.
        let seed = last_32(&read_bytes(&self.dir.join(sec)));
        let public = last_32(&read_bytes(&self.dir.join(public)));
        let private = [&seed[..], &public[..]].concat();
        (
            garage_key("ED25519", "public", &hex(&public)),
            garage_key("ED25519", "private", &hex(&private)),
        )
    }

    fn bump(&self) -> u32 {
        let n = self.next.get();
        self.next.set(n + 1);
        n
    }
}

fn garage_key(keytype: &str, part: &str, value: &str) -> String {
    serde_json::json!({ "keytype": keytype, "keyval": { part: value } }).to_string()
}

#[track_caller]
fn last_32(der: &[u8]) -> Vec<u8> {
    assert!(der.len() > 32, "an Ed25519 DER key is longer than 32 bytes");
    der[der.len() - 32..].to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[track_caller]
fn genkey(dir: &Path, out: &str, alg: KeyAlg) {
    match alg {
        KeyAlg::Ec => genpkey(dir, out, "EC", &["ec_paramgen_curve:P-256"]),
        KeyAlg::Rsa => genpkey(dir, out, "RSA", &["rsa_keygen_bits:2048"]),
    }
}

#[track_caller]
fn write_file(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write `{}`: {e}", path.display()));
}

#[track_caller]
fn read_bytes(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
}

#[track_caller]
fn read_string(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
}
