//! Looking into one file's bytes, as a stream: the multi-pattern search,
//! the whole-file digest (only for a size that some needle has), and every
//! container and compressed stream found inside (told by content), each
//! read as it streams and bounded by [`Limits`]: bytes decoded per file
//! and per run, members per container, nesting levels, and one memory
//! budget shared by the nested decoders of a file.
//!
//! Every level is searched twice: its raw bytes (a tee as a decoder or an
//! archive reader reads them: headers, padding, data after the end) and
//! what it holds. A secret found inside is reported there, not again at
//! the raw bytes; a level whose whole bytes are a known file (by digest)
//! is reported as that file and not for what it holds.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::decode::{self, Codec};
use super::disk::{self, ext4, partitions, vfat};
use super::findings::{mode_finding, Finding, Limits};
use super::formats::{self, EntryKind, Format, Header, Members};
use super::ostree;
use super::patterns::{Kind, Needles, DEVICE_ZIP, SHARED_P12};
use super::source::{FileAt, ReadAt, Slice};
use crate::report::Severity;

/// Bytes searched at once (plus the overlap of the longest pattern).
const CHUNK: usize = 256 * 1024;
/// Bytes read before a level is told by its content (a tar may start
/// with a zero block: `tar -i` reads past it; an ext superblock's magic is
/// at 1080).
const HEAD: usize = 2048;
/// unzip looks for the end record in the last 65,557 bytes.
const ZIP_TAIL: u64 = 65_557;
/// What a name that holds a secret is shown as.
pub const REDACTED: &str = "[name redacted]";

/// Where some bytes are: a path below the scanned root, and the chain of
/// members inside it (`a.tar.gz!b.deb!data.tar.xz!c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: String,
    pub member: Option<String>,
}

impl Place {
    pub fn file(path: String) -> Place {
        Place { path, member: None }
    }

    fn inner(&self, name: &str) -> Place {
        Place {
            path: self.path.clone(),
            member: Some(match &self.member {
                Some(m) => format!("{m}!{name}"),
                None => name.to_owned(),
            }),
        }
    }

    /// Whether the shared provisioning p12 may be here: the device zip
    /// itself (its raw bytes hold the p12 when stored) or its member, at
    /// its place in a root file system: the root's, or one inside an image
    /// or archive (`image.wic!p2(ext)!var/sota/...`, an OSTree commit's
    /// `REV!/var/sota/...`).
    pub fn is_device_zip(&self) -> bool {
        let chain = match &self.member {
            Some(m) => format!("{}!{m}", self.path),
            None => self.path.clone(),
        };
        let zip = |s: &str| {
            s == DEVICE_ZIP
                || s.ends_with(&format!("!{DEVICE_ZIP}"))
                || s.ends_with(&format!("!/{DEVICE_ZIP}"))
        };
        zip(&chain)
            || chain
                .strip_suffix(&format!("!{SHARED_P12}"))
                .is_some_and(zip)
    }
}

/// A level being looked at: where it is, how deep, whether its archive's
/// members are the root's files, and the name of a compressed stream's
/// content (shown only when the content is not an archive: an archive's
/// members name themselves, `a.tar.gz!etc/x`).
#[derive(Debug, Clone)]
struct Cx {
    place: Place,
    depth: usize,
    root: bool,
    label: Option<String>,
}

impl Cx {
    /// Where plain content at this level is.
    fn content(&self) -> Place {
        match &self.label {
            Some(label) => self.place.inner(label),
            None => self.place.clone(),
        }
    }

    /// A member of an archive at this level.
    fn member(&self, name: &str) -> Cx {
        Cx {
            place: if self.root {
                Place::file(name.to_owned())
            } else {
                self.place.inner(name)
            },
            depth: self.depth + 1,
            root: false,
            label: None,
        }
    }

    /// The decoded content of a compressed stream at this level.
    fn decoded(&self, codec: Codec) -> Cx {
        Cx {
            place: self.content(),
            depth: self.depth + 1,
            root: self.root,
            label: Some(format!("({} content)", codec.name())),
        }
    }
}

/// What the run shares between workers.
#[derive(Debug, Default)]
pub struct Shared {
    /// Bytes decoded in the run so far.
    pub decoded: AtomicU64,
    /// The run's decoding budget was spent (said once).
    pub run_over: AtomicBool,
}

/// What scanning needs: the needles, the limits, and the findings so far.
pub struct Scanner<'a> {
    pub needles: &'a Needles,
    pub limits: &'a Limits,
    pub findings: Vec<Finding>,
    shared: &'a Shared,
    /// Regular files of a root archive (a tar or cpio PATH).
    pub files: u64,
    /// Bytes decoded for the current file, as a budget left.
    left: Arc<AtomicU64>,
    /// The file's budget was spent (said once per file).
    file_over: bool,
    /// Memory the current file's decoders and held zips hold.
    memory: u64,
    /// The needles reported so far for the current file.
    reported: Vec<usize>,
    /// Search buffers, reused.
    pool: Vec<Vec<u8>>,
}

impl fmt::Debug for Scanner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("findings", &self.findings.len())
            .finish_non_exhaustive()
    }
}

/// The reader above failed (its error is kept by the [`Tee`] that saw it).
#[derive(Debug)]
struct Upstream;

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the data above could not be read")
    }
}

impl std::error::Error for Upstream {}

/// A decoding budget is spent.
#[derive(Debug)]
struct OverBudget;

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("over the decoding budget")
    }
}

impl std::error::Error for OverBudget {}

fn is<T: std::error::Error + 'static>(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<T>())
}

/// A streaming search over bytes as they pass: a buffer of the overlap
/// plus [`CHUNK`], searched when full; optionally hashed.
struct Window<'n> {
    needles: &'n Needles,
    buf: Vec<u8>,
    /// Bytes in `buf`.
    len: usize,
    /// Bytes at the front already searched and hashed (the overlap).
    keep: usize,
    /// Bytes handed on to a reader (a [`Tee`]'s consumer).
    out: usize,
    overlap: usize,
    found: Vec<usize>,
    hasher: Option<Sha256>,
    /// Stop hashing past this many bytes (no digest is that large).
    hash_cap: u64,
    total: u64,
    /// No byte has left the buffer yet (the whole stream is in it).
    whole: bool,
}

impl<'n> Window<'n> {
    fn new(needles: &'n Needles, mut buf: Vec<u8>, size: Option<u64>) -> Window<'n> {
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

    fn search_and_hash(&mut self) {
        if self.len > self.keep {
            self.needles.search(&self.buf[..self.len], &mut self.found);
            if let Some(h) = self.hasher.as_mut() {
                h.update(&self.buf[self.keep..self.len]);
            }
        }
    }

    /// Searches what is in the buffer and keeps the overlap.
    fn roll(&mut self) {
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
    fn read_from(&mut self, r: &mut dyn Read) -> io::Result<usize> {
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
    fn fill(&mut self, r: &mut dyn Read, n: usize) -> io::Result<()> {
        while self.len < n.min(self.buf.len()) {
            if self.read_from(r)? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The bytes not yet handed on.
    fn pending(&self) -> &[u8] {
        &self.buf[self.out..self.len]
    }

    /// Searches the rest; the needles found and the digest (when wanted
    /// and the stream was of a wanted size).
    fn finish(mut self) -> (Vec<usize>, Option<[u8; 32]>, Vec<u8>) {
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
struct Tee<'w, 'n, 'r> {
    win: &'w mut Window<'n>,
    inner: &'r mut dyn Read,
    failed: Option<io::Error>,
}

impl Read for Tee<'_, '_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.win.out == self.win.len {
            if self.failed.is_some() {
                return Err(io::Error::other(Upstream));
            }
            match self.win.read_from(self.inner) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => {
                    self.failed = Some(e);
                    return Err(io::Error::other(Upstream));
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

impl Tee<'_, '_, '_> {
    /// Reads the rest of the raw bytes (searched on the way).
    fn drain(&mut self) -> io::Result<()> {
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
    fn upstream(&mut self) -> io::Result<()> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A decoder's output, counted against the file's and the run's budgets.
struct Budgeted<'s, R> {
    inner: R,
    /// None above a root archive: the image itself is not one file.
    file: Option<Arc<AtomicU64>>,
    shared: &'s Shared,
    run_bytes: u64,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let spent = n as u64;
        if let Some(left) = &self.file {
            let now = left.load(Ordering::Relaxed);
            if now < spent {
                left.store(0, Ordering::Relaxed);
                return Err(io::Error::other(OverBudget));
            }
            left.store(now - spent, Ordering::Relaxed);
        }
        let before = self.shared.decoded.fetch_add(spent, Ordering::Relaxed);
        if before.saturating_add(spent) > self.run_bytes {
            return Err(io::Error::other(OverBudget));
        }
        Ok(n)
    }
}

/// Whether these first bytes (2 KiB) start a disk or file system image:
/// an ext superblock, a GPT header, a FAT boot sector, or an MBR whose
/// entries look like one (status 0 or 0x80, a type, a start).
fn is_disk(head: &[u8]) -> bool {
    let ext = head.get(1080..1082) == Some(&[0x53, 0xef][..]);
    let gpt = head.get(512..520) == Some(&b"EFI PART"[..]);
    let fat = head.get(..512).is_some_and(vfat::sniff);
    let mbr = head.get(510..512) == Some(&[0x55, 0xaa][..])
        && head.get(446..510).is_some_and(|table| {
            let entries: Vec<&[u8]> = table.chunks(16).collect();
            entries.iter().all(|e| e[0] == 0 || e[0] == 0x80)
                && entries
                    .iter()
                    .any(|e| e[4] != 0 && e[8..12] != [0, 0, 0, 0])
        });
    ext || gpt || fat || mbr
}

/// What a level is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Compressed(Codec),
    Archive(Format),
    /// An OSTree static delta part compressed with xz (`x`, then xz).
    DeltaPart,
    /// An OSTree `.filez` object (told by its name: it has no magic).
    Filez,
    /// A disk image (a partition table) or a file system image (ext2/3/4,
    /// FAT): read at any offset.
    Disk,
    Plain,
}

fn what_is(head: &[u8], whole_file: bool) -> What {
    let zero_block = head.len() >= 1024 && head[..512].iter().all(|&b| b == 0);
    if zero_block && formats::sniff(&head[512..]) == Some(Format::Tar) {
        return What::Archive(Format::Tar);
    }
    if head.len() > 7 && head[0] == b'x' && head[1..].starts_with(b"\xfd7zXZ\x00") {
        return What::DeltaPart;
    }
    if is_disk(head) {
        return What::Disk;
    }
    if let Some(f) = formats::sniff(head) {
        What::Archive(f)
    } else if let Some(c) = decode::sniff(head, whole_file) {
        What::Compressed(c)
    } else {
        What::Plain
    }
}

impl<'a> Scanner<'a> {
    pub fn new(needles: &'a Needles, limits: &'a Limits, shared: &'a Shared) -> Scanner<'a> {
        Scanner {
            needles,
            limits,
            findings: Vec::new(),
            shared,
            files: 0,
            left: Arc::new(AtomicU64::new(limits.expanded_bytes)),
            file_over: false,
            memory: 0,
            reported: Vec::new(),
            pool: Vec::new(),
        }
    }

    pub fn finding(&mut self, place: &Place, kind: Kind, severity: Severity, message: String) {
        self.findings.push(Finding {
            root: None,
            path: place.path.clone(),
            member: place.member.clone(),
            kind,
            severity,
            message,
        });
    }

    fn not_searched(&mut self, place: &Place, message: String) {
        self.finding(place, Kind::NotSearched, Severity::Warning, message);
    }

    /// What stops a level from being read to its end: a warning inside a
    /// file of the image, an error for the root file itself (a truncated
    /// root tarball must not pass).
    fn cut_short(&mut self, cx: &Cx, place: &Place, message: String) {
        if cx.root {
            self.finding(
                place,
                Kind::Unreadable,
                Severity::Error,
                format!("{message}; the audit is incomplete"),
            );
        } else {
            self.not_searched(place, message);
        }
    }

    /// A new file of the image: its own budget (and, for a file of a
    /// folder, its own reports; a root archive's members keep theirs for
    /// the archive's raw bytes).
    fn start_file(&mut self, clear: bool) {
        self.left
            .store(self.limits.expanded_bytes, Ordering::Relaxed);
        self.file_over = false;
        if clear {
            self.reported.clear();
        }
    }

    /// Scans one file of `size` bytes from any reader (the unit tests and
    /// the fuzz target).
    pub fn reader(&mut self, place: &Place, reader: &mut dyn Read, size: u64) {
        self.start_file(true);
        let cx = Cx {
            place: place.clone(),
            depth: 0,
            root: false,
            label: None,
        };
        if let Err(e) = self.stream(&cx, reader, Some(size)) {
            self.finding(
                place,
                Kind::Unreadable,
                Severity::Error,
                format!("cannot be read ({e})"),
            );
        }
    }

    /// Scans one file of a folder, of `size` bytes.
    pub fn file(&mut self, place: &Place, file: &mut File, size: u64) {
        self.start_file(true);
        let cx = Cx {
            place: place.clone(),
            depth: 0,
            root: false,
            label: None,
        };
        if let Err(e) = self.disk_file(&cx, file, size) {
            self.finding(
                place,
                Kind::Unreadable,
                Severity::Error,
                format!("cannot be read ({e}); the audit of this file is incomplete"),
            );
        }
    }

    /// Scans a file given as the root: its archive's members are the
    /// root's files (with their modes). The number of them.
    pub fn root_file(&mut self, place: &Place, file: &mut File, size: u64) -> io::Result<u64> {
        self.start_file(true);
        self.files = 0;
        let cx = Cx {
            place: place.clone(),
            depth: 0,
            root: true,
            label: None,
        };
        self.disk_file(&cx, file, size)?;
        Ok(self.files)
    }

    /// A file on disk: streamed, with the file at hand for what is read at
    /// any offset (a disk image, a zip's end record).
    fn disk_file(&mut self, cx: &Cx, file: &mut File, size: u64) -> io::Result<()> {
        let file: &File = file;
        self.level(cx, &mut &*file, Some(size), Some(file))
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        if self.pool.len() < 8 {
            self.pool.push(buf);
        }
    }

    /// One level: told by its first bytes, then searched and looked into.
    fn stream(&mut self, cx: &Cx, reader: &mut dyn Read, size: Option<u64>) -> io::Result<()> {
        self.level(cx, reader, size, None)
    }

    /// [`Scanner::stream`], for a level that is also a whole file on disk
    /// (`file`): a disk image is then read at any offset, and a plain file
    /// is probed for a zip's end record at its end.
    fn level(
        &mut self,
        cx: &Cx,
        reader: &mut dyn Read,
        size: Option<u64>,
        file: Option<&File>,
    ) -> io::Result<()> {
        let buf = self.buffer();
        let mut win = Window::new(self.needles, buf, size);
        if let Err(e) = win.fill(reader, HEAD) {
            let (_, _, buf) = win.finish();
            self.give_back(buf);
            return Err(e);
        }
        let what =
            if cx.depth == 0 && cx.place.member.is_none() && cx.place.path.ends_with(".filez") {
                What::Filez
            } else {
                what_is(win.pending(), cx.depth == 0 || cx.label.is_none())
            };
        let deep = cx.depth >= self.limits.nesting && what != What::Plain;
        if let (What::Disk, false, Some(file)) = (what, deep, file) {
            let (_, _, buf) = win.finish();
            self.give_back(buf);
            let len = file.metadata()?.len();
            return self.disk_image(cx, &FileAt { file, len });
        }
        if deep {
            self.not_searched(
                &cx.content(),
                format!(
                    "holds archives or compressed data nested more than {} deep: the innermost were not looked into (their raw bytes were searched)",
                    self.limits.nesting
                ),
            );
        }
        let marks = (self.findings.len(), self.reported.len());
        let result = match what {
            _ if deep => self.plain(cx, &mut win, reader, None),
            What::Plain => self.plain(cx, &mut win, reader, file),
            What::Compressed(codec) => self.compressed(cx, codec, &mut win, reader),
            What::Filez => self.filez(cx, &mut win, reader),
            What::Disk => self.disk_stream(cx, &mut win, reader, size),
            What::DeltaPart => self.delta_part(cx, &mut win, reader),
            What::Archive(Format::Zip) => self.zip_stream(cx, &mut win, reader, size),
            What::Archive(format) => self.archive(cx, format, &mut win, reader),
        };
        let (found, digest, buf) = win.finish();
        self.give_back(buf);
        let place = if what == What::Plain || deep {
            cx.content()
        } else {
            cx.place.clone()
        };
        // What was read before an error was searched: said either way.
        let digest = digest.filter(|_| result.is_ok());
        self.close(&place, marks, found, digest);
        result
    }

    /// After a level: a digest match replaces what was found inside; raw
    /// matches already reported inside are not said again.
    fn close(
        &mut self,
        place: &Place,
        marks: (usize, usize),
        mut found: Vec<usize>,
        digest: Option<[u8; 32]>,
    ) {
        if let Some(n) = digest.and_then(|d| self.needles.by_digest(&d)) {
            if !(self.needles.needles[n].in_device_zip && place.is_device_zip()) {
                // A known file: what it holds is said by that.
                self.findings.truncate(marks.0);
                self.reported.truncate(marks.1);
            }
            self.report(place, Some(n), &[]);
            return;
        }
        let inside = self.reported.split_off(marks.1.min(self.reported.len()));
        found.retain(|n| !inside.contains(n));
        self.report(place, None, &found);
        self.reported.extend(inside);
    }

    /// Plain bytes: read to the end, searched (raw bytes and digest, by the
    /// window). A stream that ends with a zip's end record is a zip too (a
    /// self-extracting installer): its members are then looked into, from
    /// the window when it held the stream whole, else (a file on disk, up
    /// to the zip cap) read again into memory.
    fn plain(
        &mut self,
        cx: &Cx,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
        file: Option<&File>,
    ) -> io::Result<()> {
        loop {
            win.out = win.len;
            if win.read_from(reader)? == 0 {
                break;
            }
        }
        if cx.depth >= self.limits.nesting {
            return Ok(());
        }
        if win.whole {
            if formats::zip::find(&win.buf[..win.len]) {
                let data = win.buf[..win.len].to_vec();
                return self.zip_in_memory(cx, &data);
            }
            return Ok(());
        }
        let size = win.total;
        let Some(file) = file.filter(|_| size <= self.limits.container_bytes) else {
            return Ok(());
        };
        let from = size.saturating_sub(ZIP_TAIL);
        let mut tail = vec![0u8; (size - from) as usize];
        file.read_exact_at(&mut tail, from)?;
        if !formats::zip::find(&tail) {
            return Ok(());
        }
        let mut data = vec![0u8; size as usize];
        file.read_exact_at(&mut data, 0)?;
        self.zip_in_memory(cx, &data)
    }

    /// A compressed stream: its raw bytes searched as the decoder reads
    /// them, its content a level of its own.
    fn compressed(
        &mut self,
        cx: &Cx,
        codec: Codec,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        let mut tee = Tee {
            win,
            inner: reader,
            failed: None,
        };
        self.decode_tee(cx, codec, &mut tee)?;
        tee.drain()
    }

    /// The content of a `codec` stream that starts where `tee` is, as a
    /// level of its own (the caller drains the rest of the raw bytes).
    fn decode_tee(&mut self, cx: &Cx, codec: Codec, tee: &mut Tee<'_, '_, '_>) -> io::Result<()> {
        let inner = cx.decoded(codec);
        let limit = self
            .limits
            .memory
            .saturating_sub(self.memory)
            .min(self.limits.dictionary);
        let outcome = match decode::open(codec, Box::new(&mut *tee), limit) {
            Err(refused) => Err(refused),
            Ok(decoder) => {
                let held = decoder.memory();
                self.memory += held;
                let mut out = Budgeted {
                    inner: decoder,
                    file: (!cx.root).then(|| Arc::clone(&self.left)),
                    shared: self.shared,
                    run_bytes: self.limits.run_bytes,
                };
                let result = self.stream(&inner, &mut out, None);
                drop(out);
                self.memory -= held;
                Ok(result)
            }
        };
        match outcome {
            Err(refused) => self.not_searched(
                &inner.content(),
                format!("not searched: {} (its raw bytes were searched)", refused.0),
            ),
            Ok(Err(e)) => {
                tee.upstream()?;
                self.decode_error(&inner, codec, &e);
            }
            Ok(Ok(())) => {}
        }
        Ok(())
    }

    /// An OSTree `archive` content object (`.filez`): a length-prefixed
    /// header (its symlink target and xattrs searched as names), then the
    /// file's data as raw deflate. Anything else so named is plain bytes.
    fn filez(&mut self, cx: &Cx, win: &mut Window<'_>, reader: &mut dyn Read) -> io::Result<()> {
        let mut tee = Tee {
            win,
            inner: reader,
            failed: None,
        };
        let header = match ostree::filez(&mut tee) {
            Ok(header) => header,
            Err(_) => {
                tee.upstream()?;
                return tee.drain();
            }
        };
        let mut found = Vec::new();
        self.needles.search(&header.symlink_target, &mut found);
        if !found.is_empty() {
            self.report_name(&cx.place, &found, "its link target");
        }
        let mut found = Vec::new();
        for (key, value) in &header.xattrs {
            self.needles.search(key, &mut found);
            self.needles.search(value, &mut found);
        }
        if !found.is_empty() {
            self.report_name(&cx.place, &found, "an extended attribute");
        }
        if !header.is_symlink() {
            self.decode_tee(cx, Codec::Deflate, &mut tee)?;
        }
        tee.drain()
    }

    /// An OSTree static delta part: one byte of compression (`x`: xz),
    /// then the part.
    fn delta_part(
        &mut self,
        cx: &Cx,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        let mut tee = Tee {
            win,
            inner: reader,
            failed: None,
        };
        let mut kind = [0u8; 1];
        if tee.read_exact(&mut kind).is_ok() {
            self.decode_tee(cx, Codec::Xz, &mut tee)?;
        }
        tee.upstream()?;
        tee.drain()
    }

    /// A decoder stopped: over a budget, refused (a later frame's
    /// window), or damaged. Said once, where its content is.
    fn decode_error(&mut self, inner: &Cx, codec: Codec, e: &io::Error) {
        let place = inner.content();
        if is::<OverBudget>(e) {
            self.over_budget(&place);
        } else if let Some(refused) = decode::refused(e) {
            let why = refused.0.clone();
            self.not_searched(&place, format!("not searched past this point: {why}"));
        } else if codec == Codec::Zlib && !is::<Upstream>(e) {
            // Two bytes that look like a zlib header start many files:
            // not one, its raw bytes were searched.
        } else {
            self.cut_short(
                inner,
                &place,
                format!(
                    "not searched past the damage: the {} data cannot be decompressed ({e})",
                    codec.name()
                ),
            );
        }
    }

    fn over_budget(&mut self, place: &Place) {
        if self.shared.decoded.load(Ordering::Relaxed) > self.limits.run_bytes {
            if !self.shared.run_over.swap(true, Ordering::Relaxed) {
                self.not_searched(
                    place,
                    format!(
                        "not searched: the audit decoded more than {} bytes in all; the rest of what is compressed was searched as raw bytes only",
                        self.limits.run_bytes
                    ),
                );
            }
            return;
        }
        if !self.file_over {
            self.file_over = true;
            self.not_searched(
                place,
                format!(
                    "not searched: the content of this file expands to more than {} bytes in all",
                    self.limits.expanded_bytes
                ),
            );
        }
    }

    /// A streamed archive (tar, cpio, ar, rpm): its raw bytes searched as
    /// the reader reads them, each member a level of its own.
    fn archive(
        &mut self,
        cx: &Cx,
        format: Format,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
    ) -> io::Result<()> {
        let mut tee = Tee {
            win,
            inner: reader,
            failed: None,
        };
        let result = match format {
            Format::Tar => self.members(cx, &mut formats::Tar::new(&mut tee)),
            Format::Cpio => self.members(cx, &mut formats::Cpio::new(&mut tee)),
            Format::Ar => self.members(cx, &mut formats::Ar::new(&mut tee)),
            Format::Rpm => self.rpm(cx, &mut tee),
            Format::Zip => Ok(()),
        };
        let what = format!("{} archive", format.name());
        if let Err(e) = result {
            tee.upstream()?;
            if is::<OverBudget>(&e) {
                self.over_budget(&cx.place);
            } else {
                let place = cx.place.clone();
                self.cut_short(
                    cx,
                    &place,
                    format!("is a {what} that cannot be read past this point ({e}): the rest was searched as raw bytes"),
                );
            }
        }
        tee.drain()
    }

    /// An rpm's payload: a compressed cpio archive.
    fn rpm(&mut self, cx: &Cx, tee: &mut dyn Read) -> io::Result<()> {
        let (compressor, mut payload) = formats::rpm::payload(tee)?;
        let inner = Cx {
            place: cx.place.clone(),
            depth: cx.depth + 1,
            root: cx.root,
            label: Some("(rpm payload)".to_owned()),
        };
        if compressor == "lzma" {
            // The one compression without a magic.
            let buf = self.buffer();
            let mut win = Window::new(self.needles, buf, None);
            let marks = (self.findings.len(), self.reported.len());
            let result = self.compressed(&inner, Codec::Lzma, &mut win, &mut payload);
            let (found, digest, buf) = win.finish();
            self.give_back(buf);
            result?;
            self.close(&inner.place, marks, found, digest);
            return Ok(());
        }
        self.stream(&inner, &mut payload, None)
    }

    /// Every member of an archive: its name (and link target, xattrs)
    /// searched, its data a level of its own.
    fn members(&mut self, cx: &Cx, archive: &mut dyn Members) -> io::Result<()> {
        let mut count = 0usize;
        while let Some(header) = archive.next_member()? {
            count += 1;
            if count > self.limits.members {
                self.not_searched(
                    &cx.place,
                    format!(
                        "holds more than {} members: the rest were searched as raw bytes only",
                        self.limits.members
                    ),
                );
                return Ok(());
            }
            let name = self.shown_name(cx, &header);
            let member = cx.member(&name);
            let is_file = header.kind == EntryKind::File;
            if cx.root {
                if is_file || header.kind == EntryKind::Dir {
                    if let Some(f) = header
                        .mode
                        .and_then(|mode| mode_finding(&name, header.kind == EntryKind::Dir, mode))
                    {
                        self.findings.push(f);
                    }
                }
                if is_file {
                    self.files += 1;
                    if self.files > self.limits.files {
                        self.not_searched(
                            &cx.place,
                            format!(
                                "holds more than {} files: the rest were not searched",
                                self.limits.files
                            ),
                        );
                        return Ok(());
                    }
                    self.start_file(false);
                }
            }
            if header.size > 0 && header.kind != EntryKind::Dir {
                self.stream(&member, archive.data(), Some(header.size))?;
            }
        }
        Ok(())
    }

    /// A member's name as shown: normalised, with every part that holds a
    /// secret redacted (and a finding for it); its link target and
    /// extended attributes searched too.
    fn shown_name(&mut self, cx: &Cx, header: &Header) -> String {
        let (name, found) = redact(self.needles, &header.name);
        let place = cx.member(&name).place;
        if !found.is_empty() {
            self.report_name(&place, &found, "its name");
        }
        if let Some(link) = &header.link {
            let mut found = Vec::new();
            self.needles.search(link, &mut found);
            if !found.is_empty() {
                self.report_name(&place, &found, "its link target");
            }
        }
        for (key, value) in &header.xattrs {
            let mut found = Vec::new();
            self.needles.search(key, &mut found);
            self.needles.search(value, &mut found);
            if !found.is_empty() {
                self.report_name(&place, &found, "an extended attribute");
            }
        }
        name
    }

    /// A secret in a name, a link target or an extended attribute.
    pub fn report_name(&mut self, place: &Place, found: &[usize], what: &str) {
        for &n in found {
            let needle = &self.needles.needles[n];
            if needle.in_device_zip || needle.kind == Kind::PrivateKey {
                continue;
            }
            let (kind, severity) = (needle.kind, needle.severity);
            let message = format!(
                "{what} holds {}: a host secret, never for a device; rename it or remove it from the recipe that installs it",
                needle.what
            );
            self.finding(place, kind, severity, message);
        }
    }

    /// A zip met in a stream: read into memory (within the cap and the
    /// memory budget), then looked into.
    fn zip_stream(
        &mut self,
        cx: &Cx,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
        size: Option<u64>,
    ) -> io::Result<()> {
        let cap = self
            .limits
            .container_bytes
            .min(self.limits.memory.saturating_sub(self.memory));
        let mut data = Vec::with_capacity(size.unwrap_or(0).min(cap) as usize);
        {
            let mut tee = Tee {
                win,
                inner: reader,
                failed: None,
            };
            let got = (&mut tee).take(cap + 1).read_to_end(&mut data);
            if got.is_err() {
                tee.upstream()?;
            }
            if data.len() as u64 > cap {
                self.not_searched(
                    &cx.place,
                    format!(
                        "is a zip archive larger than {cap} bytes: its raw bytes were searched, its members were not looked into"
                    ),
                );
                return tee.drain();
            }
            tee.drain()?;
        }
        // The raw bytes were searched by the window as they passed.
        self.zip_in_memory(cx, &data)
    }

    /// The members of a zip held in memory, counted in the memory budget
    /// while they are read (its raw bytes are the caller's window's).
    fn zip_in_memory(&mut self, cx: &Cx, data: &[u8]) -> io::Result<()> {
        self.memory += data.len() as u64;
        let result = self.zip_members_only(cx, data);
        self.memory -= data.len() as u64;
        result
    }

    /// Each member of a zip in memory, by its local header (the method
    /// unzip uses); a local header pointed at by many central entries is
    /// read once.
    fn zip_members_only(&mut self, cx: &Cx, data: &[u8]) -> io::Result<()> {
        let mut members = formats::zip::members(data, self.limits.members);
        if members.unreadable > 0 {
            self.not_searched(
                &cx.place,
                format!(
                    "is a zip archive whose central directory names {} that cannot be found: they were searched as raw bytes only",
                    crate::report::counted(members.unreadable as u64, "member", "members")
                ),
            );
        }
        for member in members.by_ref() {
            let header = Header {
                name: member.name.clone(),
                kind: if member.name.ends_with(b"/") {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
                link: None,
                mode: None,
                size: member.size.unwrap_or(0),
                xattrs: Vec::new(),
            };
            let name = self.shown_name(cx, &header);
            let inner = cx.member(&name);
            if header.kind == EntryKind::Dir || member.data.is_empty() {
                continue;
            }
            if cx.root {
                self.files += 1;
                self.start_file(false);
            }
            if member.encrypted {
                self.not_searched(
                    &inner.place,
                    "not searched: the member is encrypted (its raw bytes were searched)".into(),
                );
                continue;
            }
            let codec = match member.method {
                0 => None,
                8 => Some(Codec::Deflate),
                12 => Some(Codec::Bzip2),
                93 => Some(Codec::Zstd),
                95 => Some(Codec::Xz),
                other => {
                    self.not_searched(
                        &inner.place,
                        format!("not searched: the member is compressed with method {other}, which the audit does not read (its raw bytes were searched)"),
                    );
                    continue;
                }
            };
            let mut raw: &[u8] = match (codec, member.size) {
                (None, Some(size)) => member
                    .data
                    .get(..usize::try_from(size).unwrap_or(usize::MAX))
                    .unwrap_or(member.data),
                _ => member.data,
            };
            let Some(codec) = codec else {
                let len = raw.len() as u64;
                self.stream(&inner, &mut raw, Some(len))?;
                continue;
            };
            let limit = self
                .limits
                .memory
                .saturating_sub(self.memory)
                .min(self.limits.dictionary);
            match decode::open(codec, Box::new(raw), limit) {
                Err(refused) => self.not_searched(
                    &inner.place,
                    format!("not searched: {} (its raw bytes were searched)", refused.0),
                ),
                Ok(decoder) => {
                    let held = decoder.memory();
                    self.memory += held;
                    let mut out = Budgeted {
                        inner: decoder,
                        file: Some(Arc::clone(&self.left)),
                        shared: self.shared,
                        run_bytes: self.limits.run_bytes,
                    };
                    let result = self.stream(&inner, &mut out, member.size);
                    drop(out);
                    self.memory -= held;
                    if let Err(e) = result {
                        let inner = Cx {
                            label: None,
                            ..inner
                        };
                        self.decode_error(&inner, codec, &e);
                    }
                }
            }
        }
        if members.more {
            self.not_searched(
                &cx.place,
                format!(
                    "is a zip archive of more than {} members: the rest were searched as raw bytes only",
                    self.limits.members
                ),
            );
        }
        Ok(())
    }

    /// A disk image met in a stream: read into memory (within the cap and
    /// the memory budget), then read at any offset. Its raw bytes were
    /// searched by the window as they passed.
    fn disk_stream(
        &mut self,
        cx: &Cx,
        win: &mut Window<'_>,
        reader: &mut dyn Read,
        size: Option<u64>,
    ) -> io::Result<()> {
        if cx.root {
            return self.disk_spilled(cx, win, reader);
        }
        let cap = self
            .limits
            .container_bytes
            .min(self.limits.memory.saturating_sub(self.memory));
        let mut data = Vec::with_capacity(size.unwrap_or(0).min(cap) as usize);
        {
            let mut tee = Tee {
                win,
                inner: reader,
                failed: None,
            };
            if (&mut tee).take(cap + 1).read_to_end(&mut data).is_err() {
                tee.upstream()?;
            }
            if data.len() as u64 > cap {
                let place = cx.place.clone();
                self.cut_short(
                    cx,
                    &place,
                    format!(
                        "is a disk or file system image larger than {cap} bytes inside another file (compressed, or in an archive): its raw bytes were searched, its files were not; audit the uncompressed image file"
                    ),
                );
                return tee.drain();
            }
            tee.drain()?;
        }
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
    fn disk_spilled(
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
            let mut tee = Tee {
                win,
                inner: reader,
                failed: None,
            };
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
    fn disk_image(&mut self, cx: &Cx, src: &(dyn ReadAt + Sync)) -> io::Result<()> {
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
    fn file_systems(&mut self, cx: &Cx, src: &dyn ReadAt) -> io::Result<()> {
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
    fn ext(&mut self, cx: &Cx, src: &dyn ReadAt) -> io::Result<()> {
        let fs = match ext4::Ext4::open(src) {
            Ok(fs) => fs,
            Err(e) => return self.fs_unreadable(cx, "an ext", &e),
        };
        self.file_system(cx, fs.walk(), |item| {
            item.map(|e| {
                let kind = entry_kind(e.kind);
                let is_file = kind == EntryKind::File;
                let link = (kind == EntryKind::Symlink)
                    .then(|| fs.symlink(e.inode).ok())
                    .flatten();
                let data = is_file.then(|| fs.read(e.inode).ok()).flatten();
                let header = Header {
                    name: e.path,
                    kind,
                    link,
                    mode: Some(u32::from(e.mode) & 0o7777),
                    size: if is_file { e.size } else { 0 },
                    xattrs: fs.xattrs(e.inode).unwrap_or_default(),
                };
                (header, data)
            })
        })
    }

    /// Every file of a FAT file system.
    fn fat(&mut self, cx: &Cx, src: &dyn ReadAt) -> io::Result<()> {
        let fs = match vfat::Vfat::open(src) {
            Ok(fs) => fs,
            Err(e) => return self.fs_unreadable(cx, "a FAT", &e),
        };
        self.file_system(cx, fs.walk(), |item| {
            item.map(|e| {
                let kind = entry_kind(e.kind);
                let is_file = kind == EntryKind::File;
                let data = is_file.then(|| fs.read(e.cluster, e.size).ok()).flatten();
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

    fn fs_unreadable(&mut self, cx: &Cx, what: &str, e: &io::Error) -> io::Result<()> {
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
    fn file_system<W, D, F>(&mut self, cx: &Cx, walk: W, open: F) -> io::Result<()>
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

    /// Findings for a digest match or the patterns found.
    fn report(&mut self, place: &Place, digest: Option<usize>, found: &[usize]) {
        if let Some(n) = digest {
            let needle = &self.needles.needles[n];
            if needle.in_device_zip && place.is_device_zip() {
                // In its place: not said here, nor at the raw bytes of
                // what holds it.
                self.reported.push(n);
                return;
            }
            let (kind, severity) = (needle.kind, needle.severity);
            self.reported.push(n);
            self.reported.extend(needle.content);
            let message = match kind {
                Kind::CredentialsArchive => "is the credentials archive, byte for byte: it holds every host secret; remove it from the recipe that installs it".to_owned(),
                Kind::DeviceSecretMisplaced => format!("is {}, byte for byte; it belongs only in /{DEVICE_ZIP}", needle.what),
                _ => format!("is {}, byte for byte: a host-only file, never for a device; remove it from the recipe that installs it", needle.what),
            };
            self.finding(place, kind, severity, message);
            return;
        }
        for &n in found {
            let needle = &self.needles.needles[n];
            if needle.in_device_zip && place.is_device_zip() {
                self.reported.push(n);
                continue;
            }
            if needle.kind == Kind::PrivateKey && self.needles.allowed(&place.path) {
                continue;
            }
            let (kind, severity) = (needle.kind, needle.severity);
            self.reported.push(n);
            let message = match kind {
                Kind::DeviceSecretMisplaced => format!("holds {}; it belongs only in /{DEVICE_ZIP}", needle.what),
                Kind::PrivateKey => format!("holds {}: a private key that is not one `sota-stage stage` put there; remove it from the recipe that installs it, or allow its path if it belongs in the image", needle.what),
                _ => format!("holds {}: a host secret, never for a device; remove it from the recipe that installs it", needle.what),
            };
            self.finding(place, kind, severity, message);
        }
    }
}

/// Whether a file given as the root holds a root file system: an archive
/// (tar, cpio, zip, ar, rpm), plain or under compression. `Err(why)`
/// otherwise, worded without a byte of the file.
pub fn root_kind(file: &mut File, limits: &Limits) -> io::Result<Result<(), String>> {
    let size = file.metadata()?.len();
    let mut head = Vec::with_capacity(HEAD);
    (&*file).take(HEAD as u64).read_to_end(&mut head)?;
    let mut what = what_is(&head, false);
    if what == What::Plain && size <= limits.container_bytes {
        let from = size.saturating_sub(ZIP_TAIL);
        let mut tail = vec![0u8; (size - from) as usize];
        file.read_exact_at(&mut tail, from)?;
        if formats::zip::find(&tail) {
            return Ok(Ok(()));
        }
    }
    let mut codecs = Vec::new();
    // Compressed: the content's first bytes, through at most two layers
    // (`.tar.gz`, `.cpio.gz.xz`).
    while let What::Compressed(codec) = what {
        if codecs.len() == 2 {
            break;
        }
        codecs.push(codec);
        let mut clone = file.try_clone()?;
        clone.seek(SeekFrom::Start(0))?;
        let mut chain: Box<dyn Read> = Box::new(clone);
        for &c in &codecs {
            match decode::open(c, chain, limits.dictionary) {
                Ok(d) => chain = Box::new(d),
                Err(refused) => {
                    return Ok(Err(format!(
                        "is {} data that cannot be read ({})",
                        c.name(),
                        refused.0
                    )))
                }
            }
        }
        let mut inner = Vec::with_capacity(HEAD);
        // A damaged stream gives what it gave before the damage.
        let _ = chain.take(HEAD as u64).read_to_end(&mut inner);
        what = what_is(&inner, false);
    }
    file.seek(SeekFrom::Start(0))?;
    match (what, codecs.last()) {
        (What::Archive(_) | What::Disk, _) => Ok(Ok(())),
        (_, Some(codec)) => Ok(Err(format!(
            "is {} data whose content is neither an archive (tar, cpio, zip) nor a disk image",
            codec.name()
        ))),
        _ => Ok(Err(
            "is neither an archive (tar, cpio, zip) nor a disk image (told by its content, not its name)".into(),
        )),
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

/// A name for reports: normalised, each `/`-separated part that holds a
/// needle replaced by [`REDACTED`] (the whole name when the needle spans
/// parts); and the needles found.
pub fn redact(needles: &Needles, raw: &[u8]) -> (String, Vec<usize>) {
    let mut found = Vec::new();
    needles.search(raw, &mut found);
    let name = formats::normalise(raw);
    if found.is_empty() {
        return (name, found);
    }
    let mut any = false;
    let parts: Vec<String> = name
        .split('/')
        .map(|part| {
            let mut here = Vec::new();
            needles.search(part.as_bytes(), &mut here);
            if here.is_empty() {
                part.to_owned()
            } else {
                any = true;
                REDACTED.to_owned()
            }
        })
        .collect();
    if any {
        (parts.join("/"), found)
    } else {
        (REDACTED.to_owned(), found)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::audit::patterns::Needles;
    use crate::digest::sha256_hex;
    use crate::intake::archive::{Archive, Entry};

    pub(crate) const SECRET: &str = "unit-test-client-secret-4242";

    /// Needles of an archive whose treehub.json holds [`SECRET`].
    pub(crate) fn needles() -> Needles {
        let treehub = format!(
            r#"{{"oauth2":{{"server":"https://a.example.test","client_id":"x","client_secret":"{SECRET}"}}}}"#
        );
        let data = treehub.into_bytes();
        let archive = Archive {
            sha256: sha256_hex(b"not the archive"),
            entries: vec![Entry {
                name: "treehub.json".into(),
                sha256: sha256_hex(&data),
                data,
            }],
            directories: Vec::new(),
        };
        Needles::from_archive(&archive, 1000)
    }

    /// Hands out at most `step` bytes per read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn kinds(scanner: &Scanner<'_>) -> Vec<Kind> {
        scanner.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_secret_across_two_reads_is_found() {
        let needles = needles();
        let limits = Limits::default();
        // The first read takes the 512-byte head; then reads of `step`:
        // each secret starts 5 bytes before a read ends.
        for step in [CHUNK, 100_000, 1000, 7] {
            let at = 512 + 3 * step - 5;
            let mut data = vec![b'.'; at];
            data.extend_from_slice(SECRET.as_bytes());
            data.extend(vec![b'.'; 1000]);
            let shared = Shared::default();
            let mut scanner = Scanner::new(&needles, &limits, &shared);
            let size = data.len() as u64;
            scanner.reader(
                &Place::file("f".into()),
                &mut Trickle { data: &data, step },
                size,
            );
            assert_eq!(
                kinds(&scanner),
                vec![Kind::HostSecret],
                "at {at}, reads of {step}"
            );
        }
    }

    fn scan(data: &[u8]) -> Vec<(Option<String>, Kind)> {
        let needles = needles();
        let limits = Limits::default();
        let shared = Shared::default();
        let mut scanner = Scanner::new(&needles, &limits, &shared);
        let size = data.len() as u64;
        scanner.reader(&Place::file("f.gz".into()), &mut &data[..], size);
        let mut found: Vec<_> = scanner
            .findings
            .iter()
            .map(|f| (f.member.clone(), f.kind))
            .collect();
        found.sort();
        found
    }

    fn gzip(name: Option<&str>, content: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut builder = flate2::GzBuilder::new();
        if let Some(name) = name {
            builder = builder.filename(name).comment("a comment");
        }
        let mut enc = builder.write(Vec::new(), flate2::Compression::default());
        enc.write_all(content).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn a_gzip_file_is_searched_in_its_content_and_where_it_is_not_deflate_data() {
        let content = gzip(None, format!("x={SECRET}\n").as_bytes());
        let at_content = (Some("(gzip content)".to_owned()), Kind::HostSecret);
        assert_eq!(scan(&content), vec![at_content.clone()]);
        // Its deflate data alone is not searched: a secret there is in the
        // content (stored blocks) or not there at all.
        let stored = {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
            enc.write_all(SECRET.as_bytes()).unwrap();
            enc.finish().unwrap()
        };
        assert_eq!(scan(&stored), vec![at_content.clone()]);
        // The header's name and comment, and the bytes after the last
        // member, are raw bytes of the file.
        let at_file = (None, Kind::HostSecret);
        assert_eq!(
            scan(&gzip(Some(SECRET), b"nothing here")),
            vec![at_file.clone()]
        );
        let mut trailing = gzip(Some("name"), b"nothing here");
        trailing.extend_from_slice(format!("\0\0{SECRET}").as_bytes());
        assert_eq!(scan(&trailing), vec![at_file.clone()]);
        // Between two members, after the first trailer.
        let mut two = gzip(None, b"one");
        two.extend_from_slice(SECRET.as_bytes());
        assert_eq!(scan(&two), vec![at_file.clone()]);
        let mut members = gzip(None, b"one");
        members.extend(gzip(None, format!("two {SECRET}").as_bytes()));
        assert_eq!(scan(&members), vec![at_content.clone()]);
    }

    #[test]
    fn a_damaged_gzip_file_is_searched_raw_and_up_to_the_damage() {
        let mut content = format!("x={SECRET}\n").into_bytes();
        content.extend((0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        let data = gzip(None, &content);
        let cut = &data[..data.len() - 1000];
        assert_eq!(
            scan(cut),
            vec![
                (Some("(gzip content)".to_owned()), Kind::HostSecret),
                (Some("(gzip content)".to_owned()), Kind::NotSearched),
            ]
        );
        // Not a deflate stream: the raw bytes are searched.
        let mut bad = b"\x1f\x8b\x08\0\0\0\0\0\0\x03\xff".to_vec();
        bad.extend_from_slice(SECRET.as_bytes());
        assert_eq!(
            scan(&bad),
            vec![
                (None, Kind::HostSecret),
                (Some("(gzip content)".to_owned()), Kind::NotSearched),
            ]
        );
    }

    fn zip_of(members: &[(&str, zip::CompressionMethod, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, method, content) in members {
            let options = zip::write::SimpleFileOptions::default().compression_method(*method);
            writer.start_file(*name, options).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    /// Sets a 16-bit field of the first member's local header (at `local`)
    /// and central header (at `central`).
    fn patch(zip: &mut [u8], local: usize, central: usize, value: u16) {
        let at = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        zip[local..local + 2].copy_from_slice(&value.to_le_bytes());
        zip[at + central..at + central + 2].copy_from_slice(&value.to_le_bytes());
    }

    #[test]
    fn zip_members_are_searched_stored_and_deflated_and_the_rest_is_said() {
        use zip::CompressionMethod::{Deflated, Stored};
        let leak = format!("x={SECRET}\n").into_bytes();
        let padded = [leak.clone(), vec![b'.'; 5000]].concat();
        let both = zip_of(&[("s.txt", Stored, &leak), ("d.txt", Deflated, &padded)]);
        assert_eq!(
            scan(&both),
            vec![
                (Some("d.txt".to_owned()), Kind::HostSecret),
                (Some("s.txt".to_owned()), Kind::HostSecret),
            ]
        );
        let not_searched = vec![(Some("s.txt".to_owned()), Kind::NotSearched)];
        // Another compression (12: bzip2), and an encrypted member.
        let mut bzip2 = zip_of(&[("s.txt", Stored, b"nothing here")]);
        patch(&mut bzip2, 8, 10, 12);
        assert_eq!(scan(&bzip2), not_searched);
        let mut encrypted = zip_of(&[("s.txt", Stored, b"nothing here")]);
        patch(&mut encrypted, 6, 8, 1);
        assert_eq!(scan(&encrypted), not_searched);
        // Damaged deflate data: said, not a finding of its content.
        let mut damaged = zip_of(&[("d.txt", Deflated, &padded)]);
        let data_start = 30 + 5;
        damaged[data_start] = 0xff;
        assert_eq!(
            scan(&damaged),
            vec![(Some("d.txt".to_owned()), Kind::NotSearched)]
        );
    }

    #[test]
    fn the_shared_p12_is_allowed_only_in_the_device_zip() {
        let p12 = Place::file(DEVICE_ZIP.into()).inner(SHARED_P12);
        assert!(p12.is_device_zip());
        assert!(Place::file(DEVICE_ZIP.into()).is_device_zip());
        assert!(!Place::file(DEVICE_ZIP.into())
            .inner("other.p12")
            .is_device_zip());
        assert!(!Place::file("var/sota/copy.zip".into())
            .inner(SHARED_P12)
            .is_device_zip());
        assert!(!p12.inner("nested").is_device_zip());
        // Its place in a root file system inside an image or a commit.
        let wic = Place::file("core.wic".into())
            .inner("p2(ext)")
            .inner(DEVICE_ZIP);
        assert!(wic.is_device_zip());
        assert!(wic.inner(SHARED_P12).is_device_zip());
        let commit =
            Place::file("objects/ab/cd.filez".into()).inner(&format!("main!/{DEVICE_ZIP}"));
        assert!(commit.inner(SHARED_P12).is_device_zip());
        assert!(!Place::file("core.wic".into())
            .inner("p2(ext)")
            .inner("opt/var/sota/sota_provisioning_credentials.zip")
            .is_device_zip());
    }

    #[test]
    fn levels_are_told_by_their_first_bytes() {
        assert_eq!(
            what_is(b"PK\x03\x04rest", false),
            What::Archive(Format::Zip)
        );
        assert_eq!(
            what_is(b"\x1f\x8b\x08", false),
            What::Compressed(Codec::Gzip)
        );
        let mut tar = vec![0u8; 512];
        tar[..4].copy_from_slice(b"name");
        tar[100..108].copy_from_slice(b"0000644\0");
        tar[124..136].copy_from_slice(b"00000000000\0");
        tar[156] = b'0';
        tar[257..263].copy_from_slice(b"ustar\0");
        tar[263..265].copy_from_slice(b"00");
        tar[148..156].copy_from_slice(b"        ");
        let sum: u32 = tar.iter().map(|&b| u32::from(b)).sum();
        tar[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(what_is(&tar, false), What::Archive(Format::Tar));
        // After one zero block, as `tar -i` reads it.
        let late = [vec![0u8; 512], tar].concat();
        assert_eq!(what_is(&late, false), What::Archive(Format::Tar));
        assert_eq!(what_is(&[0u8; 1024], false), What::Plain);
        assert_eq!(what_is(b"\x7fELF", false), What::Plain);
    }

    #[test]
    fn a_secret_in_a_member_name_is_reported_and_the_name_redacted() {
        let needles = needles();
        let (name, found) = redact(&needles, format!("etc/{SECRET}/x.conf").as_bytes());
        assert_eq!(name, format!("etc/{REDACTED}/x.conf"));
        assert_eq!(found.len(), 1);
        let (name, found) = redact(&needles, b"etc//./plain.conf");
        assert_eq!(name, "etc/plain.conf");
        assert!(found.is_empty());
        // Across parts: the whole name.
        let split = format!("{}/{}", &SECRET[..10], &SECRET[10..]);
        let (name, found) = redact(&needles, split.as_bytes());
        assert!(found.is_empty() || name == REDACTED, "{name}");
    }
}
