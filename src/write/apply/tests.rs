use super::*;
use crate::plan::files::MODE_DIR;
use crate::plan::files::{FileSpec, MODE_FILE, MODE_SECRET};
use crate::plan::methods::Method;
use crate::test_support::{tree, Node, TestDir};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

fn opts(epoch: i64, force: bool) -> Options {
    Options {
        epoch,
        force,
        sync: false,
        lock_timeout: Duration::from_secs(5),
        waiting: None,
    }
}

fn file(side: Side, path: &str, bytes: &[u8], mode: u32) -> FileSpec {
    FileSpec::new(side, path, bytes.to_vec(), mode == MODE_SECRET)
}

fn plan() -> Plan {
    let files = vec![
        file(
            Side::Device,
            "usr/lib/sota/conf.d/20-x.toml",
            b"[a]\n",
            MODE_FILE,
        ),
        file(
            Side::Device,
            "var/sota/import/gateway.url",
            b"https://x",
            MODE_FILE,
        ),
        file(Side::Device, "var/sota/z.zip", b"zip", MODE_SECRET),
        file(Side::Host, "treehub.json", b"{}", MODE_SECRET),
    ];
    Plan::new(Method::DeviceCred, "0".repeat(64), files, Vec::new())
}

/// Every path under `dir` with its mode and, for files and links, its
/// bytes and mtime. Folder times are left out: a folder's mtime follows
/// every entry added or removed, and rollback does not restore it.
fn snapshot(dir: &Path) -> BTreeMap<String, Node> {
    let mut nodes = tree(dir);
    for node in nodes.values_mut() {
        if node.bytes.is_none() {
            node.mtime = (0, 0);
        }
    }
    nodes
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Roots to stage [`plan`] into, in a fresh folder. `populated`: both
/// roots exist and hold files of their own, one file on each side that
/// `--force` replaces, and a folder whose mode `--force` changes;
/// otherwise the device root is empty and the host root does not exist
/// (the run creates it).
fn roots_for(populated: bool) -> TestDir {
    let dir = TestDir::new();
    let (dev, host) = (dir.join("d"), dir.join("h"));
    if populated {
        write_with_mode(&dev.join("etc/hostname"), b"rpi\n", 0o644);
        write_with_mode(
            &dev.join("usr/lib/sota/conf.d/20-x.toml"),
            b"[old]\n",
            0o644,
        );
        write_with_mode(
            &dev.join("usr/lib/sota/conf.d/10-other.toml"),
            b"[o]\n",
            0o644,
        );
        for (folder, mode) in [
            ("usr", 0o750),
            ("usr/lib", MODE_DIR),
            ("usr/lib/sota", MODE_DIR),
            ("usr/lib/sota/conf.d", MODE_DIR),
        ] {
            fs::set_permissions(dev.join(folder), fs::Permissions::from_mode(mode)).expect("chmod");
        }
        write_with_mode(&host.join("treehub.json"), b"old", 0o600);
        write_with_mode(&host.join("notes.txt"), b"mine", 0o640);
    } else {
        fs::create_dir_all(&dev).expect("mkdir");
    }
    dir
}

#[test]
fn writes_modes_and_times_exactly() {
    let s = TestDir::new();
    let (dev, host) = (s.join("d"), s.join("h"));
    let roots = Roots {
        device: &dev,
        host: Some(&host),
    };
    let applied = apply(&plan(), &roots, None, &opts(1_700_000_000, false)).expect("staged");
    assert_eq!(
        applied,
        Applied {
            written: 4,
            ..Applied::default()
        }
    );
    let meta = |p: &Path| fs::symlink_metadata(p).expect("exists");
    assert_eq!(meta(&dev.join("var/sota")).mode() & 0o7777, 0o700);
    assert_eq!(meta(&dev.join("var/sota/import")).mode() & 0o7777, 0o700);
    assert_eq!(
        meta(&dev.join("usr/lib/sota/conf.d")).mode() & 0o7777,
        0o755
    );
    assert_eq!(meta(&dev.join("var/sota/z.zip")).mode() & 0o7777, 0o600);
    assert_eq!(
        meta(&dev.join("var/sota/import/gateway.url")).mode() & 0o7777,
        0o644
    );
    assert_eq!(meta(&host.join("treehub.json")).mode() & 0o7777, 0o600);
    assert_eq!(meta(&dev.join("var/sota/z.zip")).mtime(), 1_700_000_000);
    assert_eq!(meta(&dev.join("var/sota")).mtime(), 1_700_000_000);
    // No temporary is left behind.
    assert!(snapshot(s.path())
        .keys()
        .all(|k| !k.contains("sota-stage-")));
    // A second run finds everything in place.
    let again = apply(&plan(), &roots, None, &opts(1_700_000_000, false)).expect("idempotent");
    assert_eq!(
        again,
        Applied {
            unchanged: 4,
            ..Applied::default()
        }
    );
}

/// [`plan`] applied with `hook` to new [`roots_for`]`(populated)`,
/// with `--force` where they are populated: the folder, its snapshot
/// from before, and the result.
fn apply_to_fresh_roots(
    populated: bool,
    hook: &dyn Fn(Step) -> io::Result<()>,
) -> (TestDir, BTreeMap<String, Node>, Result<Applied>) {
    let dir = roots_for(populated);
    let (dev, host) = (dir.join("d"), dir.join("h"));
    let roots = Roots {
        device: &dev,
        host: Some(&host),
    };
    let before = snapshot(dir.path());
    let result = apply_with(&plan(), &roots, None, &opts(1, populated), hook);
    (dir, before, result)
}

/// A failure injected at each step of a run, one run per step: the
/// step is reached (its failure fires exactly once), the run fails with
/// it, and both roots are as they were before, byte for byte and mode
/// for mode. Once from empty roots, once from populated ones with
/// `--force`, where files are moved aside and must be put back.
#[test]
fn a_failure_at_any_step_leaves_the_roots_as_they_were() {
    let creates =
        |dirs: std::ops::Range<usize>| dirs.flat_map(|i| [Step::CreateDir(i), Step::SetDirMode(i)]);
    let writes: Vec<Step> = (0..4)
        .map(Step::WriteTemp)
        .chain((0..4).map(Step::Rename))
        .collect();
    for (populated, created) in [(false, creates(0..7)), (true, creates(4..7))] {
        let expected: Vec<Step> = created.chain(writes.iter().copied()).collect();
        // Without a failure the run takes exactly these steps and
        // changes the roots: there is something to roll back.
        let taken = RefCell::new(Vec::new());
        let record = |at: Step| {
            taken.borrow_mut().push(at);
            Ok(())
        };
        let (dir, before, result) = apply_to_fresh_roots(populated, &record);
        result.expect("staged");
        assert_eq!(taken.into_inner(), expected, "populated={populated}");
        assert_ne!(snapshot(dir.path()), before, "populated={populated}");

        for step in expected {
            let fired = Cell::new(0);
            let fail = |at: Step| {
                if at == step {
                    fired.set(fired.get() + 1);
                    Err(io::Error::other("injected"))
                } else {
                    Ok(())
                }
            };
            let (dir, before, result) = apply_to_fresh_roots(populated, &fail);
            let e = result.expect_err("a failed step fails the run");
            assert_eq!(fired.get(), 1, "{step:?} populated={populated}");
            assert!(e.to_string().contains("injected"), "{step:?}: {e}");
            assert_eq!(
                snapshot(dir.path()),
                before,
                "{step:?} populated={populated}"
            );
        }
    }
}

#[test]
fn a_different_file_is_a_conflict_unless_forced() {
    let s = TestDir::new();
    let dev = s.join("d");
    fs::create_dir_all(dev.join("var/sota/import")).expect("mkdir");
    fs::set_permissions(dev.join("var/sota"), fs::Permissions::from_mode(0o700)).expect("chmod");
    fs::set_permissions(
        dev.join("var/sota/import"),
        fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    fs::write(dev.join("var/sota/import/gateway.url"), b"https://other").expect("write");
    let mut p = plan();
    p.files.retain(|f| f.side == Side::Device);
    let roots = Roots {
        device: &dev,
        host: None,
    };
    let before = snapshot(s.path());
    let e = apply(&p, &roots, None, &opts(1, false)).expect_err("conflict");
    assert!(
        e.to_string()
            .contains("device:var/sota/import/gateway.url exists with different content"),
        "{e}"
    );
    assert!(matches!(e, Error::Conflicts(_)), "{e}");
    assert_eq!(snapshot(s.path()), before);
    apply(&p, &roots, None, &opts(1, true)).expect("forced");
    assert_eq!(
        fs::read(dev.join("var/sota/import/gateway.url")).expect("read"),
        b"https://x"
    );
}

/// A run killed (kill -9) at any step: here the hook panics, so no
/// rollback runs, as with a kill, and the lock goes with the process's
/// files. The next run, without force where the killed one had none,
/// removes what the killed one left, repairs the folders it owns,
/// stages, and the roots and the manifest verify, with no temporary
/// left anywhere.
#[test]
fn a_run_killed_at_any_step_is_finished_by_the_next() {
    use crate::plan::manifest::Manifest;
    use crate::write::verify::verify;
    let mut steps = Vec::new();
    for populated in [false, true] {
        let taken = RefCell::new(Vec::new());
        let record = |at: Step| {
            taken.borrow_mut().push(at);
            Ok(())
        };
        let _ = apply_to_fresh_roots(populated, &record);
        steps.extend(taken.into_inner().into_iter().map(|s| (populated, s)));
    }
    assert!(steps.len() > 20, "{steps:?}");
    for (populated, step) in steps {
        let dir = roots_for(populated);
        let (dev, host, manifest) = (dir.join("d"), dir.join("h"), dir.join("m.json"));
        let roots = Roots {
            device: &dev,
            host: Some(&host),
        };
        let json = Manifest::from_plan(&plan()).to_json();
        let outside = Outside {
            path: &manifest,
            bytes: json.as_bytes(),
            mode: MODE_FILE,
        };
        let kill = |at: Step| -> io::Result<()> {
            if at == step {
                panic!("killed at {at:?}");
            }
            Ok(())
        };
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply_with(&plan(), &roots, Some(&outside), &opts(1, populated), &kill)
        }));
        assert!(killed.is_err(), "{step:?} was not reached");
        apply(&plan(), &roots, Some(&outside), &opts(1, populated))
            .unwrap_or_else(|e| panic!("after a kill at {step:?}: {e}"));
        assert_eq!(fs::read(&manifest).expect("manifest"), json.as_bytes());
        // Only the files the populated roots hold of their own differ.
        let differences = verify(&Manifest::from_plan(&plan()), &roots).expect("verify");
        let theirs = ["usr/lib/sota/conf.d/10-other.toml", "notes.txt"];
        assert!(
            differences.iter().all(|d| matches!(d,
                crate::write::verify::Difference::Extra { path, .. } if populated && theirs.contains(&path.as_str()))),
            "after a kill at {step:?}, populated={populated}: {differences:?}"
        );
        let left: Vec<String> = snapshot(dir.path())
            .into_keys()
            .filter(|k| k.contains(".sota-stage-"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "{step:?}");
    }
}

/// A folder swapped between the check and the write (the hook runs
/// at the first write step, after everything was looked at): for a
/// link to a folder outside the root, and for another folder. The run
/// fails, nothing lands outside the root or in the moved folder, and
/// what it created is removed.
#[test]
fn a_folder_swapped_after_the_check_is_never_written_through() {
    for with_link in [true, false] {
        let s = TestDir::new();
        let (dev, outside) = (s.join("d"), s.join("outside"));
        fs::create_dir_all(dev.join("var/sota/import")).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        for f in ["var/sota", "var/sota/import"] {
            fs::set_permissions(dev.join(f), fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        let mut p = plan();
        p.files.retain(|f| f.side == Side::Device);
        let roots = Roots {
            device: &dev,
            host: None,
        };
        // `usr` is created first: the swap comes before any write.
        let swap = |at: Step| -> io::Result<()> {
            if at == Step::CreateDir(0) {
                fs::rename(dev.join("var/sota"), s.join("moved"))?;
                if with_link {
                    std::os::unix::fs::symlink(&outside, dev.join("var/sota"))?;
                } else {
                    fs::create_dir(dev.join("var/sota"))?;
                }
            }
            Ok(())
        };
        let e = apply_with(&p, &roots, None, &opts(1, false), &swap)
            .expect_err("a swapped folder fails the run");
        let why = if with_link {
            "device:var/sota exists and is not a folder"
        } else {
            "device:var/sota was replaced by another folder"
        };
        assert!(e.to_string().contains(why), "{e}");
        assert_eq!(
            snapshot(&outside).into_keys().collect::<Vec<_>>(),
            [""],
            "written through the link"
        );
        assert_eq!(
            snapshot(&s.join("moved")).into_keys().collect::<Vec<_>>(),
            ["", "import"],
            "written into the folder moved away"
        );
        assert!(!dev.join("usr").exists());
    }
}

#[test]
fn links_and_folders_in_the_way_are_refused() {
    let s = TestDir::new();
    let dev = s.join("d");
    fs::create_dir_all(dev.join("var/sota")).expect("mkdir");
    std::os::unix::fs::symlink("/etc/passwd", dev.join("var/sota/z.zip")).expect("link");
    let mut p = plan();
    p.files.retain(|f| f.side == Side::Device);
    let roots = Roots {
        device: &dev,
        host: None,
    };
    let e = apply(&p, &roots, None, &opts(1, true)).expect_err("link");
    assert!(e.to_string().contains("not a regular file"), "{e}");
}
