//! What must never be in an image, derived from a credentials archive
//! (docs/audit.md): the archive itself and every host-only entry by
//! whole-file digest, and the secret strings inside the host secrets as
//! patterns for one multi-pattern search. The shared provisioning p12 is
//! the one device secret: allowed only in its place.
//!
//! Each secret is searched for in every encoding a reader can undo
//! ([`encode`]): raw, hex, base64 and base64url (wrapped or not), JSON
//! escapes, UTF-16, case-changed copies; key files by their private
//! material ([`keys`]). [`matcher`] searches short anchors of these forms
//! and verifies each hit. `--any-private-key` adds markers of any private
//! key, verified by their structure ([`keys::markers`]).
//!
//! Pure: built from an [`Archive`] that intake already read and the files
//! the user named. The pattern bytes never leave this module but into the
//! automata (and `--print-needles`, a debug option); a [`Needle`] carries
//! only the secret's name (`the value of "oauth2.client_secret" in
//! treehub.json`), never its value.

mod encode;
mod keys;
mod matcher;

use std::collections::{HashMap, HashSet};
use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crypto::garage_keys;
use crate::crypto::private_key::PrivateKey;
use crate::intake::archive::Archive;
use crate::intake::catalogue::{self, Side};
use crate::report::Severity;
use encode::Alphabet;
use keys::Marker;
use matcher::{Form, Matcher};

/// Shorter patterns would match by chance in a large image (a 15-byte
/// string of hex digits or base64 is not rare in gigabytes of binaries and
/// text); shorter secrets are reported as not searched. Every secret the
/// garage tools write is longer: an ED25519 seed is 32 bytes, its hex 64.
pub const MIN_PATTERN_LEN: usize = matcher::ANCHOR;

/// Whole entries up to this size are searched for as byte strings (a copied
/// `client_auth.p12` inside another file); larger ones only by digest. With
/// the encoded forms, no occurrence spans more than this: it bounds the
/// overlap the streaming search keeps between reads.
pub const MAX_PATTERN_LEN: usize = 64 * 1024;

/// The device zip: the only place the shared provisioning p12 may be.
pub const DEVICE_ZIP: &str = "var/sota/sota_provisioning_credentials.zip";
/// The shared provisioning p12's name, in the credentials archive and in
/// the device zip.
pub const SHARED_P12: &str = "autoprov_credentials.p12";

/// What a finding is about. The names are part of the JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The credentials archive itself, byte for byte.
    CredentialsArchive,
    /// A host-only entry of the archive (or a `--secret-file`), byte for
    /// byte.
    HostFile,
    /// A host secret found inside a file: a secret string, key bytes, or a
    /// whole secret entry embedded in a larger file, in any encoding.
    HostSecret,
    /// The shared provisioning p12 outside the device zip.
    DeviceSecretMisplaced,
    /// A private key found by `--any-private-key`, outside the allowed
    /// paths ([`Needles::allowed`]).
    PrivateKey,
    /// A staged secret file or folder whose mode lets others read it.
    Mode,
    /// Something could not be looked into (over a cap, an unknown
    /// compression): a warning.
    NotSearched,
    /// A file or folder that could not be read: an error, the audit is
    /// incomplete.
    Unreadable,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CredentialsArchive => "credentials-archive",
            Kind::HostFile => "host-file",
            Kind::HostSecret => "host-secret",
            Kind::DeviceSecretMisplaced => "device-secret-misplaced",
            Kind::PrivateKey => "private-key",
            Kind::Mode => "mode",
            Kind::NotSearched => "not-searched",
            Kind::Unreadable => "unreadable",
        }
    }
}

/// One thing that must not be found, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    /// `the value of "oauth2.client_secret" in treehub.json (base64)`:
    /// what the secret is and how it was encoded, never its value.
    pub what: String,
    pub kind: Kind,
    pub severity: Severity,
    /// Allowed inside the device zip (the shared p12), nowhere else.
    pub in_device_zip: bool,
    /// For an entry found by digest: the needle of its bytes found inside
    /// a larger file (a container holding the entry says it once).
    pub content: Option<usize>,
}

/// A file the user names with `--secret-file`: its bytes, and its key
/// material when it is a private key, must not be in the image. `Debug`
/// shows the name only.
pub struct SecretFile {
    /// The file's name (no folder): what findings call it.
    pub name: String,
    pub data: Vec<u8>,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretFile")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What the user adds to the archive's secrets.
#[derive(Debug, Default)]
pub struct Extra {
    /// `--secret-file`.
    pub secret_files: Vec<SecretFile>,
    /// `--any-private-key`.
    pub any_private_key: bool,
    /// Root-relative paths where a private key is allowed: the device
    /// files of `--manifest`, and `--allow`.
    pub allow: Vec<String>,
}

/// The markers of `--any-private-key`: short, so in their own automaton,
/// and verified by structure.
struct Markers {
    automaton: AhoCorasick,
    /// Per pattern: the marker, its length, its needle.
    kinds: Vec<(Marker, usize, usize)>,
    patterns: Vec<Vec<u8>>,
}

/// The set an audit looks for. `Debug` shows counts only.
pub struct Needles {
    pub needles: Vec<Needle>,
    matcher: Matcher,
    markers: Option<Markers>,
    /// Whole-file sha256 -> needle index.
    digests: HashMap<[u8; 32], usize>,
    /// The sizes of the files in `digests`: only a file of one of these
    /// sizes is hashed.
    sizes: HashSet<u64>,
    /// Where `--any-private-key` allows a key.
    allowed: HashSet<String>,
    /// Secrets that could not be searched for, worded for the user.
    pub notes: Vec<String>,
}

impl fmt::Debug for Needles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Needles")
            .field("needles", &self.needles.len())
            .field("patterns", &self.pattern_count())
            .field("digests", &self.digests.len())
            .finish_non_exhaustive()
    }
}

impl Needles {
    /// Pushes (once) the needle of every secret found whole in `haystack`:
    /// every anchor hit is verified against the whole encoded form, every
    /// private-key marker against the structure around it.
    pub fn search(&self, haystack: &[u8], found: &mut Vec<usize>) {
        self.matcher.search(haystack, found);
        let Some(markers) = &self.markers else {
            return;
        };
        let mut at = 0;
        while at < haystack.len() {
            let Some(m) = markers
                .automaton
                .find(Input::new(haystack).span(at..haystack.len()))
            else {
                break;
            };
            if let Some(&(marker, len, needle)) = markers.kinds.get(m.pattern().as_usize()) {
                if !found.contains(&needle) && keys::verify(marker, haystack, m.start(), len) {
                    found.push(needle);
                }
            }
            at = m.start() + 1;
        }
    }

    /// The most bytes one verified occurrence can span (line breaks of
    /// wrapped base64 included; a DER key with `--any-private-key`): a
    /// streaming search keeps this many bytes but one between reads.
    pub fn longest(&self) -> usize {
        let markers = if self.markers.is_some() {
            keys::MARKER_SPAN
        } else {
            0
        };
        self.matcher.longest().max(markers)
    }

    /// Whether a file of this size could match a digest.
    pub fn wants_digest(&self, size: u64) -> bool {
        self.sizes.contains(&size)
    }

    /// The largest size a digest is wanted for (0: none).
    pub fn largest_digest(&self) -> u64 {
        self.sizes.iter().copied().max().unwrap_or(0)
    }

    /// The needle whose digest this is.
    pub fn by_digest(&self, digest: &[u8; 32]) -> Option<usize> {
        self.digests.get(digest).copied()
    }

    /// How many fixed strings are searched for (anchors and markers).
    pub fn pattern_count(&self) -> usize {
        self.matcher.anchors().len() + self.markers.as_ref().map_or(0, |m| m.patterns.len())
    }

    /// Whether a private key found by `--any-private-key` at this
    /// root-relative path (`var/sota/import/pkey.pem`) is allowed there.
    pub fn allowed(&self, path: &str) -> bool {
        self.allowed.contains(path.trim_start_matches('/'))
    }

    /// The fixed strings searched for, for `--print-needles`: they are
    /// secrets.
    pub fn fixed_strings(&self) -> Vec<&[u8]> {
        let mut out: Vec<&[u8]> = self.matcher.anchors().iter().map(Vec::as_slice).collect();
        if let Some(m) = &self.markers {
            out.extend(m.patterns.iter().map(Vec::as_slice));
        }
        out
    }

    /// The needles of an archive whose only entry is a treehub.json with
    /// `client_secret` as its OAuth2 client secret: what the audit fuzz
    /// target and the scanner's unit tests search for (not for the
    /// product).
    #[doc(hidden)]
    pub fn of_client_secret(client_secret: &str) -> Needles {
        let data = format!(
            r#"{{"oauth2":{{"server":"https://a.example.test","client_id":"x","client_secret":"{client_secret}"}}}}"#
        )
        .into_bytes();
        let archive = Archive {
            sha256: crate::digest::sha256_hex(b"not the archive"),
            entries: vec![crate::intake::archive::Entry {
                name: "treehub.json".into(),
                sha256: crate::digest::sha256_hex(&data),
                data,
            }],
            directories: Vec::new(),
        };
        Needles::from_archive(&archive, 1000)
    }

    /// Everything derived from `archive`, whose file is `archive_size`
    /// bytes.
    pub fn from_archive(archive: &Archive, archive_size: u64) -> Needles {
        Needles::build(archive, archive_size, &Extra::default())
    }

    /// [`Needles::from_archive`] and what the user adds.
    pub fn build(archive: &Archive, archive_size: u64, extra: &Extra) -> Needles {
        Needles::build_grouped(archive, archive_size, extra, matcher::GROUP)
    }

    /// [`Needles::build`] with at most `group` patterns per automaton.
    fn build_grouped(archive: &Archive, archive_size: u64, extra: &Extra, group: usize) -> Needles {
        let mut b = Builder::default();
        b.add_archive(archive, archive_size);
        for file in &extra.secret_files {
            b.add_secret_file(file);
        }
        let mut needles = b.finish(group);
        if extra.any_private_key {
            needles.add_markers();
        }
        needles.allowed = extra
            .allow
            .iter()
            .map(|p| p.trim_start_matches('/').to_owned())
            .collect();
        needles
    }

    fn add_markers(&mut self) {
        let mut by_what: HashMap<&'static str, usize> = HashMap::new();
        let mut kinds = Vec::new();
        let mut patterns = Vec::new();
        for (bytes, marker) in keys::markers() {
            let what = marker.what();
            let needle = *by_what.entry(what).or_insert_with(|| {
                self.needles.push(Needle {
                    what: what.to_owned(),
                    kind: Kind::PrivateKey,
                    severity: Severity::Error,
                    in_device_zip: false,
                    content: None,
                });
                self.needles.len() - 1
            });
            kinds.push((marker, bytes.len(), needle));
            patterns.push(bytes);
        }
        match AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(&patterns)
        {
            Ok(automaton) => {
                self.markers = Some(Markers {
                    automaton,
                    kinds,
                    patterns,
                })
            }
            Err(_) => self
                .notes
                .push("the private-key markers could not be compiled into a search: no private key can be found".into()),
        }
    }
}

/// How a secret's bytes were encoded: a needle each, named by the suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    Raw,
    Upper,
    Lower,
    Hex,
    Base64,
    Base64Url,
    Json,
    Utf16,
}

impl Family {
    fn suffix(self, raw: &'static str) -> &'static str {
        match self {
            Family::Raw => raw,
            Family::Upper => " (upper-cased)",
            Family::Lower => " (lower-cased)",
            Family::Hex => " (hex)",
            Family::Base64 => " (base64)",
            Family::Base64Url => " (base64url)",
            Family::Json => " (JSON-escaped)",
            Family::Utf16 => " (UTF-16)",
        }
    }
}

/// The needles of one secret, made as its forms are added.
struct Secret<'a> {
    what: &'a str,
    kind: Kind,
    in_device_zip: bool,
    /// The raw form's suffix: none for text, ` (raw bytes)` for key bytes.
    raw: &'static str,
    made: HashMap<Family, usize>,
}

impl<'a> Secret<'a> {
    fn new(what: &'a str, kind: Kind, raw: &'static str) -> Secret<'a> {
        Secret {
            what,
            kind,
            in_device_zip: false,
            raw,
            made: HashMap::new(),
        }
    }
}

#[derive(Default)]
struct Builder {
    needles: Vec<Needle>,
    forms: Vec<Form>,
    seen: HashSet<Vec<u8>>,
    digests: HashMap<[u8; 32], usize>,
    sizes: HashSet<u64>,
    notes: Vec<String>,
}

impl Builder {
    fn needle(&mut self, what: String, kind: Kind, in_device_zip: bool) -> usize {
        self.needles.push(Needle {
            what,
            kind,
            severity: Severity::Error,
            in_device_zip,
            content: None,
        });
        self.needles.len() - 1
    }

    fn digest(&mut self, data_digest: [u8; 32], size: u64, needle: usize) {
        // An empty or tiny entry (a 0-byte tufrepo.url) would match every
        // such file in the image.
        if size < MIN_PATTERN_LEN as u64 {
            return;
        }
        self.digests.entry(data_digest).or_insert(needle);
        self.sizes.insert(size);
    }

    /// Adds one form of `secret`; its needle, or `None` when the form is
    /// too short, too long, or already searched for.
    fn form(
        &mut self,
        secret: &mut Secret<'_>,
        family: Family,
        bytes: Vec<u8>,
        wrapped: bool,
    ) -> Option<usize> {
        if bytes.len() < MIN_PATTERN_LEN || self.seen.contains(&bytes) {
            return None;
        }
        let form = Form {
            bytes,
            needle: 0,
            wrapped,
        };
        if form.span() > MAX_PATTERN_LEN {
            return None;
        }
        let needle = match secret.made.get(&family) {
            Some(&n) => n,
            None => {
                let what = format!("{}{}", secret.what, family.suffix(secret.raw));
                let n = self.needle(what, secret.kind, secret.in_device_zip);
                secret.made.insert(family, n);
                n
            }
        };
        self.seen.insert(form.bytes.clone());
        self.forms.push(Form { needle, ..form });
        Some(needle)
    }

    /// Raw, hex (both cases) and base64/base64url at the three shifts.
    fn binary_forms(&mut self, secret: &mut Secret<'_>, data: &[u8]) {
        self.form(secret, Family::Raw, data.to_vec(), false);
        self.form(secret, Family::Hex, encode::hex_lower(data), true);
        self.form(secret, Family::Hex, encode::hex_upper(data), true);
        self.base64_forms(secret, data);
    }

    fn base64_forms(&mut self, secret: &mut Secret<'_>, data: &[u8]) {
        for (family, alphabet) in [
            (Family::Base64, Alphabet::Standard),
            (Family::Base64Url, Alphabet::Url),
        ] {
            for shift in 0..3 {
                let coded = encode::base64_shifted(data, shift, alphabet);
                self.form(secret, family, coded, true);
            }
        }
    }

    /// A text secret: the binary forms, and the case-changed copies, the
    /// JSON escapes and UTF-16.
    fn text_forms(&mut self, secret: &mut Secret<'_>, text: &str) {
        self.binary_forms(secret, text.as_bytes());
        self.form(
            secret,
            Family::Upper,
            text.to_ascii_uppercase().into_bytes(),
            false,
        );
        self.form(
            secret,
            Family::Lower,
            text.to_ascii_lowercase().into_bytes(),
            false,
        );
        for json in encode::json_forms(text) {
            self.form(secret, Family::Json, json, false);
        }
        self.form(secret, Family::Utf16, encode::utf16_le(text), false);
        self.form(secret, Family::Utf16, encode::utf16_be(text), false);
    }

    /// A whole secret file's bytes, raw and in base64: the raw needle.
    fn whole(&mut self, secret: &mut Secret<'_>, data: &[u8]) -> Option<usize> {
        let raw = self.form(secret, Family::Raw, data.to_vec(), false);
        self.base64_forms(secret, data);
        raw
    }

    fn add_archive(&mut self, archive: &Archive, archive_size: u64) {
        if let Some(digest) = from_hex(&archive.sha256) {
            let n = self.needle(
                "the credentials archive".into(),
                Kind::CredentialsArchive,
                false,
            );
            self.digest(digest, archive_size, n);
        }
        for entry in &archive.entries {
            let known = catalogue::lookup(&entry.name);
            let digest: [u8; 32] = Sha256::digest(&entry.data).into();
            let size = entry.data.len() as u64;
            match known {
                // Device files belong in the image; the shared p12 only
                // in the device zip.
                Some(k) if k.role == Side::Device => {
                    if k.name == SHARED_P12 {
                        let what = format!("the shared provisioning key '{SHARED_P12}'");
                        let n = self.needle(what.clone(), Kind::DeviceSecretMisplaced, true);
                        self.digest(digest, size, n);
                        let mut secret = Secret::new(&what, Kind::DeviceSecretMisplaced, "");
                        secret.in_device_zip = true;
                        secret.made.insert(Family::Raw, n);
                        self.whole(&mut secret, &entry.data);
                    }
                }
                // Host entries, and unknown ones (secret until known
                // otherwise, as catalogue::is_secret says).
                _ => {
                    let is_secret = known.map_or(true, |k| k.secret);
                    let n = self.needle(
                        format!("entry '{}' of the credentials archive", entry.name),
                        Kind::HostFile,
                        false,
                    );
                    self.digest(digest, size, n);
                    if is_secret {
                        let what = format!("the content of '{}'", entry.name);
                        let mut secret = Secret::new(&what, Kind::HostSecret, "");
                        self.needles[n].content = self.whole(&mut secret, &entry.data);
                        self.add_secret_strings(&entry.name, &entry.data);
                    }
                }
            }
        }
    }

    /// The secret values inside a host secret entry: the key of
    /// targets.sec; every string of a JSON entry.
    fn add_secret_strings(&mut self, name: &str, data: &[u8]) {
        if name == "targets.sec" {
            self.add_targets_key(data);
            return;
        }
        let json = serde_json::from_slice::<Value>(data);
        match json {
            Ok(value @ (Value::Object(_) | Value::Array(_))) => self.add_json_secrets(name, &value),
            _ if name.ends_with(".json") => self.notes.push(format!(
                "'{name}' is not valid JSON: only its whole bytes are searched for"
            )),
            _ => {}
        }
    }

    /// Every string value of 16 bytes or more, whatever its key (Torizon's
    /// provision.json keeps its secret under `secret`), but URLs and the
    /// keys that name public things (`server`, `client_id`, ...). Shorter
    /// strings, and numbers under secret-looking keys, are noted.
    fn add_json_secrets(&mut self, name: &str, value: &Value) {
        let mut found = Vec::new();
        collect_json_strings(value, String::new(), &mut found, 0);
        for (path, leaf) in found {
            let what = format!("the value of \"{path}\" in {name}");
            match leaf {
                Leaf::Text(text) if text.len() >= MIN_PATTERN_LEN => {
                    let mut secret = Secret::new(&what, Kind::HostSecret, "");
                    self.text_forms(&mut secret, &text);
                }
                Leaf::Text(_) => self.notes.push(format!(
                    "{what} is shorter than {MIN_PATTERN_LEN} bytes: not searched for (it would match by chance)"
                )),
                Leaf::Number => self.notes.push(format!(
                    "{what} is a number: not searched for (it would match by chance)"
                )),
            }
        }
    }

    /// targets.sec's private key in every form a tool writes it: the
    /// ED25519 seed and seed+public bytes; RSA's private exponent and
    /// primes (never the modulus: the public key is no secret).
    fn add_targets_key(&mut self, data: &[u8]) {
        let Ok(key) = garage_keys::parse_private(data) else {
            self.notes.push(
                "'targets.sec' is not a garage-sign key: only its whole bytes are searched for"
                    .into(),
            );
            return;
        };
        let what = "the private key of targets.sec";
        let mut secret = Secret::new(what, Kind::HostSecret, " (raw bytes)");
        let material = key.material().expose();
        match key.public() {
            garage_keys::TufKey::Ed25519 { .. } => {
                // The seed alone, and seed then public key as garage-sign,
                // libsodium and OpenSSH's private field hold it. PKCS#8
                // and OpenSSH files are base64 of structures holding these
                // bytes: the three shifts find them.
                let seed = material.get(..32).unwrap_or(material);
                self.binary_forms(&mut secret, seed);
                self.binary_forms(&mut secret, material);
            }
            garage_keys::TufKey::Rsa { .. } => match PrivateKey::from_pkcs8_der(material) {
                Ok(rsa) => self.key_forms(&mut secret, &rsa),
                Err(_) => self.notes.push(
                    "the RSA key of 'targets.sec' cannot be read: only its whole bytes are searched for".into(),
                ),
            },
        }
    }

    fn key_forms(&mut self, secret: &mut Secret<'_>, key: &PrivateKey) {
        for (_, part) in keys::private_parts(key) {
            self.binary_forms(secret, part.expose());
        }
    }

    /// `--secret-file`: its digest, its bytes, and its private key's
    /// material when it is one.
    fn add_secret_file(&mut self, file: &SecretFile) {
        let name = &file.name;
        let n = self.needle(format!("the secret file '{name}'"), Kind::HostFile, false);
        let digest: [u8; 32] = Sha256::digest(&file.data).into();
        self.digest(digest, file.data.len() as u64, n);
        let what = format!("the content of the secret file '{name}'");
        let mut content = Secret::new(&what, Kind::HostSecret, "");
        self.needles[n].content = self.whole(&mut content, &file.data);
        match keys::parse_any(&file.data) {
            Some(key) => {
                let what = format!("the private key of the secret file '{name}'");
                let mut secret = Secret::new(&what, Kind::HostSecret, " (raw bytes)");
                self.key_forms(&mut secret, &key);
            }
            None if keys::is_pem_private_key(&file.data) => self.notes.push(format!(
                "the secret file '{name}' holds a private key that cannot be read (encrypted, or of an unsupported kind): only its bytes are searched for"
            )),
            None => {}
        }
        if file.data.len() < MIN_PATTERN_LEN {
            self.notes.push(format!(
                "the secret file '{name}' is shorter than {MIN_PATTERN_LEN} bytes: not searched for (it would match by chance)"
            ));
        }
    }

    fn finish(self, group: usize) -> Needles {
        let matcher = Matcher::new(self.forms, group);
        let mut notes = self.notes;
        if matcher.failed {
            notes.push("some secret strings could not be compiled into a search: only whole files are compared for them".into());
        }
        Needles {
            needles: self.needles,
            matcher,
            markers: None,
            digests: self.digests,
            sizes: self.sizes,
            allowed: HashSet::new(),
            notes,
        }
    }
}

/// serde_json stops at 128 levels; this walk stops earlier still.
const MAX_JSON_DEPTH: usize = 64;

/// Keys whose values are public: where the server is, who the client is.
const PUBLIC_KEYS: &[&str] = &[
    "client_id",
    "scope",
    "server",
    "url",
    "ostree_server",
    "no_auth",
];

enum Leaf {
    Text(String),
    Number,
}

/// Whether a key's value would be a secret: numbers under these are noted.
fn secret_looking(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "passwd", "token"]
        .iter()
        .any(|k| key.contains(k))
        || key == "key"
        || key.ends_with("_key")
        || key.ends_with("-key")
}

fn collect_json_strings(value: &Value, path: String, out: &mut Vec<(String, Leaf)>, depth: usize) {
    if depth > MAX_JSON_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if PUBLIC_KEYS.contains(&k.as_str()) {
                    continue;
                }
                match v {
                    Value::String(s) => push_text(s, child, out),
                    Value::Number(_) if secret_looking(k) => out.push((child, Leaf::Number)),
                    _ => collect_json_strings(v, child, out, depth + 1),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let child = format!("{path}[{i}]");
                match v {
                    Value::String(s) => push_text(s, child, out),
                    _ => collect_json_strings(v, child, out, depth + 1),
                }
            }
        }
        _ => {}
    }
}

fn push_text(s: &str, path: String, out: &mut Vec<(String, Leaf)>) {
    let lower = s.to_ascii_lowercase();
    if s.is_empty() || lower.starts_with("http://") || lower.starts_with("https://") {
        return;
    }
    out.push((path, Leaf::Text(s.to_owned())));
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
