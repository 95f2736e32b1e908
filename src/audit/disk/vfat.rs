//! FAT12, FAT16 and FAT32 read without mounting (Microsoft's "FAT32 File
//! System Specification", 2000): the boot sector's BPB, the first FAT,
//! the root directory (a fixed region, or a cluster chain on FAT32),
//! subdirectories, long file names (VFAT), and each file's cluster chain.
//!
//! Bounds: every cluster chain stops at the volume's cluster count and at
//! the first cluster seen twice (a visited set: a cycle passes every
//! per-entry check); a file's chain is followed only as far as its size
//! needs; a directory holds at most 65536 entries (2 MiB, the format's
//! own limit); a walk is bounded like ext4's (entries, depth, path) with a
//! visited set of directory clusters.

use std::collections::HashSet;
use std::io::{self, Read};

use super::common::{bad, bytes, le16, le32, Kind};
use crate::audit::findings::{PATH_BYTES, TREE_DEPTH};
use crate::audit::source::ReadAt;

/// The format's limit on a directory: 65536 entries of 32 bytes.
const MAX_DIR_BYTES: u64 = 65536 * 32;
/// Entries a walk yields in all.
const MAX_ENTRIES: u64 = 1 << 21;

const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_LFN: u8 = 0x0F;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

/// An entry a walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// From the root, `/`-separated; the long name (as UTF-8) when it has
    /// one, else the 8.3 name.
    pub path: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    /// The first cluster of its data (0: none).
    pub cluster: u32,
}

/// A FAT volume over a source (a whole image or a partition).
pub struct Vfat<'s> {
    src: &'s dyn ReadAt,
    fat_type: FatType,
    bytes_per_sector: u64,
    cluster_size: u64,
    fat_at: u64,
    fat_len: u64,
    root_at: u64,
    root_len: u64,
    root_cluster: u32,
    data_at: u64,
    /// Clusters of data: numbered 2 to `clusters + 1`.
    clusters: u32,
}

impl std::fmt::Debug for Vfat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vfat")
            .field("fat_type", &self.fat_type)
            .field("clusters", &self.clusters)
            .finish_non_exhaustive()
    }
}

/// The BPB's fields, when `sector` is a plausible FAT boot sector.
struct Bpb {
    bytes_per_sector: u64,
    sectors_per_cluster: u64,
    reserved: u64,
    fats: u64,
    root_entries: u64,
    total: u64,
    fat_sectors: u64,
    root_cluster: u32,
}

fn bpb(sector: &[u8]) -> Option<Bpb> {
    let jump = sector.first().copied()?;
    if jump != 0xEB && jump != 0xE9 {
        return None;
    }
    let bytes_per_sector = u64::from(le16(sector, 11));
    let sectors_per_cluster = u64::from(*sector.get(13)?);
    let reserved = u64::from(le16(sector, 14));
    let fats = u64::from(*sector.get(16)?);
    let root_entries = u64::from(le16(sector, 17));
    let total16 = u64::from(le16(sector, 19));
    let media = *sector.get(21)?;
    let fat16 = u64::from(le16(sector, 22));
    let total = if total16 != 0 {
        total16
    } else {
        u64::from(le32(sector, 32))
    };
    let fat_sectors = if fat16 != 0 {
        fat16
    } else {
        u64::from(le32(sector, 36))
    };
    let ok = (512..=4096).contains(&bytes_per_sector)
        && bytes_per_sector.is_power_of_two()
        && sectors_per_cluster.is_power_of_two()
        && reserved >= 1
        && (1..=4).contains(&fats)
        && (media == 0xF0 || media >= 0xF8)
        && total != 0
        && fat_sectors != 0;
    ok.then_some(Bpb {
        bytes_per_sector,
        sectors_per_cluster,
        reserved,
        fats,
        root_entries,
        total,
        fat_sectors,
        root_cluster: le32(sector, 44),
    })
}

/// Whether `sector` (the first 512 bytes of a volume) is a FAT boot
/// sector: a jump, then a BPB whose fields are in range.
pub fn sniff(sector: &[u8]) -> bool {
    bpb(sector).is_some()
}

impl<'s> Vfat<'s> {
    /// Reads and checks the boot sector.
    pub fn open(src: &'s dyn ReadAt) -> io::Result<Vfat<'s>> {
        let mut sector = [0u8; 512];
        src.read_exact_at(&mut sector, 0)
            .map_err(|_| bad("the image is too short for a FAT boot sector"))?;
        let b = bpb(&sector).ok_or_else(|| bad("no FAT boot sector"))?;
        let bps = b.bytes_per_sector;
        let root_len = b.root_entries * 32;
        let root_sectors = root_len.div_ceil(bps);
        let fat_at = b.reserved * bps;
        let fat_len = b.fat_sectors * bps;
        let meta = b.reserved + b.fats * b.fat_sectors + root_sectors;
        let data_sectors = b
            .total
            .checked_sub(meta)
            .ok_or_else(|| bad("the FAT volume is smaller than its own tables"))?;
        let clusters = data_sectors / b.sectors_per_cluster;
        let fat_type = if clusters < 4085 {
            FatType::Fat12
        } else if clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        if fat_type == FatType::Fat32 && root_len != 0 {
            return Err(bad("a FAT32 volume with a fixed root directory"));
        }
        // Every cluster must have an entry in the FAT.
        let entry_bits = match fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        if (clusters + 2) * entry_bits > fat_len * 8 {
            return Err(bad("the FAT is too small for the volume's clusters"));
        }
        let clusters = u32::try_from(clusters)
            .ok()
            .filter(|&c| c <= 0x0FFF_FFF5)
            .ok_or_else(|| bad("the FAT volume has too many clusters"))?;
        Ok(Vfat {
            src,
            fat_type,
            bytes_per_sector: bps,
            cluster_size: b.sectors_per_cluster * bps,
            fat_at,
            fat_len,
            root_at: (b.reserved + b.fats * b.fat_sectors) * bps,
            root_len,
            root_cluster: b.root_cluster,
            data_at: meta * bps,
            clusters,
        })
    }

    pub fn fat_type(&self) -> FatType {
        self.fat_type
    }

    /// The cluster after `c` in its chain: `None` at the end of the chain
    /// (an end mark, or a free or bad cluster, or one outside the volume:
    /// the latter are `Err`).
    fn next_cluster(&self, c: u32) -> io::Result<Option<u32>> {
        let c64 = u64::from(c);
        let (offset, width) = match self.fat_type {
            FatType::Fat12 => (c64 + c64 / 2, 2),
            FatType::Fat16 => (c64 * 2, 2),
            FatType::Fat32 => (c64 * 4, 4),
        };
        if offset + width > self.fat_len {
            return Err(bad("a cluster lies outside the FAT"));
        }
        let mut raw = [0u8; 4];
        let part = raw.get_mut(..width as usize).unwrap_or(&mut []);
        self.src.read_exact_at(part, self.fat_at + offset)?;
        let v = le32(&raw, 0);
        let (next, end) = match self.fat_type {
            FatType::Fat12 => (if c % 2 == 1 { v >> 4 } else { v & 0xFFF }, 0xFF8),
            FatType::Fat16 => (v & 0xFFFF, 0xFFF8),
            FatType::Fat32 => (v & 0x0FFF_FFFF, 0x0FFF_FFF8),
        };
        if next >= end {
            return Ok(None);
        }
        self.check_cluster(next)
            .map_err(|_| bad("a cluster chain leads to a free, bad or out-of-range cluster"))?;
        Ok(Some(next))
    }

    fn check_cluster(&self, c: u32) -> io::Result<()> {
        if c < 2 || c - 2 >= self.clusters {
            return Err(bad("a cluster number is outside the volume"));
        }
        Ok(())
    }

    fn cluster_at(&self, c: u32) -> u64 {
        self.data_at + u64::from(c - 2) * self.cluster_size
    }

    /// A file's data from its first cluster, at most `size` bytes.
    pub fn read(&self, cluster: u32, size: u64) -> io::Result<FatData<'_>> {
        if size > 0 {
            self.check_cluster(cluster)?;
        }
        Ok(FatData {
            fs: self,
            next: (size > 0).then_some(cluster),
            current: 0,
            in_cluster: self.cluster_size,
            left: size,
            visited: HashSet::new(),
        })
    }

    /// A directory's bytes: the fixed root region, or a chain (at most
    /// 2 MiB).
    fn dir_bytes(&self, cluster: u32) -> io::Result<Vec<u8>> {
        if cluster == 0 && self.fat_type != FatType::Fat32 {
            let mut buf = vec![0u8; self.root_len as usize];
            self.src.read_exact_at(&mut buf, self.root_at)?;
            return Ok(buf);
        }
        let first = if cluster == 0 {
            self.root_cluster
        } else {
            cluster
        };
        self.check_cluster(first)?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut c = Some(first);
        while let Some(cur) = c {
            if !seen.insert(cur) {
                return Err(bad("a directory's cluster chain loops"));
            }
            if out.len() as u64 + self.cluster_size > MAX_DIR_BYTES.max(self.cluster_size) {
                return Err(bad("a directory is larger than 2 MiB"));
            }
            let from = out.len();
            out.resize(from + self.cluster_size as usize, 0);
            let part = out.get_mut(from..).unwrap_or(&mut []);
            self.src.read_exact_at(part, self.cluster_at(cur))?;
            c = self.next_cluster(cur)?;
        }
        Ok(out)
    }

    /// Walks every entry from the root directory, depth first. A damaged
    /// directory yields an `Err` and the walk goes on; a bound reached
    /// yields one `Err` and ends it.
    pub fn walk(&self) -> Walk<'_> {
        let mut walk = Walk {
            fs: self,
            stack: Vec::new(),
            visited: HashSet::new(),
            entries: 0,
            pending_err: None,
            done: false,
        };
        match self.dir_bytes(0) {
            Ok(bytes) => walk.stack.push(Dir {
                bytes,
                pos: 0,
                path: Vec::new(),
            }),
            Err(e) => walk.pending_err = Some(e),
        }
        walk
    }
}

/// A file's data as a stream (see [`Vfat::read`]).
#[derive(Debug)]
pub struct FatData<'f> {
    fs: &'f Vfat<'f>,
    /// The next cluster to enter.
    next: Option<u32>,
    current: u32,
    /// Bytes of `current` already read.
    in_cluster: u64,
    left: u64,
    /// Clusters entered: a chain entering one twice loops.
    visited: HashSet<u32>,
}

impl Read for FatData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.in_cluster >= self.fs.cluster_size {
            let c = if self.visited.is_empty() {
                self.next
            } else {
                self.fs.next_cluster(self.current)?
            };
            let Some(c) = c else {
                return Err(bad("a file's cluster chain ends before its size"));
            };
            if self.visited.len() as u64 >= u64::from(self.fs.clusters) || !self.visited.insert(c) {
                return Err(bad("a file's cluster chain loops"));
            }
            self.current = c;
            self.in_cluster = 0;
        }
        let n = (self.fs.cluster_size - self.in_cluster)
            .min(self.left)
            .min(buf.len() as u64) as usize;
        let part = buf.get_mut(..n).unwrap_or(&mut []);
        self.fs
            .src
            .read_exact_at(part, self.fs.cluster_at(self.current) + self.in_cluster)?;
        self.in_cluster += n as u64;
        self.left -= n as u64;
        Ok(n)
    }
}

#[derive(Debug)]
struct Dir {
    bytes: Vec<u8>,
    pos: usize,
    path: Vec<u8>,
}

/// The entries reachable from the root (see [`Vfat::walk`]).
#[derive(Debug)]
pub struct Walk<'f> {
    fs: &'f Vfat<'f>,
    stack: Vec<Dir>,
    visited: HashSet<u32>,
    entries: u64,
    pending_err: Option<io::Error>,
    done: bool,
}

/// The checksum of an 8.3 name that its long-name entries carry.
fn short_checksum(short: &[u8]) -> u8 {
    short
        .iter()
        .take(11)
        .fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

/// An 8.3 name as `NAME.EXT`, lowercased where the entry's NT flags say.
fn short_name(entry: &[u8]) -> Vec<u8> {
    let flags = entry.get(12).copied().unwrap_or(0);
    let part = |range: std::ops::Range<usize>, lower: bool| -> Vec<u8> {
        let mut v: Vec<u8> = entry.get(range).unwrap_or(&[]).to_vec();
        while v.last() == Some(&b' ') {
            v.pop();
        }
        if lower {
            v.make_ascii_lowercase();
        }
        v
    };
    let mut name = part(0..8, flags & 0x08 != 0);
    if name.first() == Some(&0x05) {
        if let Some(b) = name.first_mut() {
            *b = 0xE5;
        }
    }
    let ext = part(8..11, flags & 0x10 != 0);
    if !ext.is_empty() {
        name.push(b'.');
        name.extend_from_slice(&ext);
    }
    name
}

impl Iterator for Walk<'_> {
    type Item = io::Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending_err.take() {
            return Some(Err(e));
        }
        // Long-name parts gathered for the next short entry: (checksum,
        // UTF-16 units in order).
        let mut long: Option<(u8, Vec<u16>)> = None;
        loop {
            if self.done {
                return None;
            }
            let dir = self.stack.last_mut()?;
            let Some(raw) = dir.bytes.get(dir.pos..dir.pos + 32) else {
                self.stack.pop();
                long = None;
                continue;
            };
            let raw: [u8; 32] = bytes(raw, 0);
            dir.pos += 32;
            match raw[0] {
                0 => {
                    // The end of the directory.
                    dir.pos = dir.bytes.len();
                    continue;
                }
                0xE5 => {
                    long = None;
                    continue;
                }
                _ => {}
            }
            let attr = raw[11];
            if attr & 0x3F == ATTR_LFN {
                let ord = raw[0];
                let units = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                    .iter()
                    .map(|&at| le16(&raw, at));
                if ord & 0x40 != 0 {
                    long = Some((raw[13], units.collect()));
                } else if let Some((sum, parts)) = &mut long {
                    if *sum == raw[13] && parts.len() < 20 * 13 {
                        let mut v: Vec<u16> = units.collect();
                        v.extend_from_slice(parts);
                        *parts = v;
                    } else {
                        long = None;
                    }
                }
                continue;
            }
            let lfn = long.take();
            if attr & ATTR_VOLUME != 0 {
                continue;
            }
            let short = short_name(&raw);
            if short == b"." || short == b".." {
                continue;
            }
            let name = match lfn {
                Some((sum, units)) if sum == short_checksum(&raw) => {
                    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
                    let units = units.get(..end).unwrap_or(&[]);
                    char::decode_utf16(units.iter().copied())
                        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                        .collect::<String>()
                        .into_bytes()
                }
                _ => short,
            };
            if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                return Some(Err(bad(
                    "a directory entry's name is empty or holds `/` or NUL",
                )));
            }
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                self.done = true;
                return Some(Err(bad("the walk found more entries than its bound")));
            }
            let mut path = dir.path.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&name);
            if path.len() > PATH_BYTES {
                return Some(Err(bad("a path is longer than the bound")));
            }
            let hi = if self.fs.fat_type == FatType::Fat32 {
                u32::from(le16(&raw, 20)) << 16
            } else {
                0
            };
            let cluster = hi | u32::from(le16(&raw, 26));
            let is_dir = attr & ATTR_DIR != 0;
            let entry = Entry {
                path,
                kind: if is_dir { Kind::Dir } else { Kind::File },
                size: if is_dir { 0 } else { u64::from(le32(&raw, 28)) },
                cluster,
            };
            if is_dir && cluster != 0 && self.visited.insert(cluster) {
                if self.stack.len() >= TREE_DEPTH {
                    self.pending_err = Some(bad("directories nest deeper than the bound"));
                } else {
                    match self.fs.dir_bytes(cluster) {
                        Ok(bytes) => self.stack.push(Dir {
                            bytes,
                            pos: 0,
                            path: entry.path.clone(),
                        }),
                        Err(e) => self.pending_err = Some(e),
                    }
                }
            }
            return Some(Ok(entry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::disk::testkit::{
        mem, mutate, pattern, scratch, sh, Rng, Scratch, Tree, SECRET,
    };
    use std::collections::BTreeMap;
    use std::path::Path;

    fn make_tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
        let mut t = Tree::new(root);
        t.put("README.TXT", Some(b"short 8.3 name".to_vec()));
        t.put("lower.md", Some(b"a lower-case short name".to_vec()));
        t.put(
            "A rather long file name, with spaces.txt",
            Some(pattern(3000, 1)),
        );
        t.put("big.bin", Some(pattern(300_000, 2)));
        t.put("empty", Some(Vec::new()));
        t.put("Sub Folder", None);
        t.put("Sub Folder/deeper", None);
        t.put("Sub Folder/deeper/client.pem", Some(SECRET.to_vec()));
        t.put(
            "Sub Folder/Ünïcode name é.conf",
            Some(b"utf-16 long name".to_vec()),
        );
        t.put("many", None);
        for i in 0..200 {
            t.put(
                &format!("many/entry number {i}.txt"),
                Some(format!("{i}").into_bytes()),
            );
        }
        t.files
    }

    fn image(
        name: &str,
        mkfs: &str,
        kib: u32,
    ) -> (Scratch, Vec<u8>, BTreeMap<String, Option<Vec<u8>>>) {
        let dir = scratch(name);
        std::fs::create_dir(dir.join("tree")).unwrap();
        let tree = make_tree(&dir.join("tree"));
        sh(
            &dir,
            &format!(
                "{mkfs} -C fat.img {kib} >/dev/null && cd tree && \
                 MTOOLS_SKIP_CHECK=1 mcopy -s -i ../fat.img * ::/"
            ),
        );
        let img = std::fs::read(dir.join("fat.img")).unwrap();
        (dir, img, tree)
    }

    fn check(fs: &Vfat<'_>, tree: &BTreeMap<String, Option<Vec<u8>>>) {
        let mut seen = BTreeMap::new();
        for entry in fs.walk() {
            let entry = entry.unwrap();
            let path = String::from_utf8(entry.path.clone()).unwrap();
            let want = tree
                .get(&path)
                .unwrap_or_else(|| panic!("{path} not in the tree"));
            match entry.kind {
                Kind::File => {
                    let mut data = Vec::new();
                    fs.read(entry.cluster, entry.size)
                        .unwrap()
                        .read_to_end(&mut data)
                        .unwrap();
                    assert!(want.as_deref() == Some(&data[..]), "{path} differs");
                }
                _ => assert_eq!(want, &None, "{path}"),
            }
            assert!(seen.insert(path, ()).is_none(), "an entry twice");
        }
        for name in tree.keys() {
            assert!(seen.contains_key(name), "{name} not found");
        }
    }

    #[test]
    fn fat12_16_32_images_give_every_file_back() {
        for (name, mkfs, kib, want) in [
            ("fat12", "mkfs.vfat -F 12", 2048, FatType::Fat12),
            ("fat16", "mkfs.vfat -F 16", 16384, FatType::Fat16),
            ("fat32", "mkfs.vfat -F 32 -s 1", 40960, FatType::Fat32),
        ] {
            let (_dir, img, tree) = image(name, mkfs, kib);
            let src = mem(&img);
            let fs = Vfat::open(&src).unwrap();
            assert_eq!(fs.fat_type(), want);
            check(&fs, &tree);
        }
    }

    #[test]
    fn long_name_checksums_and_short_names() {
        let mut e = [b' '; 32];
        e[..6].copy_from_slice(b"README");
        e[8..11].copy_from_slice(b"TXT");
        e[12] = 0;
        assert_eq!(short_name(&e), b"README.TXT");
        e[12] = 0x18;
        assert_eq!(short_name(&e), b"readme.txt");
        // The checksum from the specification's example algorithm.
        let sum = e[..11].iter().fold(0u8, |s, &b| {
            (if s & 1 != 0 { 0x80u8 } else { 0 })
                .wrapping_add(s >> 1)
                .wrapping_add(b)
        });
        assert_eq!(short_checksum(&e), sum);
    }

    /// The FAT entry of cluster `c` on FAT16, set to `v`.
    fn set_fat16(img: &mut [u8], c: u32, v: u16) {
        let src = mem(img);
        let at = Vfat::open(&src).unwrap().fat_at as usize + 2 * c as usize;
        img[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn loops_in_chains_and_directories_end() {
        let (_dir, img, _) = image("fat-loops", "mkfs.vfat -F 16", 16384);
        let src = mem(&img);
        let fs = Vfat::open(&src).unwrap();
        let find = |p: &str| {
            fs.walk()
                .filter_map(|e| e.ok())
                .find(|e| e.path == p.as_bytes())
                .unwrap()
        };
        let (big, many) = (find("big.bin"), find("many"));
        // The file's second cluster points back at its first.
        let mut v = img.clone();
        let second = {
            let src = mem(&img);
            Vfat::open(&src)
                .unwrap()
                .next_cluster(big.cluster)
                .unwrap()
                .unwrap()
        };
        set_fat16(&mut v, second, big.cluster as u16);
        let src = mem(&v);
        let fs = Vfat::open(&src).unwrap();
        let err = fs
            .read(big.cluster, big.size)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("loops"), "{err}");
        // A directory's chain that loops on itself.
        let mut v = img.clone();
        set_fat16(&mut v, many.cluster, many.cluster as u16);
        let src = mem(&v);
        let fs = Vfat::open(&src).unwrap();
        let errors: Vec<String> = fs
            .walk()
            .filter_map(|e| e.err())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errors, ["a directory's cluster chain loops"]);
    }

    #[test]
    fn hostile_images_end_in_ok_or_err() {
        let (_dir, img, _) = image("fat-hostile", "mkfs.vfat -F 12", 1440);
        let mut rng = Rng(0xfa7_5eed);
        let mut buf = vec![0u8; 65536];
        let mut opened = 0;
        for i in 0..400 {
            let v = mutate(&img, &mut rng, &[0..40 << 10, 0..img.len()]);
            let src = mem(&v);
            let Ok(fs) = Vfat::open(&src) else { continue };
            opened += 1;
            let mut steps = 0u64;
            for entry in fs.walk() {
                steps += 1;
                let Ok(entry) = entry else { continue };
                if let Ok(mut data) = fs.read(entry.cluster, entry.size) {
                    while let Ok(n) = data.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        steps += 1;
                    }
                }
            }
            assert!(steps < 1_000_000, "variant {i}: {steps} steps");
        }
        assert!(opened > 100, "{opened} variants opened");
    }
}
