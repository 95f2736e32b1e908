//! Disk and file system images: the partition table, each partition's
//! file system (ext2/3/4, FAT) walked as archive members, an image
//! streamed and spilled to a temporary file when it is not on disk.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};

use crate::audit::disk::{self, ext4, partitions, vfat};
use crate::audit::formats::{EntryKind, Header, Members};
use crate::audit::source::{FileAt, ReadAt, Slice};

use super::place::Cx;
use super::scanner::Scanner;
use super::stream::{Tee, Window};

impl<'a> Scanner<'a> {
    /// A disk image met in a stream: read into memory (within the cap and
    /// the memory budget), then read at any offset. Its raw bytes were
    /// searched by the window as they passed.
    pub(super) fn disk_stream(
        &mut self,
        cx: &Cx,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
        size: Option<u64>,
    ) -> io::Result<()> {
        if cx.root {
            return self.disk_spilled(cx, win, reader);
        }
        let cap = self.memory_cap();
        let mut tee = Tee::new(win, reader);
        let Some(data) = tee.hold(size, cap)? else {
            let place = cx.place.clone();
            self.cut_short(
                cx,
                &place,
                format!(
                    "is a disk or file system image larger than {cap} bytes inside another file (compressed, or in an archive): its raw bytes were searched, its files were not; audit the uncompressed image file"
                ),
            );
            return tee.drain();
        };
        self.memory += data.len() as u64;
        let src = Slice {
            source: &data[..],
            start: 0,
            len: data.len() as u64,
        };
        let result = self.file_systems(cx, &src);
        self.memory -= data.len() as u64;
        result
    }

    /// A compressed disk image given as the root (`core-image.wic.gz`):
    /// decoded into an unnamed temporary file (`O_TMPFILE` in `TMPDIR`,
    /// mode 0600, gone when closed), its raw bytes searched as they pass,
    /// then read at any offset. Bounded by the run's decoding budget.
    pub(super) fn disk_spilled(
        &mut self,
        cx: &Cx,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        let dir = std::env::temp_dir();
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            &dir,
            rustix::fs::OFlags::TMPFILE | rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .map_err(|e| {
            io::Error::other(format!(
                "a temporary file for the decompressed image cannot be made in {} ({e}); set TMPDIR to a folder with room",
                dir.display()
            ))
        })?;
        let mut tmp = File::from(fd);
        {
            let mut tee = Tee::new(win, reader);
            if let Err(e) = io::copy(&mut tee, &mut tmp) {
                tee.upstream()?;
                return Err(e);
            }
            tee.drain()?;
        }
        let len = tmp.metadata()?.len();
        let src = FileAt { file: &tmp, len };
        self.file_systems(cx, &src)
    }

    /// A disk or file system image on disk: its file systems, and its raw
    /// bytes (what no file holds: free blocks, slack, the journal) searched
    /// at the same time on a thread of their own.
    pub(super) fn disk_image(&mut self, cx: &Cx, src: &(dyn ReadAt + Sync)) -> io::Result<()> {
        let marks = (self.findings.len(), self.reported.len());
        let needles = self.needles;
        let (files, raw) = std::thread::scope(|s| {
            let raw = s.spawn(move || {
                let mut win = Window::new(needles, Vec::new(), Some(src.len()));
                let mut at = AtReader { src, pos: 0 };
                let result = loop {
                    win.out = win.len;
                    match win.read_from(&mut at) {
                        Ok(0) => break Ok(()),
                        Ok(_) => {}
                        Err(e) => break Err(e),
                    }
                };
                let (found, digest, _) = win.finish();
                (found, digest, result)
            });
            let files = self.file_systems(cx, src);
            (files, raw.join())
        });
        files?;
        let (found, digest, result) = raw.unwrap_or_else(|_| {
            (
                Vec::new(),
                None,
                Err(io::Error::other("the raw search failed")),
            )
        });
        self.close(&cx.place, marks, found, digest.filter(|_| result.is_ok()));
        result
    }

    /// The partitions of a disk image, or the one file system it is.
    pub(super) fn file_systems(&mut self, cx: &Cx, src: &dyn ReadAt) -> io::Result<()> {
        if let Some(parts) = partitions::table(src) {
            for part in parts {
                let slice = Slice {
                    source: src,
                    start: part.start,
                    len: part.len,
                };
                let label = format!("p{}", part.index);
                let inner = Cx {
                    place: cx.place.inner(&match &part.kind {
                        partitions::PartKind::Ext => format!("{label}(ext)"),
                        partitions::PartKind::Vfat => format!("{label}(vfat)"),
                        partitions::PartKind::Other(_) => label.clone(),
                    }),
                    depth: cx.depth + 1,
                    root: false,
                    label: None,
                };
                if let Some(note) = &part.note {
                    self.not_searched(&inner.place, format!("partition {label} {note}"));
                }
                match &part.kind {
                    partitions::PartKind::Ext => self.ext(&inner, &slice)?,
                    partitions::PartKind::Vfat => self.fat(&inner, &slice)?,
                    partitions::PartKind::Other(what) => self.not_searched(
                        &inner.place,
                        format!("is a partition of another type ({what}): its file system is not read, its raw bytes were searched"),
                    ),
                }
            }
            return Ok(());
        }
        if ext4::sniff(src) {
            return self.ext(cx, src);
        }
        let mut sector = [0u8; 512];
        if src.read_exact_at(&mut sector, 0).is_ok() && vfat::sniff(&sector) {
            return self.fat(cx, src);
        }
        Ok(())
    }

    /// Every file of an ext2/3/4 file system, as the members of an archive.
    /// A regular file's data is searched at its first path only (hard
    /// links: an OSTree deployment links every file to its object), and
    /// its holes are not searched beyond their edges (a file of a secret's
    /// size excepted, whose digest is taken whole).
    pub(super) fn ext(&mut self, cx: &Cx, src: &dyn ReadAt) -> io::Result<()> {
        let fs = match ext4::Ext4::open(src) {
            Ok(fs) => fs,
            Err(e) => return self.fs_unreadable(cx, "an ext", &e),
        };
        let needles = self.needles;
        let budget = FsBudget::of(src);
        let mut read = HashSet::new();
        self.file_system(cx, &budget, fs.walk(), |item| {
            item.map(|e| {
                let kind = entry_kind(e.kind);
                let is_file = kind == EntryKind::File && read.insert(e.inode);
                let link = (kind == EntryKind::Symlink)
                    .then(|| fs.symlink(e.inode).ok())
                    .flatten();
                let data = is_file
                    .then(|| fs.read(e.inode).ok())
                    .flatten()
                    .map(|data| {
                        if needles.wants_digest(e.size) {
                            data
                        } else {
                            data.compact_holes(HOLE_EDGE)
                        }
                    });
                let header = Header {
                    name: e.path,
                    kind,
                    link,
                    mode: Some(u32::from(e.mode) & 0o7777),
                    size: if is_file { e.size } else { 0 },
                    xattrs: fs.xattrs(e.inode).unwrap_or_default(),
                };
                (header, data.map(|d| budget.reader(d)))
            })
        })
    }

    /// Every file of a FAT file system.
    pub(super) fn fat(&mut self, cx: &Cx, src: &dyn ReadAt) -> io::Result<()> {
        let fs = match vfat::Vfat::open(src) {
            Ok(fs) => fs,
            Err(e) => return self.fs_unreadable(cx, "a FAT", &e),
        };
        let budget = FsBudget::of(src);
        self.file_system(cx, &budget, fs.walk(), |item| {
            item.map(|e| {
                let kind = entry_kind(e.kind);
                let is_file = kind == EntryKind::File;
                let data = is_file
                    .then(|| fs.read(e.cluster, e.size).ok())
                    .flatten()
                    .map(|d| budget.reader(d));
                let header = Header {
                    name: e.path,
                    kind,
                    link: None,
                    mode: None,
                    size: if is_file { e.size } else { 0 },
                    xattrs: Vec::new(),
                };
                (header, data)
            })
        })
    }

    pub(super) fn fs_unreadable(&mut self, cx: &Cx, what: &str, e: &io::Error) -> io::Result<()> {
        let place = cx.place.clone();
        self.cut_short(
            cx,
            &place,
            format!("is {what} file system that cannot be read ({e})"),
        );
        Ok(())
    }

    /// A file system's walk, each entry made a member by `open`; the
    /// entries that cannot be read are said once, with the first reason.
    pub(super) fn file_system<W, D, F>(
        &mut self,
        cx: &Cx,
        budget: &FsBudget,
        walk: W,
        open: F,
    ) -> io::Result<()>
    where
        W: Iterator,
        D: Read,
        F: FnMut(W::Item) -> io::Result<(Header, Option<D>)>,
    {
        let mut members = FsMembers {
            walk,
            open,
            data: None,
            empty: io::empty(),
            skipped: 0,
            first_error: None,
        };
        let result = self.members(cx, &mut members);
        if budget.spent.get() {
            let place = cx.place.clone();
            self.cut_short(
                cx,
                &place,
                format!("is a file system whose files hold more data than the image itself ({} bytes: blocks shared between files, or a damaged block map): the files past that were not searched; its raw bytes were searched", budget.cap),
            );
        }
        if let Some(why) = members.first_error.take() {
            let place = cx.place.clone();
            let skipped = members.skipped;
            self.cut_short(
                cx,
                &place,
                format!("is a file system of which {skipped} parts cannot be read (the first: {why}); their raw bytes were searched"),
            );
        }
        result
    }
}

/// The zeros of a hole searched at each of its edges: more than any
/// pattern is long, so a secret that ends where a hole starts, or starts
/// where it ends, reads as it would whole.
const HOLE_EDGE: u64 = 64 * 1024;

/// What the files of one file system may give in all: the image's own
/// length and 64 MiB besides (inline data, hole edges). A sane ext or FAT
/// file system stores each file's bytes once (ext4 has no shared blocks,
/// hard links are read once, holes are skipped), so its files never hold
/// more than the image; a hostile one can map the same blocks into many
/// files, or one block into one file many times.
pub(super) struct FsBudget {
    cap: u64,
    left: Cell<u64>,
    spent: Cell<bool>,
}

impl FsBudget {
    fn of(src: &dyn ReadAt) -> FsBudget {
        let cap = src.len().saturating_add(64 << 20);
        FsBudget {
            cap,
            left: Cell::new(cap),
            spent: Cell::new(false),
        }
    }

    fn reader<D: Read>(&self, inner: D) -> FsCounted<'_, D> {
        FsCounted {
            inner,
            budget: self,
        }
    }
}

/// A file's data, counted against its file system's [`FsBudget`]: at the
/// end of the budget it ends, and the budget says so.
struct FsCounted<'b, D> {
    inner: D,
    budget: &'b FsBudget,
}

impl<D: Read> Read for FsCounted<'_, D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.budget.left.get();
        if left == 0 {
            // Spent only when there was more to give.
            let mut probe = [0u8; 1];
            if !buf.is_empty() && self.inner.read(&mut probe)? > 0 {
                self.budget.spent.set(true);
            }
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..max).unwrap_or(&mut []))?;
        self.budget.left.set(left - n as u64);
        Ok(n)
    }
}

/// Reads a [`ReadAt`] from its start.
struct AtReader<'s> {
    src: &'s dyn ReadAt,
    pos: u64,
}

impl Read for AtReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A file system's walk as archive members: `open` makes each entry's
/// header and, for a regular file, its data.
struct FsMembers<W, D, F> {
    walk: W,
    open: F,
    data: Option<D>,
    empty: io::Empty,
    skipped: usize,
    first_error: Option<String>,
}

fn entry_kind(kind: disk::Kind) -> EntryKind {
    match kind {
        disk::Kind::File => EntryKind::File,
        disk::Kind::Dir => EntryKind::Dir,
        disk::Kind::Symlink => EntryKind::Symlink,
        disk::Kind::Other => EntryKind::Other,
    }
}

impl<W, D, F> Members for FsMembers<W, D, F>
where
    W: Iterator,
    D: Read,
    F: FnMut(W::Item) -> io::Result<(Header, Option<D>)>,
{
    fn next_member(&mut self) -> io::Result<Option<Header>> {
        self.data = None;
        for item in self.walk.by_ref() {
            match (self.open)(item) {
                Ok((header, data)) => {
                    self.data = data;
                    return Ok(Some(header));
                }
                Err(e) => {
                    self.skipped += 1;
                    self.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        Ok(None)
    }

    fn data(&mut self) -> &mut dyn Read {
        match &mut self.data {
            Some(data) => data,
            None => &mut self.empty,
        }
    }
}
