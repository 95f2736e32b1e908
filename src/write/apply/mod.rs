//! Applying a plan: the only module that writes files (design.md section 5).
//!
//! All or nothing. A run first takes an advisory lock on its roots (two
//! runs on the same roots take turns), removes what an earlier run that
//! was killed left behind (its temporaries, files it had moved aside),
//! then looks at and compares every target; nothing is touched while a
//! conflict remains. Then each new file, the manifest included, is written
//! to a temporary name in its final folder (mode, mtime, and fsync when
//! asked), and only when all are written are they renamed into place. On
//! any failure the temporaries are removed, replaced and removed files are
//! put back, folder modes are set back, created folders are removed: the
//! roots and the manifest are as they were.
//!
//! Symbolic links are never followed below a root. A root given as a link
//! is resolved once, and every folder below it is opened from its parent's
//! handle, one name at a time, with `O_NOFOLLOW | O_DIRECTORY`; every
//! file is created, renamed and removed relative to its folder's handle.
//! The folders are looked at when the run checks, and opened again when it
//! writes: a folder swapped for a link in between fails the run (nothing
//! is written through the link), and so does one swapped for another
//! folder. The two roots must not share a folder, which paths alone cannot
//! tell (a bind mount): the device and inode numbers of every folder a run
//! opens in one root are compared with those of the other.
//!
//! The modules: `types.rs` the public types of a run (`Roots`, `Options`,
//! `Outside`, `Applied`, `Step`); `opened.rs` the folders a run holds,
//! opened without following a link; `writer.rs` one file written through a
//! folder handle (temporary, fill, rename) and `write_file`; `lock.rs` the
//! roots locked; `leftovers.rs` what a killed run left, cleaned up;
//! `undo.rs` what a run changed, taken back or finished; `transaction.rs`
//! the check and write of one plan; `session.rs` one locked folder for
//! several transactions; `tests.rs` their tests.

mod leftovers;
mod lock;
mod opened;
mod session;
mod transaction;
mod types;
mod undo;
mod writer;

use std::io;

use crate::error::{Error, Result};
use crate::intake::catalogue::Side;
use crate::plan::files::Plan;

use leftovers::recover;
use lock::{add_root, lock_roots, LockedRoot};
use opened::Opened;
use transaction::transaction;
use undo::Undo;
use writer::create_root;

pub use session::Session;
pub use types::{Applied, Options, Outside, Roots, Step, MAX_LOCK_TIMEOUT};
pub use writer::write_file;

/// Applies `plan` under `roots`, with `outside` (the manifest) in the
/// same transaction.
pub fn apply(
    plan: &Plan,
    roots: &Roots<'_>,
    outside: Option<&Outside<'_>>,
    opts: &Options,
) -> Result<Applied> {
    apply_with(plan, roots, outside, opts, &|_| Ok(()))
}

/// [`apply`], calling `hook` before each step; a hook error fails the step.
pub fn apply_with(
    plan: &Plan,
    roots: &Roots<'_>,
    outside: Option<&Outside<'_>>,
    opts: &Options,
    hook: &dyn Fn(Step) -> io::Result<()>,
) -> Result<Applied> {
    for file in &plan.files {
        if roots.get(file.side).is_none() {
            return Err(Error::Usage(format!(
                "the plan has {} files but no {0} root was given",
                file.side.as_str()
            )));
        }
    }
    let both_sides = plan.files.iter().any(|f| f.side == Side::Device)
        && plan.files.iter().any(|f| f.side == Side::Host);

    // 0. Create the missing roots, then hold them: a second run on the
    // same roots waits here until this one is done.
    let mut undo = Undo::default();
    let locked = (|| -> Result<Vec<LockedRoot>> {
        for root in [Some(roots.device), roots.host].into_iter().flatten() {
            undo.created_roots.extend(create_root(root)?);
        }
        lock_roots(roots, opts.lock_timeout, both_sides, opts.waiting)
    })();
    let locked = match locked {
        Ok(locks) => locks,
        Err(e) => {
            undo.roll_back();
            return Err(e);
        }
    };
    let result = (|| -> Result<Applied> {
        let mut looked = Opened::default();
        for root in &locked {
            add_root(&mut looked, root)?;
            add_root(&mut undo.held, root)?;
        }
        let recovered = recover(plan, &mut looked, outside)?;
        let mut applied = transaction(
            plan,
            &mut looked,
            outside,
            opts,
            hook,
            both_sides,
            &mut undo,
        )?;
        applied.recovered = recovered;
        Ok(applied)
    })();
    let applied = undo.settle(plan, opts, result);
    drop(undo);
    drop(locked);
    applied
}

#[cfg(test)]
mod tests;
