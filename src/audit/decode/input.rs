//! What the decoders share: the buffered [`Input`] they read through,
//! the errors they return ([`Refused`], damage) and the memory check.

use std::fmt;
use std::io::{self, BufRead, Read};

/// A dictionary or window larger than this is never searched, whatever the
/// caller's budget (design: "a dictionary or zstd window over 64 MiB is
/// not searched"). `xz -9` uses exactly 64 MiB.
pub(super) const MAX_WINDOW: u64 = 64 * 1024 * 1024;

/// The input buffer every decoder reads through.
pub(super) const INPUT_BUF: usize = 64 * 1024;

/// Why a stream is not searched: a dictionary or window over the limit, a
/// filter or feature not supported. A sentence, no input bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

impl Refused {
    pub(super) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, self)
    }
}

/// The [`Refused`] inside an error a [`Decoder`] returned (a later frame,
/// block or stream over the limit), as against damaged data.
pub fn refused(e: &io::Error) -> Option<&Refused> {
    e.get_ref()?.downcast_ref::<Refused>()
}

/// An `InvalidData` error naming the format and what is wrong.
pub(super) fn damaged(format: &str, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{format}: {what}"))
}

/// A `Refused` error unless `need` bytes fit in `limit` and the dictionary
/// or window `window` in [`MAX_WINDOW`].
pub(super) fn check_memory(format: &str, window: u64, need: u64, limit: u64) -> io::Result<()> {
    const MIB: u64 = 1024 * 1024;
    if window > MAX_WINDOW {
        return Err(Refused(format!(
            "{format}: its dictionary or window of {} MiB is over the {} MiB that are searched",
            window.div_ceil(MIB),
            MAX_WINDOW / MIB
        ))
        .into_io());
    }
    if need > limit {
        return Err(Refused(format!(
            "{format}: decoding it needs {} MiB of memory, more than the {} MiB allowed",
            need.div_ceil(MIB),
            limit / MIB
        ))
        .into_io());
    }
    Ok(())
}

/// An error kept to be returned again by every later read.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    kind: io::ErrorKind,
    message: String,
    refused: Option<Refused>,
}

impl From<&io::Error> for Failure {
    fn from(e: &io::Error) -> Failure {
        Failure {
            kind: e.kind(),
            message: e.to_string(),
            refused: refused(e).cloned(),
        }
    }
}

impl Failure {
    pub(super) fn error(&self) -> io::Error {
        match &self.refused {
            Some(r) => r.clone().into_io(),
            None => io::Error::new(self.kind, self.message.clone()),
        }
    }
}

/// The buffered input of a decoder. It can look ahead (headers are read
/// before a decoder is made for them), counts what was consumed (xz's block
/// padding), and keeps the error of the reader below: it returns copies
/// (same kind and message, a [`Refused`] still one), and as the crates turn
/// errors into strings, a decoder asks [`Input::take_error`] for the
/// original when a crate fails.
pub(super) struct Input<'a> {
    inner: Box<dyn Read + 'a>,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    pub(super) consumed: u64,
    error: Option<io::Error>,
}

impl<'a> Input<'a> {
    pub(super) fn new(inner: Box<dyn Read + 'a>) -> Input<'a> {
        Input {
            inner,
            buf: vec![0; INPUT_BUF].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            consumed: 0,
            error: None,
        }
    }

    /// The error of the reader below, if it failed.
    pub(super) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    /// Reads from below into `buf[end..]`; 0 at the end of the input.
    fn refill(&mut self) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if let Some(e) = &self.error {
            return Err(Failure::from(e).error());
        }
        let end = self.end;
        let Some(space) = self.buf.get_mut(end..) else {
            return Ok(0);
        };
        loop {
            match self.inner.read(space) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.end += n.min(space.len());
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = Failure::from(&e).error();
                    self.error = Some(e);
                    return Err(copy);
                }
            }
        }
    }

    /// Up to `n` (at most the buffer's size) bytes ahead, not consumed:
    /// fewer only at the end of the input.
    pub(super) fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let n = n.min(self.buf.len());
        if self.end - self.pos < n {
            if self.pos + n > self.buf.len() {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            while self.end - self.pos < n {
                if self.refill()? == 0 {
                    break;
                }
            }
        }
        let end = self.end.min(self.pos + n);
        Ok(&self.buf[self.pos..end])
    }

    /// Skips `n` bytes; false when the input ended first.
    pub(super) fn skip(&mut self, mut n: u64) -> io::Result<bool> {
        while n > 0 {
            let got = self.fill_buf()?.len();
            if got == 0 {
                return Ok(false);
            }
            let step = usize::try_from(n).unwrap_or(usize::MAX).min(got);
            self.consume(step);
            n -= step as u64;
        }
        Ok(true)
    }

    /// Reads one byte; `None` at the end of the input.
    pub(super) fn byte(&mut self) -> io::Result<Option<u8>> {
        let b = self.fill_buf()?.first().copied();
        if b.is_some() {
            self.consume(1);
        }
        Ok(b)
    }
}

impl Read for Input<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf()?;
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.end])
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.pos);
        self.pos += n;
        self.consumed += n as u64;
    }
}

/// The error to return for an error `e` of a crate's decoder reading
/// `input`: the input's own error when it failed, else `format: what`
/// (`the data ends early` for an unexpected end).
pub(super) fn crate_error(input: &mut Input<'_>, format: &str, e: &io::Error) -> io::Error {
    if let Some(original) = input.take_error() {
        return original;
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        damaged(format, "the data ends early")
    } else {
        damaged(format, "corrupt data")
    }
}
