//! The kit of the `device-certs` tests (`tests/device_certs*.rs`): the
//! run with a fleet CA, where a bundle keeps its files, the record read
//! back, the refusals' common checks, CAs made with the openssl command
//! ([`Cas`]), `openssl verify` of a client certificate, a TLS server that
//! demands one ([`TlsServer`]), and the kill points of the killed-run
//! tests ([`KillPoints`]).

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sha2::Digest;

use super::{hex, openssl, openssl_status, sota, Cmd, Pki, Run, TestDir};

/// A bundle's certificate, below the bundle.
pub const CLIENT: &str = "var/sota/import/client.pem";
/// A bundle's key, below the bundle.
pub const PKEY: &str = "var/sota/import/pkey.pem";
/// The first line of `devices.csv`.
pub const CSV_HEADER: &str =
    "id,serial,sha256,not_before,not_after,key_type,path,key_source,public_key_sha256";

/// `device-certs --fleet-ca ca --fleet-ca-key key --out out`, to add to.
pub fn device_certs(ca: &Path, key: &Path, out: &Path) -> Cmd {
    sota(["device-certs", "--fleet-ca"])
        .arg(ca)
        .arg("--fleet-ca-key")
        .arg(key)
        .arg("--out")
        .arg(out)
}

/// The same command as a [`Command`], for a run to be killed or timed.
pub fn device_certs_command(ca: &Path, key: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sota-stage"));
    cmd.arg("device-certs")
        .arg("--fleet-ca")
        .arg(ca)
        .arg("--fleet-ca-key")
        .arg(key)
        .arg("--out")
        .arg(out);
    cmd
}

/// `device-certs` with the Pki's CA and `args`, into `out`.
pub fn issue(pki: &Pki, out: &Path, args: &[&str]) -> Run {
    issue_with(&pki.ca().cert, &pki.ca().key, out, args)
}

/// `device-certs` with any CA files.
pub fn issue_with(ca: &Path, key: &Path, out: &Path, args: &[&str]) -> Run {
    device_certs(ca, key, out).args(args).run()
}

/// A test's folder and a fleet CA in it.
pub fn fleet() -> (TestDir, Pki) {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    (dir, pki)
}

/// `devices.json` in `out`, parsed.
pub fn record(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(out.join("devices.json")).unwrap()).unwrap()
}

/// A file where bundle `id`'s `var` folder goes: that bundle cannot be
/// written.
pub fn in_the_way(out: &Path, id: &str) {
    fs::create_dir_all(out.join(id)).unwrap();
    fs::write(out.join(id).join("var"), "in the way").unwrap();
}

/// The permission bits of `path` (not followed).
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// The stdout of `openssl args` in `dir`, as text.
pub fn text(dir: &Path, args: &[&str]) -> String {
    String::from_utf8(openssl(dir, args.iter().copied())).unwrap()
}

/// The DER of a PEM certificate.
pub fn der(dir: &Path, pem: &Path) -> Vec<u8> {
    let out = dir.join("cert.der");
    let (pem, der) = (pem.to_str().unwrap(), out.to_str().unwrap());
    openssl(dir, ["x509", "-in", pem, "-outform", "DER", "-out", der]);
    fs::read(out).unwrap()
}

/// The SHA-256 of the DER SubjectPublicKeyInfo of a certificate
/// (`x509`) or request (`req`), `inform` PEM or DER, as openssl extracts
/// it.
pub fn spki_sha256(dir: &Path, command: &str, file: &Path, inform: &str) -> String {
    let public = dir.join("spki.pem");
    let (file, public_arg) = (file.to_str().unwrap(), public.to_str().unwrap());
    openssl(
        dir,
        [
            command, "-inform", inform, "-in", file, "-noout", "-pubkey", "-out", public_arg,
        ],
    );
    let der = dir.join("spki.der");
    let der_arg = der.to_str().unwrap();
    openssl(
        dir,
        [
            "pkey", "-pubin", "-in", public_arg, "-outform", "DER", "-out", der_arg,
        ],
    );
    hex(&sha2::Sha256::digest(fs::read(der).unwrap()))
}

/// `openssl verify -x509_strict -purpose sslclient` of `cert` against
/// the root `root`, the intermediates from `untrusted`: whether it
/// verified, and what openssl said.
pub fn verify_client(
    dir: &Path,
    root: &Path,
    untrusted: Option<&Path>,
    cert: &Path,
) -> (bool, String) {
    let mut args = vec!["verify", "-x509_strict", "-purpose", "sslclient"];
    args.extend(["-CAfile", root.to_str().unwrap()]);
    if let Some(untrusted) = untrusted {
        args.extend(["-untrusted", untrusted.to_str().unwrap()]);
    }
    args.push(cert.to_str().unwrap());
    openssl_status(dir, args)
}

/// [`verify_client`] without intermediates: it must say OK.
#[track_caller]
pub fn assert_verifies(dir: &Path, ca: &Path, cert: &Path) {
    let (ok, verified) = verify_client(dir, ca, None, cert);
    assert!(ok && verified.ends_with(": OK\n"), "{verified}");
}

/// Whether the certificate `cert` is still valid `days` days from now
/// (`openssl x509 -checkend`).
pub fn valid_in_days(dir: &Path, cert: &Path, days: u32) -> (bool, String) {
    let seconds = (u64::from(days) * 86_400).to_string();
    let cert = cert.to_str().unwrap();
    openssl_status(dir, ["x509", "-in", cert, "-noout", "-checkend", &seconds])
}

/// A refused run: exit 1, the message, no key material.
#[track_caller]
fn said_no(run: &Run, needle: &str) {
    run.code(1).stderr_has(needle).output_lacks("BEGIN");
}

/// A refused run (exit 1, naming `needle`, no key material) that did not
/// make `out`.
#[track_caller]
pub fn refused(run: &Run, out: &Path, needle: &str) {
    said_no(run, needle);
    assert!(!out.exists(), "{} was made", out.display());
}

/// A refused run (exit 1, naming `needle`, no key material) that left
/// nothing in `out`, made or not.
#[track_caller]
pub fn refused_leaving_out_empty(run: &Run, out: &Path, needle: &str) {
    said_no(run, needle);
    let left: Vec<_> = fs::read_dir(out)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        out.display()
    );
}

/// Every name under `dir`, relative, sorted.
pub fn names_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

/// The names under `dir` that are the tool's own temporaries (a part
/// holding `sota-stage`): none once a run finished.
pub fn leftovers(dir: &Path) -> Vec<String> {
    names_under(dir)
        .into_iter()
        .filter(|n| n.contains("sota-stage"))
        .collect()
}

/// Kill points from the clock, different every run (xorshift); the tests
/// print each, so a failure can be tried again with the same ones.
pub struct KillPoints(u64);

impl KillPoints {
    pub fn from_clock() -> KillPoints {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        KillPoints(u64::from(nanos) | 1)
    }

    /// The next point, below `below`.
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// The extensions of a CA that may sign device certificates.
pub const CA_EXT: &str = "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always";

/// CAs made with the openssl command in one folder.
pub struct Cas {
    pub dir: PathBuf,
}

impl Cas {
    /// The folder `cas` of the test's folder.
    pub fn new(dir: &TestDir) -> Cas {
        Cas::at(dir.mkdir("cas"))
    }

    /// In the folder `dir`.
    pub fn at(dir: PathBuf) -> Cas {
        Cas { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `name.key`: `genpkey -algorithm alg -pkeyopt opt`.
    pub fn key(&self, name: &str, alg: &str, opt: &str) {
        let out = format!("{name}.key");
        openssl(
            &self.dir,
            ["genpkey", "-algorithm", alg, "-pkeyopt", opt, "-out", &out],
        );
    }

    /// `name.cnf`: the subject CN=`cn` and the extensions `ext` (plus
    /// any sections after them).
    pub fn config(&self, name: &str, cn: &str, ext: &str) {
        fs::write(
            self.dir.join(format!("{name}.cnf")),
            format!("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {cn}\n[ext]\n{ext}\n"),
        )
        .unwrap();
    }

    /// A self-signed root `name.pem` for `name.key`, subject CN=`name`.
    pub fn root(&self, name: &str, ext: &str) {
        self.config(name, name, ext);
        let (key, cnf, pem) = (
            format!("{name}.key"),
            format!("{name}.cnf"),
            format!("{name}.pem"),
        );
        let mut args = vec!["req", "-x509", "-new", "-key", &key, "-config", &cnf];
        args.extend(ext_for_ten_years(&pem));
        openssl(&self.dir, args);
    }

    /// `name.pem` for `name.key`, subject CN=`cn`, signed by `issuer`.
    pub fn signed(&self, name: &str, cn: &str, issuer: &str, ext: &str) {
        self.config(name, cn, ext);
        let (key, cnf, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.cnf"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            &self.dir,
            ["req", "-new", "-key", &key, "-config", &cnf, "-out", &csr],
        );
        let (issuer_pem, issuer_key) = (format!("{issuer}.pem"), format!("{issuer}.key"));
        let mut args = vec!["x509", "-req", "-in", &csr, "-CA", &issuer_pem];
        args.extend(["-CAkey", &issuer_key, "-CAcreateserial", "-extfile", &cnf]);
        args.extend(ext_for_ten_years(&pem));
        openssl(&self.dir, args);
    }

    /// The certificates `names` in one PEM file `out`, in that order.
    pub fn bundle(&self, out: &str, names: &[&str]) -> PathBuf {
        let text: String = names
            .iter()
            .map(|n| fs::read_to_string(self.dir.join(format!("{n}.pem"))).unwrap())
            .collect();
        fs::write(self.dir.join(out), text).unwrap();
        self.dir.join(out)
    }

    /// root (EC P-384) -> inter (RSA 2048) -> issuing (EC P-256): the
    /// issuing CA's signature, which the tool checks, is RSA.
    pub fn chain(dir: &TestDir) -> Cas {
        let cas = Cas::new(dir);
        cas.key("root", "EC", "ec_paramgen_curve:P-384");
        cas.root("root", CA_EXT);
        cas.key("inter", "RSA", "rsa_keygen_bits:2048");
        cas.signed("inter", "Fleet Intermediate", "root", CA_EXT);
        cas.key("issuing", "EC", "ec_paramgen_curve:P-256");
        cas.signed("issuing", "Fleet Issuing CA", "inter", CA_EXT);
        cas
    }
}

/// The end of a CA's `req -x509` or `x509 -req`: the section `ext` of its
/// configuration, 10 years, into `pem`.
fn ext_for_ten_years(pem: &str) -> [&str; 6] {
    ["-extensions", "ext", "-days", "3650", "-out", pem]
}

/// An `openssl s_server` on 127.0.0.1 for one connection, demanding a
/// client certificate issued by a given CA (`-Verify depth
/// -verify_return_error`) and answering with a web page; killed when
/// dropped, however the test ends. Its certificate and key are
/// `server.pem` and `server.key` in [`TlsServer::dir`].
pub struct TlsServer {
    child: Child,
    /// The port it listens on.
    pub port: String,
    /// The folder `server` of the test's folder, where it runs.
    pub dir: PathBuf,
}

impl TlsServer {
    /// Listening, in `dir`'s folder `server` (its certificate made once),
    /// trusting only `client_ca` for client certificates.
    pub fn start(dir: &Path, client_ca: &Path, depth: u32) -> TlsServer {
        let server_dir = dir.join("server");
        if !server_dir.exists() {
            fs::create_dir(&server_dir).unwrap();
            fs::write(
                server_dir.join("s.cnf"),
                "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n[ext]\nsubjectAltName = IP:127.0.0.1\n",
            )
            .unwrap();
            openssl(
                &server_dir,
                [
                    "req",
                    "-x509",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "server.key",
                    "-config",
                    "s.cnf",
                    "-extensions",
                    "ext",
                    "-days",
                    "2",
                    "-out",
                    "server.pem",
                ],
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
            .to_string();
        let mut child = Command::new("openssl")
            .current_dir(&server_dir)
            .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
            .args(["-naccept", "1", "-cert", "server.pem", "-key", "server.key"])
            .arg("-CAfile")
            .arg(client_ca)
            .args([
                "-Verify",
                &depth.to_string(),
                "-verify_return_error",
                "-www",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start openssl s_server: {e}"));
        let stdout = child.stdout.take().unwrap();
        let server = TlsServer {
            child,
            port,
            dir: server_dir,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("ACCEPT") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(20)).is_err() {
            panic!("openssl s_server did not start listening within 20 s");
        }
        server
    }
}

impl TlsServer {
    /// Runs `client`, a connection to this server, within 30 s, then
    /// stops the server: whether the client's stdout holds `page`, and
    /// what the client said.
    pub fn connect(self, client: Cmd, page: &str) -> (bool, String) {
        let run = client.timeout(Duration::from_secs(30)).run();
        drop(self);
        let said = format!("{}{}", run.stdout, run.stderr);
        (run.stdout.contains(page), said)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
