//! The architecture, checked: no module imports one that imports it back
//! (directly or around a longer circle); clap and flag names stay in the
//! command line; untrusted bytes are decoded only by the readers (the
//! archive's intake, the crypto parsers, the audit's format readers), each
//! bounded; and only the PKCS#11 module loads a shared library. Reads
//! `src/` as text: every `crate::a::b` and `super::a` path outside
//! `#[cfg(test)]` modules is an edge from the file that names it to the
//! module file it names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Module path (`plan::staging`) -> source text without its test module.
fn modules() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().map_or(true, |e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if matches!(
                parts.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                parts.pop();
            }
            // A test module in a file of its own (`#[cfg(test)] mod tests;`):
            // test modules may reach anywhere.
            if parts.last().map(String::as_str) == Some("tests") {
                continue;
            }
            let text = fs::read_to_string(&path).expect("read");
            // Test modules may reach anywhere; the product may not.
            let test_module = ["#[cfg(test)]\nmod ", "#[cfg(test)]\npub(crate) mod "]
                .iter()
                .filter_map(|m| text.find(m))
                .min();
            let product = match test_module {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            // Doc links are not imports; blank lines keep line numbers.
            let code: String = product
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("//") {
                        "\n".to_string()
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            out.insert(parts.join("::"), code);
        }
    }
    out
}

/// The module files `text` (in module `me`) refers to: by `crate::` and
/// `super::` paths (each name of a `{a, b}` group counted), and the child
/// modules it declares (a parent uses its children).
fn references(me: &str, text: &str, all: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let parent = me.rsplit_once("::").map_or("", |(p, _)| p);
    let mut add = |base: &str, path: &str| {
        let mut parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        // The longest prefix that is a module file is the target; none
        // means an item of `base` itself.
        loop {
            let joined = parts.join("::");
            let full = match (base.is_empty(), joined.is_empty()) {
                (true, _) => joined,
                (false, true) => base.to_string(),
                (false, false) => format!("{base}::{joined}"),
            };
            if all.contains_key(&full) || parts.is_empty() {
                if full != me && !full.is_empty() {
                    out.insert(full);
                }
                return;
            }
            parts.pop();
        }
    };
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        for (i, _) in text.match_indices(prefix) {
            if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &text[i + prefix.len()..];
            let path: String = rest.chars().take_while(|c| is_name(*c)).collect();
            let after = &rest[path.len()..];
            match after.strip_prefix('{') {
                Some(group) => {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        let item = item.trim();
                        let item = if item == "self" { "" } else { item };
                        let name: String = item.chars().take_while(|c| is_name(*c)).collect();
                        add(base, &format!("{path}{name}"));
                    }
                }
                None => add(base, &path),
            }
        }
    }
    for line in text.lines() {
        let line = line.trim();
        let decl = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "))
            .and_then(|rest| rest.strip_suffix(';'));
        if let Some(child) = decl {
            add(me, child);
        }
    }
    out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let all = modules();
    assert!(all.contains_key("plan::staging"), "{:?}", all.keys());
    let edges: BTreeMap<&str, BTreeSet<String>> = all
        .iter()
        .map(|(m, text)| (m.as_str(), references(m, text, &all)))
        .collect();
    // Depth-first search for a circle, reporting the first one found.
    fn visit<'a>(
        m: &'a str,
        edges: &'a BTreeMap<&str, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| *p == m) {
            let mut circle: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
            circle.push(m.to_string());
            return Some(circle);
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for next in edges.get(m).into_iter().flatten() {
            if let Some((key, _)) = edges.get_key_value(next.as_str()) {
                if let Some(c) = visit(key, edges, path, done) {
                    return Some(c);
                }
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(circle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn clap_stays_in_the_command_line() {
    for (module, text) in modules() {
        if module.is_empty() || module == "cli" || module.starts_with("cli::") {
            continue;
        }
        assert!(
            !text.contains("clap::") && !text.contains("use clap"),
            "`{module}` uses clap: convert to core types in src/cli/ instead"
        );
    }
}

#[test]
fn flag_names_stay_in_the_command_line() {
    for (module, text) in modules() {
        if module == "cli"
            || module.starts_with("cli::")
            || module == "commands"
            || module.starts_with("commands::")
        {
            continue;
        }
        // A flag in a message: `--` then a lowercase letter, inside quotes.
        for (n, line) in text.lines().enumerate() {
            let in_string = line.contains('"');
            let flag = line
                .match_indices("--")
                .any(|(i, _)| line[i + 2..].starts_with(|c: char| c.is_ascii_lowercase()));
            assert!(
                !(in_string && flag),
                "`{module}` names a flag on its line {}: `{}`; let the command line word it",
                n + 1,
                line.trim()
            );
        }
    }
}

#[test]
fn the_checker_sees_a_circle() {
    let mut all = BTreeMap::new();
    all.insert("a".to_string(), "use crate::b::thing;".to_string());
    all.insert("b".to_string(), "fn f() { crate::a::g() }".to_string());
    all.insert("c::d".to_string(), "use super::e::X;".to_string());
    all.insert("c::e".to_string(), String::new());
    all.insert("c".to_string(), String::new());
    assert_eq!(
        references("a", &all["a"], &all),
        BTreeSet::from(["b".to_string()])
    );
    assert_eq!(
        references("b", &all["b"], &all),
        BTreeSet::from(["a".to_string()])
    );
    assert_eq!(
        references("c::d", &all["c::d"], &all),
        BTreeSet::from(["c::e".to_string()])
    );
    // Groups, `self`, declared children, and an item of the parent.
    all.insert(
        "f".to_string(),
        "use crate::c::{self, e};\npub mod g;\n".to_string(),
    );
    all.insert("f::g".to_string(), "use super::Thing;".to_string());
    assert_eq!(
        references("f", &all["f"], &all),
        BTreeSet::from(["c".to_string(), "c::e".to_string(), "f::g".to_string()])
    );
    assert_eq!(
        references("f::g", &all["f::g"], &all),
        BTreeSet::from(["f".to_string()])
    );
}

/// Where untrusted bytes may be decoded: the archive's intake, the
/// certificate and key parsers, and the audit's format readers (each
/// bounded by its own limits: docs/inspect.md, docs/crypto.md,
/// docs/audit.md). Everything else takes their typed results.
const DECODERS: &[&str] = &[
    "intake",
    "crypto",
    "audit::decode",
    "audit::disk",
    "audit::formats",
    "audit::git",
    "audit::ostree",
    "audit::patterns",
];

/// What decoding untrusted bytes looks like in the code: binary fields
/// read by hand, the decompressors, the zip reader, and the DER, X.509,
/// PKCS and SEC1 parsers.
const DECODING: &[&str] = &[
    "from_le_bytes",
    "from_be_bytes",
    "flate2::",
    "miniz_oxide::",
    "bzip2_rs::",
    "lz4_flex::",
    "ruzstd::",
    "ZipArchive",
    "zip::read",
    "from_der",
    "der::Decode",
    "Decode as _",
    "x509_cert::",
    "pkcs12::",
    "pkcs8::",
    "pkcs1::",
    "sec1::",
    "cms::",
];

/// Where a shared library may be loaded: the PKCS#11 module only.
const LOADERS: &[&str] = &["crypto::pkcs11"];

/// What loading a shared library looks like in the code.
const LOADING: &[&str] = &[
    "libloading",
    "cryptoki::",
    "use cryptoki",
    "Pkcs11::new",
    "dlopen",
    "Library::new",
    "#[link",
    "extern \"C\"",
];

/// `module` is `prefix` or below it.
fn within(module: &str, prefix: &str) -> bool {
    module == prefix || module.starts_with(&format!("{prefix}::"))
}

/// `token` stands in `line` of a module whose text is `text`. A crate's
/// path (`pkcs12::`) counts where a path starts (not `crate::crypto::pkcs12::`),
/// and not in a module that imports one of our modules of that name
/// (`use crate::crypto::pkcs12::{self, ..}` calls our reader).
fn names(text: &str, line: &str, token: &str) -> bool {
    if !line.contains(token) {
        return false;
    }
    let Some(name) = token.strip_suffix("::") else {
        return true;
    };
    if text.contains(&format!("::{name}::{{self")) || text.contains(&format!("::{name};")) {
        return false;
    }
    line.match_indices(token)
        .any(|(i, _)| !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':'))
}

/// `module:line: token` for each of `tokens` in a module outside `allowed`.
fn outside(all: &BTreeMap<String, String>, allowed: &[&str], tokens: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (module, text) in all {
        if allowed.iter().any(|a| within(module, a)) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            for token in tokens {
                if names(text, line, token) {
                    found.push(format!("{module}:{}: {token}", n + 1));
                }
            }
        }
    }
    found
}

#[test]
fn untrusted_bytes_are_decoded_only_by_the_readers() {
    let found = outside(&modules(), DECODERS, DECODING);
    assert!(
        found.is_empty(),
        "decoding outside intake/, crypto/ and the audit's format readers (move it there, bounded, and hand over the typed result): {found:#?}"
    );
}

#[test]
fn only_the_pkcs11_module_loads_a_shared_library() {
    let found = outside(&modules(), LOADERS, LOADING);
    assert!(
        found.is_empty(),
        "a shared library loaded outside crypto::pkcs11: {found:#?}"
    );
}

#[test]
fn the_checker_sees_decoding_and_loading_out_of_place() {
    let mut all = BTreeMap::new();
    all.insert(
        "plan::staging".to_string(),
        "let n = u32::from_be_bytes(b);\nlet z = zip::read::ZipArchive::new(f);\n".to_string(),
    );
    all.insert(
        "checks".to_string(),
        "use crate::crypto::pkcs12::{self, P12};\nlet p = pkcs12::open(d);\n".to_string(),
    );
    all.insert(
        "audit::walk".to_string(),
        "let c = x509_cert::Certificate::from_der(d);\n".to_string(),
    );
    all.insert(
        "audit::disk::ext4".to_string(),
        "let n = u32::from_le_bytes(b);\n".to_string(),
    );
    all.insert(
        "commands::device_certs".to_string(),
        "let p = cryptoki::context::Pkcs11::new(m);\n".to_string(),
    );
    all.insert(
        "crypto::pkcs11".to_string(),
        "use cryptoki::context::Pkcs11;\nlet p = Pkcs11::new(m);\n".to_string(),
    );
    assert_eq!(
        outside(&all, DECODERS, DECODING),
        [
            "audit::walk:1: from_der",
            "audit::walk:1: x509_cert::",
            "plan::staging:1: from_be_bytes",
            "plan::staging:2: ZipArchive",
            "plan::staging:2: zip::read",
        ]
    );
    assert_eq!(
        outside(&all, LOADERS, LOADING),
        [
            "commands::device_certs:1: cryptoki::",
            "commands::device_certs:1: Pkcs11::new",
        ]
    );
    // And the real tree has each kind where it belongs: the rules are not
    // vacuous.
    let real = modules();
    assert!(!outside(&real, &[], DECODING).is_empty());
    assert!(outside(&real, &[], LOADING)
        .iter()
        .any(|f| f.starts_with("crypto::pkcs11:")));
}
