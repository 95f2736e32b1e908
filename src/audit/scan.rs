//! Looking into one file's bytes: the whole-file digest (only for a size
//! that some needle has), the multi-pattern search, and the containers
//! found inside (zip members, stored or deflated; gzip streams; tar
//! archives inside those), each bounded by [`Limits`]. A file is read once:
//! streamed in chunks, or, when it is a container small enough, held whole
//! and searched from memory.

use std::io::{self, Cursor, Read};
use std::ops::Range;

use sha2::{Digest, Sha256};

use super::findings::{Finding, Limits};
use super::inflate::{self, Gunzip, Inflated, Inflater};
use super::patterns::{Kind, Needles, DEVICE_ZIP, SHARED_P12};
use crate::report::Severity;

const CHUNK: usize = 256 * 1024;

/// Where some bytes are: a path below the scanned root, and the chain of
/// members inside it (`a.zip!b.tar.gz!c`).
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
    /// itself (its raw bytes hold the p12 when stored) or its member.
    fn is_device_zip(&self) -> bool {
        self.path == DEVICE_ZIP
            && match &self.member {
                None => true,
                Some(m) => m == SHARED_P12,
            }
    }
}

/// What scanning needs: the needles, the limits, and the findings so far.
#[derive(Debug)]
pub struct Scanner<'a> {
    pub needles: &'a Needles,
    pub limits: &'a Limits,
    pub findings: Vec<Finding>,
    /// Bytes decompressed for the current top-level file.
    expanded: u64,
    /// The needles reported so far for the current top-level file.
    reported: Vec<usize>,
    buf: Vec<u8>,
    inflater: Inflater,
}

/// Which raw bytes of a container still need the search: all of them, or
/// (a gzip file, whose deflate data is all in its content) only these.
enum Raw {
    All,
    Only(Vec<Range<usize>>),
}

impl<'a> Scanner<'a> {
    pub fn new(needles: &'a Needles, limits: &'a Limits) -> Scanner<'a> {
        Scanner {
            needles,
            limits,
            findings: Vec::new(),
            expanded: 0,
            reported: Vec::new(),
            buf: Vec::new(),
            inflater: Inflater::default(),
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

    /// Scans one top-level file of `size` bytes from `reader`.
    pub fn file(&mut self, place: &Place, reader: &mut dyn Read, size: u64) {
        self.expanded = 0;
        self.reported.clear();
        if let Err(e) = self.stream(place, reader, size, 0) {
            self.finding(
                place,
                Kind::Unreadable,
                Severity::Error,
                format!("cannot be read ({e}); the audit of this file is incomplete"),
            );
        }
    }

    /// Reads `reader` once: whole when it is a container within the cap,
    /// else in chunks with an overlap so a pattern across two reads is
    /// found.
    fn stream(
        &mut self,
        place: &Place,
        reader: &mut dyn Read,
        size: u64,
        depth: usize,
    ) -> io::Result<()> {
        let mut head = [0u8; 512];
        let got = read_full(reader, &mut head)?;
        let head = &head[..got];
        if container(head).is_some() && size <= self.limits.container_bytes {
            let mut data = Vec::with_capacity(size as usize);
            data.extend_from_slice(head);
            reader
                .take(self.limits.container_bytes + 1 - got as u64)
                .read_to_end(&mut data)?;
            self.bytes(place, &data, depth);
            return Ok(());
        }
        if let Some(what) = container(head) {
            self.finding(
                place,
                Kind::NotSearched,
                Severity::Warning,
                format!(
                    "is a {what} of {size} bytes, over the limit of {} for looking inside: its raw bytes were searched, its content was not",
                    self.limits.container_bytes
                ),
            );
        }
        let overlap = self.needles.longest().saturating_sub(1);
        let mut hasher = self.needles.wants_digest(size).then(Sha256::new);
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(overlap + CHUNK, 0);
        buf[..got].copy_from_slice(head);
        let mut keep = 0;
        let mut fresh = got;
        let mut found = Vec::new();
        let mut total = 0u64;
        loop {
            if fresh == 0 {
                let n = match reader.read(&mut buf[keep..keep + CHUNK]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.buf = buf;
                        return Err(e);
                    }
                };
                if n == 0 {
                    break;
                }
                fresh = n;
            }
            let end = keep + fresh;
            total += fresh as u64;
            if let Some(h) = hasher.as_mut() {
                h.update(&buf[keep..end]);
            }
            self.needles.search(&buf[..end], &mut found);
            let next = overlap.min(end);
            buf.copy_within(end - next..end, 0);
            keep = next;
            fresh = 0;
        }
        self.buf = buf;
        let digest = hasher
            .filter(|_| total == size)
            .map(|h| h.finalize().into());
        self.report(place, digest, &found);
        Ok(())
    }

    /// Bytes held in memory: digest, search, and a look inside.
    fn bytes(&mut self, place: &Place, data: &[u8], depth: usize) {
        let digest = self
            .needles
            .wants_digest(data.len() as u64)
            .then(|| Sha256::digest(data).into());
        if self.report(place, digest, &[]) {
            // The file is a known one (the archive, a host entry): what it
            // holds is said by that.
            return;
        }
        let mark = self.reported.len();
        let raw = self.look_inside(place, data, depth);
        let mut found = Vec::new();
        match raw {
            Raw::All => self.needles.search(data, &mut found),
            Raw::Only(ranges) => {
                for range in ranges {
                    self.needles.search(&data[range], &mut found);
                }
            }
        }
        // A secret found in a member is reported there; the container's
        // raw bytes (a stored member) would only say it again.
        let inside = self.reported.split_off(mark);
        found.retain(|n| !inside.contains(n));
        self.report(place, None, &found);
        self.reported.extend(inside);
    }

    /// Members of a container held in memory; which raw bytes are left to
    /// search.
    fn look_inside(&mut self, place: &Place, data: &[u8], depth: usize) -> Raw {
        if depth >= self.limits.nesting {
            if container(data).is_some() {
                self.finding(
                    place,
                    Kind::NotSearched,
                    Severity::Warning,
                    format!(
                        "holds archives nested more than {} deep: the innermost were not looked into",
                        self.limits.nesting
                    ),
                );
            }
            return Raw::All;
        }
        match container(data) {
            Some("zip archive") => self.zip(place, data, depth),
            Some("gzip stream") => return self.gzip(place, data, depth),
            Some("tar archive") => self.tar(place, data, depth),
            _ => {}
        }
        Raw::All
    }

    /// Findings for a digest match or the patterns found. True when the
    /// bytes are a known file.
    fn report(&mut self, place: &Place, digest: Option<[u8; 32]>, found: &[usize]) -> bool {
        if let Some(n) = digest.and_then(|d| self.needles.by_digest(&d)) {
            let needle = &self.needles.needles[n];
            if needle.in_device_zip && place.is_device_zip() {
                return true;
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
            return true;
        }
        for &n in found {
            let needle = &self.needles.needles[n];
            if needle.in_device_zip && place.is_device_zip() {
                continue;
            }
            let (kind, severity) = (needle.kind, needle.severity);
            self.reported.push(n);
            let message = match kind {
                Kind::DeviceSecretMisplaced => format!("holds {}; it belongs only in /{DEVICE_ZIP}", needle.what),
                _ => format!("holds {}: a host secret, never for a device; remove it from the recipe that installs it", needle.what),
            };
            self.finding(place, kind, severity, message);
        }
        false
    }

    /// Counts `n` more decompressed bytes; false (and a finding) when the
    /// total for this file is over its cap.
    fn spend(&mut self, place: &Place, n: u64) -> bool {
        self.expanded = self.expanded.saturating_add(n);
        if self.expanded > self.limits.expanded_bytes {
            self.finding(
                place,
                Kind::NotSearched,
                Severity::Warning,
                format!(
                    "not searched: the content of this file expands to more than {} bytes in all",
                    self.limits.expanded_bytes
                ),
            );
            return false;
        }
        true
    }

    /// Reads at most the member cap; `None` (and a finding) when over it.
    /// `hint`: the size the container declares, to allocate once (never
    /// trusted beyond the cap).
    fn expand(
        &mut self,
        place: &Place,
        reader: &mut dyn Read,
        what: &str,
        hint: u64,
    ) -> Option<Vec<u8>> {
        let cap = self.limits.member_bytes;
        let mut data = Vec::with_capacity(hint.min(cap + 1) as usize);
        match reader.take(cap + 1).read_to_end(&mut data) {
            Ok(_) if data.len() as u64 > cap => {
                self.finding(
                    place,
                    Kind::NotSearched,
                    Severity::Warning,
                    format!("not searched: {what} is larger than {cap} bytes uncompressed"),
                );
                None
            }
            Ok(_) => self.spend(place, data.len() as u64).then_some(data),
            Err(e) => {
                self.finding(
                    place,
                    Kind::NotSearched,
                    Severity::Warning,
                    format!("not searched: {what} cannot be decompressed ({e})"),
                );
                None
            }
        }
    }

    fn zip(&mut self, place: &Place, data: &[u8], depth: usize) {
        let mut archive = match zip::ZipArchive::new(Cursor::new(data)) {
            Ok(a) => a,
            Err(e) => {
                // Many formats start like a zip (jar, apk, docx and bad
                // copies); the raw bytes were searched.
                self.finding(
                    place,
                    Kind::NotSearched,
                    Severity::Warning,
                    format!("looks like a zip archive but cannot be read as one ({e}): only its raw bytes were searched"),
                );
                return;
            }
        };
        let count = archive.len().min(self.limits.members);
        if archive.len() > self.limits.members {
            self.finding(
                place,
                Kind::NotSearched,
                Severity::Warning,
                format!(
                    "is a zip archive of {} members: those after the first {} were not looked into",
                    archive.len(),
                    self.limits.members
                ),
            );
        }
        for i in 0..count {
            // The member's raw data, found by the zip reader and taken
            // from the archive in memory: a stored member is searched
            // where it is, a deflated one is inflated by the reused state.
            let member = archive.by_index_raw(i).map(|m| {
                let start = usize::try_from(m.data_start()).ok();
                let end = usize::try_from(m.compressed_size())
                    .ok()
                    .zip(start)
                    .and_then(|(n, start)| start.checked_add(n));
                Member {
                    name: m.name().to_owned(),
                    is_dir: m.is_dir(),
                    encrypted: m.encrypted(),
                    method: m.compression(),
                    size: m.size(),
                    raw: start.zip(end).and_then(|(start, end)| data.get(start..end)),
                }
            });
            let why = match member {
                Err(e) => Err((
                    archive.name_for_index(i).unwrap_or("?").to_owned(),
                    e.to_string(),
                )),
                Ok(m) if m.is_dir => continue,
                Ok(m) if m.encrypted => Err((m.name, "it is encrypted".to_owned())),
                Ok(Member {
                    name, raw: None, ..
                }) => Err((name, "its data lies outside the archive".to_owned())),
                Ok(Member {
                    name,
                    method: zip::CompressionMethod::Stored,
                    raw: Some(raw),
                    ..
                }) => {
                    self.stored(&place.inner(&name), raw, depth);
                    Ok(())
                }
                Ok(Member {
                    name,
                    method: zip::CompressionMethod::Deflated,
                    size,
                    raw: Some(raw),
                    ..
                }) => {
                    self.deflated(&place.inner(&name), raw, size, depth);
                    Ok(())
                }
                Ok(m) => Err((m.name, format!("it is compressed with {}", m.method))),
            };
            if let Err((name, why)) = why {
                self.finding(
                    &place.inner(&name),
                    Kind::NotSearched,
                    Severity::Warning,
                    format!("not searched: the member cannot be read ({why}; stored and deflated members are read, encrypted ones and other compressions are not)"),
                );
            }
        }
    }

    /// A stored zip member, searched where it is in the archive.
    fn stored(&mut self, inner: &Place, raw: &[u8], depth: usize) {
        if raw.len() > self.cap() {
            self.too_large(inner, "the member");
        } else {
            self.inflated(inner, raw, depth);
        }
    }

    /// A deflated zip member of `size` bytes (as its header says).
    fn deflated(&mut self, inner: &Place, raw: &[u8], size: u64, depth: usize) {
        let cap = self.cap();
        let mut out = self.inflater.take_buffer();
        inflate::size_for(&mut out, size, raw.len(), cap);
        let len = match self.inflater.inflate(raw, &mut out, 0, cap) {
            Inflated::Done { len, .. } => len,
            Inflated::TooLarge => {
                self.too_large(inner, "the member");
                0
            }
            Inflated::Damaged { len, why } => {
                self.damaged(inner, "the member", why);
                len
            }
        };
        self.inflated(inner, &out[..len], depth);
        self.inflater.put_back(out);
    }

    /// A member's content (inflated, or stored): counted against the
    /// file's cap, searched, looked into. False when over the cap.
    fn inflated(&mut self, inner: &Place, content: &[u8], depth: usize) -> bool {
        if !self.spend(inner, content.len() as u64) {
            return false;
        }
        if !content.is_empty() {
            self.bytes(inner, content, depth + 1);
        }
        true
    }

    /// The member cap, as a buffer size.
    fn cap(&self) -> usize {
        usize::try_from(self.limits.member_bytes).unwrap_or(usize::MAX)
    }

    fn too_large(&mut self, inner: &Place, what: &str) {
        let cap = self.limits.member_bytes;
        self.finding(
            inner,
            Kind::NotSearched,
            Severity::Warning,
            format!("not searched: {what} is larger than {cap} bytes uncompressed"),
        );
    }

    fn damaged(&mut self, inner: &Place, what: &str, why: &str) {
        self.finding(
            inner,
            Kind::NotSearched,
            Severity::Warning,
            format!("not searched past the damage: {what} cannot be decompressed ({why})"),
        );
    }

    /// A gzip file's content, searched and looked into. Its raw bytes
    /// are searched only where they are not deflate data (docs/audit.md),
    /// or all of them when the content could not be searched whole.
    fn gzip(&mut self, place: &Place, data: &[u8], depth: usize) -> Raw {
        let inner = place.inner("(gzip content)");
        let mut out = self.inflater.take_buffer();
        let (len, raw) = match self.inflater.gunzip(data, &mut out, self.cap()) {
            Gunzip::Done { len, raw } => (len, Raw::Only(raw)),
            Gunzip::TooLarge => {
                self.too_large(&inner, "the gzip content");
                (0, Raw::All)
            }
            Gunzip::Damaged { len, why } => {
                self.damaged(&inner, "the gzip content", why);
                (len, Raw::All)
            }
        };
        let raw = if self.inflated(&inner, &out[..len], depth) {
            raw
        } else {
            Raw::All
        };
        self.inflater.put_back(out);
        raw
    }

    fn tar(&mut self, place: &Place, data: &[u8], depth: usize) {
        let mut archive = tar::Archive::new(data);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(_) => return,
        };
        for (i, entry) in entries.enumerate() {
            if i >= self.limits.members {
                self.finding(
                    place,
                    Kind::NotSearched,
                    Severity::Warning,
                    format!(
                        "is a tar archive of more than {} members: the rest were not looked into",
                        self.limits.members
                    ),
                );
                return;
            }
            let Ok(mut entry) = entry else {
                // The raw bytes were searched; a damaged tail is no finding.
                return;
            };
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = member_name(&entry.path_bytes());
            let inner = place.inner(&name);
            let hint = entry.size();
            if let Some(bytes) = self.expand(&inner, &mut entry, "the member", hint) {
                self.bytes(&inner, &bytes, depth + 1);
            }
        }
    }

    /// Streams a tar archive's members (the input is a tar of a root file
    /// system): each regular member a file of its own.
    pub fn tar_root(
        &mut self,
        reader: &mut dyn Read,
        modes: &mut dyn FnMut(&str, bool, u32) -> Option<Finding>,
    ) -> io::Result<u64> {
        let mut archive = tar::Archive::new(reader);
        let mut files = 0u64;
        for entry in archive.entries()? {
            let mut entry = entry?;
            let header = entry.header();
            let kind = header.entry_type();
            let mode = header.mode().unwrap_or(0);
            let size = header.size().unwrap_or(0);
            let path = root_name(&entry.path_bytes());
            if kind.is_dir() || kind.is_file() {
                if let Some(f) = modes(&path, kind.is_dir(), mode) {
                    self.findings.push(f);
                }
            }
            if !kind.is_file() {
                continue;
            }
            files += 1;
            if files > self.limits.files {
                return Err(io::Error::other(format!(
                    "more than {} files; not a root file system",
                    self.limits.files
                )));
            }
            self.expanded = 0;
            self.reported.clear();
            let place = Place::file(path);
            self.stream(&place, &mut entry, size, 0)?;
        }
        Ok(files)
    }
}

/// A zip member as its headers describe it, and its raw data in the
/// archive (`None` when the headers point outside it).
struct Member<'d> {
    name: String,
    is_dir: bool,
    encrypted: bool,
    method: zip::CompressionMethod,
    size: u64,
    raw: Option<&'d [u8]>,
}

/// A member name from a container, for reports: `/`-separated, lossy.
fn member_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// A root file system path from a tar: relative, no leading `./` or `/`.
pub fn root_name(raw: &[u8]) -> String {
    let name = String::from_utf8_lossy(raw);
    let mut s: &str = &name;
    loop {
        if let Some(rest) = s.strip_prefix("./") {
            s = rest;
        } else if let Some(rest) = s.strip_prefix('/') {
            s = rest;
        } else {
            break;
        }
    }
    s.trim_end_matches('/').to_owned()
}

/// What a file is, from its first bytes.
pub fn container(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some("zip archive")
    } else if head.starts_with(b"\x1f\x8b") {
        Some("gzip stream")
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some("tar archive")
    } else {
        None
    }
}

/// Fills `buf` as far as the reader goes.
pub fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
pub(crate) mod tests {
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
            let mut scanner = Scanner::new(&needles, &limits);
            let size = data.len() as u64;
            scanner.file(
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
        let mut scanner = Scanner::new(&needles, &limits);
        let size = data.len() as u64;
        scanner.file(&Place::file("f.gz".into()), &mut &data[..], size);
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
    }

    #[test]
    fn containers_are_told_by_their_first_bytes() {
        assert_eq!(container(b"PK\x03\x04rest"), Some("zip archive"));
        assert_eq!(container(b"\x1f\x8b\x08"), Some("gzip stream"));
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(container(&tar), Some("tar archive"));
        assert_eq!(container(b"\x7fELF"), None);
    }

    #[test]
    fn tar_names_become_relative() {
        assert_eq!(root_name(b"./var/sota/"), "var/sota");
        assert_eq!(root_name(b"/etc/x"), "etc/x");
        assert_eq!(root_name(b"././a"), "a");
    }
}
