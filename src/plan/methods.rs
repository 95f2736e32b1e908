//! The provisioning methods (design.md section 1) and what each needs from
//! a credentials archive.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

impl Method {
    pub const ALL: [Method; 3] = [
        Method::SharedCred,
        Method::DeviceCred,
        Method::DeviceCredHsm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::SharedCred => "shared-cred",
            Method::DeviceCred => "device-cred",
            Method::DeviceCredHsm => "device-cred-hsm",
        }
    }

    /// meta-updater's recipe name for the method (`SOTA_CLIENT_PROV`).
    pub fn meta_updater_name(self) -> &'static str {
        match self {
            Method::SharedCred => "aktualizr-shared-prov",
            Method::DeviceCred => "aktualizr-device-prov",
            Method::DeviceCredHsm => "aktualizr-device-prov-hsm",
        }
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
                    "unknown provisioning method `{s}`; use shared-cred, device-cred or device-cred-hsm (or meta-updater's aktualizr-shared-prov, aktualizr-device-prov, aktualizr-device-prov-hsm)"
                )
            })
    }
}

/// What the archive offers that the methods need; filled in by the checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offers {
    /// `autoprov.url` is present and a valid device URL.
    pub device_url: bool,
    /// `autoprov_credentials.p12` opens and holds a client cert with its key.
    pub usable_p12: bool,
    /// A server CA: `server_ca.pem`, or CA certs inside the p12.
    pub server_ca: bool,
}

impl Offers {
    /// What `method` still lacks, worded for the user; empty when supported.
    pub fn missing_for(self, method: Method) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.device_url {
            missing.push("a valid `autoprov.url`");
        }
        match method {
            Method::SharedCred if !self.usable_p12 => {
                missing.push("an `autoprov_credentials.p12` that opens and holds a client certificate with its key")
            }
            Method::DeviceCred | Method::DeviceCredHsm if !self.server_ca => {
                missing.push("a server CA (`server_ca.pem`, or CA certificates in `autoprov_credentials.p12`)")
            }
            _ => {}
        }
        missing
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
}
