//! A source of bytes read at any offset: an image file on disk (positioned
//! reads, no seek state, so several readers can share it), or bytes held in
//! memory. The readers of random-access formats (disk images, partition
//! tables, git packs) take one; none trusts a length or offset it reads
//! from the source itself.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes at any offset, of a known length.
pub trait ReadAt {
    /// Reads at `offset` into `buf`; fewer bytes only at the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// The source's length in bytes.
    fn len(&self) -> u64;

    /// Whether the source holds no byte.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`; an `UnexpectedEof` error when the source
    /// ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset
                .checked_add(done as u64)
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "offset overflows"))?;
            match self.read_at(&mut buf[done..], at) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the data ends early",
                    ))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A file, with the length it had when it was opened.
#[derive(Debug)]
pub struct FileAt<'f> {
    pub file: &'f File,
    pub len: u64,
}

impl ReadAt for FileAt<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let room = usize::try_from(self.len - offset).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        FileExt::read_at(self.file, &mut buf[..n], offset)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Some(rest) = usize::try_from(offset).ok().and_then(|o| self.get(o..)) else {
            return Ok(0);
        };
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

/// A window `[start, start + len)` of another source (a partition).
#[derive(Debug, Clone, Copy)]
pub struct Slice<'s, S: ReadAt + ?Sized> {
    pub source: &'s S,
    pub start: u64,
    pub len: u64,
}

impl<S: ReadAt + ?Sized> ReadAt for Slice<'_, S> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len {
            return Ok(0);
        }
        let room = usize::try_from(self.len - offset).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        match self.start.checked_add(offset) {
            Some(at) => self.source.read_at(&mut buf[..n], at),
            None => Ok(0),
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_memory_read_within_their_bounds() {
        let data: Vec<u8> = (0..100u8).collect();
        let mem: &[u8] = &data;
        let mut buf = [0u8; 10];
        assert_eq!(mem.read_at(&mut buf, 95).unwrap(), 5);
        assert_eq!(&buf[..5], &[95, 96, 97, 98, 99]);
        assert_eq!(mem.read_at(&mut buf, u64::MAX).unwrap(), 0);
        let part = Slice {
            source: mem,
            start: 10,
            len: 20,
        };
        part.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf[0], 10);
        assert!(part.read_exact_at(&mut buf, 15).is_err());
        let huge = Slice {
            source: mem,
            start: u64::MAX - 1,
            len: 50,
        };
        assert_eq!(huge.read_at(&mut buf, 5).unwrap(), 0);
    }
}
