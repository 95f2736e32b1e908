//! The validated options of one planning run, as the command line hands
//! them over: complete when built, never patched afterwards. No flag names
//! here; the command line words its own errors.

use crate::crypto::private_key::PrivateKey;
use crate::crypto::x509::CertInfo;
use crate::plan::methods::{Method, Value};
use crate::secret::Secret;

/// What to do with entries the catalogue does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownPolicy {
    /// Refuse the archive (the default).
    #[default]
    Refuse,
    /// Stage them on the host side, with the host tools' files.
    Host,
    /// Leave them out.
    Drop,
}

/// The `[p11]` settings of `device-cred-hsm`. Defaults: aktualizr's example
/// config (`config/sota-device-cred-hsm.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hsm {
    pub module: String,
    pub pin: Secret<String>,
    pub tls_cert_id: String,
    pub tls_key_id: String,
    pub uptane_key_id: String,
    /// The TLS client certificate is a file (`var/sota/import/client.pem`,
    /// imported by aktualizr), not a token object: the key stays in the
    /// token, the certificate comes with the image or a bundle (a device
    /// whose CSR the fleet CA signed). aktualizr takes `cert_source` and
    /// `pkey_source` separately.
    pub cert_from_file: bool,
}

impl Default for Hsm {
    fn default() -> Self {
        Hsm {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            pin: Secret::new("1234".into()),
            tls_cert_id: "01".into(),
            tls_key_id: "02".into(),
            uptane_key_id: "03".into(),
            cert_from_file: false,
        }
    }
}

/// One of the token object IDs of [`Hsm`], to say which one is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectId {
    TlsCert,
    TlsKey,
    Uptane,
}

impl Hsm {
    /// The settings, with the object IDs checked: an object ID is the
    /// token's `CKA_ID` bytes written in hex (aktualizr's examples use `01`,
    /// `02`, `03`), so each must be a non-empty, even-length string of hex
    /// digits; anything else finds no object on the device, at run time. The error says which ID is wrong
    /// and why; the command line words it with its flag.
    pub fn new(
        module: String,
        pin: Secret<String>,
        tls_cert_id: String,
        tls_key_id: String,
        uptane_key_id: String,
        cert_from_file: bool,
    ) -> Result<Hsm, (ObjectId, String)> {
        for (which, id) in [
            (ObjectId::TlsCert, &tls_cert_id),
            (ObjectId::TlsKey, &tls_key_id),
            (ObjectId::Uptane, &uptane_key_id),
        ] {
            check_object_id(id).map_err(|why| (which, why))?;
        }
        Ok(Hsm {
            module,
            pin,
            tls_cert_id,
            tls_key_id,
            uptane_key_id,
            cert_from_file,
        })
    }
}

/// A PKCS#11 object ID as aktualizr takes it: hex bytes, e.g. `01`.
pub fn check_object_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("it is empty".into());
    }
    if !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("it is not hex digits".into());
    }
    if id.len() % 2 != 0 {
        return Err("it has an odd number of hex digits".into());
    }
    Ok(())
}

/// A device certificate and key given for `device-cred`, parsed; planning
/// checks that they belong together and are valid. For `device-cred-hsm`
/// the certificate alone: its key is in the device's token.
#[derive(Debug, Clone)]
pub struct DeviceCert {
    pub cert: CertInfo,
    /// The CAs that issued it, as the file gives them after it (the
    /// issuing CA first, without the root: what aktualizr sends); checked
    /// by the plan.
    pub chain: Vec<CertInfo>,
    /// The key and the file it came from; `None` for a key in a token.
    pub key: Option<(PrivateKey, String)>,
    /// The file the certificate came from, for messages.
    pub cert_file: String,
}

/// The primary ECU's hardware ID: letters, digits, `.`, `_` and `-`
/// (meta-updater's rule), not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardwareId(String);

impl HardwareId {
    /// Checks `id`; the error says what is allowed.
    pub fn parse(id: &str) -> Result<HardwareId, String> {
        let ok = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(HardwareId(id.to_string()))
        } else {
            Err(format!(
                "hardware ID `{}` is not allowed: use letters, digits, `.`, `_` and `-` only (meta-updater's rule)",
                id.escape_debug()
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// aktualizr's `[telemetry] report_config` (true by default) posts its
/// whole configuration to the server, `[provision] p12_password` and
/// `[p11] pass` included (config.cc, base_config.cc). What the method's
/// fragment says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReportConfig {
    /// `report_config = false` when the fragment holds a password or PIN.
    #[default]
    Auto,
    /// Nothing written: aktualizr's default (true) or a later file decides.
    On,
    /// `report_config = false`, secret or not.
    Off,
}

/// What shapes the rendered fragments.
#[derive(Debug, Clone)]
pub struct FragmentOptions {
    pub method: Method,
    pub hardware_id: Option<HardwareId>,
    pub p12_password: Secret<String>,
    pub hsm: Hsm,
    pub report_config: ReportConfig,
}

impl FragmentOptions {
    /// The method's fragment holds a secret: a value its table row marks
    /// secret (the p12 password, the PIN) that is not empty.
    pub fn holds_secret(&self) -> bool {
        let values = self.method.spec().variables.iter().map(|(_, v)| v);
        values.filter(|v| v.is_secret()).any(|value| match value {
            Value::P12Password => !self.p12_password.expose().is_empty(),
            Value::P11Pin => !self.hsm.pin.expose().is_empty(),
            _ => false,
        })
    }

    /// The method's fragment gets `[telemetry] report_config = false`.
    pub fn report_config_off(&self) -> bool {
        match self.report_config {
            ReportConfig::Auto => self.holds_secret(),
            ReportConfig::On => false,
            ReportConfig::Off => true,
        }
    }
}

/// What shapes a staging plan.
#[derive(Debug, Clone)]
pub struct StageOptions {
    pub fragment: FragmentOptions,
    pub device_cert: Option<DeviceCert>,
    /// Pin root.json and director.root.json under var/sota/import.
    pub root_pinning: bool,
    pub unknown: UnknownPolicy,
    /// A host root was given: plan the host side too.
    pub with_host: bool,
    /// `SOURCE_DATE_EPOCH`: every time in the zips the tool builds.
    pub epoch: i64,
    /// Now, for certificate validity.
    pub now: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_even_length_hex() {
        for ok in ["01", "0a", "DEADbeef"] {
            assert_eq!(check_object_id(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("zz", "hex"),
            ("1", "odd"),
            ("01\" x", "hex"),
        ] {
            let e = check_object_id(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let defaults = Hsm::default();
        let e = Hsm::new(
            defaults.module,
            defaults.pin,
            "01".into(),
            "02".into(),
            "zz".into(),
            false,
        )
        .expect_err("zz");
        assert_eq!(e.0, ObjectId::Uptane);
    }

    #[test]
    fn hardware_ids() {
        for ok in ["qemux86-64", "raspberrypi4_64", "a.b"] {
            assert_eq!(HardwareId::parse(ok).map(|h| h.0), Ok(ok.to_string()));
        }
        for bad in ["", "a b", "a\"b", "a/b", "é"] {
            assert!(HardwareId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
