//! The catalogue of known credentials.zip entries (domain.md section 1), as
//! data in one place: what each entry is, where it belongs, whether it is a
//! secret, and which tools read it. Everything else is unknown.

use serde::{Deserialize, Serialize};

/// The two sides of a build: the device image, and the build host's tools.
/// An entry belongs to one; a staged file goes under one side's root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The device image (some device entries are also read on the host).
    Device,
    /// The build host; never in an image.
    Host,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Device => "device",
            Side::Host => "host",
        }
    }
}

/// How an entry's content is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The device's provisioning URL: must be https unless allowed.
    DeviceUrl,
    /// A URL read by host tools: plain http is a warning.
    HostUrl { may_be_empty: bool },
    /// A PKCS#12 bundle with the shared provisioning cert, key and CA.
    ProvisioningP12,
    /// A PKCS#12 bundle read by host tools.
    HostP12,
    /// treehub.json (domain.md section 2).
    Treehub,
    /// Uptane root metadata.
    RootMetadata,
    /// garage-sign's public key JSON.
    TargetsPublicKey,
    /// garage-sign's private key JSON.
    TargetsPrivateKey,
    /// PEM certificates.
    PemCertificates,
    /// Torizon's provision.json (OAuth2 client id and secret).
    ProvisionJson,
}

/// One known entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub name: &'static str,
    pub purpose: &'static str,
    pub role: Side,
    pub secret: bool,
    /// A host tool reads it: staged under the host root. Host entries are,
    /// and so are the Uptane roots garage-sign and Torizon's classes read.
    pub on_host: bool,
    pub readers: &'static [&'static str],
    pub content: Content,
}

/// Every entry that real credentials archives carry.
pub const CATALOGUE: &[Known] = &[
    Known {
        name: "autoprov.url",
        purpose: "URL of the device gateway (provisioning server)",
        role: Side::Device,
        secret: false,
        on_host: false,
        readers: &["aktualizr", "aktualizr-cert-provider"],
        content: Content::DeviceUrl,
    },
    Known {
        name: "autoprov_credentials.p12",
        purpose: "shared provisioning TLS client cert and key, and the server CA chain",
        role: Side::Device,
        secret: true,
        on_host: false,
        readers: &["aktualizr", "aktualizr-cert-provider"],
        content: Content::ProvisioningP12,
    },
    Known {
        name: "root.json",
        purpose: "initial Uptane root metadata of the image repository",
        role: Side::Device,
        secret: false,
        on_host: true,
        readers: &["garage-sign", "aktualizr (pinned initial root)"],
        content: Content::RootMetadata,
    },
    Known {
        name: "director.root.json",
        purpose: "Torizon: initial root metadata of the Director",
        role: Side::Device,
        secret: false,
        on_host: true,
        readers: &["Torizon build classes", "aktualizr (pinned initial root)"],
        content: Content::RootMetadata,
    },
    Known {
        name: "server_ca.pem",
        purpose: "OTA Community Edition: the server CA",
        role: Side::Device,
        secret: false,
        on_host: false,
        readers: &["aktualizr-cert-provider", "aktualizr (as root.crt)"],
        content: Content::PemCertificates,
    },
    Known {
        name: "treehub.json",
        purpose: "treehub URL and OAuth2 client secret",
        role: Side::Host,
        secret: true,
        on_host: true,
        readers: &[
            "garage-push",
            "garage-deploy",
            "garage-check",
            "garage-sign",
        ],
        content: Content::Treehub,
    },
    Known {
        name: "client_auth.p12",
        purpose: "TLS client credentials for treehub (mutual TLS)",
        role: Side::Host,
        secret: true,
        on_host: true,
        readers: &["garage-push", "garage-deploy", "garage-sign"],
        content: Content::HostP12,
    },
    Known {
        name: "server.p12",
        purpose: "server cert for mutual TLS",
        role: Side::Host,
        secret: true,
        on_host: true,
        readers: &["garage-sign"],
        content: Content::HostP12,
    },
    Known {
        name: "api_gateway.url",
        purpose: "URL of the gateway to the Director",
        role: Side::Host,
        secret: false,
        on_host: true,
        readers: &["garage-sign"],
        content: Content::HostUrl {
            may_be_empty: false,
        },
    },
    Known {
        name: "tufrepo.url",
        purpose: "URL of the Uptane image repository",
        role: Side::Host,
        secret: false,
        on_host: true,
        readers: &["garage-sign", "garage-push"],
        content: Content::HostUrl { may_be_empty: true },
    },
    Known {
        name: "targets.pub",
        purpose: "public key for offline image signing",
        role: Side::Host,
        secret: false,
        on_host: true,
        readers: &["garage-sign"],
        content: Content::TargetsPublicKey,
    },
    Known {
        name: "targets.sec",
        purpose: "private key for offline image signing",
        role: Side::Host,
        secret: true,
        on_host: true,
        readers: &["garage-sign"],
        content: Content::TargetsPrivateKey,
    },
    Known {
        name: "provision.json",
        purpose: "Torizon: fleet-wide OAuth2 client for device self-registration",
        role: Side::Host,
        secret: true,
        on_host: true,
        readers: &["Torizon auto-provisioning"],
        content: Content::ProvisionJson,
    },
];

/// The catalogue entry for a root entry name, matched exactly (as every
/// reader does).
pub fn lookup(name: &str) -> Option<&'static Known> {
    CATALOGUE.iter().find(|k| k.name == name)
}

/// Whether an entry is a secret. An unknown entry is: nothing says it is
/// not.
pub fn is_secret(name: &str) -> bool {
    lookup(name).map_or(true, |k| k.secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_exact() {
        for (i, k) in CATALOGUE.iter().enumerate() {
            assert!(CATALOGUE[i + 1..].iter().all(|o| o.name != k.name));
            assert_eq!(lookup(k.name), Some(k));
        }
        assert_eq!(lookup("AUTOPROV.URL"), None);
        assert_eq!(lookup("creds/autoprov.url"), None);
    }

    #[test]
    fn host_secrets_never_go_to_the_device() {
        for name in [
            "treehub.json",
            "targets.sec",
            "client_auth.p12",
            "provision.json",
        ] {
            let k = lookup(name).expect("known");
            assert_eq!(k.role, Side::Host, "{name}");
            assert!(k.secret, "{name}");
        }
        // The only secret a device gets is the shared provisioning bundle.
        let device_secrets: Vec<_> = CATALOGUE
            .iter()
            .filter(|k| k.role == Side::Device && k.secret)
            .map(|k| k.name)
            .collect();
        assert_eq!(device_secrets, ["autoprov_credentials.p12"]);
    }
}
