//! The provisioning methods (design.md sections 1 and 4), as one table: per
//! method, what it needs from the archive, which options it takes, the
//! files it stages on the device and the template of its fragment.
//! Planning, `inspect`'s list of supported methods and `verify` read this
//! table; nothing else names a method's files.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::aktualizr::paths::{IMPORT_DIR, PROVISIONING_ZIP};

/// How a device gets its identity on first boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A fleet-wide p12 in the image; aktualizr trades it for a device cert.
    SharedCred,
    /// The device's own cert and key, put in at build time or later.
    DeviceCred,
    /// The device's own cert and key in an HSM, reached over PKCS#11.
    DeviceCredHsm,
}

/// What a method needs from the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `autoprov.url`, a valid device URL.
    DeviceUrl,
    /// `autoprov_credentials.p12` that opens and holds a client cert and key.
    UsableP12,
    /// A server CA: `server_ca.pem`, or CA certificates inside the p12.
    ServerCa,
}

impl Need {
    /// What is missing, worded for the user.
    pub fn describe(self) -> &'static str {
        match self {
            Need::DeviceUrl => "a valid `autoprov.url`",
            Need::UsableP12 => "an `autoprov_credentials.p12` that opens and holds a client certificate with its key",
            Need::ServerCa => "a server CA (`server_ca.pem`, or CA certificates in `autoprov_credentials.p12`)",
        }
    }
}

/// An option that only some methods take. The command line refuses one
/// given for a method that does not take it, the same way for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodOption {
    /// The p12 password, written into the fragment.
    P12Password,
    /// The `[p11]` settings.
    Pkcs11,
    /// A device certificate and key staged into the image.
    DeviceCert,
}

/// Where the bytes of a staged device file come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A zip of these archive entries, exactly (aktualizr reads the
    /// provisioning zip by entry name).
    ZipOf(&'static [&'static str]),
    /// The device URL, as checked.
    DeviceUrl,
    /// The server CA chain, PEM.
    ServerCa,
    /// The device certificate given for the build, PEM.
    DeviceCert,
    /// Its private key, PEM.
    DeviceKey,
}

/// One file a method stages on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFile {
    /// Relative to the device root.
    pub path: &'static str,
    pub source: Source,
    pub secret: bool,
    /// Staged only when its source was given (the device certificate).
    pub optional: bool,
}

/// A value a method's template is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// The absolute device path of a file this table stages.
    DevicePath(&'static str),
    /// A fixed string.
    Text(&'static str),
    /// The p12 password (a secret).
    P12Password,
    /// A `[p11]` setting; the PIN is a secret.
    P11Module,
    P11Pin,
    /// Empty when the certificate is a file.
    P11TlsCertId,
    P11TlsKeyId,
    P11UptaneKeyId,
    /// `[tls] cert_source`: `pkcs11`, or `file` when the certificate is.
    P11CertSource,
    /// `[import] tls_clientcert_path` when the certificate is a file, else
    /// empty.
    P11ClientCertPath,
}

impl Value {
    /// The value is a secret: a fragment that holds it non-empty is one.
    pub fn is_secret(self) -> bool {
        matches!(self, Value::P12Password | Value::P11Pin)
    }
}

/// Everything one method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSpec {
    pub method: Method,
    pub name: &'static str,
    /// meta-updater's recipe name for the method (`SOTA_CLIENT_PROV`).
    pub meta_updater_name: &'static str,
    pub needs: &'static [Need],
    pub options: &'static [MethodOption],
    pub device_files: &'static [DeviceFile],
    /// The template of its fragment, under `templates/` and `--template-dir`.
    pub template: &'static str,
    /// The template's variables.
    pub variables: &'static [(&'static str, Value)],
}

const GATEWAY_URL: &str = "var/sota/import/gateway.url";
const ROOT_CRT: &str = "var/sota/import/root.crt";

const GATEWAY_AND_CA: [DeviceFile; 2] = [
    DeviceFile {
        path: GATEWAY_URL,
        source: Source::DeviceUrl,
        secret: false,
        optional: false,
    },
    DeviceFile {
        path: ROOT_CRT,
        source: Source::ServerCa,
        secret: false,
        optional: false,
    },
];

/// The device's own certificate, when given (`--device-cert`): aktualizr
/// imports it.
const CLIENT_PEM: DeviceFile = DeviceFile {
    path: "var/sota/import/client.pem",
    source: Source::DeviceCert,
    secret: false,
    optional: true,
};

/// The variables of both device-cred methods: the gateway, the import
/// folder, the server CA.
const GATEWAY_VARIABLES: [(&str, Value); 3] = [
    ("server_url_path", Value::DevicePath(GATEWAY_URL)),
    ("import_base_path", Value::DevicePath(IMPORT_DIR)),
    ("tls_cacert_path", Value::Text("root.crt")),
];

/// The table (design.md section 4; aktualizr's example configs
/// `config/sota-*.toml` for the fragments).
pub const METHODS: [MethodSpec; 3] = [
    MethodSpec {
        method: Method::SharedCred,
        name: "shared-cred",
        meta_updater_name: "aktualizr-shared-prov",
        needs: &[Need::DeviceUrl, Need::UsableP12],
        options: &[MethodOption::P12Password],
        device_files: &[DeviceFile {
            path: PROVISIONING_ZIP,
            source: Source::ZipOf(&["autoprov.url", "autoprov_credentials.p12"]),
            secret: true,
            optional: false,
        }],
        template: "20-sota-shared-cred.toml.hbs",
        variables: &[
            ("provision_path", Value::DevicePath(PROVISIONING_ZIP)),
            ("p12_password", Value::P12Password),
        ],
    },
    MethodSpec {
        method: Method::DeviceCred,
        name: "device-cred",
        meta_updater_name: "aktualizr-device-prov",
        needs: &[Need::DeviceUrl, Need::ServerCa],
        options: &[MethodOption::DeviceCert],
        device_files: &[
            GATEWAY_AND_CA[0],
            GATEWAY_AND_CA[1],
            CLIENT_PEM,
            DeviceFile {
                path: "var/sota/import/pkey.pem",
                source: Source::DeviceKey,
                secret: true,
                optional: true,
            },
        ],
        template: "20-sota-device-cred.toml.hbs",
        variables: &[
            GATEWAY_VARIABLES[0],
            GATEWAY_VARIABLES[1],
            GATEWAY_VARIABLES[2],
            ("tls_clientcert_path", Value::Text("client.pem")),
            ("tls_pkey_path", Value::Text("pkey.pem")),
        ],
    },
    MethodSpec {
        method: Method::DeviceCredHsm,
        name: "device-cred-hsm",
        meta_updater_name: "aktualizr-device-prov-hsm",
        needs: &[Need::DeviceUrl, Need::ServerCa],
        options: &[MethodOption::Pkcs11, MethodOption::DeviceCert],
        device_files: &[
            GATEWAY_AND_CA[0],
            GATEWAY_AND_CA[1],
            // The certificate of a key in the token, when given: aktualizr
            // imports it (`cert_source = "file"`).
            CLIENT_PEM,
        ],
        template: "20-sota-device-cred-hsm.toml.hbs",
        variables: &[
            GATEWAY_VARIABLES[0],
            GATEWAY_VARIABLES[1],
            GATEWAY_VARIABLES[2],
            ("p11_module", Value::P11Module),
            ("p11_pin", Value::P11Pin),
            ("p11_tls_cert_id", Value::P11TlsCertId),
            ("p11_tls_key_id", Value::P11TlsKeyId),
            ("p11_uptane_key_id", Value::P11UptaneKeyId),
            ("tls_cert_source", Value::P11CertSource),
            ("tls_clientcert_path", Value::P11ClientCertPath),
        ],
    },
];

/// The fragment every method may add: the primary ECU's hardware ID.
pub const HARDWARE_ID_TEMPLATE: &str = "40-hardware-id.toml.hbs";

/// Uptane roots pinned for aktualizr's first start, unless turned off:
/// archive entry -> device path.
pub const PINNED_ROOTS: [(&str, &str); 2] = [
    ("root.json", "var/sota/import/repo/root.json"),
    ("director.root.json", "var/sota/import/director/root.json"),
];

impl Method {
    pub const ALL: [Method; 3] = [
        Method::SharedCred,
        Method::DeviceCred,
        Method::DeviceCredHsm,
    ];

    /// The method's row of [`METHODS`].
    pub fn spec(self) -> &'static MethodSpec {
        match self {
            Method::SharedCred => &METHODS[0],
            Method::DeviceCred => &METHODS[1],
            Method::DeviceCredHsm => &METHODS[2],
        }
    }

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The device path of the method's file from `source`, if it stages one.
    pub fn path_of(self, source: Source) -> Option<&'static str> {
        self.spec()
            .device_files
            .iter()
            .find(|f| f.source == source)
            .map(|f| f.path)
    }

    /// meta-updater's recipe name for the method (`SOTA_CLIENT_PROV`).
    pub fn meta_updater_name(self) -> &'static str {
        self.spec().meta_updater_name
    }

    pub fn takes(self, option: MethodOption) -> bool {
        self.spec().options.contains(&option)
    }

    /// The methods that take `option`, for messages.
    pub fn taking(option: MethodOption) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| m.takes(option))
            .collect()
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str() == s || m.meta_updater_name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown provisioning method `{}`; use shared-cred, device-cred or device-cred-hsm (or meta-updater's aktualizr-shared-prov, aktualizr-device-prov, aktualizr-device-prov-hsm)",
                    s.escape_debug()
                )
            })
    }
}

/// What the archive offers that the methods need; filled in by the checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offers {
    pub device_url: bool,
    pub usable_p12: bool,
    pub server_ca: bool,
}

impl Offers {
    fn has(self, need: Need) -> bool {
        match need {
            Need::DeviceUrl => self.device_url,
            Need::UsableP12 => self.usable_p12,
            Need::ServerCa => self.server_ca,
        }
    }

    /// What `method` still lacks, worded for the user; empty when supported.
    pub fn missing_for(self, method: Method) -> Vec<&'static str> {
        method
            .spec()
            .needs
            .iter()
            .filter(|n| !self.has(**n))
            .map(|n| n.describe())
            .collect()
    }

    /// The methods this archive supports, in [`Method::ALL`] order.
    pub fn supported(self) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| self.missing_for(*m).is_empty())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        for m in Method::ALL {
            assert_eq!(m.spec().method, m);
            assert_eq!(m.as_str().parse::<Method>(), Ok(m));
            assert_eq!(m.meta_updater_name().parse::<Method>(), Ok(m));
        }
        let err = "shared".parse::<Method>().expect_err("unknown");
        assert!(err.contains("`shared`") && err.contains("shared-cred"));
    }

    #[test]
    fn what_each_method_needs() {
        let all = Offers {
            device_url: true,
            usable_p12: true,
            server_ca: true,
        };
        assert_eq!(all.supported(), Method::ALL);
        let ce = Offers {
            usable_p12: false,
            ..all
        };
        assert_eq!(ce.supported(), [Method::DeviceCred, Method::DeviceCredHsm]);
        let no_url = Offers {
            device_url: false,
            ..all
        };
        assert!(no_url.supported().is_empty());
        assert_eq!(no_url.missing_for(Method::SharedCred).len(), 1);
        let p12_only = Offers {
            server_ca: false,
            ..all
        };
        assert_eq!(p12_only.supported(), [Method::SharedCred]);
    }

    #[test]
    fn the_table_is_consistent() {
        for spec in METHODS {
            // Every file is under aktualizr's storage folder, once.
            for (i, f) in spec.device_files.iter().enumerate() {
                assert!(f.path.starts_with("var/sota/"), "{}", f.path);
                assert!(spec.device_files[i + 1..].iter().all(|o| o.path != f.path));
            }
            // A device path a template is given is a file or folder the
            // method stages.
            for (_, value) in spec.variables {
                if let Value::DevicePath(path) = value {
                    assert!(
                        *path == IMPORT_DIR || spec.device_files.iter().any(|f| f.path == *path),
                        "{}: {path}",
                        spec.name
                    );
                }
            }
            assert!(spec.template.starts_with("20-sota-") && spec.template.ends_with(".toml.hbs"));
        }
        // The device-credential methods take a device certificate and
        // stage it; only device-cred stages a key (device-cred-hsm's is in
        // the token).
        assert_eq!(
            Method::taking(MethodOption::DeviceCert),
            [Method::DeviceCred, Method::DeviceCredHsm]
        );
        let stages = |m: Method, s: Source| m.spec().device_files.iter().any(|f| f.source == s);
        assert!(stages(Method::DeviceCred, Source::DeviceKey));
        assert!(!stages(Method::DeviceCredHsm, Source::DeviceKey));
        assert!(stages(Method::DeviceCredHsm, Source::DeviceCert));
        assert_eq!(
            Method::taking(MethodOption::Pkcs11),
            [Method::DeviceCredHsm]
        );
    }
}
