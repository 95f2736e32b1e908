//! The real aktualizr against what `stage` wrote, for tests/aktualizr_e2e.rs.
//!
//! - [`Fleet`]: one test's server side: a CA (the shared/fleet CA, the
//!   device CA of `POST /devices` and the server's CA at once), the
//!   server's TLS certificate (127.0.0.1), and the Uptane repositories made
//!   by `server.py init` (their version-1 roots are what an archive pins).
//!   The CA the server trusts for client certificates is that CA, or
//!   another one ([`Fleet::trusting_clients_of`]: the root of a
//!   [`ChainedFleetCa`], whose issuing CA is an intermediate).
//! - [`run_device`]: in a private mount, network and process namespace
//!   (`unshare`): a tmpfs on `/var`, the device root's `var/sota` bound onto
//!   `/var/sota`, `lo` up, `server.py serve` on the namespace's
//!   127.0.0.1:[`PORT`], then `aktualizr --run-mode once` and
//!   `aktualizr-info` twice. Nothing outside the namespace changes, and
//!   each test has its own network stack, so every test's server listens
//!   on the same port without meeting another's.
//! - [`Outcome`]: what aktualizr stored ([`Info`], from `aktualizr-info`)
//!   and what reached the server ([`Request`]s, from its log), per run.
//!   The tests judge from these alone, never from sota-stage's output.
//!
//! Needs root, `unshare`, `ip`, `python3`, `openssl`, and the real
//! aktualizr: `AKTUALIZR_BIN` names the folder that
//! `../shared/tools/aktualizr/setup.sh DEST` printed (DEST/bin).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::common::{csr, ec_p256_key, openssl, Cmd, Creds, KeyAlg, Pki, TestDir, Validity};

/// The port of every test's server, on its own namespace's 127.0.0.1.
pub const PORT: u16 = 8443;

/// The hardware id the tests stage (`--hardware-id`).
pub const HARDWARE_ID: &str = "sota-e2e-board";

/// The one target the director offers (server.py `TARGET_NAME`).
pub const TARGET: &str = "sota-e2e-image-1";

/// SoftHSM's module, where Debian's softhsm2 installs it.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// What a missing `AKTUALIZR_BIN` says: the test fails, never skips.
const HOW_TO_BUILD: &str = "AKTUALIZR_BIN is not set: build the real aktualizr once with \
     `../shared/tools/aktualizr/setup.sh /var/cache/sota-stage/aktualizr` (about 6 minutes, \
     it prints the bin folder) and run with \
     AKTUALIZR_BIN=/var/cache/sota-stage/aktualizr/bin (.ci/run does both)";

/// Each aktualizr run is killed after this long (a first run takes about
/// 2 s); the whole namespace after [`NAMESPACE_TIMEOUT`].
const AKTUALIZR_TIMEOUT_SECONDS: u32 = 30;
const NAMESPACE_TIMEOUT: Duration = Duration::from_secs(120);

/// The folder with `aktualizr`, `aktualizr-info` and `lib/`, from
/// `AKTUALIZR_BIN`; fails the test when it is unset or incomplete.
#[track_caller]
pub fn aktualizr_bin() -> PathBuf {
    let Some(bin) = std::env::var_os("AKTUALIZR_BIN") else {
        panic!("{HOW_TO_BUILD}");
    };
    let bin = PathBuf::from(bin);
    for name in ["aktualizr", "aktualizr-info", "lib"] {
        assert!(
            bin.join(name).exists(),
            "AKTUALIZR_BIN=`{}` has no `{name}`: it must be the bin folder \
             ../shared/tools/aktualizr/setup.sh printed",
            bin.display()
        );
    }
    bin
}

/// The server's side of one test.
#[derive(Debug)]
pub struct Fleet {
    /// The CA that issues the shared and device certificates and whose
    /// certificate is the device's server CA.
    pub pki: Pki,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The only CA the server trusts for client certificates
    /// (`server.py --client-ca`): `pki`'s CA unless
    /// [`Fleet::trusting_clients_of`] says otherwise.
    pub client_ca: PathBuf,
    /// server.py's folder: keys and the version-1 roots.
    pub state: PathBuf,
}

impl Fleet {
    #[track_caller]
    pub fn new(dir: &TestDir) -> Fleet {
        aktualizr_bin();
        let pki = Pki::new(dir);
        let (server_cert, server_key) = server_cert(&pki);
        Fleet::finish(dir, pki, server_cert, server_key)
    }

    /// A server whose TLS certificate comes from another CA than the one
    /// the archive gives the device: aktualizr must refuse it.
    #[track_caller]
    pub fn with_foreign_server_ca(dir: &TestDir) -> Fleet {
        aktualizr_bin();
        let pki = Pki::new(dir);
        let foreign = Pki::new(dir);
        let (server_cert, server_key) = server_cert(&foreign);
        Fleet::finish(dir, pki, server_cert, server_key)
    }

    #[track_caller]
    fn finish(dir: &TestDir, pki: Pki, server_cert: PathBuf, server_key: PathBuf) -> Fleet {
        let state = dir.join("server-state");
        let done = Cmd::new("python3")
            .arg(server_py())
            .arg("init")
            .arg(&state)
            .run();
        done.success();
        let client_ca = pki.ca().cert.clone();
        Fleet {
            pki,
            server_cert,
            server_key,
            client_ca,
            state,
        }
    }

    /// The same server trusting only `ca` (a PEM file) for client
    /// certificates, no longer `pki`'s CA.
    pub fn trusting_clients_of(self, ca: &Path) -> Fleet {
        Fleet {
            client_ca: ca.to_owned(),
            ..self
        }
    }

    /// The gateway URL (`autoprov.url`).
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{PORT}")
    }

    /// The image repository's version-1 root (`root.json`).
    #[track_caller]
    pub fn image_root(&self) -> Vec<u8> {
        read(&self.state.join("repo/1.root.json"))
    }

    /// The director's version-1 root (`director.root.json`).
    #[track_caller]
    pub fn director_root(&self) -> Vec<u8> {
        read(&self.state.join("director/1.root.json"))
    }

    /// An OTA Connect archive pointing at this server: `autoprov.url`, a
    /// shared p12 (EC, issued by the fleet CA, the CA with it), the image
    /// repository's `root.json`, and the host side (treehub.json,
    /// targets.pub/sec).
    #[track_caller]
    pub fn creds(&self) -> Creds<'_> {
        self.creds_at(&self.url())
    }

    /// [`Fleet::creds`] with the gateway URL `url`.
    #[track_caller]
    pub fn creds_at(&self, url: &str) -> Creds<'_> {
        self.archive(url)
            .shared_p12()
            .treehub_oauth2()
            .file("root.json", self.image_root())
            .targets_ed25519()
    }

    /// An OTA Community Edition archive: no p12, the server CA as
    /// `server_ca.pem` (domain.md section 1): device credentials.
    #[track_caller]
    pub fn ce_creds(&self) -> Creds<'_> {
        self.archive(&self.url())
            .server_ca()
            .treehub_no_auth()
            .file("root.json", self.image_root())
    }

    /// An archive of this fleet's CA with the gateway URL `url`.
    fn archive(&self, url: &str) -> Creds<'_> {
        Creds::new(&self.pki).url(url)
    }
}

/// The server's EC key and certificate for 127.0.0.1, issued by `ca`.
#[track_caller]
fn server_cert(ca: &Pki) -> (PathBuf, PathBuf) {
    let dir = ca.dir();
    fs::write(
        dir.join("server-ext.cnf"),
        "[ server ]\nbasicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n\
         subjectAltName = IP:127.0.0.1, DNS:localhost\n",
    )
    .expect("write server-ext.cnf");
    ec_p256_key(dir, "server.key");
    csr(dir, "server.key", "/CN=127.0.0.1", "server.csr");
    openssl(
        dir,
        [
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0x5e7e",
            "-days",
            "365",
            "-extfile",
            "server-ext.cnf",
            "-extensions",
            "server",
            "-out",
            "server.pem",
        ],
    );
    (dir.join("server.pem"), dir.join("server.key"))
}

/// tests/aktualizr/server.py.
pub fn server_py() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aktualizr/server.py")
}

/// A device certificate and key (EC P-256, clientAuth) of the fleet CA.
#[track_caller]
pub fn device_cert(fleet: &Fleet) -> crate::common::Cert {
    fleet.pki.client(KeyAlg::Ec, Validity::Normal)
}

/// A device fleet CA below a root of its own, made with openssl: `root`
/// (self-signed, EC P-256) signed `issuing` (EC P-256), whose certificate
/// and key are what `device-certs --fleet-ca`/`--fleet-ca-key` take. The
/// root is not [`Fleet::pki`]'s CA, so a server trusting only it
/// ([`Fleet::trusting_clients_of`]) accepts a device certificate of
/// `issuing` only when the client sends `issuing` with it.
#[derive(Debug)]
pub struct ChainedFleetCa {
    pub root: PathBuf,
    pub issuing: PathBuf,
    pub issuing_key: PathBuf,
}

impl ChainedFleetCa {
    #[track_caller]
    pub fn new(dir: &TestDir) -> ChainedFleetCa {
        let cas = dir.mkdir("chained-fleet-ca");
        fs::write(
            cas.join("ca.cnf"),
            "[ req ]\ndistinguished_name = dn\n[ dn ]\n\
             [ ca ]\nbasicConstraints = critical, CA:TRUE\n\
             keyUsage = critical, keyCertSign, cRLSign\n\
             subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
        )
        .expect("write ca.cnf");
        ec_p256_key(&cas, "root.key");
        ec_p256_key(&cas, "issuing.key");
        openssl(
            &cas,
            [
                "req",
                "-x509",
                "-new",
                "-config",
                "ca.cnf",
                "-extensions",
                "ca",
                "-key",
                "root.key",
                "-subj",
                "/CN=sota-e2e fleet root",
                "-days",
                "3650",
                "-out",
                "root.pem",
            ],
        );
        openssl(
            &cas,
            [
                "req",
                "-new",
                "-config",
                "ca.cnf",
                "-key",
                "issuing.key",
                "-subj",
                "/CN=sota-e2e fleet issuing CA",
                "-out",
                "issuing.csr",
            ],
        );
        openssl(
            &cas,
            [
                "x509",
                "-req",
                "-in",
                "issuing.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-set_serial",
                "0x1e7e",
                "-days",
                "3650",
                "-extfile",
                "ca.cnf",
                "-extensions",
                "ca",
                "-out",
                "issuing.pem",
            ],
        );
        ChainedFleetCa {
            root: cas.join("root.pem"),
            issuing: cas.join("issuing.pem"),
            issuing_key: cas.join("issuing.key"),
        }
    }
}

/// What a namespace run adds: a SoftHSM configuration; one aktualizr run
/// only (the negative controls: a failing run retries for seconds, and a
/// second one proves nothing more).
#[derive(Debug, Default)]
pub struct DeviceEnv {
    pub softhsm2_conf: Option<PathBuf>,
    pub once: bool,
}

impl DeviceEnv {
    /// One aktualizr run only.
    pub fn once() -> DeviceEnv {
        DeviceEnv {
            once: true,
            ..DeviceEnv::default()
        }
    }

    /// Both runs with the SoftHSM configuration `conf`.
    pub fn softhsm(conf: PathBuf) -> DeviceEnv {
        DeviceEnv {
            softhsm2_conf: Some(conf),
            once: false,
        }
    }
}

/// One request the server logged (or a failed TLS handshake: `method`
/// empty, `tls_error` set).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The client certificate's subject CN.
    pub cn: Option<String>,
    pub body: Value,
    /// The body when it is not JSON (`/system_info/config` is TOML).
    pub body_text: String,
    pub status: i64,
    pub tls_error: Option<String>,
}

impl Request {
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path == path
    }

    /// Whether what the device sent holds `text`.
    pub fn holds(&self, text: &str) -> bool {
        self.body_text.contains(text) || self.body.to_string().contains(text)
    }
}

/// What `aktualizr-info` said.
#[derive(Debug, Clone)]
pub struct Info {
    pub text: String,
}

impl Info {
    fn field(&self, name: &str) -> Option<String> {
        self.text
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    }
    pub fn device_id(&self) -> Option<String> {
        self.field("Device ID: ")
    }
    pub fn ecu_serial(&self) -> Option<String> {
        self.field("Primary ECU serial ID: ")
    }
    pub fn hardware_id(&self) -> Option<String> {
        self.field("Primary ECU hardware ID: ")
    }
    pub fn registered(&self) -> bool {
        self.field("Provisioned on server: ").as_deref() == Some("yes")
    }
}

/// One aktualizr run: its exit status and output, then `aktualizr-info`,
/// and the requests the server got during it.
#[derive(Debug, Clone)]
pub struct Pass {
    pub status: i32,
    pub info: Info,
    pub requests: Vec<Request>,
}

impl Pass {
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests.iter().filter(|r| r.is(method, path)).count()
    }
    pub fn tls_errors(&self) -> usize {
        self.requests
            .iter()
            .filter(|r| r.tls_error.is_some())
            .count()
    }
    /// Requests that reached the handler (a TLS handshake that passed).
    pub fn served(&self) -> Vec<&Request> {
        self.requests
            .iter()
            .filter(|r| r.tls_error.is_none())
            .collect()
    }
}

/// Both runs (the second empty with [`DeviceEnv::once`]), and everything
/// for a failure message.
#[derive(Debug)]
pub struct Outcome {
    pub first: Pass,
    pub second: Pass,
    /// The namespace script's own output, the server's, both logs raw.
    pub transcript: String,
}

/// Where the hardware id that reached the server (the primary ECU's
/// `hardware_identifier` in `POST /director/ecus`) differs from `staged`,
/// or no ECU registration reached it: what went wrong, in words.
pub fn hardware_id_mismatch(requests: &[Request], staged: &str) -> Option<String> {
    let Some(ecus) = requests.iter().find(|r| r.is("POST", "/director/ecus")) else {
        return Some("no POST /director/ecus reached the server".to_owned());
    };
    let primary = ecus.body["primary_ecu_serial"].as_str().unwrap_or("");
    let sent = ecus.body["ecus"].as_array().and_then(|all| {
        all.iter()
            .find(|e| e["ecu_serial"].as_str() == Some(primary))
            .and_then(|e| e["hardware_identifier"].as_str())
    });
    match sent {
        Some(sent) if sent == staged => None,
        Some(sent) => Some(format!(
            "the server got hardware id `{sent}` for ECU `{primary}`, the image staged `{staged}`"
        )),
        None => Some(format!(
            "POST /director/ecus has no hardware id for the primary ECU `{primary}`"
        )),
    }
}

/// Runs the server and aktualizr twice on the staged `root` (see the
/// module's documentation). `dir` holds the server's log and the outputs.
#[track_caller]
pub fn run_device(dir: &TestDir, fleet: &Fleet, root: &Path, env: &DeviceEnv) -> Outcome {
    let bin = aktualizr_bin();
    let work = dir.path();
    assert!(
        !work.starts_with("/var"),
        "the test folder `{}` is under /var, which the namespace covers with a tmpfs: \
         set CARGO_TARGET_DIR elsewhere",
        work.display()
    );
    let conf = root.join("usr/lib/sota/conf.d");
    let script = format!(
        r#"set -u
W={work}
mkdir -p "$W/ns-bin" "$W/ns-sota"
# What lies under /var must be reachable once the tmpfs covers it.
mount --bind {bin} "$W/ns-bin"
mount --bind {sota} "$W/ns-sota"
mount -t tmpfs -o mode=0755 tmpfs /var
mkdir /var/sota
mount --move "$W/ns-sota" /var/sota
ip link set lo up
python3 {server} serve {state} --cert {cert} --key {key} --client-ca {client_ca} \
    --device-ca {ca} --device-ca-key {ca_key} --server-ca {ca} \
    --log "$W/server.log" --port {PORT} --port-file "$W/server.port" > "$W/server.out" 2>&1 &
i=0
while [ ! -e "$W/server.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -e "$W/server.port" ] || {{ echo "the server did not start"; cat "$W/server.out"; exit 1; }}
export LD_LIBRARY_PATH="$W/ns-bin/lib"
for n in {runs}; do
    echo '{{"event": "run '$n'"}}' >> "$W/server.log"
    timeout -s KILL {AKTUALIZR_TIMEOUT_SECONDS} "$W/ns-bin/aktualizr" -c {conf} --run-mode once \
        > "$W/aktualizr-$n.out" 2>&1
    echo $? > "$W/aktualizr-$n.status"
    timeout -s KILL {AKTUALIZR_TIMEOUT_SECONDS} "$W/ns-bin/aktualizr-info" -c {conf} \
        > "$W/info-$n.out" 2>&1
done
exit 0
"#,
        work = quote(work),
        bin = quote(&bin),
        sota = quote(&root.join("var/sota")),
        server = quote(&server_py()),
        state = quote(&fleet.state),
        cert = quote(&fleet.server_cert),
        key = quote(&fleet.server_key),
        ca = quote(&fleet.pki.ca().cert),
        client_ca = quote(&fleet.client_ca),
        ca_key = quote(&fleet.pki.ca().key),
        conf = quote(&conf),
        runs = if env.once { "1" } else { "1 2" },
    );
    let script_path = dir.write("namespace.sh", script);
    let mut cmd = Cmd::new("unshare")
        .args([
            "--fork",
            "--pid",
            "--kill-child",
            "--mount-proc",
            "--mount",
            "--net",
            "sh",
        ])
        .arg(&script_path)
        .timeout(NAMESPACE_TIMEOUT);
    if let Some(conf) = &env.softhsm2_conf {
        cmd = cmd.env("SOFTHSM2_CONF", conf);
    }
    let namespace = cmd.run();
    let text = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    let log = text("server.log");
    let transcript = format!(
        "{namespace}\n--- server.out ---\n{}\n--- server.log ---\n{log}\n\
         --- aktualizr-1.out ---\n{}\n--- info-1.out ---\n{}\n\
         --- aktualizr-2.out ---\n{}\n--- info-2.out ---\n{}",
        text("server.out"),
        text("aktualizr-1.out"),
        text("info-1.out"),
        text("aktualizr-2.out"),
        text("info-2.out"),
    );
    if namespace.code != 0 {
        panic!("the namespace run failed\n{transcript}");
    }
    let mut runs: Vec<Vec<Request>> = Vec::new();
    for line in log.lines() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("server.log line {line:?}: {e}\n{transcript}"));
        if value["event"]
            .as_str()
            .is_some_and(|e| e.starts_with("run "))
        {
            runs.push(Vec::new());
            continue;
        }
        let request = Request {
            method: value["method"].as_str().unwrap_or("").to_owned(),
            path: value["path"].as_str().unwrap_or("").to_owned(),
            cn: value["cn"].as_str().map(str::to_owned),
            body: value["body"].clone(),
            body_text: value["body_text"].as_str().unwrap_or("").to_owned(),
            status: value["status"].as_i64().unwrap_or(0),
            tls_error: (value["event"] == "tls-error")
                .then(|| value["error"].as_str().unwrap_or("").to_owned()),
        };
        match runs.last_mut() {
            Some(run) => run.push(request),
            None => panic!("server.log has a request before the first run\n{transcript}"),
        }
    }
    let pass = |n: usize, requests: Vec<Request>| Pass {
        status: text(&format!("aktualizr-{n}.status"))
            .trim()
            .parse()
            .unwrap_or(-1),
        info: Info {
            text: text(&format!("info-{n}.out")),
        },
        requests,
    };
    let mut runs = runs.into_iter();
    let first = pass(1, runs.next().unwrap_or_default());
    let second = pass(2, runs.next().unwrap_or_default());
    Outcome {
        first,
        second,
        transcript,
    }
}

/// What a positive test expects beyond "provisioned and registered".
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// shared-cred: one `POST /devices`; otherwise none.
    pub shared: bool,
    /// The device id when the test knows it (the device certificate's CN).
    pub device_id: Option<&'a str>,
    /// `director.root.json` pinned: no `GET /director/1.root.json`.
    pub director_pinned: bool,
}

impl Expect<'_> {
    /// shared-cred: the device id is aktualizr's choice, the director's
    /// root is fetched.
    pub const SHARED: Expect<'static> = Expect {
        shared: true,
        device_id: None,
        director_pinned: false,
    };

    /// Device credentials for the device id `device_id`, the director's
    /// root fetched.
    pub fn device(device_id: &str) -> Expect<'_> {
        Expect {
            shared: false,
            device_id: Some(device_id),
            director_pinned: false,
        }
    }
}

impl Outcome {
    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        panic!("{why}\n{}", self.transcript)
    }

    #[track_caller]
    fn check(&self, ok: bool, why: &str) {
        if !ok {
            self.fail(why);
        }
    }

    /// The device provisioned and registered its primary ECU with the
    /// staged hardware id on the first run, fetched the director's target
    /// through the pinned image root, and the second run registered nothing
    /// again: judged from aktualizr's storage and the server's log.
    #[track_caller]
    pub fn assert_provisioned(&self, expect: Expect) {
        let (first, second) = (&self.first, &self.second);
        self.check(first.status == 0, "the first aktualizr run failed");
        self.check(second.status == 0, "the second aktualizr run failed");
        let info = &first.info;
        self.check(
            info.registered(),
            "aktualizr-info: not provisioned on server",
        );
        let Some(device_id) = info.device_id() else {
            self.fail("aktualizr-info has no device id");
        };
        if let Some(expected) = expect.device_id {
            self.check(
                device_id == expected,
                &format!("device id `{device_id}`, expected `{expected}`"),
            );
        }
        self.check(
            info.hardware_id().as_deref() == Some(HARDWARE_ID),
            &format!("aktualizr-info: hardware id is not `{HARDWARE_ID}`"),
        );
        if let Some(why) = hardware_id_mismatch(&first.requests, HARDWARE_ID) {
            self.fail(&why);
        }
        let ecus = first
            .requests
            .iter()
            .find(|r| r.is("POST", "/director/ecus"));
        let serial = ecus.and_then(|r| r.body["primary_ecu_serial"].as_str());
        self.check(
            serial.is_some() && serial == info.ecu_serial().as_deref(),
            "the ECU serial aktualizr stored is not the one it registered",
        );
        self.check(
            first.count("POST", "/devices") == usize::from(expect.shared),
            if expect.shared {
                "shared-cred: expected exactly one POST /devices"
            } else {
                "device credentials: expected no POST /devices"
            },
        );
        self.check(
            first.count("POST", "/director/ecus") == 1,
            "expected exactly one POST /director/ecus",
        );
        self.check(first.tls_errors() == 0, "a TLS handshake failed");
        // Every request after registration speaks as the device.
        for r in first.served().iter().chain(second.served().iter()) {
            if !r.is("POST", "/devices") {
                self.check(
                    r.cn.as_deref() == Some(device_id.as_str()),
                    &format!("{} {} came with CN {:?}", r.method, r.path, r.cn),
                );
            }
            self.check(
                r.status < 500,
                &format!("{} {} failed on the server", r.method, r.path),
            );
        }
        // The image repository's root was pinned: never fetched, yet its
        // metadata verified, since aktualizr downloaded the target.
        self.check(
            first.count("GET", "/repo/1.root.json") == 0,
            "the pinned image repository root was fetched (GET /repo/1.root.json)",
        );
        self.check(
            first.count("GET", &format!("/repo/targets/{TARGET}")) == 1,
            "the director's target was not downloaded: the image repository did not verify",
        );
        let director_root_fetched = first.count("GET", "/director/1.root.json") > 0;
        if expect.director_pinned {
            self.check(
                !director_root_fetched,
                "the pinned director root was fetched (GET /director/1.root.json)",
            );
        } else {
            self.check(
                director_root_fetched,
                "no director root pinned, yet GET /director/1.root.json was not asked",
            );
        }
        // The second run: the same device, nothing registered again.
        self.check(
            second.info.device_id().as_deref() == Some(device_id.as_str()),
            "the second run has another device id",
        );
        self.check(
            second.info.ecu_serial() == info.ecu_serial(),
            "the second run has another ECU serial",
        );
        self.check(
            second.count("POST", "/devices") == 0,
            "the second run registered the device again (POST /devices)",
        );
        self.check(
            second.count("POST", "/director/ecus") == 0,
            "the second run registered the ECU again (POST /director/ecus)",
        );
        self.check(
            second.count("GET", "/director/targets.json") == 1,
            "the second run did not ask the director",
        );
    }

    /// aktualizr failed on the first run and nothing reached the server's
    /// handlers: no device, no ECU registered.
    #[track_caller]
    pub fn assert_nothing_registered(&self) {
        let first = &self.first;
        self.check(first.status != 0, "aktualizr succeeded, expected a failure");
        self.check(
            !first.info.registered(),
            "aktualizr-info says provisioned on server",
        );
        for pass in [&self.first, &self.second] {
            self.check(
                pass.count("POST", "/devices") == 0 && pass.count("POST", "/director/ecus") == 0,
                "a registration reached the server",
            );
        }
    }

    /// [`Outcome::assert_nothing_registered`], and every TLS handshake
    /// failed: at least one failed and no request was served.
    #[track_caller]
    pub fn assert_handshakes_failed(&self) {
        self.assert_nothing_registered();
        if self.first.tls_errors() == 0 || !self.first.served().is_empty() {
            self.fail("expected failed TLS handshakes and no request served");
        }
    }
}

/// `path` in single quotes for sh.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[track_caller]
fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
}
