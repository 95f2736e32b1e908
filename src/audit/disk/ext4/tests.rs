//! The unit tests of the ext2/3/4 reader, on images made by mkfs.ext4.

use std::io::{self, Read};

use super::cache::META_CHUNK;
use super::fs::{FL_EXTENTS, FL_INLINE_DATA};
use super::*;
use crate::audit::disk::common::Kind;
use crate::audit::disk::testkit::{mem, mutate, pattern, scratch, sh, Rng, Tree, SECRET};
use crate::audit::source::ReadAt;
use std::collections::BTreeMap;
use std::path::Path;

/// The tree every image is made from: name -> content (files), or
/// `None` for folders; symlinks apart.
fn make_tree(root: &Path, big: usize) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut t = Tree::new(root);
    t.put("small.txt", Some(b"hello from ext4\n".to_vec()));
    t.put("big.bin", Some(pattern(big, 7)));
    t.put("inline60", Some(pattern(60, 9)));
    t.put("inline100", Some(pattern(100, 10)));
    t.put("empty", Some(Vec::new()));
    t.put("etc", None);
    t.put("etc/sota", None);
    t.put("etc/sota/client.pem", Some(SECRET.to_vec()));
    let mut deep = String::from("d");
    t.put(&deep, None);
    for i in 1..40 {
        deep.push_str(&format!("/d{i}"));
        t.put(&deep, None);
    }
    t.put(&format!("{deep}/bottom.txt"), Some(b"the bottom".to_vec()));
    t.put("many", None);
    for i in 0..300 {
        t.put(
            &format!("many/file-with-a-longish-name-{i:04}"),
            Some(format!("{i}").into_bytes()),
        );
    }
    std::os::unix::fs::symlink("small.txt", root.join("fast-link")).unwrap();
    std::os::unix::fs::symlink("x".repeat(100), root.join("slow-link")).unwrap();
    t.files
}

fn image(
    name: &str,
    mkfs: &str,
    big: usize,
) -> (
    crate::audit::disk::testkit::Scratch,
    Vec<u8>,
    BTreeMap<String, Option<Vec<u8>>>,
) {
    let dir = scratch(name);
    std::fs::create_dir(dir.join("tree")).unwrap();
    let tree = make_tree(&dir.join("tree"), big);
    let kib = (big + big / 2) / 1024 + 8192;
    sh(
        &dir,
        &format!("{mkfs} -q -F -d tree fs.img {kib}k >/dev/null"),
    );
    let img = std::fs::read(dir.join("fs.img")).unwrap();
    (dir, img, tree)
}

/// Walks `fs` and checks every entry against `tree`: kinds, sizes,
/// contents, symlink targets, and that nothing is missing.
fn check(fs: &Ext4<'_>, tree: &BTreeMap<String, Option<Vec<u8>>>) {
    let mut seen = BTreeMap::new();
    let mut walk = fs.walk();
    for entry in walk.by_ref() {
        let entry = entry.unwrap();
        let path = String::from_utf8(entry.path.clone()).unwrap();
        if path == "lost+found" {
            continue;
        }
        match entry.kind {
            Kind::File => {
                let mut data = Vec::new();
                fs.read(entry.inode)
                    .unwrap()
                    .read_to_end(&mut data)
                    .unwrap();
                assert_eq!(data.len() as u64, entry.size, "{path}");
                assert!(tree[&path].as_deref() == Some(&data[..]), "{path} differs");
            }
            Kind::Dir => assert_eq!(tree[&path], None, "{path}"),
            Kind::Symlink => {
                let want = if path == "fast-link" {
                    b"small.txt".to_vec()
                } else {
                    vec![b'x'; 100]
                };
                assert_eq!(fs.symlink(entry.inode).unwrap(), want, "{path}");
            }
            Kind::Other => panic!("{path}: unexpected kind"),
        }
        assert!(seen.insert(path, entry.inode).is_none(), "an entry twice");
    }
    for name in tree.keys() {
        assert!(seen.contains_key(name), "{name} not found");
    }
    assert!(seen.contains_key("fast-link") && seen.contains_key("slow-link"));
    assert_eq!(
        walk.reached().len(),
        tree.values().filter(|v| v.is_some()).count()
    );
}

#[test]
fn an_ext4_image_gives_every_file_back() {
    // Extents, 64-bit descriptors, inline data, htree directories.
    let (_dir, img, tree) = image("ext4", "mkfs.ext4 -b 4096 -O inline_data,64bit", 5 << 20);
    let src = mem(&img);
    let fs = Ext4::open(&src).unwrap();
    check(&fs, &tree);
    // The 60- and 100-byte files are inline (the second in the
    // `system.data` attribute too), the big one in extents.
    let find = |name: &str| {
        fs.walk()
            .filter_map(|e| e.ok())
            .find(|e| e.path == name.as_bytes())
            .unwrap()
            .inode
    };
    assert!(fs.inode(find("inline60")).unwrap().flags() & FL_INLINE_DATA != 0);
    let inl = fs.inode(find("inline100")).unwrap();
    assert!(inl.flags() & FL_INLINE_DATA != 0);
    assert!(fs
        .xattrs(inl.number)
        .unwrap()
        .iter()
        .any(|(n, v)| n == b"system.data" && v.len() == 40));
    assert!(fs.inode(find("big.bin")).unwrap().flags() & FL_EXTENTS != 0);
}

/// A source that counts its reads.
struct Counted<'a> {
    inner: &'a dyn ReadAt,
    reads: std::cell::Cell<u64>,
}

impl ReadAt for Counted<'_> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.reads.set(self.reads.get() + 1);
        self.inner.read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

#[test]
fn metadata_reads_go_through_the_cache_and_give_the_image_bytes() {
    let (_dir, img, tree) = image("ext4-cache", "mkfs.ext4 -b 1024", 64 << 10);
    let src = mem(&img);
    let counted = Counted {
        inner: &src,
        reads: std::cell::Cell::new(0),
    };
    let fs = Ext4::open(&counted).unwrap();
    // Served from a chunk, across a chunk's end (read directly), at the
    // image's end, and past it: the bytes of the image or an error.
    let len = img.len() as u64;
    for (at, n) in [
        (0u64, 256usize),
        (META_CHUNK - 128, 256),
        (META_CHUNK - 256, 256),
        (len - 64, 64),
        (len - 32, 64),
        (len, 1),
    ] {
        let mut got = vec![0u8; n];
        let result = fs.meta_read(&mut got, at);
        let want = img.get(at as usize..at as usize + n);
        match want {
            Some(want) => assert_eq!(&got[..], want, "{at}+{n}"),
            None => assert!(result.is_err(), "{at}+{n} past the end"),
        }
    }
    // The walk (each file's inode read for its kind, data, link and
    // attributes) reads the image about once per file's data, not
    // twice more per inode as without the cache (1,700 here).
    counted.reads.set(0);
    check(&fs, &tree);
    let files = tree.len() as u64;
    assert!(
        counted.reads.get() < files * 2,
        "{} reads for {files} entries",
        counted.reads.get()
    );
}

#[test]
fn block_mapped_images_read_through_double_indirect_blocks() {
    // No extents: 20 MB at 4 KiB blocks passes the 12 direct blocks
    // and the 1024 of the indirect block.
    let (_dir, img, tree) = image(
        "ext3",
        "mkfs.ext4 -b 4096 -O ^extent,^64bit,^flex_bg -t ext3",
        20 << 20,
    );
    let src = mem(&img);
    let fs = Ext4::open(&src).unwrap();
    let big = fs
        .walk()
        .filter_map(|e| e.ok())
        .find(|e| e.path == b"big.bin")
        .unwrap();
    assert_eq!(fs.inode(big.inode).unwrap().flags() & FL_EXTENTS, 0);
    check(&fs, &tree);
    // 1 KiB blocks: the 20 MB reaches the triple-indirect block's
    // neighbourhood (12 + 256 + 65536 blocks is 64 MiB: double).
    let (_dir, img, tree) = image("ext2", "mkfs.ext4 -b 1024 -t ext2", 20 << 20);
    check(&Ext4::open(&mem(&img)).unwrap(), &tree);
}

#[test]
fn unlinked_files_are_found_without_a_name() {
    let (dir, _, _) = image("unlinked", "mkfs.ext4 -b 1024", 1 << 10);
    // Unlink the secret's name only: its inode stays allocated.
    sh(
        &dir,
        "debugfs -w -R 'unlink /etc/sota/client.pem' fs.img >/dev/null 2>&1",
    );
    let img = std::fs::read(dir.join("fs.img")).unwrap();
    let src = mem(&img);
    let fs = Ext4::open(&src).unwrap();
    let mut walk = fs.walk();
    assert!(walk
        .by_ref()
        .all(|e| e.is_ok_and(|e| e.path != b"etc/sota/client.pem")));
    let found: Vec<u32> = fs.unlinked(walk.reached()).map(|r| r.unwrap()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let mut data = Vec::new();
    fs.read(found[0]).unwrap().read_to_end(&mut data).unwrap();
    assert_eq!(data, SECRET);
}

#[test]
fn bad_superblocks_are_errors() {
    assert!(Ext4::open(&mem(&[0u8; 4096])).is_err());
    assert!(Ext4::open(&mem(&[0u8; 100])).is_err());
    let (_dir, img, _) = image("super", "mkfs.ext4 -b 1024", 1 << 10);
    for (at, value) in [
        (0x418usize, 9u8),
        (0x420, 0),
        (0x428, 0),
        (0x458, 7),
        (0x400, 0),
    ] {
        let mut v = img.clone();
        v[at..at + 4].fill(0);
        v[at] = value;
        assert!(Ext4::open(&mem(&v)).is_err(), "field at {at:#x}");
    }
}

/// Everything a caller would do with an image; the number of steps.
pub(crate) fn exercise(img: &[u8]) -> u64 {
    let src = mem(img);
    let Ok(fs) = Ext4::open(&src) else { return 0 };
    let mut steps = 0u64;
    let mut walk = fs.walk();
    let mut buf = vec![0u8; 65536];
    for entry in walk.by_ref() {
        steps += 1;
        let Ok(entry) = entry else { continue };
        match entry.kind {
            Kind::File => {
                if let Ok(mut data) = fs.read(entry.inode) {
                    // Declared sizes can be huge holes: read a bounded
                    // amount, as the scanner's byte budget would.
                    let mut total = 0;
                    while let Ok(n) = data.read(&mut buf) {
                        if n == 0 || total > 64 << 20 {
                            break;
                        }
                        total += n;
                        steps += 1;
                    }
                }
            }
            Kind::Symlink => {
                let _ = fs.symlink(entry.inode);
            }
            _ => {}
        }
        let _ = fs.xattrs(entry.inode);
    }
    let reached = walk.reached().clone();
    steps += fs.unlinked(&reached).take(100_000).count() as u64;
    steps
}

#[test]
fn hostile_images_end_in_ok_or_err() {
    let (_dir, img, _) = image(
        "hostile",
        "mkfs.ext4 -b 1024 -N 512 -O inline_data",
        40 << 10,
    );
    let src = mem(&img);
    let fs = Ext4::open(&src).unwrap();
    assert!(exercise(&img) > 300);
    // The metadata lives in the first blocks (superblock, descriptors,
    // bitmaps, inode table) and the directory blocks that follow.
    let _ = fs;
    let hot = [0..64 << 10, 0..img.len()];
    let mut rng = Rng(0x5eed_0e47);
    for i in 0..400 {
        let v = mutate(&img, &mut rng, &hot);
        let steps = exercise(&v);
        assert!(steps < 2_000_000, "variant {i}: {steps} steps");
    }
}

/// Writes an extent node header (and `entries` index entries all
/// pointing at `child`) at `at`.
fn index_node(img: &mut [u8], at: usize, depth: u16, max: u16, entries: u16, child: u32) {
    img[at..at + 2].copy_from_slice(&0xF30Au16.to_le_bytes());
    img[at + 2..at + 4].copy_from_slice(&entries.to_le_bytes());
    img[at + 4..at + 6].copy_from_slice(&max.to_le_bytes());
    img[at + 6..at + 8].copy_from_slice(&depth.to_le_bytes());
    for i in 0..usize::from(entries) {
        let e = at + 12 + 12 * i;
        img[e..e + 4].copy_from_slice(&0u32.to_le_bytes());
        img[e + 4..e + 8].copy_from_slice(&child.to_le_bytes());
        img[e + 8..e + 12].fill(0);
    }
}

#[test]
fn extent_trees_that_loop_or_repeat_end() {
    let (_dir, img, _) = image("extent-loops", "mkfs.ext4 -b 1024", 1 << 20);
    let src = mem(&img);
    let fs = Ext4::open(&src).unwrap();
    let big = fs
        .walk()
        .map(|e| e.unwrap())
        .find(|e| e.path == b"big.bin")
        .unwrap();
    // Where its inode lies, and two free blocks at the image's end.
    let index = u64::from(big.inode - 1);
    let desc = fs
        .descriptor(index / u64::from(fs.inodes_per_group))
        .unwrap();
    let table = fs.desc_block(&desc, 0x8, 0x28);
    let inode_at =
        (table * 1024 + (index % u64::from(fs.inodes_per_group)) * fs.inode_size) as usize;
    let (b, c) = (fs.blocks as u32 - 1, fs.blocks as u32 - 2);
    let read = |v: &[u8]| {
        let src = mem(v);
        let fs = Ext4::open(&src).unwrap();
        let mut out = Vec::new();
        fs.read(big.inode)
            .unwrap()
            .read_to_end(&mut out)
            .map(|_| out)
    };
    // An index node that points at itself: its depth cannot match.
    let mut v = img.clone();
    index_node(&mut v, inode_at + 0x28, 2, 4, 1, b);
    index_node(&mut v, b as usize * 1024, 1, 84, 1, b);
    let err = read(&v).unwrap_err();
    assert!(err.to_string().contains("wrong depth"), "{err}");
    // A root whose 4 entries all lead to one index node whose 84
    // entries all lead to one leaf: 4 * 84 visits of the same extent,
    // each behind the position after the first, then holes.
    let mut v = img.clone();
    index_node(&mut v, inode_at + 0x28, 2, 4, 4, c);
    index_node(&mut v, c as usize * 1024, 1, 84, 84, b);
    let leaf = b as usize * 1024;
    index_node(&mut v, leaf, 0, 84, 1, 0);
    v[leaf + 12..leaf + 24].copy_from_slice(&[0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    v[leaf + 20..leaf + 24].copy_from_slice(&(b - 10).to_le_bytes());
    let data = read(&v).unwrap();
    assert_eq!(data.len() as u64, big.size);
    assert!(data[2048..].iter().all(|&x| x == 0));
}

#[test]
fn loops_end() {
    // A directory that holds itself: the walk ends.
    let (dir, _, _) = image("loops", "mkfs.ext4 -b 1024", 1 << 20);
    sh(
        &dir,
        "debugfs -w -R 'ln /etc /etc/sota/again' fs.img >/dev/null 2>&1",
    );
    let img = std::fs::read(dir.join("fs.img")).unwrap();
    let src = mem(&img);
    let fs = Ext4::open(&src).unwrap();
    let paths: Vec<Vec<u8>> = fs.walk().map(|e| e.unwrap().path).collect();
    assert!(paths.contains(&b"etc/sota/again".to_vec()));
    assert!(!paths.iter().any(|p| p.starts_with(b"etc/sota/again/")));
}
