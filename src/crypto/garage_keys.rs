//! garage-sign's JSON key form, as in `targets.pub` and `targets.sec`
//! (domain.md section 1): `{"keytype": .., "keyval": {"public": ..}}` and
//! `{"keytype": .., "keyval": {"private": ..}}`.
//!
//! | keytype | `keyval.public` | `keyval.private` |
//! |---|---|---|
//! | `RSA` | `-----BEGIN PUBLIC KEY-----` PEM (SPKI) | `-----BEGIN RSA PRIVATE KEY-----` PEM (PKCS#1) |
//! | `ED25519` | 32 bytes in hex | 64 bytes in hex: seed, then public key |
//!
//! The keytype is matched in any case (garage-sign has written both). A
//! pair matches when the public key is the private key's public half: RSA
//! modulus and exponent, or the second half of the ED25519 bytes. That an
//! ED25519 seed really yields its stored public half is not checked (that
//! needs curve arithmetic, which the tool does not carry).

use std::fmt;

use der::oid::db::rfc5912::RSA_ENCRYPTION;
use der::Decode;
use serde_json::Value;
use x509_cert::spki::SubjectPublicKeyInfoRef;

use super::pem;
use super::private_key::{self, PrivateKey};
use super::x509::{self, bit_length, KeyAlgorithm};
use crate::json::JsonError;
use crate::secret::Secret;

/// A public key from `targets.pub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TufKey {
    /// Modulus and exponent big-endian, leading zeros stripped.
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    Ed25519 {
        public: [u8; 32],
    },
}

impl TufKey {
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            TufKey::Rsa { modulus, .. } => KeyAlgorithm::Rsa {
                bits: bit_length(modulus),
            },
            TufKey::Ed25519 { .. } => KeyAlgorithm::Ed25519,
        }
    }

    /// `RSA 2048`, `ED25519`.
    pub fn description(&self) -> String {
        self.algorithm().to_string()
    }
}

impl fmt::Display for TufKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description())
    }
}

/// A private key from `targets.sec`. `Debug` shows only its type.
#[derive(Clone)]
pub struct TufPrivateKey {
    public: TufKey,
    material: PrivateMaterial,
}

#[derive(Clone)]
enum PrivateMaterial {
    Rsa(PrivateKey),
    /// Seed, then public key.
    Ed25519(Secret<Vec<u8>>),
}

impl fmt::Debug for TufPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TufPrivateKey")
            .field("algorithm", &self.public.algorithm())
            .finish_non_exhaustive()
    }
}

impl TufPrivateKey {
    /// The public half, as the private key carries it.
    pub fn public(&self) -> &TufKey {
        &self.public
    }

    /// `RSA 2048`, `ED25519`.
    pub fn description(&self) -> String {
        self.public.description()
    }

    /// The key bytes: PKCS#8 DER for RSA, the 64 raw bytes for ED25519.
    pub fn material(&self) -> &Secret<Vec<u8>> {
        match &self.material {
            PrivateMaterial::Rsa(key) => key.pkcs8_der(),
            PrivateMaterial::Ed25519(bytes) => bytes,
        }
    }
}

/// Why a key file is refused. Messages name the field and the problem,
/// never the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },

    #[error(
        "more JSON than a key file holds (over {} values)",
        crate::json::MAX_VALUES
    )]
    TooLarge,

    #[error("not a JSON object; expected {{\"keytype\": .., \"keyval\": {{..}}}}")]
    NotAnObject,

    #[error("{0} is missing")]
    Missing(&'static str),

    #[error("{0} is not a string")]
    NotAString(&'static str),

    #[error("keytype '{0}' is not RSA or ED25519")]
    UnknownKeyType(String),

    /// The same in a private key file: nothing read from it is echoed (a
    /// hostile or mangled file may hold key material in any field).
    #[error("keytype is not RSA or ED25519 (its value is not shown: the file is secret)")]
    UnknownPrivateKeyType,

    /// `field` is `keyval.public` or `keyval.private`.
    #[error("{field} {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },

    #[error("{field} holds an {found} key, but keytype is {keytype}")]
    WrongKeyType {
        field: &'static str,
        keytype: &'static str,
        found: String,
    },
}

const PUBLIC: &str = "keyval.public";
const PRIVATE: &str = "keyval.private";

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    Ed25519,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::Ed25519 => "ED25519",
        }
    }
}

/// Parse `targets.pub`.
pub fn parse_public(json: &[u8]) -> Result<TufKey, KeyError> {
    let value = parse_json(json)?;
    let (keytype, text) = key_fields(&value, "public", PUBLIC)?;
    match keytype {
        KeyType::Rsa => rsa_public(text),
        KeyType::Ed25519 => {
            let bytes = hex_bytes(text).filter(|b| b.len() == 32).ok_or_else(|| {
                invalid(
                    PUBLIC,
                    format!(
                        "is not 32 bytes in hex (64 hex digits); found {} characters",
                        text.chars().count()
                    ),
                )
            })?;
            let mut public = [0u8; 32];
            public.copy_from_slice(&bytes);
            Ok(TufKey::Ed25519 { public })
        }
    }
}

/// Parse `targets.sec`.
pub fn parse_private(json: &[u8]) -> Result<TufPrivateKey, KeyError> {
    let value = parse_json(json)?;
    let (keytype, text) = key_fields(&value, "private", PRIVATE).map_err(|e| match e {
        KeyError::UnknownKeyType(_) => KeyError::UnknownPrivateKeyType,
        other => other,
    })?;
    match keytype {
        KeyType::Rsa => {
            let key = private_key::parse_private_key_pem(text.as_bytes())
                .map_err(|e| invalid(PRIVATE, format!("is not a PEM RSA private key: {e}")))?;
            let Some((modulus, exponent)) = key.rsa_public() else {
                return Err(KeyError::WrongKeyType {
                    field: PRIVATE,
                    keytype: KeyType::Rsa.name(),
                    found: key.algorithm().to_string(),
                });
            };
            Ok(TufPrivateKey {
                public: TufKey::Rsa { modulus, exponent },
                material: PrivateMaterial::Rsa(key),
            })
        }
        KeyType::Ed25519 => {
            let bytes = hex_bytes(text)
                .filter(|b| b.len() == 64)
                .map(Secret::new)
                .ok_or_else(|| {
                    invalid(
                        PRIVATE,
                        format!(
                            "is not 64 bytes in hex (128 hex digits: seed, then public key); \
                             found {} characters",
                            text.chars().count()
                        ),
                    )
                })?;
            let mut public = [0u8; 32];
            public.copy_from_slice(&bytes.expose()[32..]);
            Ok(TufPrivateKey {
                public: TufKey::Ed25519 { public },
                material: PrivateMaterial::Ed25519(bytes),
            })
        }
    }
}

/// Whether `private` is the private half of `public`.
pub fn matches(public: &TufKey, private: &TufPrivateKey) -> bool {
    *public == private.public
}

fn invalid(field: &'static str, problem: String) -> KeyError {
    KeyError::Invalid { field, problem }
}

/// The JSON, with only the position of a syntax error reported: serde's
/// messages for type errors can quote the input, which may be a key.
fn parse_json(json: &[u8]) -> Result<Value, KeyError> {
    let value: Value = crate::json::from_slice(json).map_err(|e| match e {
        JsonError::TooLarge => KeyError::TooLarge,
        JsonError::Syntax(e) => KeyError::NotJson {
            line: e.line(),
            column: e.column(),
        },
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(KeyError::NotAnObject)
    }
}

/// The keytype and the string at `keyval.<field>`.
fn key_fields<'v>(
    value: &'v Value,
    field: &str,
    path: &'static str,
) -> Result<(KeyType, &'v str), KeyError> {
    let keytype = match value.get("keytype") {
        None => return Err(KeyError::Missing("keytype")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(KeyError::NotAString("keytype")),
    };
    let keytype = if keytype.eq_ignore_ascii_case("rsa") {
        KeyType::Rsa
    } else if keytype.eq_ignore_ascii_case("ed25519") {
        KeyType::Ed25519
    } else {
        // Not secret, but from the file: shown short and escaped.
        let shown: String = keytype
            .chars()
            .take(32)
            .flat_map(char::escape_default)
            .collect();
        return Err(KeyError::UnknownKeyType(shown));
    };
    let keyval = match value.get("keyval") {
        None => return Err(KeyError::Missing("keyval")),
        Some(keyval) if keyval.is_object() => keyval,
        Some(_) => {
            return Err(KeyError::Invalid {
                field: "keyval",
                problem: "is not an object".into(),
            })
        }
    };
    match keyval.get(field) {
        None => Err(KeyError::Missing(path)),
        Some(Value::String(s)) => Ok((keytype, s)),
        Some(_) => Err(KeyError::NotAString(path)),
    }
}

/// An RSA `-----BEGIN PUBLIC KEY-----` PEM.
fn rsa_public(text: &str) -> Result<TufKey, KeyError> {
    let not_pem = || invalid(PUBLIC, "is not a PEM public key".into());
    let blocks = pem::blocks(text.as_bytes()).map_err(|_| not_pem())?;
    let [block] = blocks.as_slice() else {
        return Err(not_pem());
    };
    if block.label != "PUBLIC KEY" {
        return Err(not_pem());
    }
    let der = block.decode().map_err(|_| not_pem())?;
    let spki = SubjectPublicKeyInfoRef::from_der(&der).map_err(|_| not_pem())?;
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(KeyError::WrongKeyType {
            field: PUBLIC,
            keytype: KeyType::Rsa.name(),
            found: x509::spki_algorithm(&spki)
                .map(|a| a.to_string())
                .unwrap_or_else(|_| spki.algorithm.oid.to_string()),
        });
    }
    let key = spki
        .subject_public_key
        .as_bytes()
        .and_then(|bytes| pkcs1::RsaPublicKey::from_der(bytes).ok())
        .ok_or_else(|| invalid(PUBLIC, "holds an RSA key that does not parse".into()))?;
    Ok(TufKey::Rsa {
        modulus: key.modulus.as_bytes().to_vec(),
        exponent: key.public_exponent.as_bytes().to_vec(),
    })
}

/// Hex digits, either case, nothing else, to bytes.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_support::{upstream_entry, Workdir};
    use serde_json::json;

    fn key_json(keytype: &str, field: &str, value: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({"keytype": keytype, "keyval": {field: value}})).unwrap()
    }

    /// Neither an error nor a `Debug` output shows any of `secret`: its
    /// PEM lines, or any 16-character run of its hex.
    fn assert_hidden(output: &str, secret: &str) {
        for line in secret.lines().filter(|l| !l.starts_with("-----")) {
            for piece in line.as_bytes().chunks(16).filter(|p| p.len() == 16) {
                let piece = std::str::from_utf8(piece).unwrap();
                assert!(!output.contains(piece), "key material leaks: {output}");
            }
        }
    }

    use crate::digest::hex;

    /// An ED25519 key made by OpenSSL: its 32-byte seed and public key.
    fn ed25519(dir: &Workdir, name: &str) -> ([u8; 32], [u8; 32]) {
        dir.key(name, "ed25519");
        let private = dir.openssl(&["pkey", "-in", name, "-outform", "DER"]);
        let public = dir.openssl(&["pkey", "-in", name, "-pubout", "-outform", "DER"]);
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&private[private.len() - 32..]);
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&public[public.len() - 32..]);
        (seed, pk)
    }

    #[test]
    fn the_upstream_rsa_pair_parses_and_matches() {
        let archive = "aktualizr-auth_test_good_offline.zip";
        let public = parse_public(&upstream_entry(archive, "targets.pub")).unwrap();
        let sec = upstream_entry(archive, "targets.sec");
        let private = parse_private(&sec).unwrap();
        assert_eq!(public.description(), "RSA 2048");
        assert_eq!(public.to_string(), "RSA 2048");
        assert_eq!(private.description(), "RSA 2048");
        assert!(matches(&public, &private));
        let debug = format!("{private:?}");
        assert_eq!(debug, "TufPrivateKey { algorithm: Rsa { bits: 2048 }, .. }");
        let value: Value = serde_json::from_slice(&sec).unwrap();
        assert_hidden(&debug, value["keyval"]["private"].as_str().unwrap());
    }

    #[test]
    fn rsa_pairs_made_by_openssl() {
        let dir = Workdir::new("tuf-rsa");
        for name in ["a", "b"] {
            dir.key(&format!("{name}.key"), "rsa1024");
            dir.traditional(&format!("{name}.key"), &format!("{name}.rsa"));
        }
        let public = |name: &str| {
            let pem = dir.openssl(&["pkey", "-in", &format!("{name}.key"), "-pubout"]);
            parse_public(&key_json("RSA", "public", &String::from_utf8(pem).unwrap())).unwrap()
        };
        let private = |name: &str, keytype: &str| {
            let pem = String::from_utf8(dir.read(&format!("{name}.rsa"))).unwrap();
            assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
            parse_private(&key_json(keytype, "private", &pem)).unwrap()
        };
        let (a, b) = (public("a"), public("b"));
        assert_eq!(a.description(), "RSA 1024");
        assert!(matches(&a, &private("a", "RSA")));
        assert!(matches(&a, &private("a", "rsa")));
        assert!(matches(&b, &private("b", "Rsa")));
        assert!(!matches(&a, &private("b", "RSA")));
        assert!(!matches(&b, &private("a", "RSA")));
    }

    #[test]
    fn ed25519_pairs_made_by_openssl() {
        let dir = Workdir::new("tuf-ed25519");
        let (seed, pk) = ed25519(&dir, "a.key");
        let (other_seed, other_pk) = ed25519(&dir, "b.key");
        let public = parse_public(&key_json("ED25519", "public", &hex(&pk))).unwrap();
        assert_eq!(public, TufKey::Ed25519 { public: pk });
        assert_eq!(public.description(), "ED25519");

        let sec_hex = format!("{}{}", hex(&seed), hex(&pk)).to_uppercase();
        let private = parse_private(&key_json("ed25519", "private", &sec_hex)).unwrap();
        assert!(matches(&public, &private));
        assert_eq!(private.material().expose()[..32], seed);
        assert_hidden(&format!("{private:?}"), &sec_hex);

        let other_hex = format!("{}{}", hex(&other_seed), hex(&other_pk));
        let other = parse_private(&key_json("ED25519", "private", &other_hex)).unwrap();
        assert!(!matches(&public, &other));

        // An RSA public key is no match for an ED25519 private key.
        let rsa = parse_public(&upstream_entry(
            "aktualizr-auth_test_good_offline.zip",
            "targets.pub",
        ))
        .unwrap();
        assert!(!matches(&rsa, &private));
    }

    #[test]
    fn malformed_key_files_are_named_without_their_content() {
        let dir = Workdir::new("tuf-bad");
        dir.key("ec.key", "ec");
        dir.key("rsa.key", "rsa1024");
        let ec_public =
            String::from_utf8(dir.openssl(&["pkey", "-in", "ec.key", "-pubout"])).unwrap();
        let ec_private = String::from_utf8(dir.read("ec.key")).unwrap();
        let rsa_private = String::from_utf8(dir.read("rsa.key")).unwrap();
        let (seed, pk) = ed25519(&dir, "ed.key");
        let ed_private = format!("{}{}", hex(&seed), hex(&pk));
        let truncated_json = {
            let full = key_json("RSA", "private", &rsa_private);
            full[..full.len() / 2].to_vec()
        };

        let public_cases: Vec<(Vec<u8>, KeyError)> = vec![
            (b"".to_vec(), KeyError::NotJson { line: 1, column: 0 }),
            (
                format!("[{}0]", "0,".repeat(crate::json::MAX_VALUES)).into_bytes(),
                KeyError::TooLarge,
            ),
            (
                b"{\"keytype\": RSA}".to_vec(),
                KeyError::NotJson {
                    line: 1,
                    column: 13,
                },
            ),
            (b"[1, 2]".to_vec(), KeyError::NotAnObject),
            (b"{}".to_vec(), KeyError::Missing("keytype")),
            (
                b"{\"keytype\": 1}".to_vec(),
                KeyError::NotAString("keytype"),
            ),
            (
                b"{\"keytype\": \"RSA\"}".to_vec(),
                KeyError::Missing("keyval"),
            ),
            (
                b"{\"keytype\": \"RSA\", \"keyval\": \"x\"}".to_vec(),
                KeyError::Invalid {
                    field: "keyval",
                    problem: "is not an object".into(),
                },
            ),
            (
                b"{\"keytype\": \"RSA\", \"keyval\": {}}".to_vec(),
                KeyError::Missing("keyval.public"),
            ),
            (
                b"{\"keytype\": \"RSA\", \"keyval\": {\"public\": 7}}".to_vec(),
                KeyError::NotAString("keyval.public"),
            ),
            (
                key_json("foo", "public", "x"),
                KeyError::UnknownKeyType("foo".into()),
            ),
            (
                key_json("RSA", "public", "not pem"),
                invalid(PUBLIC, "is not a PEM public key".into()),
            ),
            (
                key_json("RSA", "public", &rsa_private),
                invalid(PUBLIC, "is not a PEM public key".into()),
            ),
            (
                key_json("RSA", "public", &ec_public),
                KeyError::WrongKeyType {
                    field: PUBLIC,
                    keytype: "RSA",
                    found: "EC P-256".into(),
                },
            ),
            (
                key_json("ED25519", "public", &hex(&pk[..31])),
                invalid(
                    PUBLIC,
                    "is not 32 bytes in hex (64 hex digits); found 62 characters".into(),
                ),
            ),
            (
                key_json("ED25519", "public", &format!("{}zz", &hex(&pk)[2..])),
                invalid(
                    PUBLIC,
                    "is not 32 bytes in hex (64 hex digits); found 64 characters".into(),
                ),
            ),
        ];
        for (json, expected) in public_cases {
            assert_eq!(parse_public(&json).unwrap_err(), expected);
        }
        assert_eq!(
            KeyError::UnknownKeyType("foo".into()).to_string(),
            "keytype 'foo' is not RSA or ED25519"
        );
        assert_eq!(
            invalid(PUBLIC, "is not a PEM public key".into()).to_string(),
            "keyval.public is not a PEM public key"
        );

        // Private files: every error is checked for leaks of the key.
        let private_cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (truncated_json, "not valid JSON", &rsa_private),
            (
                key_json("RSA", "public", &rsa_private),
                "keyval.private is missing",
                &rsa_private,
            ),
            (
                key_json("ED25519", "private", &ed_private[..64]),
                "keyval.private is not 64 bytes in hex",
                &ed_private,
            ),
            (
                key_json(
                    "RSA",
                    "private",
                    &rsa_private.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"),
                ),
                "the key is encrypted",
                &rsa_private,
            ),
            (
                serde_json::to_vec(
                    &json!({"keytype": "RSA", "keyval": {"private": [rsa_private]}}),
                )
                .unwrap(),
                "keyval.private is not a string",
                &rsa_private,
            ),
        ];
        // A key under a keytype it is not: the file holds the key, which
        // the error must not show.
        let mismatched = [
            (
                "RSA",
                &ec_private,
                "holds an EC P-256 key, but keytype is RSA",
            ),
            ("ED25519", &rsa_private, "is not 64 bytes in hex"),
            ("RSA", &ed_private, "is not a PEM RSA private key"),
        ];
        for (keytype, key, problem) in mismatched {
            let err = parse_private(&key_json(keytype, "private", key)).unwrap_err();
            let shown = format!("{err} / {err:?}");
            assert!(
                shown.contains(&format!("keyval.private {problem}")),
                "{shown}"
            );
            assert_hidden(&shown, key);
        }
        for (json, expected, secret) in private_cases {
            let err = parse_private(&json).unwrap_err();
            let shown = format!("{err} / {err:?}");
            assert!(shown.contains(expected), "{shown}");
            assert_hidden(&shown, secret);
        }

        // A private key file's keytype is never echoed, whatever it holds.
        let hex_key = "9f".repeat(64);
        let err = parse_private(&key_json(&hex_key, "private", "")).unwrap_err();
        assert_eq!(err, KeyError::UnknownPrivateKeyType);
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains("9f9f"), "key material leaks: {shown}");

        // A hostile keytype is cut short and escaped.
        let long = format!("{}\n\u{1b}[31m", "x".repeat(100));
        let err = parse_public(&key_json(&long, "public", "")).unwrap_err();
        let KeyError::UnknownKeyType(shown) = err else {
            panic!("{err}")
        };
        assert!(shown.len() < 40 && !shown.contains('\n'), "{shown}");
    }

    #[test]
    fn hex_is_strict() {
        assert_eq!(hex_bytes(""), Some(vec![]));
        assert_eq!(hex_bytes("00fFa5"), Some(vec![0x00, 0xff, 0xa5]));
        for bad in ["0", "0g", " 00", "00 ", "+1", "é0"] {
            assert_eq!(hex_bytes(bad), None, "{bad}");
        }
    }
}
