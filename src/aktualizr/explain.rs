//! `--explain`: the configuration a set of files adds up to, merged in
//! aktualizr's order, with secrets masked and the server URLs derived.
//!
//! Files are applied in the order given (the caller puts them in
//! aktualizr's order, domain.md section 3): a later file overrides only the
//! keys it sets, and a value aktualizr ignores overrides nothing. Every
//! value is shown as aktualizr holds it ([`crate::aktualizr::value`]);
//! the keys the schema marks secret are shown as [`MASK`], and a warning
//! says when telemetry would send one to the server.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aktualizr::diagnostic::Diagnostic;
use crate::aktualizr::ini::{Document, Entry};
use crate::aktualizr::schema;
use crate::aktualizr::servers::{self, ServerUrls, Servers};
use crate::aktualizr::value::{self, unquote, Value};
use crate::report::Severity;

/// What is shown instead of a secret value.
pub const MASK: &str = "********";

/// One effective setting: the value aktualizr holds and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    pub value: Shown,
    pub file: String,
    pub line: usize,
    #[serde(skip)]
    pub column: usize,
}

/// A value as shown: secrets are masked before they leave the merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Shown {
    Text(String),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    /// A non-empty secret, serialised as [`MASK`].
    #[serde(serialize_with = "serialize_mask")]
    Masked,
}

fn serialize_mask<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(MASK)
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Text(s) => write!(f, "\"{s}\""),
            Shown::Integer(n) => write!(f, "{n}"),
            Shown::Unsigned(n) => write!(f, "{n}"),
            Shown::Boolean(b) => write!(f, "{b}"),
            Shown::Masked => f.write_str(MASK),
        }
    }
}

impl Shown {
    fn text(&self) -> Option<&str> {
        match self {
            Shown::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Section -> key -> setting, sorted by name.
pub type Effective = BTreeMap<String, BTreeMap<String, Setting>>;

/// What `--explain` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub effective: Effective,
    pub servers: Servers,
    /// Warnings about the merged configuration (secrets sent by telemetry).
    pub problems: Vec<Diagnostic>,
}

/// The secrets a device whose whole configuration is `explanation` would
/// send to the server: [`Explanation::problems`], as errors. For a device
/// root (`lint --root`, `verify`), where the merge is what the device runs.
pub fn secrets_sent(explanation: &Explanation) -> Vec<Diagnostic> {
    explanation
        .problems
        .iter()
        .cloned()
        .map(|mut d| {
            d.severity = Severity::Error;
            d
        })
        .collect()
}

/// Applies parsed files in the order given (the caller has already put them
/// in aktualizr's order): a later file overrides only the keys it sets, and
/// a value aktualizr ignores overrides nothing.
pub fn explain(docs: &[Document]) -> Explanation {
    let mut effective = Effective::new();
    for doc in docs {
        for section in &doc.sections {
            if !schema::is_section(&section.name) {
                continue;
            }
            for entry in &section.entries {
                let Some(value) = shown(&section.name, entry) else {
                    continue;
                };
                effective.entry(section.name.clone()).or_default().insert(
                    entry.key.clone(),
                    Setting {
                        value,
                        file: doc.file.clone(),
                        line: entry.line,
                        column: entry.key_column,
                    },
                );
            }
        }
    }
    let servers = servers(&effective);
    let mut problems = telemetry_secrets(&effective, &servers);
    // In the order the files are applied, then by position.
    problems.sort_by_key(|d| {
        let file = docs.iter().position(|doc| doc.file == d.file);
        (file, d.line, d.column)
    });
    Explanation {
        effective,
        servers,
        problems,
    }
}

/// What aktualizr holds for `entry`, as shown; `None` when it ignores the
/// key. A secret the schema marks is masked here, unless it is empty.
fn shown(section: &str, entry: &Entry) -> Option<Shown> {
    let Some(spec) = schema::key_spec(section, &entry.key) else {
        // Unknown `[pacman]` keys are kept as strings (quoted names are not).
        let kept = schema::accepts_unknown_keys(section) && unquote(&entry.key).is_none();
        return kept.then(|| Shown::Text(value::read_string(&entry.value)));
    };
    Some(match value::read(spec.ty, &entry.value)? {
        _ if spec.secret && value::read_string(&entry.value).is_empty() => {
            Shown::Text(String::new())
        }
        _ if spec.secret => Shown::Masked,
        Value::Text(s) => Shown::Text(s),
        Value::Integer(n) => Shown::Integer(n),
        Value::Unsigned(n) => Shown::Unsigned(n),
        Value::Boolean(b) => Shown::Boolean(b),
    })
}

fn get<'a>(effective: &'a Effective, section: &str, key: &str) -> Option<&'a Setting> {
    effective.get(section).and_then(|keys| keys.get(key))
}

fn non_empty_text<'a>(effective: &'a Effective, section: &str, key: &str) -> Option<&'a str> {
    get(effective, section, key)
        .and_then(|s| s.value.text())
        .filter(|s| !s.is_empty())
}

fn servers(effective: &Effective) -> Servers {
    let server = non_empty_text(effective, "tls", "server").map(str::to_string);
    // aktualizr reads the URL from a file at run time when no file sets it.
    let (source, read_from) = if server.is_some() {
        ("tls.server", None)
    } else if let Some(path) = non_empty_text(effective, "tls", "server_url_path") {
        ("tls.server_url_path", Some(path.to_string()))
    } else if let Some(path) = non_empty_text(effective, "provision", "provision_path") {
        (
            "provision.provision_path",
            Some(format!("{path} (its autoprov.url)")),
        )
    } else {
        ("none", None)
    };
    let text =
        |section: &str, key: &str| non_empty_text(effective, section, key).map(str::to_string);
    let explicit = ServerUrls {
        repo: text("uptane", "repo_server"),
        director: text("uptane", "director_server"),
        treehub: text("pacman", "ostree_server"),
        ecu_registration: text("provision", "ecu_registration_endpoint"),
    };
    Servers {
        source,
        urls: ServerUrls::derive(server.as_deref(), explicit),
        server,
        read_from,
    }
}

/// `[telemetry] report_config` (true by default) sends the whole
/// configuration, the keys the schema marks secret included, to the server
/// ([`servers::config_report_url`]).
fn telemetry_secrets(effective: &Effective, servers: &Servers) -> Vec<Diagnostic> {
    let setting = get(effective, "telemetry", "report_config");
    let default = (
        true,
        "aktualizr's default".to_string(),
        "add `report_config = false` under `[telemetry]` in this or a later file".to_string(),
    );
    let (report, set_by, fix) = match setting {
        Some(s) => match s.value {
            Shown::Boolean(b) => (
                b,
                format!("set in `{}` line {}", s.file, s.line),
                format!(
                    "set `report_config = false` there, or in a file applied after `{}`",
                    s.file
                ),
            ),
            _ => default,
        },
        None => default,
    };
    if !report {
        return Vec::new();
    }
    let target = match &servers.server {
        Some(server) => format!("`{}`", servers::config_report_url(server)),
        None => format!(
            "the server (`{}`)",
            servers::config_report_url(servers::RUNTIME_SERVER)
        ),
    };
    schema::secret_keys()
        .filter_map(|spec| {
            let setting = get(effective, spec.section, spec.key)?;
            (setting.value == Shown::Masked).then(|| {
                Diagnostic::warning(
                    setting.file.as_str(),
                    (setting.line, setting.column),
                    format!(
                        "`[telemetry] report_config` is true ({set_by}): aktualizr sends \
                         its whole configuration, this `{}.{}` included, to {target}",
                        spec.section, spec.key
                    ),
                    Some(fix.clone()),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aktualizr::ini;

    fn docs(files: &[(&str, &str)]) -> Vec<Document> {
        files.iter().map(|(f, t)| ini::parse(f, t)).collect()
    }

    #[test]
    fn explain_merges_key_by_key() {
        let e = explain(&docs(&[
            (
                "10-a.toml",
                "[tls]\nserver = \"https://a\"\n[uptane]\npolling_sec = 30\n",
            ),
            (
                "20-b.toml",
                "[uptane]\npolling_sec = \"60\"\nkey_type = \"ED25519\"\n",
            ),
        ]));
        let polling = &e.effective["uptane"]["polling_sec"];
        assert_eq!(
            (polling.value.clone(), polling.file.as_str(), polling.line),
            (Shown::Unsigned(30), "10-a.toml", 4)
        );
        assert_eq!(e.effective["uptane"]["key_type"].file, "20-b.toml");
        assert_eq!(e.servers.urls.repo.as_deref(), Some("https://a/repo"));
        assert_eq!(
            e.servers.urls.director.as_deref(),
            Some("https://a/director")
        );
        assert_eq!(e.servers.urls.treehub.as_deref(), Some("https://a/treehub"));
        assert_eq!(
            e.servers.urls.ecu_registration.as_deref(),
            Some("https://a/director/ecus")
        );
        assert!(e.problems.is_empty());
    }

    #[test]
    fn explain_shows_what_aktualizr_reads() {
        let e = explain(&docs(&[(
            "a",
            "[tls]\nserver = \"https://a\" # x\n[storage]\npath = \"/a&b\"\n",
        )]));
        assert_eq!(e.servers.urls.repo.as_deref(), Some("https://a # x/repo"));
        assert_eq!(
            e.effective["storage"]["path"].value,
            Shown::Text("/ab".into())
        );
    }

    #[test]
    fn explain_masks_secrets_and_warns_about_telemetry() {
        let e = explain(&docs(&[(
            "a",
            "[provision]\np12_password = \"hunter2\"\n[p11]\npass = \"1234\"\n",
        )]));
        assert_eq!(
            e.effective["provision"]["p12_password"].value,
            Shown::Masked
        );
        assert_eq!(e.effective["p11"]["pass"].value, Shown::Masked);
        assert_eq!(e.problems.len(), 2);
        assert_eq!((e.problems[0].line, e.problems[1].line), (2, 4));
        let json = serde_json::to_string(&e.effective).unwrap_or_default();
        assert!(json.contains(MASK) && !json.contains("hunter2") && !json.contains("1234"));

        let e = explain(&docs(&[
            ("a", "[p11]\npass = \"1234\"\n"),
            ("b", "[telemetry]\nreport_config = false\n"),
        ]));
        assert!(e.problems.is_empty());

        let e = explain(&docs(&[("a", "[provision]\np12_password = \"\"\n")]));
        assert_eq!(
            e.effective["provision"]["p12_password"].value,
            Shown::Text(String::new())
        );
        assert!(e.problems.is_empty());
    }

    #[test]
    fn explain_runtime_server_sources() {
        let e = explain(&docs(&[(
            "a",
            "[tls]\nserver_url_path = \"/var/sota/import/gateway.url\"\n",
        )]));
        assert_eq!(e.servers.source, "tls.server_url_path");
        assert_eq!(e.servers.urls.repo, None);
        let e = explain(&docs(&[(
            "a",
            "[uptane]\ndirector_server = \"https://d\"\n",
        )]));
        assert_eq!(
            e.servers.urls.ecu_registration.as_deref(),
            Some("https://d/ecus")
        );
        assert_eq!(e.servers.source, "none");
    }
}
