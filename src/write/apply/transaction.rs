//! One transaction: look at every target, refuse conflicts, then write
//! temporaries and rename them into place, recording each change.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

use super::opened::{check_shared_folders, file_type, label, mode_of, split, stat_in, Opened};
use super::types::{Applied, Options, Outside, Step};
use super::undo::Undo;
use super::writer::{same_bytes, temp_file_name, write_temp};
use crate::error::{Error, Result};
use crate::plan::files::{Plan, OLD, TEMP};

/// What the check phase decided for one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Keep,
    Create,
    Replace,
}

/// The folder of the outside file, opened by its path, and its name.
pub(super) fn open_outside(out: &Outside<'_>) -> Result<(OwnedFd, String, PathBuf)> {
    let name = out
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::io(
                "write the manifest to",
                out.path,
                io::Error::other("the path names no file"),
            )
        })?;
    let folder = out
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fd = rfs::openat(
        rfs::CWD,
        folder,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("write the manifest in", folder, e.into()))?;
    Ok((fd, name, folder.to_path_buf()))
}

/// One file to write: in folder `dir` (a handle of [`Undo::held`]), as
/// `name`.
#[derive(Debug)]
pub(super) struct FileAction<'p> {
    dir: usize,
    name: String,
    action: Action,
    bytes: &'p [u8],
    mode: u32,
}

/// Looks at everything, then changes it; `undo` records each change.
pub(super) fn transaction(
    plan: &Plan,
    looked: &mut Opened,
    outside: Option<&Outside<'_>>,
    opts: &Options,
    hook: &dyn Fn(Step) -> io::Result<()>,
    both_sides: bool,
    undo: &mut Undo,
) -> Result<Applied> {
    // 1. Look at everything; change nothing.
    let mut conflicts = Vec::new();
    let mut dir_actions = Vec::new();
    for dir in &plan.dirs {
        let (parent, _) = split(&dir.path);
        // A missing parent means a missing folder: it is created.
        let action = match looked.get(dir.side, parent)? {
            None => Action::Create,
            Some(_) => match looked.get(dir.side, &dir.path)? {
                None => Action::Create,
                Some(i) => {
                    let fd = looked.fd(i)?;
                    let st = rfs::fstat(fd)
                        .map_err(|e| Error::io("look at", &looked.shown(i, ""), e.into()))?;
                    let mode = mode_of(&st);
                    if mode == dir.mode() {
                        Action::Keep
                    } else if opts.force || dir.owned() {
                        Action::Replace
                    } else {
                        conflicts.push(format!(
                            "{} exists with mode {mode:04o}, not {:04o}",
                            label(dir.side, &dir.path),
                            dir.mode()
                        ));
                        Action::Keep
                    }
                }
            },
        };
        dir_actions.push(action);
    }
    let mut files = Vec::new();
    for file in &plan.files {
        let (parent, name) = split(&file.path);
        let bytes = file.contents.expose().as_slice();
        let action = match looked.get(file.side, parent)? {
            None => Action::Create,
            Some(p) => {
                let shown = looked.shown(p, name);
                match stat_in(looked.fd(p)?, name).map_err(|e| Error::io("look at", &shown, e))? {
                    None => Action::Create,
                    Some(st) if file_type(&st) == FileType::RegularFile => {
                        let mode = mode_of(&st);
                        let same_mode = mode == file.mode();
                        let same_bytes = u64::try_from(st.st_size).ok() == Some(bytes.len() as u64)
                            && same_bytes(looked.fd(p)?, name, bytes, &shown)?;
                        if same_mode && same_bytes {
                            Action::Keep
                        } else if opts.force {
                            Action::Replace
                        } else {
                            conflicts.push(format!(
                                "{} exists with {}",
                                label(file.side, &file.path),
                                if same_bytes {
                                    format!("mode {mode:04o}, not {:04o}", file.mode())
                                } else {
                                    "different content".to_string()
                                }
                            ));
                            Action::Keep
                        }
                    }
                    Some(_) => {
                        return Err(Error::Invalid(format!(
                            "{} exists and is not a regular file (a folder or a link); remove it",
                            label(file.side, &file.path)
                        )))
                    }
                }
            }
        };
        files.push((file.side, parent, name, action, bytes, file.mode()));
    }
    // Files of the tool that this plan does not stage (another method's,
    // a hardware ID no longer given): only with force, and never a folder.
    let mut retired = Vec::new();
    for (side, rel) in &plan.retired {
        if !looked.at.contains_key(&(*side, String::new())) {
            continue;
        }
        let (parent, name) = split(rel);
        let Some(p) = looked.get(*side, parent)? else {
            continue;
        };
        let shown = looked.shown(p, name);
        match stat_in(looked.fd(p)?, name).map_err(|e| Error::io("look at", &shown, e))? {
            Some(st) if file_type(&st) == FileType::Directory => {}
            Some(_) if opts.force => retired.push((*side, rel.as_str())),
            Some(_) => conflicts.push(format!(
                "{} is not staged by this run (left by a run of another method or with other options); it would be removed",
                label(*side, rel)
            )),
            None => {}
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts(conflicts));
    }
    // The two roots share no folder: a host root that is a bind mount of
    // a folder of the device root (or the other way round) has another
    // path, but the same device and inode numbers.
    if both_sides {
        check_shared_folders(looked)?;
    }
    // The manifest replaces whatever manifest is there: it is the tool's
    // (the command checked that it reads as one).
    let mut outside_action = None;
    if let Some(out) = outside {
        let (fd, name, folder) = open_outside(out)?;
        let st = stat_in(fd.as_fd(), &name).map_err(|e| Error::io("look at", out.path, e))?;
        let action = match st {
            Some(st) if file_type(&st) == FileType::RegularFile => Action::Replace,
            Some(_) => {
                return Err(Error::io(
                    "write the manifest to",
                    out.path,
                    io::Error::other("it is not a regular file; remove it"),
                ))
            }
            None => Action::Create,
        };
        let i = undo
            .held
            .push(fd, folder)
            .map_err(|e| Error::io("look at", out.path, e))?;
        outside_action = Some(FileAction {
            dir: i,
            name,
            action,
            bytes: out.bytes,
            mode: out.mode,
        });
    }

    // The looked-at folders are compared by identity from here on: their
    // handles go, so a run holds one set of handles, not two.
    looked.fds.clear();

    // 2. Open every folder again from the roots (a folder swapped for a
    // link or another folder since it was looked at fails the run here),
    // create the missing ones, set their modes, write temporaries.
    for (i, (dir, action)) in plan.dirs.iter().zip(&dir_actions).enumerate() {
        let (parent, name) = split(&dir.path);
        match action {
            Action::Create => {
                let p = undo
                    .held
                    .get_same(dir.side, parent, looked)?
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                        "{} was removed while this run was staging; nothing was written: run again",
                        label(dir.side, parent)
                    ))
                    })?;
                let shown = undo.held.shown(p, name);
                hook(Step::CreateDir(i)).map_err(|e| Error::io("create folder", &shown, e))?;
                // Created with its mode (the umask can only narrow it), so
                // a run killed before the chmod leaves no wider folder.
                rfs::mkdirat(undo.held.fd(p)?, name, Mode::from_raw_mode(dir.mode()))
                    .map_err(|e| Error::io("create folder", &shown, e.into()))?;
                undo.created.push((p, name.to_string(), None));
                let made = undo.held.get(dir.side, &dir.path)?.ok_or_else(|| {
                    Error::io("create folder", &shown, io::Error::other("it is gone"))
                })?;
                if let Some(last) = undo.created.last_mut() {
                    last.2 = Some(made);
                }
                hook(Step::SetDirMode(i)).map_err(|e| Error::io("set the mode of", &shown, e))?;
                rfs::fchmod(undo.held.fd(made)?, Mode::from_raw_mode(dir.mode()))
                    .map_err(|e| Error::io("set the mode of", &shown, e.into()))?;
            }
            Action::Replace => {
                let d = undo
                    .held
                    .get_same(dir.side, &dir.path, looked)?
                    .ok_or_else(|| {
                        Error::Invalid(format!(
                        "{} was removed while this run was staging; nothing was written: run again",
                        label(dir.side, &dir.path)
                    ))
                    })?;
                let shown = undo.held.shown(d, "");
                let fd = undo.held.fd(d)?;
                let old =
                    mode_of(&rfs::fstat(fd).map_err(|e| Error::io("look at", &shown, e.into()))?);
                rfs::fchmod(fd, Mode::from_raw_mode(dir.mode()))
                    .map_err(|e| Error::io("set the mode of", &shown, e.into()))?;
                undo.moded.push((d, old));
            }
            Action::Keep => {
                undo.held.get_same(dir.side, &dir.path, looked)?;
            }
        }
    }
    let mut actions = Vec::new();
    for (side, parent, name, action, bytes, mode) in files {
        let dir = undo.held.get_same(side, parent, looked)?.ok_or_else(|| {
            Error::Invalid(format!(
                "{} was removed while this run was staging; nothing was written: run again",
                label(side, parent)
            ))
        })?;
        actions.push(FileAction {
            dir,
            name: name.to_string(),
            action,
            bytes,
            mode,
        });
    }
    actions.extend(outside_action);
    let mut pending = Vec::new();
    for (i, file) in actions.iter().enumerate() {
        if file.action == Action::Keep {
            continue;
        }
        let temp = temp_file_name(&file.name, TEMP);
        let shown = undo.held.shown(file.dir, &temp);
        hook(Step::WriteTemp(i)).map_err(|e| Error::io("write", &shown, e))?;
        let k = undo.temps.len();
        undo.temps.push(Some((file.dir, temp.clone())));
        write_temp(
            undo.held.fd(file.dir)?,
            &temp,
            &shown,
            file.bytes,
            file.mode,
            opts,
        )?;
        pending.push((i, k, temp, file));
    }
    // 3. Rename into place; move retired files aside.
    for (i, k, temp, file) in &pending {
        let dir = undo.held.fd(file.dir)?;
        let shown = undo.held.shown(file.dir, &file.name);
        hook(Step::Rename(*i)).map_err(|e| Error::io("rename into place", &shown, e))?;
        if file.action == Action::Replace {
            let old = temp_file_name(&file.name, OLD);
            rfs::renameat(dir, file.name.as_str(), dir, old.as_str())
                .map_err(|e| Error::io("move aside", &shown, e.into()))?;
            undo.moved_aside.push((file.dir, old, file.name.clone()));
        }
        rfs::renameat(dir, temp.as_str(), dir, file.name.as_str())
            .map_err(|e| Error::io("rename into place", &shown, e.into()))?;
        // By its index: a scan of the list per rename made a run of
        // 10,000 bundles take a minute.
        if let Some(t) = undo.temps.get_mut(*k) {
            *t = None;
        }
        undo.placed.push((file.dir, file.name.clone()));
    }
    for (i, (side, rel)) in retired.iter().enumerate() {
        let (parent, name) = split(rel);
        let dir = undo.held.get_same(*side, parent, looked)?.ok_or_else(|| {
            Error::Invalid(format!(
                "{} was removed while this run was staging; nothing was written: run again",
                label(*side, parent)
            ))
        })?;
        let shown = undo.held.shown(dir, name);
        hook(Step::Remove(i)).map_err(|e| Error::io("remove", &shown, e))?;
        let old = temp_file_name(name, OLD);
        let fd = undo.held.fd(dir)?;
        rfs::renameat(fd, name, fd, old.as_str())
            .map_err(|e| Error::io("remove", &shown, e.into()))?;
        undo.moved_aside.push((dir, old, name.to_string()));
        undo.removed.push((dir, *side, rel.to_string()));
    }
    let outside_written = usize::from(outside.is_some());
    Ok(Applied {
        written: pending.len().saturating_sub(outside_written),
        unchanged: actions.len() - pending.len(),
        removed: retired.len(),
        recovered: 0,
    })
}
