//! [`Creds`]: a credentials.zip (domain.md section 1) built fluently from a
//! [`Pki`], written with [`RawZip`] so the same entries give the same
//! bytes. Hosts are fake (`.example.test`), secrets are marked TEST-ONLY.

use std::path::PathBuf;

use super::{KeyAlg, P12Form, Pki, RawZip, TestDir, Validity, ZipEntry};

/// The OAuth2 client secret in [`Creds::treehub_oauth2`]; assert it never
/// shows in any output.
pub const OAUTH2_SECRET: &str = "TEST-ONLY-client-secret-0123";
pub const OAUTH2_CLIENT_ID: &str = "00000000-0000-4000-8000-0000000c1e17";

/// A plausible initial Uptane root of the image repository.
pub const ROOT_JSON: &str = r#"{"signed":{"_type":"Root","version":1,"expires":"2030-01-01T00:00:00Z","keys":{},"roles":{},"consistent_snapshot":false},"signatures":[]}"#;

/// What `stage` writes to the host root, with the modes, from an archive
/// with every host entry ([`Creds::typical`], aktualizr's offline signing
/// set): the same for every method. The host-only `credentials.zip` first,
/// then the entries it holds.
pub const HOST_FILES: [(&str, u32); 6] = [
    ("credentials.zip", 0o600),
    ("root.json", 0o644),
    ("targets.pub", 0o644),
    ("targets.sec", 0o600),
    ("treehub.json", 0o600),
    ("tufrepo.url", 0o644),
];

/// Every `--p11-*` option but the PIN, with the values of the snapshot
/// `20-sota-device-cred-hsm.custom.toml` (whose PIN is `7 seven 7`).
pub const HSM_OPTIONS: [&str; 8] = [
    "--p11-module",
    "/usr/lib/opensc-pkcs11.so",
    "--p11-tls-cert-id",
    "0a",
    "--p11-tls-key-id",
    "0b",
    "--p11-uptane-key-id",
    "0c",
];

/// Entries in insertion order; setting a name again replaces its bytes in
/// place. For duplicates and other hostile shapes, take [`Creds::raw`] and
/// add [`ZipEntry`]s.
#[derive(Debug)]
pub struct Creds<'a> {
    pki: &'a Pki,
    entries: Vec<ZipEntry>,
}

impl<'a> Creds<'a> {
    /// An empty archive.
    pub fn new(pki: &'a Pki) -> Creds<'a> {
        Creds {
            pki,
            entries: Vec::new(),
        }
    }

    /// An OTA Connect archive with nothing to warn about: `autoprov.url`,
    /// the shared p12 (see [`Creds::shared_p12`]), treehub.json with
    /// OAuth2, root.json, an ED25519 targets pair (fast; call
    /// [`Creds::targets_rsa`] for RSA) and a `tufrepo.url`.
    #[track_caller]
    pub fn typical(pki: &'a Pki) -> Creds<'a> {
        let url = format!("https://{}.device-gateway.example.test:443", pki.uuid());
        Creds::new(pki)
            .url(&url)
            .shared_p12()
            .treehub_oauth2()
            .root_json()
            .targets_ed25519()
            .tufrepo_url("https://tuf.example.test/api/v1/user_repo")
    }

    /// `autoprov.url`.
    pub fn url(self, url: &str) -> Creds<'a> {
        self.file("autoprov.url", url)
    }

    /// `autoprov_credentials.p12` with these bytes (from [`Pki::p12`]).
    pub fn p12(self, bytes: impl Into<Vec<u8>>) -> Creds<'a> {
        self.file("autoprov_credentials.p12", bytes)
    }

    /// `autoprov_credentials.p12` like aktualizr's sample: a fresh EC
    /// client certificate valid for a year, the CA twice, legacy form,
    /// empty password.
    #[track_caller]
    pub fn shared_p12(self) -> Creds<'a> {
        let client = self.pki.client(KeyAlg::Ec, Validity::Normal);
        let p12 = self.pki.p12(&client, "", P12Form::Legacy, 2);
        self.p12(p12)
    }

    /// `treehub.json` with OAuth2 ([`OAUTH2_SECRET`]) and an https treehub.
    pub fn treehub_oauth2(self) -> Creds<'a> {
        let json = serde_json::json!({
            "oauth2": {
                "server": "https://auth.example.test",
                "client_id": OAUTH2_CLIENT_ID,
                "client_secret": OAUTH2_SECRET,
            },
            "ostree": { "server": "https://treehub.example.test/api/v3" },
        });
        self.treehub_json(&json.to_string())
    }

    /// `treehub.json` as OTA Community Edition writes it: no auth, http.
    pub fn treehub_no_auth(self) -> Creds<'a> {
        self.treehub_json(
            r#"{"no_auth": true, "ostree": {"server": "http://treehub.example.test/api/v3/"}}"#,
        )
    }

    /// `treehub.json` with exactly this text.
    pub fn treehub_json(self, raw: &str) -> Creds<'a> {
        self.file("treehub.json", raw)
    }

    /// `root.json` = [`ROOT_JSON`].
    pub fn root_json(self) -> Creds<'a> {
        self.file("root.json", ROOT_JSON)
    }

    /// A fresh RSA `targets.pub` and `targets.sec` (slow: about 0.3 s).
    #[track_caller]
    pub fn targets_rsa(self) -> Creds<'a> {
        let (public, private) = self.pki.targets_rsa();
        self.file("targets.pub", public)
            .file("targets.sec", private)
    }

    /// A fresh ED25519 `targets.pub` and `targets.sec`.
    #[track_caller]
    pub fn targets_ed25519(self) -> Creds<'a> {
        let (public, private) = self.pki.targets_ed25519();
        self.file("targets.pub", public)
            .file("targets.sec", private)
    }

    /// `tufrepo.url`; real archives sometimes hold an empty one.
    pub fn tufrepo_url(self, url: &str) -> Creds<'a> {
        self.file("tufrepo.url", url)
    }

    /// `api_gateway.url`.
    pub fn api_gateway_url(self, url: &str) -> Creds<'a> {
        self.file("api_gateway.url", url)
    }

    /// `server_ca.pem` from [`Pki::server_ca_pem`].
    #[track_caller]
    pub fn server_ca(self) -> Creds<'a> {
        let pem = self.pki.server_ca_pem();
        self.file("server_ca.pem", pem)
    }

    /// Any entry, stored, mode 0644; replaces an entry of the same name.
    pub fn file(mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Creds<'a> {
        let entry = ZipEntry::file(name, bytes);
        match self.entries.iter_mut().find(|e| e.name == name.as_bytes()) {
            Some(slot) => *slot = entry,
            None => self.entries.push(entry),
        }
        self
    }

    /// A directory entry; pass the name with its trailing `/`.
    pub fn dir(mut self, name: &str) -> Creds<'a> {
        self.entries.push(ZipEntry::dir(name));
        self
    }

    /// Drops the entry `name` if present.
    pub fn without(mut self, name: &str) -> Creds<'a> {
        self.entries.retain(|e| e.name != name.as_bytes());
        self
    }

    /// The entries so far, to add hostile ones before [`RawZip::finish`].
    pub fn raw(&self) -> RawZip {
        RawZip {
            entries: self.entries.clone(),
            ..RawZip::default()
        }
    }

    /// The archive bytes.
    #[track_caller]
    pub fn build(&self) -> Vec<u8> {
        self.raw().finish()
    }

    /// Writes the archive to `rel` in `dir`; returns the path.
    #[track_caller]
    pub fn write_to(&self, dir: &TestDir, rel: &str) -> PathBuf {
        dir.write(rel, self.build())
    }
}
