//! The [`Scanner`]: one file as a stream of levels, each told by its
//! content, searched through a [`Tee`], decoded or looked into, within the
//! budgets; the findings, and the names they show.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::audit::decode::{self, Codec};
use crate::audit::findings::{Finding, Limits};
use crate::audit::formats::{self, Format};
use crate::audit::ostree;
use crate::audit::patterns::{Kind, Needles, DEVICE_ZIP};
use crate::audit::source::FileAt;
use crate::report::Severity;

use super::budget::{Budgeted, Shared, Stop};
use super::place::{Cx, Place, REDACTED};
use super::stream::{Tee, Window};
use super::what::{what_is, What, HEAD, ZIP_TAIL};

/// What scanning needs: the needles, the limits, and the findings so far.
pub struct Scanner<'a> {
    pub needles: &'a Needles,
    pub limits: &'a Limits,
    pub findings: Vec<Finding>,
    pub(super) shared: &'a Shared,
    /// Regular files of a root archive (a tar or cpio PATH).
    pub files: u64,
    /// Bytes decoded for the current file, as a budget left.
    pub(super) left: Arc<AtomicU64>,
    /// The file's budget was spent (said once per file).
    pub(super) file_over: bool,
    /// Memory the current file's decoders and held zips hold.
    pub(super) memory: u64,
    /// The needles reported so far for the current file.
    pub(super) reported: Vec<usize>,
    /// Search buffers, reused.
    pub(super) pool: Vec<Vec<u8>>,
}

impl fmt::Debug for Scanner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("findings", &self.findings.len())
            .finish_non_exhaustive()
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

    pub(super) fn not_searched(&mut self, place: &Place, message: String) {
        self.finding(place, Kind::NotSearched, Severity::Warning, message);
    }

    /// What stops a level from being read to its end: a warning inside a
    /// file of the image, an error for the root file itself (a truncated
    /// root tarball must not pass).
    pub(super) fn cut_short(&mut self, cx: &Cx, place: &Place, message: String) {
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
    pub(super) fn start_file(&mut self, clear: bool) {
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
        let cx = Cx::top(place, false);
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
        let cx = Cx::top(place, false);
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
        let cx = Cx::top(place, true);
        self.disk_file(&cx, file, size)?;
        Ok(self.files)
    }

    /// A file on disk: streamed, with the file at hand for what is read at
    /// any offset (a disk image, a zip's end record).
    pub(super) fn disk_file(&mut self, cx: &Cx, file: &mut File, size: u64) -> io::Result<()> {
        let file: &File = file;
        self.level(cx, &mut &*file, Some(size), Some(file))
    }

    /// What a level held in memory (a zip, a disk image) may take: a
    /// container's bytes, within the memory the file's decoders left.
    pub(super) fn memory_cap(&self) -> u64 {
        self.limits
            .container_bytes
            .min(self.limits.memory.saturating_sub(self.memory))
    }

    pub(super) fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_default()
    }

    pub(super) fn give_back(&mut self, buf: Vec<u8>) {
        if self.pool.len() < 8 {
            self.pool.push(buf);
        }
    }

    /// One level: told by its first bytes, then searched and looked into.
    pub(super) fn stream(
        &mut self,
        cx: &Cx,
        reader: &mut dyn Read,
        size: Option<u64>,
    ) -> io::Result<()> {
        self.level(cx, reader, size, None)
    }

    /// [`Scanner::stream`], for a level that is also a whole file on disk
    /// (`file`): a disk image is then read at any offset, and a plain file
    /// is probed for a zip's end record at its end.
    pub(super) fn level(
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
            What::Compressed(codec) => self.compressed(cx, codec, &mut Tee::new(&mut win, reader)),
            What::Filez => self.filez(cx, &mut Tee::new(&mut win, reader)),
            What::Disk => self.disk_stream(cx, &mut win, reader, size),
            What::DeltaPart => self.delta_part(cx, &mut Tee::new(&mut win, reader)),
            What::Archive(Format::Zip) => {
                self.zip_stream(cx, &mut Tee::new(&mut win, reader), size)
            }
            What::Archive(format) => self.archive(cx, format, &mut Tee::new(&mut win, reader)),
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
    pub(super) fn close(
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
    pub(super) fn plain(
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
    pub(super) fn compressed(
        &mut self,
        cx: &Cx,
        codec: Codec,
        tee: &mut Tee<'_, '_, '_>,
    ) -> io::Result<()> {
        self.decode_tee(cx, codec, &mut *tee)?;
        tee.drain()
    }

    /// The content of a `codec` stream that starts where `tee` is, as a
    /// level of its own (the caller drains the rest of the raw bytes).
    pub(super) fn decode_tee(
        &mut self,
        cx: &Cx,
        codec: Codec,
        tee: &mut Tee<'_, '_, '_>,
    ) -> io::Result<()> {
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
    pub(super) fn filez(&mut self, cx: &Cx, tee: &mut Tee<'_, '_, '_>) -> io::Result<()> {
        let header = match ostree::filez(&mut *tee) {
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
            self.decode_tee(cx, Codec::Deflate, &mut *tee)?;
        }
        tee.drain()
    }

    /// An OSTree static delta part: one byte of compression (`x`: xz),
    /// then the part.
    pub(super) fn delta_part(&mut self, cx: &Cx, tee: &mut Tee<'_, '_, '_>) -> io::Result<()> {
        let mut kind = [0u8; 1];
        if tee.read_exact(&mut kind).is_ok() {
            self.decode_tee(cx, Codec::Xz, &mut *tee)?;
        }
        tee.upstream()?;
        tee.drain()
    }

    /// A decoder stopped: over a budget, refused (a later frame's
    /// window), or damaged. Said once, where its content is.
    pub(super) fn decode_error(&mut self, inner: &Cx, codec: Codec, e: &io::Error) {
        let place = inner.content();
        if Stop::OverBudget.is(e) {
            self.over_budget(&place);
        } else if let Some(refused) = decode::refused(e) {
            let why = refused.0.clone();
            self.not_searched(&place, format!("not searched past this point: {why}"));
        } else if codec == Codec::Zlib && !Stop::Upstream.is(e) {
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

    pub(super) fn over_budget(&mut self, place: &Place) {
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

    /// Findings for a digest match or the patterns found.
    pub(super) fn report(&mut self, place: &Place, digest: Option<usize>, found: &[usize]) {
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
