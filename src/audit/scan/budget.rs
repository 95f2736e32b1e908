//! The decoding budgets: bytes decoded per file and per run, counted as a
//! decoder's output is read ([`Budgeted`]), and the errors that stop a
//! read for a reason that is not the data's ([`Stop`]).

use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What the run shares between workers.
#[derive(Debug, Default)]
pub struct Shared {
    /// Bytes decoded in the run so far.
    pub decoded: AtomicU64,
    /// The run's decoding budget was spent (said once).
    pub run_over: AtomicBool,
}

/// Why a read stopped for a reason that is not the data's: the reader
/// above failed (its error is kept by the [`Tee`] that saw it), or a
/// decoding budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Upstream,
    OverBudget,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Upstream => "the data above could not be read",
            Stop::OverBudget => "over the decoding budget",
        })
    }
}

impl std::error::Error for Stop {}

impl Stop {
    /// Whether `e` is this stop.
    pub(super) fn is(self, e: &io::Error) -> bool {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Stop>())
            .is_some_and(|stop| *stop == self)
    }
}

/// A decoder's output, counted against the file's and the run's budgets.
pub(super) struct Budgeted<'s, R> {
    pub(super) inner: R,
    /// None above a root archive: the image itself is not one file.
    pub(super) file: Option<Arc<AtomicU64>>,
    pub(super) shared: &'s Shared,
    pub(super) run_bytes: u64,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let spent = n as u64;
        if let Some(left) = &self.file {
            let now = left.load(Ordering::Relaxed);
            if now < spent {
                left.store(0, Ordering::Relaxed);
                return Err(io::Error::other(Stop::OverBudget));
            }
            left.store(now - spent, Ordering::Relaxed);
        }
        let before = self.shared.decoded.fetch_add(spent, Ordering::Relaxed);
        if before.saturating_add(spent) > self.run_bytes {
            return Err(io::Error::other(Stop::OverBudget));
        }
        Ok(n)
    }
}
