//! `treehub.json`: the treehub URL and the authentication the garage tools
//! use with it (domain.md section 2). The OAuth2 client secret and basic-auth
//! password are read only to check they are there; they are never copied
//! into a report.

use serde_json::Value;

use super::url::{self, Scheme};
use crate::report::Problem;

/// The authentication garage-push would pick, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `client_auth.p12` is in the archive: mutual TLS, treehub.json's auth
    /// is ignored.
    MutualTls,
    OAuth2,
    Basic,
    /// `no_auth: true`, or no auth section at all.
    None,
}

impl Auth {
    pub fn describe(self) -> &'static str {
        match self {
            Auth::MutualTls => "mutual TLS (client_auth.p12)",
            Auth::OAuth2 => "OAuth2 client credentials",
            Auth::Basic => "basic auth",
            Auth::None => "none",
        }
    }
}

/// What treehub.json says, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Treehub {
    pub auth: Option<Auth>,
    /// `ostree.server`, when it is a valid URL.
    pub server: Option<String>,
    pub problems: Vec<Problem>,
}

/// Checks treehub.json. `has_client_auth_p12`: the archive carries
/// `client_auth.p12`, which garage-push prefers over any auth here.
pub fn check(bytes: &[u8], has_client_auth_p12: bool) -> Treehub {
    let mut problems = Vec::new();
    let json: Value = match crate::json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem::error(format!("{e}; garage-push cannot read it")));
            return Treehub {
                auth: None,
                server: None,
                problems,
            };
        }
    };
    let Some(object) = json.as_object() else {
        problems.push(Problem::error("is not a JSON object"));
        return Treehub {
            auth: None,
            server: None,
            problems,
        };
    };

    let server = match object.get("ostree").and_then(|o| o.get("server")) {
        Some(Value::String(s)) => match url::parse(s) {
            Ok(u) => {
                if u.scheme == Scheme::Http {
                    problems.push(Problem::warning(format!(
                        "`ostree.server` `{}` is plain http: pushes are not encrypted (OTA Community Edition serves treehub this way)",
                        u.text
                    )));
                }
                Some(u.text)
            }
            Err(why) => {
                problems.push(Problem::error(format!(
                    "`ostree.server` is not a usable URL: {why}"
                )));
                None
            }
        },
        Some(_) => {
            problems.push(Problem::error("`ostree.server` is not a string"));
            None
        }
        None => {
            problems.push(Problem::error(
                "has no `ostree.server`; garage-push does not know where treehub is",
            ));
            None
        }
    };

    let auth = if has_client_auth_p12 {
        Some(Auth::MutualTls)
    } else if let Some(oauth2) = object.get("oauth2") {
        check_oauth2(oauth2, &mut problems);
        Some(Auth::OAuth2)
    } else if let Some(basic) = object.get("basic_auth") {
        for field in ["user", "password"] {
            if !basic.get(field).is_some_and(Value::is_string) {
                problems.push(Problem::error(format!(
                    "`basic_auth.{field}` is missing or not a string"
                )));
            }
        }
        Some(Auth::Basic)
    } else {
        match object.get("no_auth") {
            Some(Value::Bool(true)) => {}
            // garage-sign refuses `no_auth: false` without an oauth2 section.
            Some(Value::Bool(false)) => problems.push(Problem::error(
                "`no_auth` is false but there is no `oauth2` section; garage-sign refuses this: add the OAuth2 credentials or set `no_auth` to true",
            )),
            Some(_) => problems.push(Problem::error("`no_auth` is not a boolean")),
            None => problems.push(Problem::warning(
                "has no authentication section: garage-push will push without credentials",
            )),
        }
        Some(Auth::None)
    };
    Treehub {
        auth,
        server,
        problems,
    }
}

fn check_oauth2(oauth2: &Value, problems: &mut Vec<Problem>) {
    let Some(fields) = oauth2.as_object() else {
        problems.push(Problem::error("`oauth2` is not an object"));
        return;
    };
    for field in ["server", "client_id", "client_secret"] {
        match fields.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) => {
                problems.push(Problem::error(format!("`oauth2.{field}` is empty")))
            }
            _ => problems.push(Problem::error(format!(
                "`oauth2.{field}` is missing or not a string; garage-push cannot authenticate"
            ))),
        }
    }
    if let Some(Value::String(server)) = fields.get("server") {
        match url::parse(server) {
            Ok(u) if u.scheme == Scheme::Http => problems.push(Problem::warning(format!(
                "`oauth2.server` `{}` is plain http: the client secret is sent unencrypted",
                u.text
            ))),
            Ok(_) => {}
            Err(why) if !server.is_empty() => problems.push(Problem::error(format!(
                "`oauth2.server` is not a usable URL: {why}"
            ))),
            Err(_) => {}
        }
    }
    if let Some(scope) = fields.get("scope") {
        if !scope.is_string() {
            problems.push(Problem::error("`oauth2.scope` is not a string"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Severity;

    fn severities(t: &Treehub) -> Vec<Severity> {
        t.problems.iter().map(|p| p.severity).collect()
    }

    #[test]
    fn oauth2_form() {
        let t = check(br#"{"oauth2":{"server":"https://auth.example.test","client_id":"id","client_secret":"TEST-ONLY-s3cr3t"},"ostree":{"server":"https://treehub.example.test/api/v3"}}"#, false);
        assert_eq!(t.auth, Some(Auth::OAuth2));
        assert_eq!(
            t.server.as_deref(),
            Some("https://treehub.example.test/api/v3")
        );
        assert!(t.problems.is_empty(), "{:?}", t.problems);
    }

    #[test]
    fn client_auth_p12_wins() {
        let t = check(
            br#"{"oauth2":{},"ostree":{"server":"https://t.example.test"}}"#,
            true,
        );
        assert_eq!(t.auth, Some(Auth::MutualTls));
        assert!(t.problems.is_empty());
    }

    #[test]
    fn no_auth_forms() {
        let t = check(
            br#"{"no_auth": true, "ostree": {"server": "http://treehub.example.test/api/v3/"}}"#,
            false,
        );
        assert_eq!(t.auth, Some(Auth::None));
        assert_eq!(severities(&t), [Severity::Warning]);
        let t = check(
            br#"{"no_auth": false, "ostree": {"server": "https://t.example.test"}}"#,
            false,
        );
        assert_eq!(severities(&t), [Severity::Error]);
        let t = check(
            br#"{"ostree": {"server": "https://localhost:2443/api/v3"}}"#,
            false,
        );
        assert_eq!(severities(&t), [Severity::Warning]);
    }

    #[test]
    fn broken_files_are_errors_without_the_secret() {
        for raw in [
            &br#"{"oauth2":{"server":"https://a.example.test","client_id":"x"},"ostree":{"server":"https://t.example.test"}}"#[..],
            br#"{"oauth2":{"server":"https://a.example.test","client_id":"x","client_secret":"TEST-ONLY-s3cr3t"}}"#,
            br#"{"oauth2":{"server":"https://a.example.test","client_id":"x","client_secret":"TEST-ONLY-s3cr3t"},"ostree":{"server":"treehub"}}"#,
            br#"{"oauth2":"TEST-ONLY-s3cr3t","ostree":{"server":"https://t.example.test"}}"#,
            br#"{"basic_auth":{"user":"u"},"ostree":{"server":"https://t.example.test"}}"#,
            b"{\"oauth2\": {\"client_secret\": \"TEST-ONLY-s3cr3t\"",
            b"[]",
        ] {
            let t = check(raw, false);
            assert!(t.problems.iter().any(Problem::is_error), "{}", String::from_utf8_lossy(raw));
            for p in &t.problems {
                assert!(!p.message.contains("s3cr3t"), "{}", p.message);
            }
        }
    }
}
