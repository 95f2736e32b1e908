//! The unit tests of the patterns: what is derived from an archive and the
//! secret files, each encoded form, and the search that finds them.

use super::*;
use crate::digest::sha256_hex;
use crate::intake::archive::Entry;
use encode::Alphabet;

fn archive(entries: &[(&str, &[u8])]) -> Archive {
    Archive {
        sha256: sha256_hex(b"archive"),
        entries: entries
            .iter()
            .map(|(name, data)| Entry {
                name: (*name).into(),
                sha256: sha256_hex(data),
                data: data.to_vec(),
            })
            .collect(),
        directories: Vec::new(),
    }
}

fn found(needles: &Needles, hay: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    needles.search(hay, &mut hits);
    hits.iter()
        .map(|&n| needles.needles[n].what.clone())
        .collect()
}

#[test]
fn a_short_client_secret_is_not_searched_and_says_so() {
    let a = archive(&[("treehub.json", br#"{"oauth2":{"client_secret":"short"}}"#)]);
    let n = Needles::from_archive(&a, 100);
    assert!(found(&n, b"the short one").is_empty());
    assert_eq!(n.notes.len(), 1, "{:?}", n.notes);
    assert!(n.notes[0].contains("shorter than 16 bytes"));
    assert!(!n.notes[0].contains("short\""));
}

#[test]
fn an_ed25519_key_is_found_in_either_case_and_by_its_seed_and_bytes() {
    let key: Vec<u8> = (0u8..64)
        .map(|b| b.wrapping_mul(37).wrapping_add(11))
        .collect();
    let hex = crate::digest::hex(&key);
    let sec = format!(r#"{{"keytype":"ED25519","keyval":{{"private":"{hex}"}}}}"#);
    let n = Needles::from_archive(&archive(&[("targets.sec", sec.as_bytes())]), 100);
    let hex_name = "the private key of targets.sec (hex)";
    let raw_name = "the private key of targets.sec (raw bytes)";
    assert_eq!(found(&n, hex.as_bytes()), [hex_name]);
    assert_eq!(found(&n, hex.to_ascii_uppercase().as_bytes()), [hex_name]);
    assert_eq!(found(&n, &hex.as_bytes()[..64]), [hex_name]);
    assert_eq!(found(&n, &key), [raw_name]);
    assert_eq!(found(&n, &key[..32]), [raw_name]);
    // The public half is no secret.
    assert!(found(&n, &hex.as_bytes()[64..]).is_empty());
}

#[test]
fn device_entries_are_not_needles_and_tiny_entries_have_no_digest() {
    let a = archive(&[
        ("autoprov.url", b"https://gateway.example.test:443"),
        ("root.json", br#"{"signed":{},"signatures":[]}"#),
        ("tufrepo.url", b""),
    ]);
    let n = Needles::from_archive(&a, 100);
    assert_eq!(n.pattern_count(), 0);
    assert!(!n.wants_digest(0));
    assert!(n.wants_digest(100), "the archive itself");
}

/// Deterministic bytes (xorshift), no crate needed.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// `text` with a break of `sep` every `width` characters.
fn wrap(text: &[u8], width: usize, sep: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in text.chunks(width).enumerate() {
        if i > 0 {
            out.extend_from_slice(sep.as_bytes());
        }
        out.extend_from_slice(line);
    }
    out
}

fn b64(data: &[u8]) -> Vec<u8> {
    encode::base64(data, Alphabet::Standard)
}

const TEXT_SECRET: &str = "s3cr/t-Value_0123456789\"abcdef";

fn treehub_needles() -> Needles {
    let treehub = serde_json::json!({
        "oauth2": {"server": "https://auth.example.test", "client_id": "a-client-id-of-some-length", "client_secret": TEXT_SECRET},
        "ostree": {"server": "https://treehub.example.test"}
    })
    .to_string();
    Needles::from_archive(&archive(&[("treehub.json", treehub.as_bytes())]), 100)
}

#[test]
fn each_encoding_of_a_text_secret_is_found_by_its_name() {
    let n = treehub_needles();
    let name = r#"the value of "oauth2.client_secret" in treehub.json"#;
    let t = TEXT_SECRET;
    let mut cases: Vec<(Vec<u8>, String)> = vec![
        (t.as_bytes().to_vec(), String::new()),
        (t.to_ascii_uppercase().into_bytes(), " (upper-cased)".into()),
        (t.to_ascii_lowercase().into_bytes(), " (lower-cased)".into()),
        (encode::hex_lower(t.as_bytes()), " (hex)".into()),
        (encode::hex_upper(t.as_bytes()), " (hex)".into()),
        (
            serde_json::to_string(t).unwrap().into_bytes(),
            " (JSON-escaped)".into(),
        ),
        (
            t.replace('/', "\\/").replace('"', "\\\"").into_bytes(),
            " (JSON-escaped)".into(),
        ),
        (encode::utf16_le(t), " (UTF-16)".into()),
        (encode::utf16_be(t), " (UTF-16)".into()),
    ];
    let mut all_u = String::new();
    for u in t.encode_utf16() {
        all_u.push_str(&format!("\\u{u:04X}"));
    }
    cases.push((all_u.into_bytes(), " (JSON-escaped)".into()));
    for prefix in 0..3 {
        let mut data = vec![b'x'; prefix];
        data.extend_from_slice(t.as_bytes());
        data.extend_from_slice(b"tail");
        let url = encode::base64(&data, Alphabet::Url);
        // Where the alphabets agree, the one form is "base64".
        let url_name = if url == b64(&data) {
            " (base64)"
        } else {
            " (base64url)"
        };
        cases.push((b64(&data), " (base64)".into()));
        cases.push((url, url_name.into()));
    }
    for (hay, suffix) in cases {
        let mut framed = b"<<".to_vec();
        framed.extend_from_slice(&hay);
        framed.extend_from_slice(b">>");
        assert_eq!(
            found(&n, &framed),
            [format!("{name}{suffix}")],
            "{}",
            String::from_utf8_lossy(&hay)
        );
    }
    // The public values are not needles.
    assert!(found(&n, b"a-client-id-of-some-length https://auth.example.test").is_empty());
}

#[test]
fn random_bytes_hold_none_of_the_needles() {
    let n = treehub_needles();
    let hay = noise(256 * 1024, 0x9e37_79b9_7f4a_7c15);
    assert!(found(&n, &hay).is_empty());
    let ed = ed25519_needles(&noise(64, 7));
    assert!(found(&ed, &hay).is_empty());
    let text = b64(&hay);
    assert!(found(&ed, &text).is_empty());
    assert!(found(&n, &text).is_empty());
}

fn ed25519_needles(key: &[u8]) -> Needles {
    let hex = crate::digest::hex(key);
    let sec = format!(r#"{{"keytype":"ED25519","keyval":{{"private":"{hex}"}}}}"#);
    Needles::from_archive(&archive(&[("targets.sec", sec.as_bytes())]), 100)
}

#[test]
fn an_ed25519_key_is_found_as_pkcs8_pem_wrapped_any_way_and_in_an_openssh_file() {
    let key = noise(64, 42);
    let n = ed25519_needles(&key);
    let mut der = crate::digest::hex(&[0u8; 0]).into_bytes();
    der.clear();
    der.extend([
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ]);
    der.extend_from_slice(&key[..32]);
    let body = b64(&der);
    assert_eq!(
        found(&n, &der),
        ["the private key of targets.sec (raw bytes)"]
    );
    assert_eq!(
        found(&n, &body),
        ["the private key of targets.sec (base64)"]
    );
    // OpenSSH: the private section holds seed then public key.
    let mut blob = b"openssh-key-v1\0".to_vec();
    let string = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend((s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    };
    string(&mut blob, b"none");
    string(&mut blob, b"none");
    string(&mut blob, b"");
    blob.extend(1u32.to_be_bytes());
    let mut public = Vec::new();
    string(&mut public, b"ssh-ed25519");
    string(&mut public, &key[32..]);
    string(&mut blob, &public);
    let mut private = vec![1, 2, 3, 4, 1, 2, 3, 4];
    string(&mut private, b"ssh-ed25519");
    string(&mut private, &key[32..]);
    string(&mut private, &key);
    string(&mut private, b"user@host");
    string(&mut blob, &private);
    let pem = wrap(&b64(&blob), 70, "\n");
    assert_eq!(found(&n, &pem), ["the private key of targets.sec (base64)"]);
    // PEM's 64 columns, MIME's 76, CRLF, JSON's "\n", and any width
    // of 32 or more, starting at any column.
    let long = b64(&key);
    for (width, sep) in [
        (64, "\n"),
        (76, "\r\n"),
        (64, "\\n"),
        (64, "\\r\\n"),
        (60, "\n  "),
    ] {
        let text = wrap(&long, width, sep);
        assert_eq!(
            found(&n, &text),
            ["the private key of targets.sec (base64)"],
            "{width} {sep:?}"
        );
    }
    for width in 32..100 {
        for column in [0, 1, 7, 15, 16, 17, 31] {
            let mut text = vec![b'A'; column];
            text.extend_from_slice(&long);
            let wrapped = wrap(&text, width, "\n");
            assert_eq!(
                found(&n, &wrapped),
                ["the private key of targets.sec (base64)"],
                "width {width} column {column}"
            );
        }
    }
    // Cut short, it is not the key.
    assert!(found(&n, &long[..30]).is_empty());
}

fn rsa_key(work: &crate::crypto::test_support::Workdir) -> (Needles, Vec<u8>) {
    work.key("k.pem", "rsa1024");
    work.traditional("k.pem", "rsa.pem");
    let pem = String::from_utf8(work.read("rsa.pem")).unwrap();
    let sec = serde_json::json!({"keytype": "RSA", "keyval": {"private": pem}}).to_string();
    let n = Needles::from_archive(&archive(&[("targets.sec", sec.as_bytes())]), 100);
    (n, pem.into_bytes())
}

#[test]
fn an_rsa_key_is_found_by_its_private_parts_and_never_by_its_public_key() {
    let work = crate::crypto::test_support::Workdir::new("audit-rsa");
    let (n, pem) = rsa_key(&work);
    work.openssl(&["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]);
    work.openssl(&[
        "pkey", "-in", "k.pem", "-pubout", "-outform", "DER", "-out", "pub.der",
    ]);
    work.openssl(&["pkey", "-in", "k.pem", "-outform", "DER", "-out", "k.der"]);
    for public in [work.read("pub.pem"), work.read("pub.der")] {
        assert!(found(&n, &public).is_empty());
    }
    let body: Vec<u8> = String::from_utf8(pem.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
        .into_bytes();
    let b64_name = "the private key of targets.sec (base64)";
    assert_eq!(found(&n, &pem), [b64_name]);
    assert_eq!(found(&n, &wrap(&body, 76, "\n")), [b64_name]);
    let json = serde_json::json!({ "key": String::from_utf8(pem).unwrap() }).to_string();
    assert_eq!(found(&n, json.as_bytes()), [b64_name]);
    assert_eq!(
        found(&n, &work.read("k.der")),
        ["the private key of targets.sec (raw bytes)"]
    );
}

#[test]
fn automata_of_at_most_64_patterns_find_what_one_automaton_finds() {
    let key = noise(64, 3);
    let hex = crate::digest::hex(&key);
    let treehub = serde_json::json!({"oauth2": {"client_secret": TEXT_SECRET}}).to_string();
    let sec = format!(r#"{{"keytype":"ED25519","keyval":{{"private":"{hex}"}}}}"#);
    let a = archive(&[
        ("treehub.json", treehub.as_bytes()),
        ("targets.sec", sec.as_bytes()),
        (
            "provision.json",
            br#"{"secret":"provision-secret-0123456789"}"#,
        ),
        ("client_auth.p12", &noise(300, 8)),
        ("server.p12", &noise(300, 12)),
    ]);
    let extra = Extra::default();
    let grouped = Needles::build_grouped(&a, 100, &extra, matcher::GROUP);
    let single = Needles::build_grouped(&a, 100, &extra, usize::MAX);
    assert!(
        grouped.pattern_count() > matcher::GROUP,
        "{}",
        grouped.pattern_count()
    );
    assert_eq!(single.matcher.groups(), 1);
    assert!(grouped.matcher.groups() > 1);
    let mut corpus = noise(64 * 1024, 11);
    for part in [
        b64(TEXT_SECRET.as_bytes()),
        encode::utf16_be(TEXT_SECRET),
        hex.to_ascii_uppercase().into_bytes(),
        b"provision-secret-0123456789".to_vec(),
        wrap(&b64(&key), 64, "\n"),
    ] {
        corpus.extend_from_slice(&part);
        corpus.extend(noise(1000, part.len() as u64));
    }
    let mut one = found(&grouped, &corpus);
    let mut other = found(&single, &corpus);
    one.sort();
    other.sort();
    assert_eq!(one.len(), 5, "{one:?}");
    assert_eq!(one, other);
}

#[test]
fn every_json_string_is_a_needle_named_by_its_path_and_short_or_numeric_ones_are_noted() {
    let provision = br#"{"server":"https://x.example.test","client_id":"some-client-id-0123456","secret":"torizon-provision-secret-42","nested":{"list":["second-secret-in-a-list"],"token":"short","password":1234,"count":7},"api":"http://plain.example.test/with/a/long/path"}"#;
    let n = Needles::from_archive(&archive(&[("provision.json", provision)]), 100);
    assert_eq!(
        found(&n, b"x torizon-provision-secret-42 x"),
        [r#"the value of "secret" in provision.json"#]
    );
    assert_eq!(
        found(&n, b"second-secret-in-a-list"),
        [r#"the value of "nested.list[0]" in provision.json"#]
    );
    assert!(found(
        &n,
        b"some-client-id-0123456 http://plain.example.test/with/a/long/path"
    )
    .is_empty());
    let notes = n.notes.join("\n");
    assert!(
        notes.contains(r#"the value of "nested.token" in provision.json is shorter than 16"#),
        "{notes}"
    );
    assert!(
        notes.contains(r#"the value of "nested.password" in provision.json is a number"#),
        "{notes}"
    );
    assert!(!notes.contains("count"), "{notes}");
    assert!(
        !notes.contains("short\"") && !notes.contains("1234"),
        "{notes}"
    );
}

#[test]
fn a_secret_file_is_found_whole_and_by_its_key_material() {
    let work = crate::crypto::test_support::Workdir::new("audit-secret-file");
    work.key("ca.pem", "ec");
    work.traditional("ca.pem", "ca.sec1.pem");
    work.openssl(&["pkey", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"]);
    let data = work.read("ca.pem");
    let extra = Extra {
        secret_files: vec![SecretFile {
            name: "fleet-ca.key".into(),
            data: data.clone(),
        }],
        ..Extra::default()
    };
    let n = Needles::build(&archive(&[]), 100, &extra);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    let whole = n.by_digest(&digest).unwrap();
    assert_eq!(n.needles[whole].what, "the secret file 'fleet-ca.key'");
    assert_eq!(
        found(&n, &work.read("ca.sec1.pem")),
        ["the private key of the secret file 'fleet-ca.key' (base64)"]
    );
    assert_eq!(
        found(&n, &work.read("ca.der")),
        ["the private key of the secret file 'fleet-ca.key' (raw bytes)"]
    );
}

#[test]
fn any_private_key_finds_keys_by_structure_never_certificates_or_public_keys() {
    let work = crate::crypto::test_support::Workdir::new("audit-any-key");
    work.key("rsa.pem", "rsa1024");
    work.key("ec.pem", "ec");
    work.key("ed.pem", "ed25519");
    work.traditional("rsa.pem", "rsa1.pem");
    work.traditional("ec.pem", "sec1.pem");
    work.ca("ec.pem", "ca.pem", "/CN=test-ca", 30);
    for (key, out) in [("rsa.pem", "rsa"), ("ec.pem", "ec"), ("ed.pem", "ed")] {
        work.openssl(&[
            "pkey",
            "-in",
            key,
            "-outform",
            "DER",
            "-out",
            &format!("{out}.der"),
        ]);
        work.openssl(&["pkey", "-in", key, "-pubout", "-out", &format!("{out}.pub")]);
    }
    work.openssl(&[
        "rsa",
        "-in",
        "rsa.pem",
        "-traditional",
        "-outform",
        "DER",
        "-out",
        "rsa1.der",
    ]);
    work.openssl(&["ec", "-in", "ec.pem", "-outform", "DER", "-out", "sec1.der"]);
    let p12 = work.p12("k.p12", "pw", &["-inkey", "ec.pem", "-in", "ca.pem"]);
    let extra = Extra {
        any_private_key: true,
        allow: vec!["/var/sota/import/pkey.pem".into()],
        ..Extra::default()
    };
    let n = Needles::build(&archive(&[]), 100, &extra);
    let framed = |bytes: Vec<u8>| {
        let mut v = noise(100, 5);
        v.extend(bytes);
        v.extend(noise(100, 6));
        v
    };
    for (file, what) in [
        ("rsa.pem", "a private key (PEM)"),
        ("rsa1.pem", "a private key (PEM)"),
        ("sec1.pem", "a private key (PEM)"),
        ("ed.pem", "a private key (PEM)"),
        ("rsa.der", "a private key (DER)"),
        ("rsa1.der", "a private key (DER)"),
        ("ec.der", "a private key (DER)"),
        ("sec1.der", "a private key (DER)"),
        ("ed.der", "a private key (DER)"),
    ] {
        assert_eq!(found(&n, &framed(work.read(file))), [what], "{file}");
    }
    assert_eq!(found(&n, &p12), ["a private key (PKCS#12 key bag)"]);
    let json =
        serde_json::json!({"k": String::from_utf8(work.read("ec.pem")).unwrap()}).to_string();
    assert_eq!(found(&n, json.as_bytes()), ["a private key (PEM)"]);
    for file in ["ca.pem", "rsa.pub", "ec.pub", "ed.pub"] {
        assert!(found(&n, &work.read(file)).is_empty(), "{file}");
    }
    // Documentation naming the header is not a key.
    let doc = b"a key starts with -----BEGIN PRIVATE KEY----- and ends with -----END PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----\n...\n";
    assert!(found(&n, doc).is_empty());
    assert!(n.allowed("var/sota/import/pkey.pem"));
    assert!(n.allowed("/var/sota/import/pkey.pem"));
    assert!(!n.allowed("var/sota/import/other.pem"));
    // Without the option, none of this is searched.
    let plain = Needles::from_archive(&archive(&[]), 100);
    assert!(found(&plain, &work.read("rsa.pem")).is_empty());
    assert!(n.longest() >= keys::MARKER_SPAN && plain.longest() == 0);
}

#[test]
fn longest_covers_a_wrapped_occurrence_and_stays_small() {
    let key = noise(64, 9);
    let n = ed25519_needles(&key);
    // The longest form is the base64 of the whole entry, one break at
    // most per 16 characters.
    let entry = format!(
        r#"{{"keytype":"ED25519","keyval":{{"private":"{}"}}}}"#,
        crate::digest::hex(&key)
    );
    let coded = entry.len() * 4 / 3;
    let bound = coded + (coded / 16 + 1) * matcher::MAX_BREAK;
    assert!(
        n.longest() > coded && n.longest() <= bound,
        "{} {bound}",
        n.longest()
    );
}

/// 64 MiB of /usr/lib, file after file.
fn usr_lib(limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    for entry in walkdir::WalkDir::new("/usr/lib").into_iter().flatten() {
        if out.len() >= limit {
            break;
        }
        if entry.file_type().is_file() {
            if let Ok(bytes) = std::fs::read(entry.path()) {
                out.extend_from_slice(&bytes[..bytes.len().min(limit - out.len())]);
            }
        }
    }
    out
}

/// Search speed with the needles of a typical archive, with an RSA
/// targets key, and with --any-private-key: `cargo test --release --lib
/// audit::patterns::tests::search_speed -- --ignored --exact --nocapture`.
#[test]
#[ignore]
fn search_speed() {
    let hay = usr_lib(64 << 20);
    let treehub = serde_json::json!({"oauth2": {"server": "https://a.example.test", "client_id": "c", "client_secret": "8d1c5d34-7f3b-4c9e-9a52-1e0f5a7c2b91"}}).to_string();
    let hex = crate::digest::hex(&noise(64, 77));
    let ed = format!(r#"{{"keytype":"ED25519","keyval":{{"private":"{hex}"}}}}"#);
    let work = crate::crypto::test_support::Workdir::new("audit-bench");
    work.key("k.pem", "rsa");
    work.traditional("k.pem", "rsa.pem");
    let pem = String::from_utf8(work.read("rsa.pem")).unwrap();
    let rsa = serde_json::json!({"keytype": "RSA", "keyval": {"private": pem}}).to_string();
    let p12 = noise(3000, 5);
    let typical = archive(&[
        ("treehub.json", treehub.as_bytes()),
        ("targets.sec", ed.as_bytes()),
        ("client_auth.p12", &p12),
    ]);
    let with_rsa = archive(&[
        ("treehub.json", treehub.as_bytes()),
        ("targets.sec", rsa.as_bytes()),
        ("client_auth.p12", &p12),
    ]);
    let keys = Extra {
        any_private_key: true,
        ..Extra::default()
    };
    for (label, n) in [
        ("typical", Needles::from_archive(&typical, 100)),
        ("rsa", Needles::from_archive(&with_rsa, 100)),
        (
            "typical, one automaton",
            Needles::build_grouped(&typical, 100, &Extra::default(), usize::MAX),
        ),
        (
            "rsa, one automaton",
            Needles::build_grouped(&with_rsa, 100, &Extra::default(), usize::MAX),
        ),
        (
            "typical + any-private-key",
            Needles::build(&typical, 100, &keys),
        ),
    ] {
        let start = std::time::Instant::now();
        let mut found = Vec::new();
        for chunk in hay.chunks(256 * 1024) {
            n.search(chunk, &mut found);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{label}: {} patterns in {} automata, longest {}, {:.0} MiB/s, found {}",
            n.pattern_count(),
            n.matcher.groups(),
            n.longest(),
            hay.len() as f64 / secs / (1 << 20) as f64,
            found.len()
        );
    }
}
