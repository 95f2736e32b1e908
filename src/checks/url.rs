//! URL files (`autoprov.url`, `tufrepo.url`, `api_gateway.url`) and URL
//! values inside JSON.
//!
//! aktualizr reads `autoprov.url` trimmed of `" \t\r\n"` at both ends and
//! uses the rest as `tls.server`, to which it appends `/director`, `/repo`
//! and so on (domain.md sections 1 and 3). Whatever survives the trim must
//! therefore be one plain absolute http(s) URL: no whitespace, quotes,
//! control characters or BOM inside. The check is deliberately stricter than
//! RFC 3986 (no user info, ASCII host names only): a credentials URL never
//! needs more, and everything else is a sign of a damaged file.

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A URL that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// The URL as aktualizr will use it (trimmed).
    pub text: String,
    pub scheme: Scheme,
    pub host: String,
    pub port: Option<u16>,
    /// Path, query and fragment, as written (may be empty).
    pub rest: String,
}

impl Url {
    /// The URL without the `/`s that end it (`https://host/api/` ->
    /// `https://host/api`, `https://host//` -> `https://host`); `None` when
    /// it does not end with one. aktualizr appends `/devices`,
    /// `/director/ecus` and so on to the URL as it is: a final `/` makes
    /// every path start with `//`, which a server that does not merge
    /// slashes answers with 404.
    pub fn without_final_slashes(&self) -> Option<Url> {
        let rest = self.rest.trim_end_matches('/');
        let cut = self.rest.len() - rest.len();
        (cut > 0).then(|| Url {
            text: self.text[..self.text.len() - cut].to_string(),
            rest: rest.to_string(),
            ..self.clone()
        })
    }
}

/// What aktualizr trims from both ends of a URL file.
const AKTUALIZR_TRIM: &[char] = &[' ', '\t', '\r', '\n'];

/// Trims a URL file the way aktualizr does and parses what remains.
pub fn parse_file(bytes: &[u8]) -> Result<Url, String> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err("it starts with a UTF-8 byte order mark, which aktualizr keeps as part of the URL; save the file without a BOM".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "it is not valid UTF-8".to_string())?;
    parse(text.trim_matches(AKTUALIZR_TRIM))
}

/// Parses one absolute http(s) URL (already trimmed).
pub fn parse(text: &str) -> Result<Url, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "it contains the non-ASCII character {}; write host names in their punycode form",
            c.escape_unicode()
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_ascii_control()) {
        return Err(format!(
            "it contains the control character {} inside it",
            c.escape_default()
        ));
    }
    if text.contains(char::is_whitespace) {
        return Err("it contains whitespace inside it".into());
    }
    if let Some(c) = text.chars().find(|c| matches!(c, '"' | '\'' | '`')) {
        return Err(format!("it contains the quote {c}; write the URL bare"));
    }
    if text.contains('\\') {
        return Err("it contains a backslash".into());
    }
    let (scheme, after) = match text.split_once("://") {
        Some((s, after)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, after),
        Some((s, after)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, after),
        Some((s, _)) => return Err(format!("its scheme `{s}` is not https or http")),
        None => return Err("it is not an absolute URL (no `https://`)".into()),
    };
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(authority_end);
    if authority.contains('@') {
        return Err(
            "it carries user information (`user@`); credentials do not belong in a URL".into(),
        );
    }
    let (host, port) = split_host_port(authority)?;
    Ok(Url {
        text: text.to_string(),
        scheme,
        host,
        port,
        rest: rest.to_string(),
    })
}

/// The most characters of a host name, and of one of its labels (RFC 1035
/// section 2.3.4, as resolvers enforce it: 255 octets on the wire are 253
/// characters written out).
const MAX_HOST_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// A DNS host name: labels of 1 to 63 letters, digits and `-`, not starting
/// or ending with `-` (RFC 952, RFC 1123 section 2.1), 253 characters in
/// all. A name past the limits is never quoted whole: it can be megabytes.
fn check_host_name(host: &str) -> Result<(), String> {
    if host.len() > MAX_HOST_NAME {
        return Err(format!(
            "its host name is {} characters long, more than the {MAX_HOST_NAME} DNS allows",
            host.len()
        ));
    }
    for label in host.split('.') {
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("its host `{host}` is not a valid host name"));
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "its host name has a label of {} characters, more than the {MAX_LABEL} DNS allows",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "its host `{host}` has the label `{label}`, which starts or ends with `-`"
            ));
        }
    }
    Ok(())
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| "its IPv6 host has no closing `]`".to_string())?;
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("its IPv6 host `[{addr}]` is not an address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("unexpected `{p}` after its IPv6 host"))?,
            ),
        };
        (format!("[{addr}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("it has no host".into());
    }
    if !host.starts_with('[') {
        check_host_name(&host)?;
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(format!("its port `{p}` is not a number from 1 to 65535")),
        },
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_gateway_urls_parse() {
        let url = parse_file(b"https://bd8012b4-cf0f-46ca-9d2c-46a41d534af5.tcpgw.prod01.advancedtelematic.com:443\n")
            .expect("valid");
        assert_eq!(url.scheme, Scheme::Https);
        assert_eq!(url.port, Some(443));
        assert_eq!(url.rest, "");
        let url = parse_file(b"http://localhost:2443/api/v3").expect("valid");
        assert_eq!(url.scheme, Scheme::Http);
        assert_eq!(url.host, "localhost");
        assert_eq!(url.rest, "/api/v3");
        assert_eq!(parse("https://[::1]:8443/x").expect("v6").host, "[::1]");
    }

    #[test]
    fn final_slashes_come_off() {
        let cases = [
            ("https://gw.example.test/", "https://gw.example.test", ""),
            (
                "https://gw.example.test:8443//",
                "https://gw.example.test:8443",
                "",
            ),
            (
                "https://gw.example.test/api/v3/",
                "https://gw.example.test/api/v3",
                "/api/v3",
            ),
        ];
        for (given, text, rest) in cases {
            let url = parse(given)
                .expect("valid")
                .without_final_slashes()
                .expect(given);
            assert_eq!(
                (url.text.as_str(), url.rest.as_str()),
                (text, rest),
                "{given}"
            );
            assert_eq!(url.host, "gw.example.test");
        }
        assert_eq!(
            parse("https://gw.example.test/api")
                .expect("valid")
                .without_final_slashes(),
            None
        );
        assert_eq!(
            parse("https://gw.example.test")
                .expect("valid")
                .without_final_slashes(),
            None
        );
    }

    #[test]
    fn trimmed_like_aktualizr() {
        let url = parse_file(b" \t\r\nhttps://gw.example.test\r\n\t ").expect("valid");
        assert_eq!(url.text, "https://gw.example.test");
    }

    #[test]
    fn host_names_keep_to_the_dns_limits() {
        let label63 = "a".repeat(63);
        let name253 = format!("{label63}.{label63}.{label63}.{}", "b".repeat(61));
        assert_eq!(name253.len(), 253);
        assert!(parse(&format!("https://{name253}:443")).is_ok());
        assert!(parse(&format!("https://{label63}.example.test")).is_ok());
        let e = parse(&format!("https://{name253}b")).expect_err("254");
        assert!(e.contains("254 characters long, more than the 253"), "{e}");
        let e = parse(&format!("https://{label63}a.example.test")).expect_err("64");
        assert!(e.contains("a label of 64 characters"), "{e}");
        let huge = format!("https://{}.example.test", "a".repeat(3 << 20));
        let e = parse(&huge).expect_err("3 MiB");
        assert!(e.len() < 200, "the name is not quoted: {} bytes", e.len());
    }

    #[test]
    fn refusals_say_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b" \n", "empty"),
            (b"\xEF\xBB\xBFhttps://a.example.test", "byte order mark"),
            (b"https://a.example.test/x y", "whitespace"),
            (b"\"https://a.example.test\"", "quote"),
            (b"https://a.example.test\x0b", "control"),
            (b"https://a.example.test\x00", "control"),
            (b"ftp://a.example.test", "scheme"),
            (b"a.example.test", "absolute"),
            (b"https://", "no host"),
            (b"https://:443", "no host"),
            (b"https://a..b", "host"),
            (b"https://a_b.example", "host"),
            (b"https://a.example.test:0", "port"),
            (b"https://a.example.test:99999", "port"),
            (b"https://a.example.test:+1", "port"),
            (b"https://user:pw@a.example.test", "user information"),
            (b"https://\xc3\xa4.example.test", "non-ASCII"),
            (b"\xff", "UTF-8"),
            (b"https://a.example.test\\x", "backslash"),
            (b"https://-gw.example.test", "starts or ends with `-`"),
            (b"https://gw-.example.test", "starts or ends with `-`"),
        ];
        for (raw, word) in cases {
            match parse_file(raw) {
                Err(message) => assert!(message.contains(word), "{raw:?}: {message}"),
                Ok(url) => panic!("{raw:?} parsed as {url:?}"),
            }
        }
    }
}
