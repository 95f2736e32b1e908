//! What must never be in an image, derived from a credentials archive
//! (docs/audit.md): the archive itself and every host-only entry by
//! whole-file digest, and the secret strings inside the host secrets as
//! patterns for one multi-pattern search. The shared provisioning p12 is
//! the one device secret: allowed only in its place.
//!
//! Pure: built from an [`Archive`] that intake already read. The pattern
//! bytes never leave this module but into the automaton; a [`Needle`]
//! carries only the secret's name (`the OAuth2 client secret of
//! treehub.json`), never its value.

use std::collections::{HashMap, HashSet};
use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::crypto::garage_keys;
use crate::crypto::pem;
use crate::intake::archive::Archive;
use crate::intake::catalogue::{self, Side};
use crate::report::Severity;

/// Shorter patterns would match by chance in a large image (a 15-byte
/// string of hex digits or base64 is not rare in gigabytes of binaries and
/// text); shorter secrets are reported as not searched. Every secret the
/// garage tools write is longer: an ED25519 seed is 32 bytes, its hex 64.
pub const MIN_PATTERN_LEN: usize = 16;

/// Whole entries up to this size are searched for as byte strings (a copied
/// `client_auth.p12` inside another file); larger ones only by digest. It
/// bounds the overlap the streaming search keeps between reads.
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
    /// A host-only entry of the archive, byte for byte.
    HostFile,
    /// A host secret found inside a file: a secret string, key bytes, or a
    /// whole secret entry embedded in a larger file.
    HostSecret,
    /// The shared provisioning p12 outside the device zip.
    DeviceSecretMisplaced,
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
            Kind::Mode => "mode",
            Kind::NotSearched => "not-searched",
            Kind::Unreadable => "unreadable",
        }
    }
}

/// One thing that must not be found, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needle {
    /// `the OAuth2 client secret of treehub.json`: what the secret is,
    /// never its value.
    pub what: String,
    pub kind: Kind,
    pub severity: Severity,
    /// Allowed inside the device zip (the shared p12), nowhere else.
    pub in_device_zip: bool,
    /// For an entry found by digest: the needle of its bytes found inside
    /// a larger file (a container holding the entry says it once).
    pub content: Option<usize>,
}

/// The set an audit looks for. `Debug` shows counts only.
pub struct Needles {
    pub needles: Vec<Needle>,
    /// Pattern index -> needle index.
    pattern_owner: Vec<usize>,
    automaton: Option<AhoCorasick>,
    longest: usize,
    /// Whole-file sha256 -> needle index.
    digests: HashMap<[u8; 32], usize>,
    /// The sizes of the files in `digests`: only a file of one of these
    /// sizes is hashed.
    sizes: HashSet<u64>,
    /// Secrets that could not be searched for, worded for the user.
    pub notes: Vec<String>,
}

impl fmt::Debug for Needles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Needles")
            .field("needles", &self.needles.len())
            .field("patterns", &self.pattern_owner.len())
            .field("digests", &self.digests.len())
            .finish_non_exhaustive()
    }
}

impl Needles {
    /// The needle of each pattern found in `haystack`.
    pub fn search(&self, haystack: &[u8], found: &mut Vec<usize>) {
        let Some(ac) = &self.automaton else {
            return;
        };
        for m in ac.find_iter(haystack) {
            let owner = self.pattern_owner[m.pattern().as_usize()];
            if !found.contains(&owner) {
                found.push(owner);
            }
        }
    }

    /// The longest pattern: a streaming search keeps this many bytes but
    /// one between reads.
    pub fn longest(&self) -> usize {
        self.longest
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

    /// How many secret strings are searched for.
    pub fn pattern_count(&self) -> usize {
        self.pattern_owner.len()
    }

    /// Everything derived from `archive`, whose file is `archive_size`
    /// bytes.
    pub fn from_archive(archive: &Archive, archive_size: u64) -> Needles {
        let mut b = Builder::default();
        b.add_archive(archive, archive_size);
        b.finish()
    }
}

#[derive(Default)]
struct Builder {
    needles: Vec<Needle>,
    patterns: Vec<(Vec<u8>, usize)>,
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

    /// Adds a pattern; false when it is too short to search for.
    fn pattern(&mut self, bytes: Vec<u8>, needle: usize) -> bool {
        if bytes.len() < MIN_PATTERN_LEN {
            return false;
        }
        if bytes.len() <= MAX_PATTERN_LEN && !self.patterns.iter().any(|(p, _)| *p == bytes) {
            self.patterns.push((bytes, needle));
        }
        true
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
                        let n = self.needle(
                            format!("the shared provisioning key '{SHARED_P12}'"),
                            Kind::DeviceSecretMisplaced,
                            true,
                        );
                        self.digest(digest, size, n);
                        self.pattern(entry.data.clone(), n);
                    }
                }
                // Host entries, and unknown ones (secret until known
                // otherwise, as catalogue::is_secret says).
                _ => {
                    let secret = known.map_or(true, |k| k.secret);
                    let n = self.needle(
                        format!("entry '{}' of the credentials archive", entry.name),
                        Kind::HostFile,
                        false,
                    );
                    self.digest(digest, size, n);
                    if secret {
                        let inside = self.needle(
                            format!("the content of '{}'", entry.name),
                            Kind::HostSecret,
                            false,
                        );
                        self.pattern(entry.data.clone(), inside);
                        self.needles[n].content = Some(inside);
                        self.add_secret_strings(&entry.name, &entry.data);
                    }
                }
            }
        }
    }

    /// The secret values inside a host secret entry.
    fn add_secret_strings(&mut self, name: &str, data: &[u8]) {
        match name {
            "treehub.json" | "provision.json" => self.add_json_secrets(name, data),
            "targets.sec" => self.add_targets_key(data),
            _ => {}
        }
    }

    /// Every string under a `client_secret` or `password` key, at any
    /// depth: treehub.json's `oauth2.client_secret` and
    /// `basic_auth.password`, provision.json's client secret.
    fn add_json_secrets(&mut self, name: &str, data: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            self.notes.push(format!(
                "'{name}' is not valid JSON: only its whole bytes are searched for"
            ));
            return;
        };
        let mut found = Vec::new();
        collect_json_secrets(&value, &mut found, 0);
        for (key, secret) in found {
            let what = match key {
                "client_secret" => format!("the OAuth2 client secret of {name}"),
                _ => format!("the password of {name}"),
            };
            let n = self.needle(what.clone(), Kind::HostSecret, false);
            if !self.pattern(secret.into_bytes(), n) {
                self.notes.push(format!(
                    "{what} is shorter than {MIN_PATTERN_LEN} bytes: not searched for (it would match by chance)"
                ));
            }
        }
    }

    /// targets.sec as garage-sign writes it: ED25519 in hex (and the seed's
    /// hex), RSA in PEM (each base64 line), and the raw key bytes.
    fn add_targets_key(&mut self, data: &[u8]) {
        let parsed = garage_keys::parse_private(data);
        let text = serde_json::from_slice::<Value>(data).ok().and_then(|v| {
            v.pointer("/keyval/private")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let (Ok(key), Some(text)) = (parsed, text) else {
            self.notes.push(
                "'targets.sec' is not a garage-sign key: only its whole bytes are searched for"
                    .into(),
            );
            return;
        };
        let hex_n = self.needle(
            "the private key of targets.sec (hex)".into(),
            Kind::HostSecret,
            false,
        );
        let pem_n = self.needle(
            "the private key of targets.sec (PEM)".into(),
            Kind::HostSecret,
            false,
        );
        let raw_n = self.needle(
            "the private key of targets.sec (raw bytes)".into(),
            Kind::HostSecret,
            false,
        );
        let raw = key.material().expose().clone();
        if text.trim_start().starts_with("-----BEGIN") {
            // Each base64 line: found however the PEM is wrapped in a
            // file (LF, CRLF, JSON's "\n").
            for line in text.lines() {
                let line = line.trim();
                if !line.starts_with("-----") {
                    self.pattern(line.as_bytes().to_vec(), pem_n);
                }
            }
            if let Ok(blocks) = pem::blocks(text.as_bytes()) {
                for block in blocks {
                    if let Ok(der) = block.decode() {
                        self.pattern(der, raw_n);
                    }
                }
            }
            self.pattern(raw, raw_n);
        } else {
            let lower = text.trim().to_ascii_lowercase();
            // The 64 bytes (seed, then public key), and the seed alone:
            // the public half is no secret.
            let seed_hex = lower.get(..64).map(str::to_owned);
            self.pattern(lower.clone().into_bytes(), hex_n);
            self.pattern(lower.to_ascii_uppercase().into_bytes(), hex_n);
            if let Some(seed_hex) = seed_hex {
                self.pattern(seed_hex.to_ascii_uppercase().into_bytes(), hex_n);
                self.pattern(seed_hex.into_bytes(), hex_n);
            }
            self.pattern(raw.get(..32).unwrap_or(&raw).to_vec(), raw_n);
            self.pattern(raw, raw_n);
        }
    }

    fn finish(self) -> Needles {
        let longest = self
            .patterns
            .iter()
            .map(|(p, _)| p.len())
            .max()
            .unwrap_or(0);
        let pattern_owner: Vec<usize> = self.patterns.iter().map(|(_, n)| *n).collect();
        let automaton = if self.patterns.is_empty() {
            None
        } else {
            // Leftmost-longest: where a whole secret entry is embedded, it
            // is reported rather than the key inside it. Building fails
            // only on limits far beyond a few dozen patterns; then the
            // search would silently be off, so report it.
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(self.patterns.iter().map(|(p, _)| p))
                .ok()
        };
        let mut notes = self.notes;
        if automaton.is_none() && !pattern_owner.is_empty() {
            notes.push("the secret strings could not be compiled into a search: only whole files are compared".into());
        }
        Needles {
            needles: self.needles,
            pattern_owner,
            automaton,
            longest,
            digests: self.digests,
            sizes: self.sizes,
            notes,
        }
    }
}

/// serde_json stops at 128 levels; this walk stops earlier still.
const MAX_JSON_DEPTH: usize = 64;

fn collect_json_secrets(value: &Value, out: &mut Vec<(&'static str, String)>, depth: usize) {
    if depth > MAX_JSON_DEPTH {
        return;
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = match k.as_str() {
                    "client_secret" => Some("client_secret"),
                    "password" => Some("password"),
                    _ => None,
                };
                match (key, v) {
                    (Some(key), Value::String(s)) => out.push((key, s.clone())),
                    _ => collect_json_secrets(v, out, depth + 1),
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                collect_json_secrets(v, out, depth + 1);
            }
        }
        _ => {}
    }
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
mod tests {
    use super::*;
    use crate::digest::sha256_hex;
    use crate::intake::archive::Entry;

    fn archive(entries: &[(&str, &[u8])]) -> Archive {
        Archive {
            sha256: sha256_hex(b"archive"),
            entries: entries
                .iter()
                .map(|(name, data)| Entry {
                    name: (*name).into(),
                    sha256: sha256_hex(data),
                    data: data.to_vec(),
                })
                .collect(),
            directories: Vec::new(),
        }
    }

    fn found(needles: &Needles, hay: &[u8]) -> Vec<String> {
        let mut hits = Vec::new();
        needles.search(hay, &mut hits);
        hits.iter()
            .map(|&n| needles.needles[n].what.clone())
            .collect()
    }

    #[test]
    fn a_short_client_secret_is_not_searched_and_says_so() {
        let a = archive(&[("treehub.json", br#"{"oauth2":{"client_secret":"short"}}"#)]);
        let n = Needles::from_archive(&a, 100);
        assert!(found(&n, b"the short one").is_empty());
        assert_eq!(n.notes.len(), 1, "{:?}", n.notes);
        assert!(n.notes[0].contains("shorter than 16 bytes"));
        assert!(!n.notes[0].contains("short\""));
    }

    #[test]
    fn an_ed25519_key_is_found_in_either_case_and_by_its_seed_and_bytes() {
        let key: Vec<u8> = (0u8..64)
            .map(|b| b.wrapping_mul(37).wrapping_add(11))
            .collect();
        let hex = crate::digest::hex(&key);
        let sec = format!(r#"{{"keytype":"ED25519","keyval":{{"private":"{hex}"}}}}"#);
        let n = Needles::from_archive(&archive(&[("targets.sec", sec.as_bytes())]), 100);
        let hex_name = "the private key of targets.sec (hex)";
        let raw_name = "the private key of targets.sec (raw bytes)";
        assert_eq!(found(&n, hex.as_bytes()), [hex_name]);
        assert_eq!(found(&n, hex.to_ascii_uppercase().as_bytes()), [hex_name]);
        assert_eq!(found(&n, &hex.as_bytes()[..64]), [hex_name]);
        assert_eq!(found(&n, &key), [raw_name]);
        assert_eq!(found(&n, &key[..32]), [raw_name]);
        // The public half is no secret.
        assert!(found(&n, &hex.as_bytes()[64..]).is_empty());
    }

    #[test]
    fn device_entries_are_not_needles_and_tiny_entries_have_no_digest() {
        let a = archive(&[
            ("autoprov.url", b"https://gateway.example.test:443"),
            ("root.json", br#"{"signed":{},"signatures":[]}"#),
            ("tufrepo.url", b""),
        ]);
        let n = Needles::from_archive(&a, 100);
        assert_eq!(n.pattern_count(), 0);
        assert!(!n.wants_digest(0));
        assert!(n.wants_digest(100), "the archive itself");
    }
}
