//! For the `audit` tests that make images with the real tools
//! (`tests/audit_formats.rs`, `audit_names_inputs.rs`, `audit_bounds.rs`,
//! `audit_images.rs`, `audit_repos.rs`):
//! a credentials archive and its secrets ([`Setup`]), a run of
//! `audit --format json` read back ([`Audit`]), and [`tool`] / [`sh`] to
//! make the fixtures with Debian's own programs.

use std::path::{Path, PathBuf};

use super::{sota, Cmd, Creds, Pki, Run, TestDir, OAUTH2_SECRET};

/// A test folder, a credentials archive in it and the secrets it holds.
#[derive(Debug)]
pub struct Setup {
    pub dir: TestDir,
    /// `credentials.zip` in [`Setup::dir`].
    pub zip: PathBuf,
    /// Its entries, by name, as stored.
    pub entries: Vec<(String, Vec<u8>)>,
    /// `treehub.json` (OAuth2, [`OAUTH2_SECRET`]).
    pub treehub: Vec<u8>,
    /// `targets.sec` and its `keyval.private` text.
    pub targets_sec: Vec<u8>,
    pub private_text: String,
    /// `targets.pub`'s `keyval.public` text.
    pub public_text: String,
}

impl Setup {
    /// [`Creds::typical`]: ED25519 targets key.
    #[track_caller]
    pub fn new() -> Setup {
        Setup::with(false)
    }

    /// [`Creds::typical`] with an RSA targets key.
    #[track_caller]
    pub fn rsa() -> Setup {
        Setup::with(true)
    }

    #[track_caller]
    fn with(rsa: bool) -> Setup {
        let dir = TestDir::new();
        let pki = Pki::new(&dir);
        let mut creds = Creds::typical(&pki);
        if rsa {
            creds = creds.targets_rsa();
        }
        let zip = creds.write_to(&dir, "credentials.zip");
        let entries: Vec<(String, Vec<u8>)> = creds
            .raw()
            .entries
            .iter()
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.name).into_owned(),
                    e.data.clone(),
                )
            })
            .collect();
        let entry = |name: &str| {
            entries
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, d)| d.clone())
                .unwrap_or_else(|| panic!("no {name} in the archive"))
        };
        let key_text = |name: &str, part: &str| -> String {
            let v: serde_json::Value = serde_json::from_slice(&entry(name)).unwrap();
            v["keyval"][part].as_str().unwrap().to_owned()
        };
        Setup {
            treehub: entry("treehub.json"),
            targets_sec: entry("targets.sec"),
            private_text: key_text("targets.sec", "private"),
            public_text: key_text("targets.pub", "public"),
            entries,
            zip,
            dir,
        }
    }

    /// Writes every entry of the archive into `folder` (below the test
    /// folder), as `unzip` would; returns the folder.
    #[track_caller]
    pub fn unpack(&self, folder: &str) -> PathBuf {
        for (name, data) in &self.entries {
            self.dir.write(Path::new(folder).join(name), data);
        }
        self.dir.join(folder)
    }

    /// A small root file system in `root`: `etc/motd` and
    /// `usr/share/app/treehub.json`, the archive's when `leak`, else one
    /// without a secret.
    #[track_caller]
    pub fn motd_tree(&self, root: &Path, leak: bool) {
        self.dir.write(root.join("etc/motd"), "welcome\n");
        let treehub: &[u8] = if leak {
            &self.treehub
        } else {
            br#"{"ostree":{"server":"https://treehub.example.test"}}"#
        };
        self.dir
            .write(root.join("usr/share/app/treehub.json"), treehub);
    }

    /// `audit --format json --credentials credentials.zip ROOT`.
    #[track_caller]
    pub fn audit(&self, root: &Path) -> Audit {
        Audit::of(self.cmd(root, true).run())
    }

    /// The same run with text output.
    #[track_caller]
    pub fn audit_text(&self, root: &Path) -> Run {
        self.cmd(root, false).run()
    }

    /// The command line of [`Setup::audit`], to add options or a timeout.
    pub fn cmd(&self, root: &Path, json: bool) -> Cmd {
        let format = if json { "json" } else { "text" };
        sota(["audit", "--format", format, "--credentials"])
            .arg(&self.zip)
            .arg(root)
    }

    /// No secret of the archive in what `run` printed.
    #[track_caller]
    pub fn assert_silent(&self, run: &Run) {
        run.output_lacks(OAUTH2_SECRET);
        run.output_lacks(&self.private_text);
        for line in self
            .private_text
            .lines()
            .filter(|l| !l.starts_with("-----"))
        {
            run.output_lacks(line);
        }
        if self.private_text.len() >= 64 {
            run.output_lacks(&self.private_text[..64]);
        }
    }
}

/// One finding of the JSON report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    /// `""` outside an archive.
    pub member: String,
    pub kind: String,
    pub severity: String,
}

/// A finished JSON audit.
#[derive(Debug)]
pub struct Audit {
    pub run: Run,
    pub json: serde_json::Value,
    pub findings: Vec<Found>,
}

impl Audit {
    #[track_caller]
    pub fn of(run: Run) -> Audit {
        let json = run.json();
        let findings = json["findings"]
            .as_array()
            .unwrap_or_else(|| run.fail("no `findings` array"))
            .iter()
            .map(|f| Found {
                path: f["path"].as_str().unwrap_or_default().to_owned(),
                member: f["member"].as_str().unwrap_or_default().to_owned(),
                kind: f["kind"].as_str().unwrap_or_default().to_owned(),
                severity: f["severity"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        Audit {
            run,
            json,
            findings,
        }
    }

    pub fn errors(&self) -> Vec<&Found> {
        self.findings
            .iter()
            .filter(|f| f.severity == "error")
            .collect()
    }

    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        self.run.fail(why)
    }

    /// Exit 1, `ok` false, and an error of kind `host-file` or
    /// `host-secret` at `path` whose member chain ends with `member_end`
    /// (`""`: any member, or none).
    #[track_caller]
    pub fn leak_at(&self, path: &str, member_end: &str) -> &Audit {
        self.run.code(1);
        if self.json["ok"] != false {
            self.fail("`ok` is not false");
        }
        let hit = self.findings.iter().any(|f| {
            f.path == path
                && f.severity == "error"
                && (f.kind == "host-file" || f.kind == "host-secret")
                && f.member.ends_with(member_end)
        });
        if !hit {
            self.fail(&format!(
                "no host-file or host-secret error at {path:?} with a member ending in {member_end:?}"
            ));
        }
        self
    }

    /// Exit 0, `ok` true, no error.
    #[track_caller]
    pub fn clean(&self) -> &Audit {
        self.run.code(0);
        if self.json["ok"] != true || !self.errors().is_empty() {
            self.fail("expected no error finding");
        }
        self
    }

    /// A warning of kind `kind` at `path`.
    #[track_caller]
    pub fn warning_at(&self, path: &str, kind: &str) -> &Audit {
        let hit = self
            .findings
            .iter()
            .any(|f| f.path == path && f.kind == kind && f.severity == "warning");
        if !hit {
            self.fail(&format!("no {kind} warning at {path:?}"));
        }
        self
    }
}

/// `program` from the system, to make a fixture; a missing program fails
/// the test when run ("cannot start"), never skips it.
pub fn tool(program: &str) -> Cmd {
    Cmd::new(program)
}

/// `sh -c SCRIPT` in `dir` with `set -eu`; must succeed. For pipelines
/// (`tar ... | xz`), each program being a real Debian tool.
#[track_caller]
pub fn sh(dir: &Path, script: &str) -> Run {
    let run = Cmd::new("sh")
        .arg("-c")
        .arg(format!("set -eu\n{script}"))
        .current_dir(dir)
        .timeout(std::time::Duration::from_secs(300))
        .run();
    run.success();
    run
}

/// One tar member written by hand (POSIX ustar header, APPNOTE of tar:
/// GNU tar's manual, "Basic Tar Format"), for what the `tar` program will
/// not write: any type flag, a lying size, a raw name. `size` is what the
/// header declares; `data` follows, padded to 512 bytes.
pub fn tar_member(name: &str, typeflag: u8, mode: u32, size: u64, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    let name = name.as_bytes();
    assert!(name.len() <= 100, "tar_member: name over 100 bytes");
    h[..name.len()].copy_from_slice(name);
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 0);
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

/// A pax extended header ('x') with these `key=value` records.
pub fn pax_header(records: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in records {
        // "%d %s=%s\n", the length counting its own digits.
        let rest = format!(" {k}={v}\n");
        let mut len = rest.len() + 1;
        while format!("{len}{rest}").len() != len {
            len += 1;
        }
        body.extend_from_slice(format!("{len}{rest}").as_bytes());
    }
    tar_member("PaxHeaders/x", b'x', 0o644, body.len() as u64, &body)
}

/// The end-of-archive marker: two zero blocks.
pub const TAR_END: [u8; 1024] = [0; 1024];
