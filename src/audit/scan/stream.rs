//! The search as bytes pass: a [`Window`] searches (and hashes) what it
//! reads, and a [`Tee`] hands those bytes on to a decoder or an archive
//! reader, so that each byte is searched once.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::audit::patterns::Needles;

use super::budget::Stop;

/// Bytes searched at once (plus the overlap of the longest pattern).
pub(super) const CHUNK: usize = 256 * 1024;

/// A streaming search over bytes as they pass: a buffer of the overlap
/// plus [`CHUNK`], searched when full; optionally hashed.
pub(super) struct Window<'n> {
    pub(super) needles: &'n Needles,
    pub(super) buf: Vec<u8>,
    /// Bytes in `buf`.
    pub(super) len: usize,
    /// Bytes at the front already searched and hashed (the overlap).
    pub(super) keep: usize,
    /// Bytes handed on to a reader (a [`Tee`]'s consumer).
    pub(super) out: usize,
    pub(super) overlap: usize,
    pub(super) found: Vec<usize>,
    pub(super) hasher: Option<Sha256>,
    /// Stop hashing past this many bytes (no digest is that large).
    pub(super) hash_cap: u64,
    pub(super) total: u64,
    /// No byte has left the buffer yet (the whole stream is in it).
    pub(super) whole: bool,
}

impl<'n> Window<'n> {
    pub(super) fn new(needles: &'n Needles, mut buf: Vec<u8>, size: Option<u64>) -> Window<'n> {
        let overlap = needles.longest().saturating_sub(1);
        // A reused buffer keeps its old bytes: only `..len` is ever read.
        if buf.len() != overlap + CHUNK {
            buf.clear();
            buf.resize(overlap + CHUNK, 0);
        }
        let (hasher, hash_cap) = match size {
            Some(size) if needles.wants_digest(size) => (Some(Sha256::new()), size),
            Some(_) => (None, 0),
            None => {
                let cap = needles.largest_digest();
                (Some(Sha256::new()).filter(|_| cap > 0), cap)
            }
        };
        Window {
            needles,
            buf,
            len: 0,
            keep: 0,
            out: 0,
            overlap,
            found: Vec::new(),
            hasher,
            hash_cap,
            total: 0,
            whole: true,
        }
    }

    pub(super) fn search_and_hash(&mut self) {
        if self.len > self.keep {
            self.needles.search(&self.buf[..self.len], &mut self.found);
            if let Some(h) = self.hasher.as_mut() {
                h.update(&self.buf[self.keep..self.len]);
            }
        }
    }

    /// Searches what is in the buffer and keeps the overlap.
    pub(super) fn roll(&mut self) {
        self.search_and_hash();
        let next = self.overlap.min(self.len);
        self.buf.copy_within(self.len - next..self.len, 0);
        self.keep = next;
        self.len = next;
        self.out = next;
        self.whole = false;
    }

    /// Reads once from `r` into the free space (searching a full buffer
    /// first); 0 at the end.
    pub(super) fn read_from(&mut self, r: &mut dyn Read) -> io::Result<usize> {
        if self.len == self.buf.len() {
            self.roll();
        }
        loop {
            match r.read(&mut self.buf[self.len..]) {
                Ok(n) => {
                    self.len += n;
                    self.total += n as u64;
                    if self.total > self.hash_cap {
                        self.hasher = None;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until at least `n` bytes are in the buffer or the stream ends.
    pub(super) fn fill(&mut self, r: &mut dyn Read, n: usize) -> io::Result<()> {
        while self.len < n.min(self.buf.len()) {
            if self.read_from(r)? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The bytes not yet handed on.
    pub(super) fn pending(&self) -> &[u8] {
        &self.buf[self.out..self.len]
    }

    /// Searches the rest; the needles found and the digest (when wanted
    /// and the stream was of a wanted size).
    pub(super) fn finish(mut self) -> (Vec<usize>, Option<[u8; 32]>, Vec<u8>) {
        self.search_and_hash();
        let digest = self
            .hasher
            .take()
            .filter(|_| self.needles.wants_digest(self.total))
            .map(|h| h.finalize().into());
        (self.found, digest, self.buf)
    }
}

/// Hands on the bytes a [`Window`] reads from `inner` (each searched once
/// there). Keeps the first error of `inner` for the level that owns it.
pub(super) struct Tee<'w, 'n, 'r> {
    pub(super) win: &'w mut Window<'n>,
    pub(super) inner: &'r mut dyn Read,
    pub(super) failed: Option<io::Error>,
}

impl Read for Tee<'_, '_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.win.out == self.win.len {
            if self.failed.is_some() {
                return Err(io::Error::other(Stop::Upstream));
            }
            match self.win.read_from(self.inner) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => {
                    self.failed = Some(e);
                    return Err(io::Error::other(Stop::Upstream));
                }
            }
        }
        let pending = self.win.pending();
        let n = out.len().min(pending.len());
        out[..n].copy_from_slice(&pending[..n]);
        self.win.out += n;
        Ok(n)
    }
}

impl<'w, 'n, 'r> Tee<'w, 'n, 'r> {
    pub(super) fn new(win: &'w mut Window<'n>, inner: &'r mut dyn Read) -> Tee<'w, 'n, 'r> {
        Tee {
            win,
            inner,
            failed: None,
        }
    }

    /// Reads what is left into memory (searched on the way), at most
    /// `cap` bytes; `size`, when known, sizes the buffer. `None` when there
    /// is more: the caller says so, then drains the rest.
    pub(super) fn hold(&mut self, size: Option<u64>, cap: u64) -> io::Result<Option<Vec<u8>>> {
        let mut data = Vec::with_capacity(size.unwrap_or(0).min(cap) as usize);
        if self.take(cap + 1).read_to_end(&mut data).is_err() {
            self.upstream()?;
        }
        if data.len() as u64 > cap {
            return Ok(None);
        }
        self.drain()?;
        Ok(Some(data))
    }

    /// Reads the rest of the raw bytes (searched on the way).
    pub(super) fn drain(&mut self) -> io::Result<()> {
        self.win.out = self.win.len;
        if self.failed.is_some() {
            return self.upstream();
        }
        loop {
            self.win.out = self.win.len;
            match self.win.read_from(self.inner) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The error of the reader above, if it failed.
    pub(super) fn upstream(&mut self) -> io::Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
