//! The writer under attack and under a CI machine that kills jobs
//! (issue 9): overlapping roots, a manifest that would replace a staged
//! file or cannot be written, the leftovers of a killed run, two runs at
//! once, a change of method, entry names that cannot all be written.
//! Each test fails without its fix. The kill itself, at every step of a
//! run, is `write::apply`'s unit test
//! `a_run_killed_at_any_step_is_finished_by_the_next`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::staged::Roots;
use common::*;

const EPOCH: &str = "1700000001";
const DEVICE_ZIP: &str = "var/sota/sota_provisioning_credentials.zip";
/// `stage --force` of shared-cred, the archive next.
const FORCED: [&str; 5] = [
    "stage",
    "--method",
    "shared-cred",
    "--force",
    "--credentials",
];

/// One test's folder, its archive, and `stage` into `image` / `native`
/// with `manifest.json` beside them.
struct Setup {
    roots: Roots,
    zip: PathBuf,
}

impl std::ops::Deref for Setup {
    type Target = Roots;

    fn deref(&self) -> &Roots {
        &self.roots
    }
}

impl std::ops::DerefMut for Setup {
    fn deref_mut(&mut self) -> &mut Roots {
        &mut self.roots
    }
}

impl Setup {
    fn new() -> Setup {
        Setup::with(|c| c)
    }

    /// With an archive `Creds::typical` changed by `shape`.
    fn with(shape: impl FnOnce(Creds<'_>) -> Creds<'_>) -> Setup {
        let roots = Roots::new();
        let pki = Pki::new(&roots.dir);
        let zip = shape(Creds::typical(&pki).server_ca()).write_to(&roots.dir, "c.zip");
        Setup { roots, zip }
    }

    /// `stage --method shared-cred` with the archive; `args` add to or
    /// replace nothing: give roots and manifest there.
    fn stage_args(&self, args: &[&std::ffi::OsStr]) -> Cmd {
        sota(["stage", "--credentials"])
            .arg(&self.zip)
            .args(args)
            .env("SOURCE_DATE_EPOCH", EPOCH)
    }

    /// `stage` with both roots and the manifest, then `extra`.
    fn stage(&self, method: &str, extra: &[&str]) -> Cmd {
        self.roots
            .stage_cmd(&self.zip, method, extra)
            .env("SOURCE_DATE_EPOCH", EPOCH)
    }

    /// `other.zip` in the test folder: a typical archive with another
    /// tufrepo URL, changed by `shape`.
    fn other(&self, shape: impl FnOnce(Creds<'_>) -> Creds<'_>) -> PathBuf {
        let pki = Pki::new(&self.dir);
        shape(Creds::typical(&pki).tufrepo_url("https://other.example.test/repo"))
            .write_to(&self.dir, "other.zip")
    }

    /// `stage --method shared-cred --force` of `zip` into the device root
    /// and `host`; no manifest unless the caller adds one.
    fn forced(&self, zip: &Path, host: &Path) -> Cmd {
        sota(FORCED)
            .arg(zip)
            .arg("--device-root")
            .arg(&self.dev)
            .arg("--host-root")
            .arg(host)
            .env("SOURCE_DATE_EPOCH", EPOCH)
    }

    /// `stage --method shared-cred` then `extra`: it must succeed.
    #[track_caller]
    fn staged(&self, extra: &[&str]) {
        self.stage("shared-cred", extra).run().success();
    }

    fn verify(&self) -> Run {
        self.verify_cmd().run()
    }

    /// The whole test folder, read back; folder times left out (a
    /// folder's mtime follows every entry added and removed, and a rollback
    /// does not restore it).
    fn tree(&self) -> std::collections::BTreeMap<String, Node> {
        let mut nodes = tree(self.dir.path());
        for node in nodes.values_mut() {
            if node.bytes.is_none() {
                node.mtime = (0, 0);
            }
        }
        nodes
    }
}

/// Every path of the tree whose name only this tool gives (temporaries and
/// moved-aside files).
fn leftovers(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_keys()
        .filter(|p| p.contains(".sota-stage-"))
        .collect()
}

/// No file of the device tree has the name of a host secret.
#[track_caller]
fn assert_no_host_secret_in(dev: &Path) {
    for name in ["targets.sec", "treehub.json", "credentials.zip"] {
        assert!(
            tree(dev).keys().all(|p| p.rsplit('/').next() != Some(name)),
            "{name} in the device tree"
        );
    }
}

// --- 1. overlapping roots ------------------------------------------------------

#[test]
fn overlapping_roots_are_refused_and_nothing_is_written() {
    let s = Setup::new();
    let overlap = "overlap: the host's secrets would land in the image";
    let refused = |dev: &Path, host: &Path| {
        let before = s.tree();
        s.stage_args(&[
            "--device-root".as_ref(),
            dev.as_os_str(),
            "--host-root".as_ref(),
            host.as_os_str(),
        ])
        .args(["--method", "shared-cred"])
        .run()
        .code(2)
        .stderr_has(overlap)
        .output_lacks(OAUTH2_SECRET);
        assert_eq!(s.tree(), before, "{overlap}");
    };

    // The same folder for both.
    refused(&s.dev, &s.dev);
    // The host root inside an already staged device root.
    s.staged(&[]);
    refused(&s.dev, &s.dev.join("usr/share/garage"));
    // The device root inside the host root.
    refused(&s.host.join("image"), &s.host);
    // The same, through `..` and through a symlink to the device root.
    refused(&s.dev, &s.host.join("../image/usr/share/x"));
    let link = s.dir.join("link-to-image");
    std::os::unix::fs::symlink(&s.dev, &link).unwrap();
    refused(&s.dev, &link.join("sub"));
    fs::remove_file(&link).unwrap();
    // No secret of the host side is in the device tree.
    assert_no_host_secret_in(&s.dev);
}

// --- 2. the manifest where a staged file or a root is ----------------------------

#[test]
fn a_manifest_inside_a_root_is_refused() {
    let s = Setup::new();
    s.staged(&[]);
    let staged = s.tree();
    let with_manifest = |manifest: &Path, message: &str| {
        s.stage_args(&[
            "--method".as_ref(),
            "shared-cred".as_ref(),
            "--device-root".as_ref(),
            s.dev.as_os_str(),
            "--host-root".as_ref(),
            s.host.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_has(message);
        assert_eq!(s.tree(), staged, "{message}");
    };
    // The provisioning zip would be replaced by the JSON.
    with_manifest(
        &s.dev.join(DEVICE_ZIP),
        &format!("is the staged file device:{DEVICE_ZIP}; write the manifest outside the roots"),
    );
    with_manifest(
        &s.host.join("treehub.json"),
        "is the staged file host:treehub.json",
    );
    // Anywhere else in the device root it would ship the build host's
    // listing in the image; in the host root it would be a host file.
    with_manifest(
        &s.dev.join("etc/manifest.json"),
        "is inside --device-root: it would ship the build host's listing in the image",
    );
    with_manifest(&s.host.join("../native/m.json"), "is inside --host-root");
    with_manifest(s.dir.path(), "is --device-root or a folder above it");
    assert_eq!(fs::read(s.dev.join(DEVICE_ZIP)).unwrap()[..2], *b"PK");
}

// --- 3. the manifest inside the transaction --------------------------------------

/// A tmpfs of 64 KiB at `dir`, unmounted on drop.
struct TinyTmpfs(PathBuf);

impl TinyTmpfs {
    fn mount(dir: PathBuf) -> TinyTmpfs {
        fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs"])
            .arg(&dir)
            .output()
            .expect("run `mount`");
        assert!(
            out.status.success(),
            "this test mounts a 64 KiB tmpfs to fill it, which needs root (CI runs as root): `mount` said {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TinyTmpfs(dir)
    }

    /// Writes until the file system is full.
    fn fill(&self) {
        let chunk = vec![0u8; 4096];
        let mut f = fs::File::create(self.0.join("filler")).unwrap();
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_manifest_that_cannot_be_written_rolls_everything_back() {
    let mut s = Setup::new();
    let fs_dir = s.dir.join("small");
    let small = TinyTmpfs::mount(fs_dir.clone());
    s.manifest = fs_dir.join("manifest.json");

    // Into empty roots: nothing of the run stays, secrets included.
    small.fill();
    let before = s.tree();
    s.stage("shared-cred", &[])
        .run()
        .code(3)
        .stderr_has("No space left on device");
    assert_eq!(s.tree(), before);
    assert!(!s.dev.exists() && !s.host.exists());
    fs::remove_file(fs_dir.join("filler")).unwrap();

    // Over a staged tree with --force: the replaced files and the old
    // manifest come back.
    s.staged(&["--hardware-id", "old-board"]);
    small.fill();
    let before = s.tree();
    s.stage("shared-cred", &["--hardware-id", "new-board", "--force"])
        .run()
        .code(3)
        .stderr_has("No space left on device");
    assert_eq!(s.tree(), before);
    fs::remove_file(fs_dir.join("filler")).unwrap();
    s.verify().success();
    drop(small);
}

// --- 4. what a killed run leaves ------------------------------------------------

#[test]
fn the_leftovers_of_a_killed_run_are_cleaned_up_by_the_next() {
    let s = Setup::new();
    s.staged(&[]);
    // What a run killed at various points leaves: temporaries of secrets,
    // a file moved aside whose replacement was never renamed in, a moved-
    // aside file next to its replacement, a half-written manifest, and a
    // folder made before its mode was set.
    let plant = |path: PathBuf, bytes: &[u8]| {
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    };
    plant(
        s.dev
            .join("var/sota/.sota_provisioning_credentials.zip.sota-stage-4242.tmp"),
        b"PK",
    );
    plant(
        s.dev
            .join("usr/lib/sota/conf.d/.20-sota-shared-cred.toml.sota-stage-4242.old"),
        b"[old]\n",
    );
    plant(
        s.host.join(".treehub.json.sota-stage-4242.tmp"),
        OAUTH2_SECRET.as_bytes(),
    );
    let targets_sec = fs::read(s.host.join("targets.sec")).unwrap();
    fs::rename(
        s.host.join("targets.sec"),
        s.host.join(".targets.sec.sota-stage-4243.old"),
    )
    .unwrap();
    plant(s.dir.join(".manifest.json.sota-stage-4242.tmp"), b"{");
    fs::set_permissions(
        s.dev.join("var/sota/import"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    s.verify().code(1);

    s.stage("shared-cred", &[])
        .run()
        .success()
        .stderr_has("removed 5 leftovers of an interrupted run\n");
    assert_eq!(leftovers(s.dir.path()), Vec::<String>::new());
    assert_eq!(fs::read(s.host.join("targets.sec")).unwrap(), targets_sec);
    s.verify().success();
    // Names like ours that are not ours (no process number) are left alone.
    let theirs = s.dir.join(".notes.sota-stage-x.tmp");
    fs::write(&theirs, "mine").unwrap();
    s.staged(&[]);
    assert!(theirs.exists());
}

// --- 5. two runs at once -----------------------------------------------------------

#[test]
fn a_second_run_waits_for_the_first_and_gives_up_after_the_lock_timeout() {
    let s = Setup::new();
    fs::create_dir_all(&s.dev).unwrap();
    // flock(1) holds the same flock(2) lock on the device root as a run.
    let mut holder = Command::new("flock")
        .arg(&s.dev)
        .args(["sleep", "3"])
        .spawn()
        .expect("flock(1) from util-linux is needed");
    std::thread::sleep(Duration::from_millis(300));
    let before = s.tree();
    // Whom it waits for, and how long at most, is said once as it starts
    // to wait (a build log would otherwise show a silent pause).
    let waiting = format!(
        "waiting up to 1 s for another sota-stage run (process {}) that holds `{}`\n",
        holder.id(),
        s.dev.display()
    );
    let run = s.stage("shared-cred", &["--lock-timeout", "1"]).run();
    assert_eq!(
        run.stderr.matches("waiting up to").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(run.stderr.starts_with(&waiting), "{}", run.stderr);
    run.code(3)
        .stderr_has("cannot lock `")
        .stderr_has("another sota-stage run (process ")
        .stderr_has("still holds it after 1 s; nothing was written: wait for it to finish, or wait longer with --lock-timeout");
    assert_eq!(s.tree(), before);
    // With time enough, it waits and then does its whole run.
    let started = Instant::now();
    let run = s.stage("shared-cred", &[]).run();
    run.success();
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(
        run.stderr.matches("waiting up to").count(),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .starts_with("waiting up to 60 s for another sota-stage run (process "),
        "{}",
        run.stderr
    );
    holder.wait().unwrap();
    s.verify().success();
}

#[test]
fn two_runs_at_once_take_turns() {
    let s = Setup::new();
    let other = s.other(|c| c);
    for trial in 0..6 {
        // Identical runs: both succeed.
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let a = scope.spawn(|| s.stage("shared-cred", &[]).run());
            let b = scope.spawn(|| s.stage("shared-cred", &[]).run());
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        for run in &runs {
            run.success();
        }
        s.verify().success();
        // Two archives with --force: both succeed, one after the other; the
        // roots are the last one's, and so is the manifest.
        let manifest2 = s.dir.join("manifest2.json");
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let a = scope.spawn(|| s.stage("shared-cred", &["--force"]).run());
            let b = scope.spawn(|| {
                s.forced(&other, &s.host)
                    .arg("--manifest")
                    .arg(&manifest2)
                    .run()
            });
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        for run in &runs {
            run.success();
        }
        let matches = |m: &Path| {
            sota(["verify", "--manifest"])
                .arg(m)
                .arg("--device-root")
                .arg(&s.dev)
                .arg("--host-root")
                .arg(&s.host)
                .run()
                .code
                == 0
        };
        assert!(
            matches(&s.manifest) != matches(&manifest2),
            "trial {trial}: the roots match exactly one of the two manifests"
        );
        assert_eq!(leftovers(s.dir.path()), Vec::<String>::new());
        s.stage("shared-cred", &["--force"]).run().success();
    }
}

// --- 6. a change of method -------------------------------------------------------

#[test]
fn files_of_another_method_are_refused_then_removed_with_force() {
    let s = Setup::new();
    s.staged(&["--hardware-id", "rpi4"]);
    let before = s.tree();
    s.stage("device-cred", &[]).run().code(1).stderr_is(
        "error: staging would change files that are already there; nothing was written (pass --force to replace them):\n\
         \x20 - device:usr/lib/sota/conf.d/20-sota-shared-cred.toml is not staged by this run (left by a run of another method or with other options); it would be removed\n\
         \x20 - device:usr/lib/sota/conf.d/40-hardware-id.toml is not staged by this run (left by a run of another method or with other options); it would be removed\n\
         \x20 - device:var/sota/sota_provisioning_credentials.zip is not staged by this run (left by a run of another method or with other options); it would be removed\n",
    );
    assert_eq!(s.tree(), before);
    s.stage("device-cred", &["--force"])
        .run()
        .success()
        .stderr_is("staged c.zip for device-cred: 3 files written, 7 already in place, 3 no longer staged removed\n");
    assert!(!s.dev.join(DEVICE_ZIP).exists());
    assert!(!s
        .dev
        .join("usr/lib/sota/conf.d/20-sota-shared-cred.toml")
        .exists());
    s.verify().success();
}

// --- 7. entry names that cannot all be written ------------------------------------

#[test]
fn unknown_entries_whose_names_clash_are_invalid_input() {
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec!["credentials.zip".into()],
            "entry 'credentials.zip' has the name of another host file of this run".into(),
        ),
        (
            vec!["treehub.json/x".into()],
            "entry 'treehub.json/x' needs 'treehub.json' to be a folder, but that is a file of this run".into(),
        ),
        (
            vec!["extra".into(), "extra/inner".into()],
            "entry 'extra/inner' needs 'extra' to be a folder".into(),
        ),
        (
            vec![".targets.sec.sota-stage-7.old".into()],
            "entry '.targets.sec.sota-stage-7.old' has the name of a temporary file of sota-stage".into(),
        ),
        (
            vec!["n".repeat(60_000)],
            format!("entry '{}...' has a name longer than 255 bytes", "n".repeat(80)),
        ),
        (
            vec![vec!["d"; 3000].join("/")],
            "is 2999 folders deep and 5999 bytes long".into(),
        ),
    ];
    for (names, message) in cases {
        let s = Setup::with(|mut c| {
            for n in &names {
                c = c.file(n, "x");
            }
            c
        });
        fs::create_dir_all(&s.dev).unwrap();
        let before = s.tree();
        s.stage("shared-cred", &["--unknown", "host"])
            .run()
            .code(1)
            .stderr_has("c.zip: cannot stage for shared-cred:\n  - ")
            .stderr_has(&message);
        assert_eq!(s.tree(), before, "{names:?}");
    }
}

// --- 4b. a real kill -9 ------------------------------------------------------------

#[test]
fn runs_killed_at_random_moments_leave_nothing_the_next_run_cannot_finish() {
    let s = Setup::new();
    let other = s.other(|c| c.server_ca());
    s.staged(&[]);
    // Time one run, then kill runs at moments spread over its second half,
    // where the writing is (the first is reading and checking), so that
    // the kills land at different points: writing temporaries, renaming,
    // moving aside.
    let started = Instant::now();
    s.stage("shared-cred", &["--force"]).run().success();
    let span = started.elapsed().as_micros().max(1000) as u64;
    let trials = 40u64;
    for trial in 0..trials {
        // Alternate between two archives, so that --force has files to
        // replace and moves the old ones aside.
        let zip = if trial % 2 == 0 { &other } else { &s.zip };
        let mut child = Command::new(env!("CARGO_BIN_EXE_sota-stage"))
            .args(FORCED)
            .arg(zip)
            .arg("--device-root")
            .arg(&s.dev)
            .arg("--host-root")
            .arg(&s.host)
            .arg("--manifest")
            .arg(&s.manifest)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(
            span * (trials + trial) / (2 * trials),
        ));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        // The next run finishes the job: exit 0, no leftovers, verify ok.
        s.stage("shared-cred", &["--force"]).run().success();
        assert_eq!(
            leftovers(s.dir.path()),
            Vec::<String>::new(),
            "trial {trial}"
        );
        s.verify().success();
    }
}

// --- 8. outputs over inputs (issue 19, defect 4) ----------------------------------

#[test]
fn an_output_that_is_an_input_is_refused() {
    let s = Setup::new();
    let archive = fs::read(&s.zip).unwrap();
    let same = "(the same file): an output never replaces an input; nothing was written";
    // The manifest, or render's output, at the archive (and through a link).
    let link = s.dir.join("link.zip");
    std::os::unix::fs::symlink(&s.zip, &link).unwrap();
    for manifest in [&s.zip, &link] {
        s.stage_args(&[
            "--method".as_ref(),
            "shared-cred".as_ref(),
            "--device-root".as_ref(),
            s.dev.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_has("is --credentials `")
        .stderr_has(same);
        sota(["render", "--method", "shared-cred", "--credentials"])
            .arg(&s.zip)
            .arg("--output")
            .arg(manifest)
            .run()
            .code(2)
            .stderr_has(same);
    }
    assert!(!s.dev.exists());
    // The host root is the archive's folder, with --force: the host-only
    // credentials.zip would replace it.
    let folder = s.dir.join("downloads");
    fs::create_dir(&folder).unwrap();
    let zip = folder.join("credentials.zip");
    fs::copy(&s.zip, &zip).unwrap();
    s.forced(&zip, &folder)
        .run()
        .code(2)
        .stderr_has("the staged file host:credentials.zip (under --host-root) is --credentials `")
        .stderr_has(same);
    assert_eq!(fs::read(&zip).unwrap(), archive);
    assert_eq!(fs::read(&s.zip).unwrap(), archive);
    assert!(!s.dev.exists());
    // A file at --manifest that is no manifest of the tool is kept.
    let notes = s.dir.write("manifest.json", "my notes\n");
    s.stage("shared-cred", &[])
        .run()
        .code(2)
        .stderr_has("exists and is not a manifest of sota-stage");
    assert_eq!(fs::read(&notes).unwrap(), b"my notes\n");
    // A manifest of the tool is replaced.
    fs::remove_file(&notes).unwrap();
    s.staged(&[]);
    s.staged(&["--hardware-id", "rpi4", "--force"]);
    s.verify().success();
}

// --- 9. roots that are links, huge timeouts, bind mounts (defects 5, 6) --------

#[test]
fn a_root_that_is_a_link_is_resolved_and_the_lock_wait_is_bounded() {
    let s = Setup::new();
    let real = s.dir.join("real-image");
    fs::create_dir(&real).unwrap();
    let link = s.dir.join("image-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    // shared-cred into the link alone, waiting `timeout` s for its lock.
    let into_link = |timeout: &str| {
        s.stage_args(&[
            "--method".as_ref(),
            "shared-cred".as_ref(),
            "--device-root".as_ref(),
            link.as_os_str(),
            "--lock-timeout".as_ref(),
            timeout.as_ref(),
        ])
        .timeout(Duration::from_secs(30))
    };
    into_link("2").run().success();
    assert!(real.join(DEVICE_ZIP).is_file());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // A lock held on the folder the link names is waited for, and the wait
    // ends at the timeout.
    let mut holder = Command::new("flock")
        .arg(&real)
        .args(["sleep", "5"])
        .spawn()
        .expect("flock(1) from util-linux is needed");
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    into_link("1")
        .run()
        .code(3)
        .stderr_has("still holds it after 1 s");
    assert!(started.elapsed() < Duration::from_secs(4));
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The largest timeout is cut to the documented day, not a panic.
    s.staged(&["--lock-timeout", "18446744073709551615"]);
    s.verify().success();
}

#[test]
fn a_host_root_that_is_a_bind_mount_of_a_device_folder_is_refused() {
    let s = Setup::new();
    s.staged(&[]);
    let before = s.tree();
    // In a private mount namespace, so nothing leaks: the host root is the
    // device root itself, then its var/sota/import, under another path.
    for (source, message) in [
        (
            s.dev.clone(),
            "are the same folder (a bind mount or another path to it)",
        ),
        (
            s.dev.join("var/sota/import"),
            "host root and device:var/sota/import are the same folder",
        ),
    ] {
        let script = "mount --bind \"$1\" \"$2\" && exec \"$3\" stage --method shared-cred --credentials \"$4\" --device-root \"$5\" --host-root \"$2\"";
        Cmd::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(&source)
            .arg(&s.host)
            .arg(env!("CARGO_BIN_EXE_sota-stage"))
            .arg(&s.zip)
            .arg(&s.dev)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .run()
            .code(2)
            .stderr_has(message)
            .stderr_has("the host's secrets would land in the image");
        assert_eq!(s.tree(), before, "{message}");
    }
    assert_no_host_secret_in(&s.dev);
}

// --- 10. --force and the folders it empties (defect 7) --------------------------

#[test]
fn force_removes_the_folders_its_removals_leave_empty() {
    let s = Setup::with(|c| c.file("director.root.json", ROOT_JSON));
    s.staged(&[]);
    assert!(s.dev.join("var/sota/import/director/root.json").is_file());
    // Without pinning, with the same archive: both pinned roots go, and
    // their folders with them.
    s.stage("shared-cred", &["--no-root-pinning", "--force"])
        .run()
        .success()
        .stderr_has("2 no longer staged removed");
    assert!(!s.dev.join("var/sota/import/director").exists());
    assert!(!s.dev.join("var/sota/import/repo").exists());
    assert!(s.dev.join("var/sota").is_dir());
    s.verify().success();
    // A folder that holds something else stays.
    s.stage("shared-cred", &["--force"]).run().success();
    fs::write(s.dev.join("var/sota/import/director/mine"), "x").unwrap();
    s.staged(&["--no-root-pinning", "--force"]);
    assert!(s.dev.join("var/sota/import/director/mine").is_file());
}

// --- 11. SOTA_STAGE_SYNC (defect 8) ----------------------------------------------

#[test]
fn sota_stage_sync_takes_the_usual_switch_values() {
    let s = Setup::new();
    for value in ["1", "true", "Yes", "ON", "0", "off", "No", "FALSE", ""] {
        s.stage("shared-cred", &[])
            .env("SOTA_STAGE_SYNC", value)
            .run()
            .success();
    }
    s.verify().success();
    let long = format!("2\u{1b}[31m{}", "x".repeat(200));
    for (value, shown) in [("2", "`2`"), (long.as_str(), "`2\\u{1b}[31mxxxx")] {
        s.stage("shared-cred", &[])
            .env("SOTA_STAGE_SYNC", value)
            .run()
            .code(2)
            .stderr_has(&format!("SOTA_STAGE_SYNC={shown}"))
            .stderr_has("set it to 1, 0, true, false, yes, no, on or off")
            .stderr_lacks(&"x".repeat(40));
    }
}

/// Under pseudo, as bitbake's `do_install` runs the tool (fakeroot): every
/// file operation of the writer must go through libc, where pseudo's
/// preload sees it. rustix's default backend makes raw system calls, so
/// pseudo's database lost track of the files the writer made through
/// directory handles, and the next path operation on one (a second run
/// with `--force`, a `chmod` by the recipe) made pseudo abort the build
/// ("path mismatch", exit 134): found by scripts/oe/oe-build-check.sh in CI.
/// Needs Debian's `pseudo` (`.ci/run` installs it).
#[test]
fn the_writer_works_under_pseudo_as_bitbake_runs_it() {
    let dir = TestDir::new();
    let zip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/credentials.zip");
    let state = dir.mkdir("pseudo");
    let dev = dir.join("device");
    let stage = |force: &str| {
        format!(
            "{bin} stage {force} --method shared-cred --credentials '{zip}' --device-root '{dev}' --manifest '{dir}/m.json'",
            bin = env!("CARGO_BIN_EXE_sota-stage"),
            zip = zip.display(),
            dev = dev.display(),
            dir = dir.path().display(),
        )
    };
    let script = format!(
        "set -e; {first}; find '{dev}' -exec stat -c '%u %a %n' {{}} + >/dev/null; {second}; chmod 0644 '{dev}/usr/lib/sota/conf.d/20-sota-shared-cred.toml'; echo done",
        first = stage(""),
        second = stage("--force"),
        dev = dev.display(),
    );
    let out = Command::new("pseudo")
        .arg("sh")
        .arg("-c")
        .arg(&script)
        .env("PSEUDO_PREFIX", "/usr")
        .env("PSEUDO_LOCALSTATEDIR", &state)
        .output()
        .unwrap_or_else(|e| panic!("cannot run pseudo (Debian package pseudo): {e}"));
    let log = fs::read_to_string(state.join("pseudo.log")).unwrap_or_default();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).ends_with("done\n"),
        "{:?}\n{}\n{}\npseudo.log:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!log.contains("mismatch"), "{log}");
}
