//! A fleet CA key that never leaves its token: the key named by a PKCS#11
//! URI (RFC 7512), reached through a PKCS#11 module, and every signature
//! made by the token (docs/device-certs.md, "A fleet CA key in an HSM").
//!
//! The only module of the tool that loads a shared library (the PKCS#11
//! module, through the `cryptoki` crate and its `libloading`); nothing
//! else may (DEVELOPERS.md).
//!
//! One session, logged in once, signs every certificate of the run: EC
//! P-256 and P-384 keys with `CKM_ECDSA` over our SHA-256 digest (the token
//! answers `r || s`, encoded here as DER), RSA keys with
//! `CKM_SHA256_RSA_PKCS` (the token hashes and pads; no RSA code of ours
//! runs). The PIN travels in a [`Secret`] and in `cryptoki`'s zeroizing
//! `AuthPin`; no error holds it, and a URI that carries one is refused.
//!
//! Errors never name a flag (the command line words them): the URI as
//! given is safe to show once parsed, since one with a PIN is refused.
//!
//! The token side needs the cargo feature `pkcs11` (cryptoki 0.10.1, Rust
//! 1.77; docs/dependencies.md). Without it the URI is still parsed and
//! checked, and [`TokenKey::open`] refuses, saying how to get it.

use std::fmt;
use std::path::Path;
#[cfg(feature = "pkcs11")]
use std::sync::Mutex;

#[cfg(feature = "pkcs11")]
use cryptoki::{
    context::{CInitializeArgs, Pkcs11},
    error::{Error as CkError, RvError},
    mechanism::Mechanism,
    object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle},
    session::{Session, UserType},
    types::AuthPin,
};
#[cfg(feature = "pkcs11")]
use der::{
    asn1::ObjectIdentifier,
    oid::db::rfc5912::{SECP_256_R_1, SECP_384_R_1},
    Decode,
};
#[cfg(feature = "pkcs11")]
use sha2::{Digest, Sha256};

use crate::escape::escape;
use crate::secret::Secret;

/// The attributes of a URI's path this tool takes (RFC 7512 section 2.3).
const TAKEN: [&str; 7] = [
    "token",
    "manufacturer",
    "serial",
    "model",
    "object",
    "id",
    "type",
];

/// The smallest and largest RSA key a token may sign with.
#[cfg(feature = "pkcs11")]
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// A PKCS#11 URI, parsed: which token and which private key in it.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The URI as given (it holds no PIN: one that does is refused).
    text: String,
    token: Option<String>,
    manufacturer: Option<String>,
    serial: Option<String>,
    model: Option<String>,
    object: Option<String>,
    id: Option<Vec<u8>>,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(&self.text))
    }
}

/// Why a PKCS#11 URI is refused. Never holds a value of the URI that may
/// be a PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("it does not start with `pkcs11:`")]
    NotPkcs11,
    #[error("it holds `{0}`: a PIN never goes into the URI, which is seen in the process list and in build logs")]
    Pin(&'static str),
    #[error("it holds `{0}`: the module is given on its own, as an absolute path")]
    Module(&'static str),
    #[error("it holds attributes this tool does not take: {}; it takes token, manufacturer, serial, model, object, id and type", .0.join(", "))]
    Unknown(Vec<String>),
    #[error("attribute `{0}` is given twice")]
    Twice(String),
    #[error("attribute `{0}` is not percent-encoded correctly (RFC 7512: `%` and two hex digits)")]
    Percent(String),
    #[error("attribute `{0}` is not UTF-8 once decoded")]
    NotUtf8(String),
    #[error("attribute `{0}` is empty")]
    Empty(String),
    #[error("it names type `{0}`; the fleet CA key is a private key: give type=private or leave type out")]
    Type(String),
    #[error("it names no key: give object=LABEL or id=ID (or both)")]
    NoKey,
}

impl Pkcs11Uri {
    /// Parses `text` (RFC 7512): path attributes separated by `;`, query
    /// attributes after `?` separated by `&`, values percent-decoded.
    pub fn parse(text: &str) -> Result<Pkcs11Uri, UriError> {
        let rest = text
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
            .and_then(|_| text.get(7..))
            .ok_or(UriError::NotPkcs11)?;
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let split = |part: &str, sep: char| -> Vec<(String, String)> {
            part.split(sep)
                .filter(|a| !a.is_empty())
                .map(|a| match a.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (a.to_string(), String::new()),
                })
                .collect()
        };
        let path_attrs = split(path, ';');
        let query_attrs = query.map(|q| split(q, '&')).unwrap_or_default();
        // The PIN and module first, wherever they are: they say the most.
        for (name, _) in path_attrs.iter().chain(&query_attrs) {
            match name.as_str() {
                "pin-value" => return Err(UriError::Pin("pin-value")),
                "pin-source" => return Err(UriError::Pin("pin-source")),
                "module-path" => return Err(UriError::Module("module-path")),
                "module-name" => return Err(UriError::Module("module-name")),
                _ => {}
            }
        }
        let unknown: Vec<String> = path_attrs
            .iter()
            .chain(&query_attrs)
            .filter(|(name, _)| !TAKEN.contains(&name.as_str()))
            .map(|(name, _)| format!("`{}`", escape(name)))
            .collect();
        if !unknown.is_empty() {
            return Err(UriError::Unknown(unknown));
        }
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (name, value) in path_attrs.iter().chain(&query_attrs) {
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(UriError::Twice(name.clone()));
            }
            pairs.push((name, value));
        }
        let mut uri = Pkcs11Uri {
            text: text.to_string(),
            token: None,
            manufacturer: None,
            serial: None,
            model: None,
            object: None,
            id: None,
        };
        for (name, value) in pairs {
            let bytes = percent_decode(value).ok_or_else(|| UriError::Percent(name.into()))?;
            if bytes.is_empty() {
                return Err(UriError::Empty(name.into()));
            }
            if name == "id" {
                uri.id = Some(bytes);
                continue;
            }
            let value = String::from_utf8(bytes).map_err(|_| UriError::NotUtf8(name.into()))?;
            match name {
                "token" => uri.token = Some(value),
                "manufacturer" => uri.manufacturer = Some(value),
                "serial" => uri.serial = Some(value),
                "model" => uri.model = Some(value),
                "object" => uri.object = Some(value),
                _ if value == "private" => {}
                _ => return Err(UriError::Type(escape(&value).into_owned())),
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(UriError::NoKey);
        }
        Ok(uri)
    }
}

/// `%XX` decoded; `None` when a `%` is not followed by two hex digits.
fn percent_decode(value: &str) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// Why the token key cannot be used. Never holds the PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the PKCS#11 module `{module}` cannot be loaded: {why}")]
    Load { module: String, why: String },
    #[error("the PKCS#11 module `{module}` failed: {why}")]
    Module { module: String, why: String },
    #[error("no token matches `{0}`")]
    NoToken(String),
    #[error("{1} tokens match `{0}`; name one with token= (or serial=)")]
    ManyTokens(String, usize),
    #[error(
        "the token refused the PIN (`{0}`); check the PIN file or variable (the PIN is not shown)"
    )]
    WrongPin(String),
    #[error("the token's PIN is locked (`{0}`); unlock it with the security officer's PIN")]
    PinLocked(String),
    #[error("the token has no private key matching `{0}`")]
    NoObject(String),
    #[error("{1} private keys match `{0}`; name one with both object= and id=")]
    ManyObjects(String, usize),
    #[error("the key `{0}` is {1}, which cannot sign here; use an EC P-256 or P-384 key, or RSA of 2048 to 8192 bits")]
    Unsupported(String, String),
    #[error("the token failed on `{0}`: {1}")]
    Token(String, String),
    #[error("this sota-stage was built without PKCS#11 support, so the key `{0}` cannot be used: build it with the cargo feature `pkcs11` (Rust 1.77 or later), or give the CA key as a file (docs/device-certs.md)")]
    NotBuilt(String),
}

/// What the token key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKeyKind {
    EcP256,
    EcP384,
    /// The public key, big-endian, leading zeros stripped.
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
}

/// A private key in a token, logged in: signs with the token.
#[cfg(feature = "pkcs11")]
pub struct TokenKey {
    /// One session for the whole run; signing is serialised through it.
    session: Mutex<Session>,
    key: ObjectHandle,
    kind: TokenKeyKind,
    uri: String,
}

/// A private key in a token: none without the `pkcs11` feature (no value
/// of this type can be made).
#[cfg(not(feature = "pkcs11"))]
pub struct TokenKey {
    never: std::convert::Infallible,
    kind: TokenKeyKind,
    uri: String,
}

#[cfg(not(feature = "pkcs11"))]
impl TokenKey {
    /// Refuses: this build has no PKCS#11 support.
    pub fn open(
        _module: &Path,
        uri: &Pkcs11Uri,
        _pin: &Secret<String>,
    ) -> Result<TokenKey, TokenError> {
        Err(TokenError::NotBuilt(uri.to_string()))
    }

    pub fn kind(&self) -> &TokenKeyKind {
        &self.kind
    }

    /// The URI as given, for messages.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn sign_sha256(&self, _message: &[u8]) -> Result<Vec<u8>, TokenError> {
        match self.never {}
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("uri", &self.uri)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "pkcs11")]
impl TokenKey {
    /// Loads `module` (an absolute path, checked by the caller), finds the
    /// one token and the one private key `uri` names, and logs in with
    /// `pin`.
    pub fn open(
        module: &Path,
        uri: &Pkcs11Uri,
        pin: &Secret<String>,
    ) -> Result<TokenKey, TokenError> {
        let shown = uri.to_string();
        let module_name = escape(&module.display().to_string()).into_owned();
        let module_err = |e: CkError| TokenError::Module {
            module: module_name.clone(),
            why: e.to_string(),
        };
        let pkcs11 = Pkcs11::new(module).map_err(|e| TokenError::Load {
            module: module_name.clone(),
            why: e.to_string(),
        })?;
        pkcs11
            .initialize(CInitializeArgs::OsThreads)
            .map_err(module_err)?;
        let mut slots = Vec::new();
        for slot in pkcs11.get_slots_with_token().map_err(module_err)? {
            let info = pkcs11.get_token_info(slot).map_err(module_err)?;
            let wanted = [
                (&uri.token, info.label()),
                (&uri.manufacturer, info.manufacturer_id()),
                (&uri.serial, info.serial_number()),
                (&uri.model, info.model()),
            ];
            if wanted
                .iter()
                .all(|(want, have)| want.as_deref().map_or(true, |w| w == have.trim_end()))
            {
                slots.push(slot);
            }
        }
        let slot = match slots.as_slice() {
            [] => return Err(TokenError::NoToken(shown)),
            [slot] => *slot,
            more => return Err(TokenError::ManyTokens(shown, more.len())),
        };
        let token_err = |e: CkError| TokenError::Token(shown.clone(), e.to_string());
        let session = pkcs11.open_ro_session(slot).map_err(token_err)?;
        let auth = AuthPin::new(pin.expose().clone());
        match session.login(UserType::User, Some(&auth)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                return Err(TokenError::WrongPin(shown))
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(TokenError::PinLocked(shown))
            }
            Err(e) => return Err(token_err(e)),
        }
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let key = match session
            .find_objects(&template)
            .map_err(token_err)?
            .as_slice()
        {
            [] => return Err(TokenError::NoObject(shown)),
            [key] => *key,
            more => return Err(TokenError::ManyObjects(shown, more.len())),
        };
        let kind = key_kind(&session, key, &shown)?;
        Ok(TokenKey {
            session: Mutex::new(session),
            key,
            kind,
            uri: shown,
        })
    }

    pub fn kind(&self) -> &TokenKeyKind {
        &self.kind
    }

    /// The URI as given, for messages.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The token's signature over `message`: for an EC key an ECDSA
    /// signature of its SHA-256 digest, DER; for an RSA key PKCS#1 v1.5
    /// with SHA-256, as the token returns it.
    pub fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, TokenError> {
        let failed = |why: String| TokenError::Token(self.uri.clone(), why);
        let session = self
            .session
            .lock()
            .map_err(|_| failed("a signing thread failed".into()))?;
        match &self.kind {
            TokenKeyKind::EcP256 | TokenKeyKind::EcP384 => {
                let digest = Sha256::digest(message);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.key, &digest)
                    .map_err(|e| failed(e.to_string()))?;
                let bad = |_| failed("the token's ECDSA signature is not a valid r || s".into());
                if self.kind == TokenKeyKind::EcP256 {
                    let sig = p256::ecdsa::Signature::from_slice(&raw).map_err(bad)?;
                    Ok(sig.to_der().as_bytes().to_vec())
                } else {
                    let sig = p384::ecdsa::Signature::from_slice(&raw).map_err(bad)?;
                    Ok(sig.to_der().as_bytes().to_vec())
                }
            }
            TokenKeyKind::Rsa { .. } => session
                .sign(&Mechanism::Sha256RsaPkcs, self.key, message)
                .map_err(|e| failed(e.to_string())),
        }
    }
}

/// The key's type and, for RSA, its public key (on the private key object,
/// PKCS#11 2.40 section 2.1.3).
#[cfg(feature = "pkcs11")]
fn key_kind(session: &Session, key: ObjectHandle, shown: &str) -> Result<TokenKeyKind, TokenError> {
    let token_err = |e: CkError| TokenError::Token(shown.to_string(), e.to_string());
    let attrs = session
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(token_err)?;
    let mut key_type = None;
    let mut params = None;
    let mut modulus = None;
    let mut exponent = None;
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::Modulus(m) => modulus = Some(strip_zeros(&m)),
            Attribute::PublicExponent(e) => exponent = Some(strip_zeros(&e)),
            _ => {}
        }
    }
    let unsupported = |what: String| TokenError::Unsupported(shown.to_string(), what);
    match key_type {
        Some(CkKeyType::EC) => {
            let curve = params
                .as_deref()
                .and_then(|p| ObjectIdentifier::from_der(p).ok());
            match curve {
                Some(c) if c == SECP_256_R_1 => Ok(TokenKeyKind::EcP256),
                Some(c) if c == SECP_384_R_1 => Ok(TokenKeyKind::EcP384),
                Some(c) => Err(unsupported(format!("an EC key on curve {c}"))),
                None => Err(unsupported("an EC key without a named curve".into())),
            }
        }
        Some(CkKeyType::RSA) => {
            let (Some(modulus), Some(exponent)) = (modulus, exponent) else {
                return Err(unsupported(
                    "an RSA key whose modulus the token does not show".into(),
                ));
            };
            let bits = modulus.len() * 8
                - modulus
                    .first()
                    .map_or(0, |b| usize::try_from(b.leading_zeros()).unwrap_or(0));
            if !RSA_BITS.contains(&bits) {
                return Err(unsupported(format!("an RSA key of {bits} bits")));
            }
            Ok(TokenKeyKind::Rsa { modulus, exponent })
        }
        Some(other) => Err(unsupported(format!("a key of type {other}"))),
        None => Err(unsupported("a key of no stated type".into())),
    }
}

/// Big-endian bytes without their leading zeros.
pub fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse() {
        let uri =
            Pkcs11Uri::parse("pkcs11:token=fleet%20ca;object=ca;id=%01%a0;type=private").unwrap();
        assert_eq!(uri.token.as_deref(), Some("fleet ca"));
        assert_eq!(uri.object.as_deref(), Some("ca"));
        assert_eq!(uri.id.as_deref(), Some(&[0x01, 0xa0][..]));
        let uri = Pkcs11Uri::parse("PKCS11:id=%02").unwrap();
        assert_eq!(uri.token, None);
        assert_eq!(uri.id.as_deref(), Some(&[2][..]));
        let uri = Pkcs11Uri::parse("pkcs11:serial=abc;model=SoftHSM%20v2;object=k").unwrap();
        assert_eq!(uri.serial.as_deref(), Some("abc"));
        assert_eq!(uri.model.as_deref(), Some("SoftHSM v2"));
    }

    #[test]
    fn uris_refused() {
        let cases: [(&str, UriError); 11] = [
            ("file:ca.key", UriError::NotPkcs11),
            (
                "pkcs11:object=ca?pin-value=123456",
                UriError::Pin("pin-value"),
            ),
            (
                "pkcs11:object=ca;pin-value=123456",
                UriError::Pin("pin-value"),
            ),
            (
                "pkcs11:object=ca?pin-source=file:/p",
                UriError::Pin("pin-source"),
            ),
            (
                "pkcs11:object=ca?module-path=/m.so",
                UriError::Module("module-path"),
            ),
            (
                "pkcs11:object=ca;slot-id=1;x-a=b",
                UriError::Unknown(vec!["`slot-id`".into(), "`x-a`".into()]),
            ),
            ("pkcs11:object=a;object=b", UriError::Twice("object".into())),
            ("pkcs11:object=a%2", UriError::Percent("object".into())),
            ("pkcs11:object=%ff", UriError::NotUtf8("object".into())),
            ("pkcs11:object=ca;type=cert", UriError::Type("cert".into())),
            ("pkcs11:token=t", UriError::NoKey),
        ];
        for (text, want) in cases {
            assert_eq!(Pkcs11Uri::parse(text), Err(want), "{text}");
        }
        // The PIN is never in the message.
        let e = Pkcs11Uri::parse("pkcs11:object=ca?pin-value=s3cret").unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
        assert_eq!(
            Pkcs11Uri::parse("pkcs11:object="),
            Err(UriError::Empty("object".into()))
        );
    }

    #[test]
    fn zeros_stripped() {
        assert_eq!(strip_zeros(&[0, 0, 1, 0]), vec![1, 0]);
        assert_eq!(strip_zeros(&[0, 0]), Vec::<u8>::new());
    }
}
