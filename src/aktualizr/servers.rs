//! The server URLs aktualizr derives from its server URL, and where that
//! URL comes from: the one place their suffixes are written.
//!
//! aktualizr's `Config::postUpdateValues` (domain.md section 3): a URL not
//! set explicitly is `tls.server` plus `/repo`, `/director` or `/treehub`;
//! the ECU registration endpoint is the director URL plus `/ecus`.
//! Telemetry sends the whole configuration to `<server>/system_info/config`.
//! `--explain` computes them ([`crate::aktualizr::explain`]); `lint` prints
//! them, with [`RUNTIME_SERVER`] where the URL is read only at run time.

use serde::Serialize;

/// What stands for the server URL when aktualizr reads it only at run time.
pub const RUNTIME_SERVER: &str = "<server>";

/// Where aktualizr's server URL comes from, and the URLs derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Servers {
    /// Where `tls.server` comes from: `tls.server` (set in a file),
    /// `tls.server_url_path` or `provision.provision_path` (read at run
    /// time), or `none`.
    pub source: &'static str,
    /// `tls.server` when a file sets it.
    pub server: Option<String>,
    /// The file aktualizr reads the server URL from at run time.
    pub read_from: Option<String>,
    #[serde(flatten)]
    pub urls: ServerUrls,
}

/// The URLs aktualizr talks to besides `tls.server` itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerUrls {
    pub repo: Option<String>,
    pub director: Option<String>,
    pub treehub: Option<String>,
    pub ecu_registration: Option<String>,
}

impl ServerUrls {
    /// Completes `explicit` (the URLs the files set) as aktualizr does: a
    /// missing URL derives from `server`, the ECU registration endpoint
    /// from the director URL; an explicit one is kept.
    pub fn derive(server: Option<&str>, explicit: ServerUrls) -> ServerUrls {
        let under = |base: Option<&str>, suffix: &str| base.map(|base| format!("{base}{suffix}"));
        let director = explicit.director.or_else(|| under(server, "/director"));
        ServerUrls {
            repo: explicit.repo.or_else(|| under(server, "/repo")),
            treehub: explicit.treehub.or_else(|| under(server, "/treehub")),
            ecu_registration: explicit
                .ecu_registration
                .or_else(|| under(director.as_deref(), "/ecus")),
            director,
        }
    }
}

/// Where telemetry (`[telemetry] report_config`) sends the configuration.
pub fn config_report_url(server: &str) -> String {
    format!("{server}/system_info/config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_like_post_update_values() {
        let urls = ServerUrls::derive(Some("https://a"), ServerUrls::default());
        assert_eq!(
            urls,
            ServerUrls {
                repo: Some("https://a/repo".into()),
                director: Some("https://a/director".into()),
                treehub: Some("https://a/treehub".into()),
                ecu_registration: Some("https://a/director/ecus".into()),
            }
        );
        let explicit = ServerUrls {
            director: Some("https://d".into()),
            ..ServerUrls::default()
        };
        let urls = ServerUrls::derive(None, explicit);
        assert_eq!(urls.ecu_registration.as_deref(), Some("https://d/ecus"));
        assert_eq!(urls.repo, None);
        assert_eq!(
            config_report_url(RUNTIME_SERVER),
            "<server>/system_info/config"
        );
    }
}
