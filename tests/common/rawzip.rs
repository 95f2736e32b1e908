//! [`RawZip`]: a zip writer with no safety rails, for the archives the
//! `zip` crate refuses to write: raw name bytes, sizes that lie, the
//! encrypted flag without encryption, symlinks, duplicates, bombs.
//!
//! The layout follows APPNOTE.TXT 6.3 (section 4.3): local file headers
//! with their data, the central directory, the end of central directory
//! record. No zip64, no data descriptors; extra fields only as given. Timestamps are
//! fixed (1980-01-01 00:00), so the same entries give the same bytes.

use std::io::{Cursor, Read, Write};
use std::path::PathBuf;

use super::TestDir;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIR: u32 = 0x0605_4b50;
/// "Version needed to extract" 2.0: deflate, folders.
const VERSION_NEEDED: u16 = 20;
/// "Version made by" upper byte: the host whose attributes are stored.
const HOST_MSDOS: u8 = 0;
const HOST_UNIX: u8 = 3;
const FLAG_ENCRYPTED: u16 = 1 << 0;
const FLAG_UTF8: u16 = 1 << 11;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
/// MS-DOS date 1980-01-01 (day 1, month 1, year 0), time 00:00:00.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
/// The MS-DOS "directory" bit in the low byte of the external attributes.
const MSDOS_DIRECTORY: u32 = 0x10;

/// Unix `st_mode` values for the external attributes.
pub const MODE_FILE: u32 = 0o100_644;
pub const MODE_DIR: u32 = 0o040_755;
pub const MODE_SYMLINK: u32 = 0o120_777;

/// One entry, as it will be written. The fields are public so a test can
/// set anything; the constructors and modifiers cover the usual lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// The name bytes exactly as stored.
    pub name: Vec<u8>,
    /// The bytes stored after the local header (compressed if deflated).
    pub data: Vec<u8>,
    pub method: u16,
    /// CRC-32 written in both headers.
    pub crc32: u32,
    /// The real uncompressed size.
    pub size: u64,
    /// Uncompressed size declared in the local header (`None`: the truth).
    pub local_size: Option<u32>,
    /// Uncompressed size declared in the central directory.
    pub central_size: Option<u32>,
    pub flags: u16,
    /// Host in "version made by"; Unix so that `unix_mode` counts.
    pub made_by: u8,
    /// `st_mode` stored in the high half of the external attributes.
    pub unix_mode: u32,
    /// The low half (MS-DOS attributes).
    pub dos_attributes: u32,
    /// The name in the local header (`None`: the same as the central one).
    pub local_name: Option<Vec<u8>>,
    /// The extra field, written in both headers.
    pub extra: Vec<u8>,
}

impl ZipEntry {
    /// A stored regular file, mode 0644, true sizes and CRC.
    pub fn file(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> ZipEntry {
        let data = data.into();
        let name = name.as_ref().to_vec();
        ZipEntry {
            flags: utf8_flag_for(&name),
            name,
            crc32: crc32(&data),
            size: data.len() as u64,
            data,
            method: METHOD_STORED,
            local_size: None,
            central_size: None,
            made_by: HOST_UNIX,
            unix_mode: MODE_FILE,
            dos_attributes: 0,
            local_name: None,
            extra: Vec::new(),
        }
    }

    /// A directory entry; pass the name with its trailing `/`.
    pub fn dir(name: impl AsRef<[u8]>) -> ZipEntry {
        let mut entry = ZipEntry::file(name, Vec::new()).mode(MODE_DIR);
        entry.dos_attributes = MSDOS_DIRECTORY;
        entry
    }

    /// A symbolic link to `target` (the link's target is its data).
    pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> ZipEntry {
        ZipEntry::file(name, target.as_ref().to_vec()).mode(MODE_SYMLINK)
    }

    /// A deflated regular file with true sizes and CRC.
    pub fn deflated(name: impl AsRef<[u8]>, data: &[u8]) -> ZipEntry {
        let (stream, crc) = deflate_raw(data);
        let mut entry = ZipEntry::file(name, stream);
        entry.method = METHOD_DEFLATED;
        entry.crc32 = crc;
        entry.size = data.len() as u64;
        entry
    }

    /// `len` zero bytes, deflated (to about 1/160 of `len`), true sizes
    /// and CRC; made in milliseconds whatever `len` (see [`deflate_zeros`]).
    pub fn zeros(name: impl AsRef<[u8]>, len: u32) -> ZipEntry {
        let mut entry = ZipEntry::file(name, deflate_zeros(len));
        entry.method = METHOD_DEFLATED;
        entry.crc32 = crc32_of_zeros(u64::from(len));
        entry.size = u64::from(len);
        entry
    }

    /// A zip bomb: `len` zero bytes, deflated, claiming in both headers to
    /// be `declared` bytes. Only the sizes lie: the CRC is right.
    pub fn bomb(name: impl AsRef<[u8]>, len: u32, declared: u32) -> ZipEntry {
        ZipEntry::zeros(name, len).declared_size(declared)
    }

    /// Declares `size` as the uncompressed size in both headers.
    pub fn declared_size(self, size: u32) -> ZipEntry {
        self.local_size(size).central_size(size)
    }

    pub fn local_size(mut self, size: u32) -> ZipEntry {
        self.local_size = Some(size);
        self
    }

    pub fn central_size(mut self, size: u32) -> ZipEntry {
        self.central_size = Some(size);
        self
    }

    pub fn crc(mut self, crc: u32) -> ZipEntry {
        self.crc32 = crc;
        self
    }

    /// A CRC-32 that does not match the data.
    pub fn bad_crc(mut self) -> ZipEntry {
        self.crc32 = !self.crc32;
        self
    }

    /// Sets general purpose bit 0; the data stays plain.
    pub fn encrypted(mut self) -> ZipEntry {
        self.flags |= FLAG_ENCRYPTED;
        self
    }

    /// The full `st_mode`, file type bits included (e.g. `0o100755`).
    pub fn mode(mut self, mode: u32) -> ZipEntry {
        self.unix_mode = mode;
        self
    }

    /// The host in "version made by": 3 (Unix, the default) or 0 (MS-DOS,
    /// whose readers ignore the Unix mode).
    pub fn made_by(mut self, host: u8) -> ZipEntry {
        self.made_by = host;
        self
    }

    /// MS-DOS host and no Unix mode, like the Windows-made upstream samples.
    pub fn msdos(self) -> ZipEntry {
        self.made_by(HOST_MSDOS).mode(0)
    }

    /// Forces general purpose bit 11 (name is UTF-8) on or off. By default
    /// it is set for valid UTF-8 names that are not plain ASCII.
    pub fn utf8_flag(mut self, on: bool) -> ZipEntry {
        if on {
            self.flags |= FLAG_UTF8;
        } else {
            self.flags &= !FLAG_UTF8;
        }
        self
    }

    /// A different name in the local header than in the central directory.
    pub fn local_name(mut self, name: impl AsRef<[u8]>) -> ZipEntry {
        self.local_name = Some(name.as_ref().to_vec());
        self
    }

    /// The compression method in both headers; the data stays as it is.
    pub fn method(mut self, method: u16) -> ZipEntry {
        self.method = method;
        self
    }

    /// WinZip AES: method 99 and its extra field (0x9901: AE-2, AES-256,
    /// deflate inside), flag bit 0 left clear as some writers leave it.
    /// The data stays plain.
    pub fn aes(mut self) -> ZipEntry {
        self.method = 99;
        self.extra = [0x01, 0x99, 7, 0, 2, 0, b'A', b'E', 3, 8, 0].to_vec();
        self
    }

    fn external_attributes(&self) -> u32 {
        (self.unix_mode << 16) | self.dos_attributes
    }
}

fn utf8_flag_for(name: &[u8]) -> u16 {
    match std::str::from_utf8(name) {
        Ok(s) if !s.is_ascii() => FLAG_UTF8,
        _ => 0,
    }
}

/// An archive under construction, entries in order, duplicates allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawZip {
    pub entries: Vec<ZipEntry>,
    /// Bytes written before the first local header.
    pub prefix: Vec<u8>,
    /// Whether the offsets count the prefix (what `zip -A` fixes up) or not
    /// (plain `cat prefix archive.zip`).
    pub adjust_offsets: bool,
    /// The entry count of the end record (`None`: the truth).
    pub declared_count: Option<u16>,
}

impl RawZip {
    pub fn new() -> RawZip {
        RawZip::default()
    }

    pub fn entry(mut self, entry: ZipEntry) -> RawZip {
        self.entries.push(entry);
        self
    }

    /// A stored regular file (see [`ZipEntry::file`]).
    pub fn file(self, name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> RawZip {
        self.entry(ZipEntry::file(name, data))
    }

    /// A directory entry (see [`ZipEntry::dir`]).
    pub fn dir(self, name: impl AsRef<[u8]>) -> RawZip {
        self.entry(ZipEntry::dir(name))
    }

    /// `bytes` before the zip; with `adjust_offsets` the offsets count them,
    /// as `zip -A` leaves a self-extracting archive.
    pub fn prefix(mut self, bytes: impl Into<Vec<u8>>, adjust_offsets: bool) -> RawZip {
        self.prefix = bytes.into();
        self.adjust_offsets = adjust_offsets;
        self
    }

    /// The entry count the end record declares (both of its counts).
    pub fn declared_count(mut self, count: u16) -> RawZip {
        self.declared_count = Some(count);
        self
    }

    /// The archive bytes: local headers and data, central directory, end
    /// of central directory record.
    #[track_caller]
    pub fn finish(&self) -> Vec<u8> {
        let count = u16::try_from(self.entries.len())
            .unwrap_or_else(|_| panic!("RawZip writes at most 65535 entries (no zip64)"));
        let count = self.declared_count.unwrap_or(count);
        let mut out = self.prefix.clone();
        let base = if self.adjust_offsets {
            0
        } else {
            self.prefix.len()
        };
        let mut offsets = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            offsets.push(u32_of((out.len() - base) as u64, "local header offset"));
            let size = u32_of(e.size, "uncompressed size");
            let name = e.local_name.as_ref().unwrap_or(&e.name);
            put32(&mut out, LOCAL_HEADER);
            put16(&mut out, VERSION_NEEDED);
            put_common_fields(&mut out, e, e.local_size.unwrap_or(size), name);
            put16(&mut out, u16_of(e.extra.len(), "extra field length"));
            out.extend_from_slice(name);
            out.extend_from_slice(&e.extra);
            out.extend_from_slice(&e.data);
        }
        let central_start = out.len();
        for (e, offset) in self.entries.iter().zip(offsets) {
            let size = u32_of(e.size, "uncompressed size");
            put32(&mut out, CENTRAL_HEADER);
            put16(&mut out, (u16::from(e.made_by) << 8) | VERSION_NEEDED);
            put16(&mut out, VERSION_NEEDED);
            put_common_fields(&mut out, e, e.central_size.unwrap_or(size), &e.name);
            put16(&mut out, u16_of(e.extra.len(), "extra field length"));
            put16(&mut out, 0); // comment length
            put16(&mut out, 0); // disk number start
            put16(&mut out, 0); // internal attributes
            put32(&mut out, e.external_attributes());
            put32(&mut out, offset);
            out.extend_from_slice(&e.name);
            out.extend_from_slice(&e.extra);
        }
        let central_size = out.len() - central_start;
        put32(&mut out, END_OF_CENTRAL_DIR);
        put16(&mut out, 0); // this disk
        put16(&mut out, 0); // disk with the central directory
        put16(&mut out, count);
        put16(&mut out, count);
        put32(
            &mut out,
            u32_of(central_size as u64, "central directory size"),
        );
        put32(
            &mut out,
            u32_of((central_start - base) as u64, "central directory offset"),
        );
        put16(&mut out, 0); // comment length
        out
    }

    /// Writes the archive to `rel` in `dir`; returns the path.
    #[track_caller]
    pub fn write_to(&self, dir: &TestDir, rel: &str) -> PathBuf {
        dir.write(rel, self.finish())
    }
}

/// The fields the local and the central header share, in their order
/// (APPNOTE 4.3.7, 4.3.12): flags to the name length, with `size` as the
/// uncompressed size each header declares.
fn put_common_fields(out: &mut Vec<u8>, e: &ZipEntry, size: u32, name: &[u8]) {
    put16(out, e.flags);
    put16(out, e.method);
    put16(out, DOS_TIME);
    put16(out, DOS_DATE);
    put32(out, e.crc32);
    put32(out, u32_of(e.data.len() as u64, "compressed size"));
    put32(out, size);
    put16(out, u16_of(name.len(), "name length"));
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[track_caller]
fn u32_of(v: u64, what: &str) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| panic!("RawZip: {what} {v} needs zip64"))
}

#[track_caller]
fn u16_of(v: usize, what: &str) -> u16 {
    u16::try_from(v).unwrap_or_else(|_| panic!("RawZip: {what} {v} over 65535"))
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zip uses.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// The raw deflate stream (RFC 1951) of `data` and its CRC-32, taken from
/// a one-entry archive written by the `zip` crate: the kit needs no
/// compressor of its own.
#[track_caller]
pub fn deflate_raw(data: &[u8]) -> (Vec<u8>, u32) {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    writer
        .start_file("data", options)
        .and_then(|()| writer.write_all(data).map_err(Into::into))
        .unwrap_or_else(|e| panic!("zip crate cannot deflate: {e}"));
    let bytes = writer
        .finish()
        .unwrap_or_else(|e| panic!("zip crate cannot finish: {e}"))
        .into_inner();
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .unwrap_or_else(|e| panic!("zip crate cannot reread its archive: {e}"));
    let mut file = archive
        .by_index_raw(0)
        .unwrap_or_else(|e| panic!("zip crate cannot reread its entry: {e}"));
    let crc = file.crc32();
    let mut stream = Vec::new();
    file.read_to_end(&mut stream)
        .unwrap_or_else(|e| panic!("zip crate cannot read its raw entry: {e}"));
    (stream, crc)
}

/// CRC-32 of `len` zero bytes without touching them: the CRC register's
/// update for a zero byte is linear over GF(2), so the operator for `len`
/// bytes is a 32x32 bit matrix raised to `len` by squaring (zlib's
/// `crc32_combine` does the same).
pub fn crc32_of_zeros(len: u64) -> u32 {
    // Column i is the image of register bit i after one zero bit.
    let mut op = [0u32; 32];
    op[0] = 0xEDB8_8320;
    for (i, column) in op.iter_mut().enumerate().skip(1) {
        *column = 1 << (i - 1);
    }
    // One bit -> 2 -> 4 -> 8 bits: the operator for one zero byte.
    for _ in 0..3 {
        op = gf2_square(&op);
    }
    let mut register = !0u32;
    let mut n = len;
    while n > 0 {
        if n & 1 == 1 {
            register = gf2_times(&op, register);
        }
        op = gf2_square(&op);
        n >>= 1;
    }
    !register
}

fn gf2_times(matrix: &[u32; 32], mut vector: u32) -> u32 {
    let mut sum = 0;
    let mut i = 0;
    while vector != 0 {
        if vector & 1 == 1 {
            sum ^= matrix[i];
        }
        vector >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(matrix: &[u32; 32]) -> [u32; 32] {
    let mut square = [0u32; 32];
    for (column, &m) in square.iter_mut().zip(matrix) {
        *column = gf2_times(matrix, m);
    }
    square
}

/// A raw deflate stream (RFC 1951) of `len` zero bytes, written by hand so
/// a 64 MiB bomb costs milliseconds, not the seconds an unoptimised
/// compressor takes: one final block with the fixed Huffman codes
/// (section 3.2.6), a literal 0, then matches of length 258 at distance 1,
/// the remainder as literals, end of block.
pub fn deflate_zeros(len: u32) -> Vec<u8> {
    let mut out = BitWriter::default();
    out.bits(1, 1); // BFINAL
    out.bits(0b01, 2); // BTYPE: fixed Huffman codes
    let mut left = len;
    if left > 0 {
        out.literal_zero();
        left -= 1;
    }
    while left >= 258 {
        out.code(0b1100_0000 + (285 - 280), 8); // length 258: code 285, no extra bits
        out.code(0, 5); // distance code 0: distance 1, no extra bits
        left -= 258;
    }
    for _ in 0..left {
        out.literal_zero();
    }
    out.code(0, 7); // end of block: code 256
    out.finish()
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u32,
    count: u32,
}

impl BitWriter {
    /// `n` bits of `value`, least significant first (data elements).
    fn bits(&mut self, value: u32, n: u32) {
        self.acc |= value << self.count;
        self.count += n;
        while self.count >= 8 {
            self.bytes.push((self.acc & 0xff) as u8);
            self.acc >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code of `n` bits, most significant bit first.
    fn code(&mut self, code: u32, n: u32) {
        self.bits(code.reverse_bits() >> (32 - n), n);
    }

    /// Literal 0: fixed code 0b0011_0000, 8 bits.
    fn literal_zero(&mut self) {
        self.code(0b0011_0000, 8);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.bytes.push((self.acc & 0xff) as u8);
        }
        self.bytes
    }
}
