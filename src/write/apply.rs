//! Applying a plan: the only module that writes files (design.md section 5).
//!
//! All or nothing. First every target is looked at and compared; nothing is
//! touched while a conflict remains. Then each new file is written to a
//! temporary name in its final folder (mode, mtime, fsync), and only when
//! all are written are they renamed into place. On any failure the
//! temporaries are removed, replaced files are put back, created folders are
//! removed: the roots are as they were. Symbolic links are never followed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::intake::catalogue::Side;
use crate::plan::files::{Plan, MODE_DIR};

/// Where the two roots are.
#[derive(Debug, Clone, Copy)]
pub struct Roots<'a> {
    pub device: &'a Path,
    pub host: Option<&'a Path>,
}

impl Roots<'_> {
    /// The root of one side, when it was given.
    pub fn get(&self, side: Side) -> Option<&Path> {
        match side {
            Side::Device => Some(self.device),
            Side::Host => self.host,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Files written (new or replaced).
    pub written: usize,
    /// Files that were already there with the same bytes and mode.
    pub unchanged: usize,
}

/// A step of the write, for tests that inject a failure at each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateDir(usize),
    WriteTemp(usize),
    Rename(usize),
}

/// Applies `plan` under `roots`. `epoch` is every mtime; `force` replaces
/// files and folder modes that differ.
pub fn apply(plan: &Plan, roots: &Roots<'_>, epoch: i64, force: bool) -> Result<Applied> {
    apply_with(plan, roots, epoch, force, &|_| Ok(()))
}

/// Writes one file atomically (temporary name, fsync, rename), with `mode`
/// and `epoch` as mtime: for the manifest, outside the roots.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, epoch: i64) -> Result<()> {
    let temp = temp_name(path, "tmp");
    write_temp(&temp, bytes, mode, epoch)?;
    fs::rename(&temp, path).map_err(|e| {
        let _ = fs::remove_file(&temp);
        Error::io("rename into place", path, e)
    })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

/// What the check phase decided for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Keep,
    Create,
    Replace,
}

/// [`apply`], calling `hook` before each step; a hook error fails the step.
pub fn apply_with(
    plan: &Plan,
    roots: &Roots<'_>,
    epoch: i64,
    force: bool,
    hook: &dyn Fn(Step) -> io::Result<()>,
) -> Result<Applied> {
    let target = |root: Side, rel: &str| -> Result<PathBuf> {
        roots.get(root).map(|r| r.join(rel)).ok_or_else(|| {
            Error::Usage(format!(
                "the plan has {} files but no {0} root was given",
                root.as_str()
            ))
        })
    };

    // 1. Look at everything; change nothing.
    let mut conflicts = Vec::new();
    let mut dir_actions = Vec::new();
    for dir in &plan.dirs {
        let path = target(dir.side, &dir.path)?;
        let action = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                if m.permissions().mode() & 0o7777 == dir.mode() {
                    Action::Keep
                } else if force {
                    Action::Replace
                } else {
                    conflicts.push(format!(
                        "{}:{} exists with mode {:04o}, not {:04o}",
                        dir.side.as_str(),
                        dir.path,
                        m.permissions().mode() & 0o7777,
                        dir.mode()
                    ));
                    Action::Keep
                }
            }
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{}:{} exists and is not a folder; remove it",
                    dir.side.as_str(),
                    dir.path
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Action::Create,
            Err(e) => return Err(Error::io("look at", &path, e)),
        };
        dir_actions.push((path, action, dir.mode()));
    }
    let mut file_actions = Vec::new();
    for file in &plan.files {
        let path = target(file.side, &file.path)?;
        let action = match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_file() => {
                let same_mode = m.permissions().mode() & 0o7777 == file.mode();
                let same_bytes = m.len() == file.contents.expose().len() as u64
                    && fs::read(&path).map_err(|e| Error::io("read", &path, e))?
                        == *file.contents.expose();
                if same_mode && same_bytes {
                    Action::Keep
                } else if force {
                    Action::Replace
                } else {
                    conflicts.push(format!(
                        "{}:{} exists with {}",
                        file.side.as_str(),
                        file.path,
                        if same_bytes {
                            format!(
                                "mode {:04o}, not {:04o}",
                                m.permissions().mode() & 0o7777,
                                file.mode()
                            )
                        } else {
                            "different content".to_string()
                        }
                    ));
                    Action::Keep
                }
            }
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "{}:{} exists and is not a regular file (a folder or a link); remove it",
                    file.side.as_str(),
                    file.path
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Action::Create,
            Err(e) => return Err(Error::io("look at", &path, e)),
        };
        file_actions.push((path, action, file));
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts(conflicts));
    }

    // 2. Create folders and write temporaries. 3. Rename into place.
    let mut undo = Undo::default();
    let result = (|| -> Result<Applied> {
        for root in [Some(roots.device), roots.host].into_iter().flatten() {
            undo.created_dirs.extend(create_root(root)?);
        }
        for (i, (path, action, mode)) in dir_actions.iter().enumerate() {
            if *action == Action::Create {
                hook(Step::CreateDir(i)).map_err(|e| Error::io("create folder", path, e))?;
                fs::create_dir(path).map_err(|e| Error::io("create folder", path, e))?;
                undo.created_dirs.push(path.clone());
                set_mode(path, *mode)?;
            }
        }
        let mut pending = Vec::new();
        for (i, (path, action, file)) in file_actions.iter().enumerate() {
            if *action == Action::Keep {
                continue;
            }
            let temp = temp_name(path, "tmp");
            hook(Step::WriteTemp(i)).map_err(|e| Error::io("write", &temp, e))?;
            undo.temps.push(temp.clone());
            write_temp(&temp, file.contents.expose(), file.mode(), epoch)?;
            pending.push((i, temp, path, *action));
        }
        for (i, temp, path, action) in &pending {
            hook(Step::Rename(*i)).map_err(|e| Error::io("rename into place", path, e))?;
            if *action == Action::Replace {
                let old = temp_name(path, "old");
                fs::rename(path, &old).map_err(|e| Error::io("move aside", path, e))?;
                undo.moved_aside.push((old, (*path).clone()));
            }
            fs::rename(temp, path).map_err(|e| Error::io("rename into place", path, e))?;
            undo.temps.retain(|t| t != temp);
            undo.placed.push((*path).clone());
        }
        Ok(Applied {
            written: pending.len(),
            unchanged: file_actions.len() - pending.len(),
        })
    })();

    match result {
        Ok(applied) => {
            for (old, _) in &undo.moved_aside {
                let _ = fs::remove_file(old);
            }
            for (path, action, mode) in &dir_actions {
                if *action == Action::Replace {
                    set_mode(path, *mode)?;
                }
            }
            // Folders created here get the same time as the files; their
            // mtime changed with every rename, so set it last.
            for dir in undo.created_dirs.iter().rev() {
                set_mtime_path(dir, epoch);
            }
            // Each folder whose entries changed is synced once: the parents
            // of placed files and of created folders.
            let changed: std::collections::BTreeSet<&Path> = undo
                .placed
                .iter()
                .chain(undo.created_dirs.iter())
                .filter_map(|p| p.parent())
                .collect();
            for dir in changed {
                sync_dir(dir);
            }
            Ok(applied)
        }
        Err(e) => {
            undo.roll_back();
            Err(e)
        }
    }
}

/// What to take back when a run fails half-way.
#[derive(Debug, Default)]
struct Undo {
    created_dirs: Vec<PathBuf>,
    temps: Vec<PathBuf>,
    placed: Vec<PathBuf>,
    /// (backup, original path) of replaced files.
    moved_aside: Vec<(PathBuf, PathBuf)>,
}

impl Undo {
    /// Best effort: every step is tried even if one fails.
    fn roll_back(&self) {
        for path in self.placed.iter().rev() {
            let _ = fs::remove_file(path);
        }
        for (old, original) in self.moved_aside.iter().rev() {
            let _ = fs::rename(old, original);
        }
        for temp in &self.temps {
            let _ = fs::remove_file(temp);
        }
        for dir in self.created_dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Creates a missing root and its missing parents, each with the folder
/// mode (never the umask's); returns what it created, parents first.
fn create_root(root: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(root);
    while let Some(p) = at {
        if p.as_os_str().is_empty() || fs::symlink_metadata(p).is_ok() {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    missing.reverse();
    let mut created = Vec::new();
    for dir in missing {
        let made = fs::create_dir(&dir).map_err(|e| Error::io("create folder", &dir, e));
        if made.is_ok() {
            created.push(dir.clone());
        }
        if let Err(e) = made.and_then(|()| set_mode(&dir, MODE_DIR)) {
            for d in created.iter().rev() {
                let _ = fs::remove_dir(d);
            }
            return Err(e);
        }
    }
    Ok(created)
}

fn temp_name(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.sota-stage-{}.{kind}", std::process::id()))
}

fn write_temp(temp: &Path, bytes: &[u8], mode: u32, epoch: i64) -> Result<()> {
    // Created 0600 whatever the umask, then set to its mode: a secret is
    // never readable by others, not even for a moment.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| Error::io("create", temp, e))?;
    let written = (|| {
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.set_modified(system_time(epoch))?;
        file.sync_all()
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(temp);
        Error::io("write", temp, e)
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io("set the mode of", path, e))
}

fn system_time(epoch: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch).unwrap_or(0))
}

/// Sets a folder's mtime. A folder's time is not part of what is checked
/// or verified, so a failure here is not worth failing the run.
fn set_mtime_path(path: &Path, epoch: i64) {
    if let Ok(dir) = File::open(path) {
        let _ = dir.set_modified(system_time(epoch));
    }
}

/// fsync a folder so renames in it survive a crash; best effort.
fn sync_dir(path: &Path) {
    if let Ok(dir) = File::open(path) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::files::{FileSpec, MODE_FILE, MODE_SECRET};
    use crate::plan::methods::Method;
    use crate::test_support::{tree, Node, TestDir};
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

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
                fs::set_permissions(dev.join(folder), fs::Permissions::from_mode(mode))
                    .expect("chmod");
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
        let applied = apply(&plan(), &roots, 1_700_000_000, false).expect("staged");
        assert_eq!(
            applied,
            Applied {
                written: 4,
                unchanged: 0
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
        let again = apply(&plan(), &roots, 1_700_000_000, false).expect("idempotent");
        assert_eq!(
            again,
            Applied {
                written: 0,
                unchanged: 4
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
        let result = apply_with(&plan(), &roots, 1, populated, hook);
        (dir, before, result)
    }

    /// A failure injected at each step of a run, one run per step: the
    /// step is reached (its failure fires exactly once), the run fails with
    /// it, and both roots are as they were before, byte for byte and mode
    /// for mode. Once from empty roots, once from populated ones with
    /// `--force`, where files are moved aside and must be put back.
    #[test]
    fn a_failure_at_any_step_leaves_the_roots_as_they_were() {
        let creates = |dirs: std::ops::Range<usize>| dirs.map(Step::CreateDir);
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
        fs::set_permissions(dev.join("var/sota"), fs::Permissions::from_mode(0o700))
            .expect("chmod");
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
        let e = apply(&p, &roots, 1, false).expect_err("conflict");
        assert!(
            e.to_string()
                .contains("device:var/sota/import/gateway.url exists with different content"),
            "{e}"
        );
        assert!(matches!(e, Error::Conflicts(_)), "{e}");
        assert_eq!(snapshot(s.path()), before);
        apply(&p, &roots, 1, true).expect("forced");
        assert_eq!(
            fs::read(dev.join("var/sota/import/gateway.url")).expect("read"),
            b"https://x"
        );
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
        let e = apply(&p, &roots, 1, true).expect_err("link");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
