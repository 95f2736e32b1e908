//! The public types of a run: where the roots are, how it writes, what it
//! did, its steps, and the longest lock wait.

use std::path::Path;
use std::time::Duration;

use crate::intake::catalogue::Side;

/// The longest a run waits for another run's lock: one day. A longer wait
/// asked for is cut to it.
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(86_400);

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

/// How a run writes.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Every mtime.
    pub epoch: i64,
    /// Replace files and folder modes that differ, and remove files of the
    /// tool that this plan does not stage.
    pub force: bool,
    /// fsync every file written, then each changed folder once.
    pub sync: bool,
    /// How long to wait for another run that holds the roots (at most
    /// [`MAX_LOCK_TIMEOUT`]).
    pub lock_timeout: Duration,
    /// Told once, as the run starts to wait for another run that holds a
    /// root, whom it waits for and how long at most (the library does not
    /// print: the command line says it on standard error).
    pub waiting: Option<fn(&str)>,
}

/// A file written with the plan, outside the roots, in the same
/// transaction: the manifest.
#[derive(Debug, Clone, Copy)]
pub struct Outside<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
    pub mode: u32,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Files written (new or replaced).
    pub written: usize,
    /// Files that were already there with the same bytes and mode.
    pub unchanged: usize,
    /// Files of the tool that this plan does not stage, removed.
    pub removed: usize,
    /// Leftovers of an interrupted run, cleaned up.
    pub recovered: usize,
}

/// A step of the write, for tests that inject a failure at each one.
/// Files are numbered as in the plan; the outside file comes after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    CreateDir(usize),
    /// Between creating a folder and setting its mode.
    SetDirMode(usize),
    WriteTemp(usize),
    Rename(usize),
    /// Removing a file the plan no longer stages (index into `plan.retired`).
    Remove(usize),
}
