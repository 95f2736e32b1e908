//! What `stage` wrote, read back: one test's roots and the run that fills
//! them ([`Roots`]), the files and folders of a tree with their modes, the
//! entries of a zip (through the zip crate, and byte by byte for the device
//! zip the tool writes) and the PEM blocks of a text. Shared by the `stage`
//! tests (`stage.rs`, `stage_upstream.rs`, `stage_runs.rs`), `stage_writer.rs`,
//! `verify.rs` and `gateway_url.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{crc32, sota, tree, upstream, Cmd, Creds, Node, Run, TestDir};

/// The time every staged file and zip entry gets in these tests, odd on
/// purpose: zip times count seconds in twos.
pub const EPOCH: i64 = 1_700_000_001;
/// OE-core's `SOURCE_DATE_EPOCH_FALLBACK`, used when the variable is unset.
pub const DEFAULT_EPOCH: i64 = 1_302_044_400;

pub const SHARED_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-shared-cred.toml";
pub const DEVICE_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-device-cred.toml";
pub const HSM_FRAGMENT: &str = "usr/lib/sota/conf.d/20-sota-device-cred-hsm.toml";
pub const HARDWARE_FRAGMENT: &str = "usr/lib/sota/conf.d/40-hardware-id.toml";
pub const DEVICE_ZIP: &str = "var/sota/sota_provisioning_credentials.zip";

/// The files of a tree: path -> (permission bits, bytes).
pub fn files(tree: &BTreeMap<String, Node>) -> BTreeMap<String, (u32, Vec<u8>)> {
    tree.iter()
        .filter_map(|(p, n)| n.bytes.clone().map(|b| (p.clone(), (n.mode & 0o7777, b))))
        .collect()
}

/// The folders of a tree, root excluded: path -> permission bits.
pub fn folders(tree: &BTreeMap<String, Node>) -> BTreeMap<String, u32> {
    tree.iter()
        .filter(|(p, n)| n.bytes.is_none() && !p.is_empty())
        .map(|(p, n)| (p.clone(), n.mode & 0o7777))
        .collect()
}

/// The file names of `files`, sorted, with their modes.
pub fn listing(files: &BTreeMap<String, (u32, Vec<u8>)>) -> Vec<(&str, u32)> {
    files.iter().map(|(p, (m, _))| (p.as_str(), *m)).collect()
}

/// One test's folders: the device root, the host root, the manifest path.
pub struct Roots {
    pub dir: TestDir,
    pub dev: PathBuf,
    pub host: PathBuf,
    pub manifest: PathBuf,
}

impl Roots {
    pub fn new() -> Roots {
        let dir = TestDir::new();
        Roots {
            dev: dir.join("image"),
            host: dir.join("native"),
            manifest: dir.join("manifest.json"),
            dir,
        }
    }

    /// `stage` with both roots and the manifest, `SOURCE_DATE_EPOCH` =
    /// [`EPOCH`].
    pub fn stage(&self, zip: &Path, method: &str, extra: &[&str]) -> Run {
        self.stage_cmd(zip, method, extra)
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .run()
    }

    pub fn stage_cmd(&self, zip: &Path, method: &str, extra: &[&str]) -> Cmd {
        sota(["stage", "--method", method, "--credentials"])
            .arg(zip)
            .arg("--device-root")
            .arg(&self.dev)
            .arg("--host-root")
            .arg(&self.host)
            .arg("--manifest")
            .arg(&self.manifest)
            .args(extra)
    }

    /// `verify` of both roots against the manifest.
    pub fn verify_cmd(&self) -> Cmd {
        sota(["verify", "--manifest"])
            .arg(&self.manifest)
            .arg("--device-root")
            .arg(&self.dev)
            .arg("--host-root")
            .arg(&self.host)
    }

    /// The manifest `stage` wrote, parsed.
    pub fn manifest(&self) -> serde_json::Value {
        serde_json::from_slice(&fs::read(&self.manifest).unwrap()).unwrap()
    }
}

/// `stage --method METHOD` of `zip` into the device root `dev` alone (no
/// host root, no manifest unless the caller adds one).
pub fn stage_device_cmd(zip: &Path, method: &str, dev: &Path) -> Cmd {
    sota(["stage", "--method", method, "--credentials"])
        .arg(zip)
        .arg("--device-root")
        .arg(dev)
}

/// `stage --method shared-cred` of the archive `zip` into the device root
/// `dev`, writing its manifest to `manifest`; fails the test unless the
/// run succeeds.
#[track_caller]
pub fn stage_shared_cred(zip: &Path, dev: &Path, manifest: &Path) {
    stage_device_cmd(zip, "shared-cred", dev)
        .arg("--manifest")
        .arg(manifest)
        .run()
        .success();
}

/// Every mtime in the tree (folders and files) is `epoch`.
#[track_caller]
pub fn assert_times(tree: &BTreeMap<String, Node>, epoch: i64) {
    for (path, node) in tree {
        assert_eq!(node.mtime, (epoch, 0), "mtime of `{path}`");
    }
}

/// The entries of an archive the tests built, by name.
pub fn entries_of(creds: &Creds<'_>) -> BTreeMap<String, Vec<u8>> {
    zip_entries(&creds.build())
}

/// Name -> bytes of every entry of a zip, through the zip crate.
pub fn zip_entries(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        out.insert(f.name().to_string(), data);
    }
    out
}

/// The PEM blocks in `text`, in order.
pub fn pem_blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end_marker = "-----END CERTIFICATE-----";
        let end = rest[start..].find(end_marker).unwrap() + start + end_marker.len();
        out.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    out
}

pub fn upstream_entry(name: &str, entry: &str) -> Vec<u8> {
    zip_entries(&fs::read(upstream(name)).unwrap())
        .remove(entry)
        .unwrap()
}

// --- the device zip, read byte by byte --------------------------------------

pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// One entry as the central directory and its local header describe it.
#[derive(Debug)]
pub struct RawEntry {
    pub name: String,
    pub made_by: u16,
    pub flags: u16,
    pub method: u16,
    pub dos_time: u16,
    pub dos_date: u16,
    pub external: u32,
    pub central_extra: u16,
    pub comment: u16,
    pub local_extra: u16,
    pub data: Vec<u8>,
}

/// Parses a zip by hand, so nothing a zip library hides (extra fields,
/// flags, attributes) goes unseen. Panics on anything but the simple shape
/// the tool writes: no zip64, no data descriptors, no archive comment.
pub fn raw_entries(b: &[u8]) -> Vec<RawEntry> {
    let eocd = b.len() - 22;
    assert_eq!(u32_at(b, eocd), 0x0605_4b50, "EOCD at the very end");
    assert_eq!(u16_at(b, eocd + 20), 0, "no archive comment");
    let count = usize::from(u16_at(b, eocd + 10));
    let mut at = u32_at(b, eocd + 16) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(b, at), 0x0201_4b50, "central header");
        let name_len = usize::from(u16_at(b, at + 28));
        let central_extra = u16_at(b, at + 30);
        let comment = u16_at(b, at + 32);
        let offset = u32_at(b, at + 42) as usize;
        let size = u32_at(b, at + 20) as usize;
        let name = String::from_utf8(b[at + 46..at + 46 + name_len].to_vec()).unwrap();
        assert_eq!(u32_at(b, offset), 0x0403_4b50, "local header");
        let local_extra = u16_at(b, offset + 28);
        let start = offset + 30 + usize::from(u16_at(b, offset + 26)) + usize::from(local_extra);
        let data = b[start..start + size].to_vec();
        assert_eq!(u32_at(b, at + 16), crc32(&data), "crc of {name}");
        assert_eq!(u32_at(b, at + 24) as usize, size, "stored: same sizes");
        for (what, central, local) in [
            ("flags", 8, 6),
            ("method", 10, 8),
            ("time", 12, 10),
            ("date", 14, 12),
            ("crc", 16, 14),
        ] {
            assert_eq!(
                u16_at(b, at + central),
                u16_at(b, offset + local),
                "{name}: local and central {what} agree"
            );
        }
        out.push(RawEntry {
            name,
            made_by: u16_at(b, at + 4),
            flags: u16_at(b, at + 8),
            method: u16_at(b, at + 10),
            dos_time: u16_at(b, at + 12),
            dos_date: u16_at(b, at + 14),
            external: u32_at(b, at + 38),
            central_extra,
            comment,
            local_extra,
            data,
        });
        at += 46 + name_len + usize::from(central_extra) + usize::from(comment);
    }
    out
}

/// The zip as the tool must write it: exactly these entries, sorted,
/// stored, at `epoch` as UTC in DOS form `(date, time)`, mode 0600, no
/// extra field, no comment, no flag.
#[track_caller]
pub fn assert_fixed_zip(bytes: &[u8], expected: &[(&str, &[u8])], dos: (u16, u16)) {
    let entries = raw_entries(bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names, "exactly these entries, sorted");
    for (e, (_, data)) in entries.iter().zip(expected) {
        assert_eq!(
            e.data, *data,
            "{}: the bytes of the archive's entry",
            e.name
        );
        assert_eq!(e.method, 0, "{}: stored", e.name);
        assert_eq!(e.flags, 0, "{}: no data descriptor, no encryption", e.name);
        assert_eq!((e.dos_date, e.dos_time), dos, "{}: fixed time", e.name);
        assert_eq!(e.external >> 16, 0o100_600, "{}: a 0600 file", e.name);
        assert_eq!(e.made_by >> 8, 3, "{}: Unix attributes", e.name);
        assert_eq!(
            (e.local_extra, e.central_extra, e.comment),
            (0, 0, 0),
            "{}: no extra fields, no comment",
            e.name
        );
    }
}

/// DOS (date, time) of a UTC calendar time, seconds rounded down to even.
pub fn dos(year: u16, month: u16, day: u16, hour: u16, minute: u16, second: u16) -> (u16, u16) {
    (
        ((year - 1980) << 9) | (month << 5) | day,
        (hour << 11) | (minute << 5) | (second / 2),
    )
}

/// [`EPOCH`]: 2023-11-14T22:13:21Z.
pub fn dos_epoch() -> (u16, u16) {
    dos(2023, 11, 14, 22, 13, 21)
}

pub fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

pub fn files_of(root: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    files(&tree(root))
}
