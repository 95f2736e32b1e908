//! The pack's bytes in memory: a window refilled by positioned reads, one
//! for the walk and one for the bases, so that reading a base does not
//! throw away what the walk holds.

use std::fs::File;
use std::io;

use crate::audit::source::{FileAt, ReadAt};

/// The bytes of the pack read at once.
const WINDOW: usize = 128 * 1024;

/// A piece of the pack held in memory, refilled by positioned reads.
pub(super) struct Window {
    buf: Vec<u8>,
    start: u64,
    len: usize,
}

impl Window {
    pub(super) fn new() -> Window {
        Window {
            buf: vec![0; WINDOW],
            start: 0,
            len: 0,
        }
    }

    /// The bytes from `offset` on (at least `want` of them unless the
    /// source ends first; empty at its end).
    fn at(&mut self, src: &dyn ReadAt, offset: u64, want: usize) -> io::Result<&[u8]> {
        let held = offset
            .checked_sub(self.start)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&d| d <= self.len && self.len - d >= want.max(1));
        let from = match held {
            Some(d) => d,
            None => {
                let mut n = 0;
                while n < self.buf.len() {
                    let Some(at) = offset.checked_add(n as u64) else {
                        break;
                    };
                    let Some(room) = self.buf.get_mut(n..) else {
                        break;
                    };
                    match src.read_at(room, at) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.start = offset;
                self.len = n;
                0
            }
        };
        Ok(self.buf.get(from..self.len).unwrap_or_default())
    }
}

/// Which window a read goes through: the walk's, or the one for bases.
#[derive(Clone, Copy)]
pub(super) enum Via {
    Walk,
    Bases,
}

/// The pack file and its two windows.
pub(super) struct Windows {
    pub(super) file: File,
    pub(super) len: u64,
    walk: Window,
    bases: Window,
}

impl Windows {
    pub(super) fn new(file: File, len: u64) -> Windows {
        Windows {
            file,
            len,
            walk: Window::new(),
            bases: Window::new(),
        }
    }

    /// The bytes from `offset` on through the window `via` (at least
    /// `want` of them unless the pack ends first; empty at its end).
    pub(super) fn at(&mut self, via: Via, offset: u64, want: usize) -> io::Result<&[u8]> {
        let src = FileAt {
            file: &self.file,
            len: self.len,
        };
        let win = match via {
            Via::Walk => &mut self.walk,
            Via::Bases => &mut self.bases,
        };
        win.at(&src, offset, want)
    }
}
