//! `device-certs` with a fleet CA below intermediates (`--fleet-ca` holds
//! the issuing CA, then the intermediates up to, not including, the
//! root): `client.pem` carries the chain, `openssl verify -x509_strict
//! -purpose sslclient -CAfile ROOT -untrusted ...` accepts it, and a TLS
//! server that trusts only the root accepts curl sending the file as
//! aktualizr does. Broken chains, and CAs whose limits make every
//! certificate they issue invalid, are refused naming the certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::device_certs::*;
use common::*;

/// [`Cas::chain`] in a test's folder, the fleet CA file `fleet-chain.pem`
/// (the issuing CA, then the intermediate), and the run of `device-certs`
/// with it and the issuing CA's key into `out`.
struct Chain {
    dir: TestDir,
    cas: Cas,
    file: PathBuf,
    out: PathBuf,
    run: Run,
}

impl Chain {
    /// The chain made and `device-certs` run with `args`.
    fn issued(args: &[&str]) -> Chain {
        let dir = TestDir::new();
        let cas = Cas::chain(&dir);
        let file = cas.bundle("fleet-chain.pem", &["issuing", "inter"]);
        let out = dir.join("out");
        let run = issue_with(&file, &cas.path("issuing.key"), &out, args);
        Chain {
            dir,
            cas,
            file,
            out,
            run,
        }
    }
}

#[test]
fn a_fleet_ca_below_intermediates_puts_the_chain_into_client_pem() {
    let Chain {
        dir,
        cas,
        file,
        out,
        run,
    } = Chain::issued(&["--device-id", "d1", "--device-id", "d2", "--format", "dir"]);
    run.success()
        .stderr_has("issued 2 device certificates (ec-p256) in");
    for id in ["d1", "d2"] {
        let client = out.join(id).join(CLIENT);
        let pem = fs::read_to_string(&client).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 3, "{pem}");
        assert!(
            pem.ends_with(&fs::read_to_string(&file).unwrap()),
            "client.pem does not end with the CA file: the issuing CA and the intermediate"
        );
        let (ok, said) = verify_client(&cas.dir, &cas.path("root.pem"), Some(&file), &client);
        assert!(ok && said.ends_with(": OK\n"), "{said}");
        // The chain is needed: the root alone does not verify the leaf.
        let (ok, _) = verify_client(&cas.dir, &cas.path("root.pem"), None, &client);
        assert!(!ok, "verified without the intermediates");
    }
    // Requests are signed into the same chain.
    ec_p256_key(&cas.dir, "dev.key");
    openssl(
        &cas.dir,
        [
            "req",
            "-new",
            "-key",
            "dev.key",
            "-subj",
            "/CN=csr-dev",
            "-out",
            "dev.csr",
        ],
    );
    let out = dir.join("out-csr");
    sota(["device-certs", "--fleet-ca"])
        .arg(&file)
        .arg("--fleet-ca-key")
        .arg(cas.path("issuing.key"))
        .arg("--csr")
        .arg(cas.path("dev.csr"))
        .arg("--out")
        .arg(&out)
        .run()
        .success();
    let client = out.join("csr-dev").join(CLIENT);
    let (ok, said) = verify_client(&cas.dir, &cas.path("root.pem"), Some(&file), &client);
    assert!(ok, "{said}");
}

/// One HTTPS request by curl with `client` (the PEM file, whose whole
/// chain curl sends, as aktualizr does) and `key`, to an `openssl
/// s_server` on 127.0.0.1 that trusts only `root` for client
/// certificates and demands one. Whether the page came back.
fn handshake(dir: &Path, root: &Path, client: &Path, key: &Path) -> (bool, String) {
    let server = TlsServer::start(dir, root, 4);
    let port = &server.port;
    let client = Cmd::new("curl").args([
        "--silent",
        "--show-error",
        "--max-time",
        "20",
        "--cert",
        client.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--cacert",
        server.dir.join("server.pem").to_str().unwrap(),
        &format!("https://127.0.0.1:{port}/"),
    ]);
    server.connect(client, "s_server")
}

#[test]
fn a_server_that_trusts_only_the_root_accepts_the_chain_curl_sends() {
    let Chain {
        dir, cas, out, run, ..
    } = Chain::issued(&["--device-id", "tls-dev"]);
    run.success();
    let client = out.join("tls-dev").join(CLIENT);
    let key = out.join("tls-dev").join(PKEY);
    let (ok, said) = handshake(dir.path(), &cas.path("root.pem"), &client, &key);
    assert!(ok, "the server refused the chain:\n{said}");
    // The leaf alone, without the intermediates, is refused by the same
    // server: the chain in client.pem is what makes it through.
    let pem = fs::read_to_string(&client).unwrap();
    let end = "-----END CERTIFICATE-----\n";
    let leaf = &pem[..pem.find(end).unwrap() + end.len()];
    let leaf_only = dir.write("leaf.pem", leaf);
    let (ok, said) = handshake(dir.path(), &cas.path("root.pem"), &leaf_only, &key);
    assert!(!ok, "served the leaf without its chain:\n{said}");
}

/// One device `d` with the CA file `file` and `key`: exit 1 naming
/// `needle`, nothing written.
fn refused_for(file: &Path, key: &Path, out: &Path, needle: &str) {
    refused(
        &issue_with(file, key, out, &["--device-id", "d"]),
        out,
        needle,
    );
}

/// [`verify_client`] of device `d`'s certificate in `out` against the
/// CA `ca` of `cas`, without intermediates.
fn verified_by(cas: &Cas, ca: &str, out: &Path) -> (bool, String) {
    verify_client(&cas.dir, &cas.path(ca), None, &out.join("d").join(CLIENT))
}

#[test]
fn broken_and_misordered_chains_are_refused_naming_the_position() {
    let dir = TestDir::new();
    let cas = Cas::chain(&dir);
    let key = cas.path("issuing.key");
    let out = dir.join("out");
    // Misordered: the intermediate first (its key is not the issuing key
    // either, but the order is what is wrong with the file).
    let file = cas.bundle("reversed.pem", &["issuing", "root", "inter"]);
    refused_for(&file, &key, &out, "the CA certificate (`CN=Fleet Issuing CA`) was not issued by certificate 2 of the file (`CN=root`)");
    // The root included: refused at its position.
    let file = cas.bundle("with-root.pem", &["issuing", "inter", "root"]);
    refused_for(
        &file,
        &key,
        &out,
        "certificate 3 of the CA file (`CN=root`) is a self-signed root; leave the root out",
    );
    // An intermediate of the same name but another key: the issuing CA's
    // RSA signature does not verify with it (nor with an EC key).
    for (alg, opt, needle) in [
        ("RSA", "rsa_keygen_bits:2048", "the CA certificate (`CN=Fleet Issuing CA`): its signature does not verify with the key of certificate 2 of the file (`CN=Fleet Intermediate`): the signature does not verify with the public key"),
        ("EC", "ec_paramgen_curve:P-256", "(`CN=Fleet Intermediate`): the signature does not verify with the public key"),
    ] {
        cas.key("impostor", alg, opt);
        cas.signed("impostor", "Fleet Intermediate", "root", CA_EXT);
        let file = cas.bundle("impostor-chain.pem", &["issuing", "impostor"]);
        refused_for(&file, &key, &out, needle);
    }
    // Too many certificates.
    let names = ["issuing"; 9];
    let file = cas.bundle("long.pem", &names);
    refused_for(
        &file,
        &key,
        &out,
        "the CA certificate file holds 9 certificates",
    );
}

#[test]
fn cas_whose_limits_invalidate_what_they_issue_are_refused() {
    let dir = TestDir::new();
    let cas = Cas::new(&dir);
    let out = dir.join("out");
    let try_ca = |name: &str, ext: &str, args: &[&str]| {
        cas.key(name, "EC", "ec_paramgen_curve:P-256");
        cas.root(name, &format!("{CA_EXT}\n{ext}"));
        issue_with(
            &cas.path(&format!("{name}.pem")),
            &cas.path(&format!("{name}.key")),
            &out,
            args,
        )
    };
    // extendedKeyUsage without clientAuth.
    refused(
        &try_ca(
            "eku",
            "extendedKeyUsage = serverAuth",
            &["--device-id", "d"],
        ),
        &out,
        "the CA certificate (`CN=eku`) limits what it signs: its extendedKeyUsage lacks clientAuth",
    );
    // With clientAuth it issues, and openssl agrees.
    try_ca(
        "eku-ok",
        "extendedKeyUsage = serverAuth, clientAuth",
        &["--device-id", "d"],
    )
    .success();
    let (ok, said) = verified_by(&cas, "eku-ok.pem", &out);
    assert!(ok, "{said}");
    fs::remove_dir_all(&out).unwrap();
    // An unknown critical extension.
    refused(
        &try_ca("crit", "1.2.3.4.5 = critical, ASN1:NULL", &["--device-id", "d"]),
        &out,
        "the CA certificate (`CN=crit`) carries the critical extension 1.2.3.4.5, which this tool does not know",
    );
    // nameConstraints: a permitted directoryName subtree the subject is
    // not in, then is in; an excluded one it is in.
    let permitted = "nameConstraints = critical, permitted;dirName:nc\n[nc]\nO = Fleet";
    refused(
        &try_ca("nc-permit", permitted, &["--device-id", "d"]),
        &out,
        "nameConstraints permit only the subtrees `O=Fleet`, which do not hold the device subject; every certificate it issued for `CN=d` would be invalid",
    );
    issue_with(
        &cas.path("nc-permit.pem"),
        &cas.path("nc-permit.key"),
        &out,
        &["--device-id", "d", "--subject-o", "fleet"],
    )
    .success();
    let (ok, said) = verified_by(&cas, "nc-permit.pem", &out);
    assert!(ok, "openssl disagrees on the permitted subtree: {said}");
    fs::remove_dir_all(&out).unwrap();
    let excluded = "nameConstraints = critical, excluded;dirName:nc\n[nc]\nO = Evil";
    refused(
        &try_ca(
            "nc-ex",
            excluded,
            &["--device-id", "d", "--subject-o", "Evil"],
        ),
        &out,
        "nameConstraints exclude the subtree `O=Evil`, which holds the device subject",
    );
    // The same limits on an intermediate are named by position.
    cas.key("root", "EC", "ec_paramgen_curve:P-256");
    cas.root("root", CA_EXT);
    cas.key("mid", "EC", "ec_paramgen_curve:P-256");
    cas.signed(
        "mid",
        "mid",
        "root",
        &format!("{CA_EXT}\nextendedKeyUsage = serverAuth"),
    );
    cas.key("leafca", "EC", "ec_paramgen_curve:P-256");
    cas.signed("leafca", "leafca", "mid", CA_EXT);
    let file = cas.bundle("mid-chain.pem", &["leafca", "mid"]);
    refused_for(
        &file,
        &cas.path("leafca.key"),
        &out,
        "certificate 2 of the CA file (`CN=mid`) limits what it signs",
    );
    // pathLenConstraint 0 above another CA.
    cas.signed("mid", "mid", "root", "basicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign\nsubjectKeyIdentifier = hash");
    cas.signed("leafca", "leafca", "mid", CA_EXT);
    let file = cas.bundle("pathlen.pem", &["leafca", "mid"]);
    refused_for(&file, &cas.path("leafca.key"), &out, "certificate 2 of the CA file (`CN=mid`) has pathLenConstraint 0, but 1 CA certificates stand below it");
}

#[test]
fn a_ca_certificate_with_a_compressed_point_is_accepted() {
    let dir = TestDir::new();
    let cas = Cas::new(&dir);
    for curve in ["P-256", "P-384"] {
        let name = format!("c{}", &curve[2..]);
        cas.key(&name, "EC", &format!("ec_paramgen_curve:{curve}"));
        let key = format!("{name}.key");
        let compressed = format!("{name}.compressed.key");
        openssl(
            &cas.dir,
            [
                "ec",
                "-in",
                &key,
                "-conv_form",
                "compressed",
                "-out",
                &compressed,
            ],
        );
        fs::rename(cas.path(&compressed), cas.path(&key)).unwrap();
        cas.root(&name, CA_EXT);
        let dump = text(
            &cas.dir,
            &["x509", "-in", &format!("{name}.pem"), "-noout", "-text"],
        );
        let pub_line = dump
            .lines()
            .skip_while(|l| !l.contains("pub:"))
            .nth(1)
            .unwrap();
        assert!(
            pub_line.trim().starts_with("02:") || pub_line.trim().starts_with("03:"),
            "the CA's point is not compressed: {dump}"
        );
        let out = dir.join(format!("out-{name}"));
        issue_with(
            &cas.path(&format!("{name}.pem")),
            &cas.path(&key),
            &out,
            &["--device-id", "d"],
        )
        .success();
        let (ok, said) = verified_by(&cas, &format!("{name}.pem"), &out);
        assert!(ok, "{said}");
    }
}

#[test]
fn a_legacy_encrypted_ec_ca_key_opens_with_its_password() {
    let dir = TestDir::new();
    let cas = Cas::new(&dir);
    cas.key("ca", "EC", "ec_paramgen_curve:P-256");
    cas.root("ca", CA_EXT);
    openssl(
        &cas.dir,
        [
            "ec",
            "-in",
            "ca.key",
            "-aes256",
            "-passout",
            "pass:s3cret",
            "-out",
            "ca.enc.key",
        ],
    );
    let password = dir.write("pw.txt", "s3cret\n");
    let out = dir.join("out");
    let run = |pw: &Path| {
        device_certs(&cas.path("ca.pem"), &cas.path("ca.enc.key"), &out)
            .arg("--fleet-ca-key-password-file")
            .arg(pw)
            .args(["--device-id", "d"])
            .run()
    };
    let wrong = dir.write("wrong.txt", "nope\n");
    refused(
        &run(&wrong),
        &out,
        "does not decrypt with the password given",
    );
    run(&wrong).output_lacks("s3cret").output_lacks("nope");
    run(&password).success().output_lacks("s3cret");
    let (ok, said) = verified_by(&cas, "ca.pem", &out);
    assert!(ok, "{said}");
}

/// A bundle's client.pem below an intermediate (the device's certificate,
/// then the CAs that issued it, without the root) is what `stage
/// --device-cert` takes for device-cred and stages as it is; the same CAs
/// in another order, a root among them, or a CA that did not sign the
/// certificate below it are refused, naming the position.
#[test]
fn stage_takes_a_client_pem_with_its_chain_and_refuses_a_broken_one() {
    let Chain {
        dir, cas, out, run, ..
    } = Chain::issued(&["--device-id", "d1", "--format", "dir"]);
    run.success();
    let bundle = out.join("d1");
    let client = bundle.join(CLIENT);
    let key = bundle.join(PKEY);
    let pki = Pki::new(&dir);
    let zip = Creds::new(&pki)
        .url("https://ota.example.test")
        .server_ca()
        .treehub_no_auth()
        .write_to(&dir, "credentials.zip");
    let stage = |cert: &Path, root: &str| {
        sota(["stage", "--method", "device-cred", "--credentials"])
            .arg(&zip)
            .arg("--device-root")
            .arg(dir.join(root))
            .arg("--device-cert")
            .arg(cert)
            .arg("--device-key")
            .arg(&key)
            .run()
    };
    stage(&client, "device").success();
    assert_eq!(
        fs::read(dir.join("device").join(CLIENT)).unwrap(),
        fs::read(&client).unwrap(),
        "client.pem staged as the bundle holds it"
    );

    // A CA of the same name as the issuing CA, with another key.
    cas.key("impostor", "EC", "ec_paramgen_curve:P-256");
    cas.signed("impostor", "Fleet Issuing CA", "inter", CA_EXT);
    let leaf = fs::read_to_string(&client).unwrap();
    let leaf = &leaf[..leaf.find("-----END CERTIFICATE-----").unwrap() + 26];
    let pem = |n: &str| fs::read_to_string(cas.path(&format!("{n}.pem"))).unwrap();
    for (name, text, why) in [
        (
            "swapped.pem",
            format!("{leaf}{}{}", pem("inter"), pem("issuing")),
            "certificate 2 of `swapped.pem` (`Fleet Intermediate`) did not issue certificate 1",
        ),
        (
            "rooted.pem",
            format!("{leaf}{}{}{}", pem("issuing"), pem("inter"), pem("root")),
            "certificate 4 of `rooted.pem`",
        ),
        (
            "impostor.pem",
            format!("{leaf}{}{}", pem("impostor"), pem("inter")),
            "certificate 2 of `impostor.pem` (`Fleet Issuing CA`) is named as the issuer of certificate 1, but its key did not sign it",
        ),
        (
            "leaf-twice.pem",
            format!("{leaf}{leaf}"),
            "certificate 2 of `leaf-twice.pem` (`d1`) is not a CA certificate",
        ),
    ] {
        let path = dir.write(name, text);
        let root = format!("device-{name}");
        stage(&path, &root)
            .code(1)
            .stderr_has(why)
            .output_lacks("BEGIN");
        assert!(!dir.join(&root).exists(), "{name}");
    }
}
