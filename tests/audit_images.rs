//! `audit` on disk images read without mounting and without root (issue
//! 18): an ext4 image (`mkfs.ext4 -d`, as OE-core's `ext4` and
//! meta-updater's `ota-ext4` are made), and partitioned images, GPT and
//! MBR (`sfdisk` on a file, as a `.wic`), whose partitions are ext4 and
//! FAT (`mkfs.vfat`, `mcopy`), plus one of another type; also compressed.
//! Each holding treehub.json is found at the file inside; a clean one
//! passes.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::audit::{sh, Setup};

/// A folder with `etc/motd` and, when `leak`, `usr/share/app/treehub.json`.
fn tree(s: &Setup, name: &str, leak: bool) -> PathBuf {
    let root = s.dir.join(name);
    s.motd_tree(&root, leak);
    root
}

/// An ext4 image of `tree` (8 MiB), as OE-core makes one.
fn ext4(s: &Setup, name: &str, leak: bool) -> PathBuf {
    let src = tree(s, &format!("{name}-tree"), leak);
    mkfs_ext4(s, &src, name)
}

/// `name.ext4` in the test's folder, an 8 MiB ext4 image of the folder
/// `src` (`mkfs.ext4 -d`, as OE-core makes one).
fn mkfs_ext4(s: &Setup, src: &Path, name: &str) -> PathBuf {
    let image = s.dir.join(format!("{name}.ext4"));
    sh(
        s.dir.path(),
        &format!(
            "mkfs.ext4 -q -F -d {} {} 8M",
            src.display(),
            image.display()
        ),
    );
    image
}

/// A FAT image of `tree` (4 MiB).
fn vfat(s: &Setup, name: &str, leak: bool) -> PathBuf {
    let src = tree(s, &format!("{name}-tree"), leak);
    let image = s.dir.join(format!("{name}.vfat"));
    sh(
        s.dir.path(),
        &format!(
            "mkfs.vfat -C {img} 4096 >/dev/null\nmcopy -s -i {img} {src}/etc {src}/usr ::",
            img = image.display(),
            src = src.display()
        ),
    );
    image
}

/// A disk of `label` (gpt or dos) with a FAT, an ext4 and a swap partition.
fn disk(s: &Setup, name: &str, label: &str, leak_in_ext: bool, leak_in_fat: bool) -> PathBuf {
    let ext = ext4(s, &format!("{name}-p2"), leak_in_ext);
    let fat = vfat(s, &format!("{name}-p1"), leak_in_fat);
    let image = s.dir.join(format!("{name}.wic"));
    let (fat_type, ext_type, swap_type) = if label == "gpt" {
        ("uefi", "linux", "swap")
    } else {
        ("c", "83", "82")
    };
    sh(
        s.dir.path(),
        &format!(
            "truncate -s 20M {img}
             printf 'label: {label}\\nstart=2048, size=8192, type={fat_type}\\nstart=10240, size=16384, type={ext_type}\\nstart=26624, size=2048, type={swap_type}\\n' | sfdisk -q {img}
             dd if={fat} of={img} bs=512 seek=2048 conv=notrunc status=none
             dd if={ext} of={img} bs=512 seek=10240 conv=notrunc status=none",
            img = image.display(),
            fat = fat.display(),
            ext = ext.display()
        ),
    );
    image
}

#[test]
fn a_secret_in_an_ext4_image_is_found_at_its_file_as_a_root_and_inside_a_folder() {
    let s = Setup::new();
    let image = ext4(&s, "rootfs", true);
    // Given as PATH: its files are the root's.
    let audit = s.audit(&image);
    audit.leak_at("usr/share/app/treehub.json", "");
    s.assert_silent(&audit.run);
    // In a folder (a deploy directory): a member of the image file.
    let deploy = s.dir.join("deploy");
    fs::create_dir_all(&deploy).unwrap();
    fs::copy(&image, deploy.join("core-image.ext4")).unwrap();
    s.audit(&deploy)
        .leak_at("core-image.ext4", "usr/share/app/treehub.json");
    // Compressed, as IMAGE_FSTYPES' ext4.gz.
    sh(s.dir.path(), "gzip -k -c rootfs.ext4 > rootfs.ext4.gz");
    s.audit(&s.dir.join("rootfs.ext4.gz"))
        .leak_at("usr/share/app/treehub.json", "");
    let clean = ext4(&s, "clean", false);
    s.audit(&clean).clean();
}

#[test]
fn each_partition_type_of_a_gpt_and_an_mbr_image_is_searched() {
    let s = Setup::new();
    for label in ["gpt", "dos"] {
        let both = disk(&s, &format!("both-{label}"), label, true, false);
        let audit = s.audit(&both);
        audit.leak_at(&format!("both-{label}.wic"), "usr/share/app/treehub.json");
        assert!(
            audit
                .findings
                .iter()
                .any(|f| f.member.starts_with("p2(ext)!") && f.member.ends_with("treehub.json")),
            "{label}: not named by its partition: {:#?}",
            audit.findings
        );
        // The swap partition is said, not searched as a file system.
        assert!(
            audit
                .findings
                .iter()
                .any(|f| f.member == "p3" && f.kind == "not-searched"),
            "{label}: {:#?}",
            audit.findings
        );
        let fat = disk(&s, &format!("fat-{label}"), label, false, true);
        let audit = s.audit(&fat);
        assert!(
            audit
                .findings
                .iter()
                .any(|f| f.member.starts_with("p1(vfat)!")
                    && f.member.to_ascii_lowercase().ends_with("treehub.json")
                    && f.severity == "error"),
            "{label}: nothing in the FAT partition: {:#?}",
            audit.findings
        );
        s.assert_silent(&audit.run);
        let clean = disk(&s, &format!("clean-{label}"), label, false, false);
        let audit = s.audit(&clean);
        audit.run.code(0);
        assert!(audit.errors().is_empty(), "{label}: {:#?}", audit.findings);
    }
    // A .wic.xz as PATH.
    sh(s.dir.path(), "xz -T1 -k -c both-gpt.wic > both-gpt.wic.xz");
    let audit = s.audit(&s.dir.join("both-gpt.wic.xz"));
    assert!(
        audit
            .findings
            .iter()
            .any(|f| f.member.ends_with("usr/share/app/treehub.json") && f.severity == "error"),
        "{:#?}",
        audit.findings
    );
}

#[test]
fn a_compressed_image_larger_than_memory_allows_is_read_through_a_temporary_file() {
    let s = Setup::new();
    let src = tree(&s, "big-tree", true);
    sh(
        s.dir.path(),
        &format!(
            "mkfs.ext4 -q -F -d {} big.ext4 96M\nzstd -q -T1 big.ext4 -o big.ext4.zst",
            src.display()
        ),
    );
    // 96 MiB decoded: more than the 64 MiB an image inside a file may
    // take in memory.
    let audit = s.audit(&s.dir.join("big.ext4.zst"));
    audit.leak_at("usr/share/app/treehub.json", "");
    s.assert_silent(&audit.run);
}

/// What an ext4 image's files give is bounded by the image: a sparse
/// file's holes are skipped (a secret after 100 GiB of hole is found at
/// once), a file hard-linked at two paths is read once, and files whose
/// extents map the same blocks (`debugfs copy_inode`, 100 files of 1 MiB
/// each on one 1 MiB of an 8 MiB image) stop at the image's length and
/// 64 MiB, saying so. Before, the hole was read as 100 GiB of zeros and
/// the shared blocks 100 times (a fuzz input did the same in 117 KB).
#[test]
fn an_ext4_image_cannot_make_the_audit_read_more_than_it_holds() {
    let s = Setup::new();
    let src = tree(&s, "sparse-tree", false);
    fs::create_dir_all(src.join("var")).unwrap();
    let sparse = src.join("var/sparse.img");
    fs::write(&sparse, b"").unwrap();
    sh(
        s.dir.path(),
        &format!("truncate -s 100G {}", sparse.display()),
    );
    let mut file = fs::OpenOptions::new().append(true).open(&sparse).unwrap();
    std::io::Write::write_all(&mut file, &s.treehub).unwrap();
    drop(file);
    // Hard links: the secret at two paths, one inode.
    fs::write(src.join("var/treehub.json"), &s.treehub).unwrap();
    fs::hard_link(src.join("var/treehub.json"), src.join("var/again.json")).unwrap();
    let image = mkfs_ext4(&s, &src, "sparse");
    fs::remove_file(&sparse).unwrap();
    let audit = s.audit(&image);
    audit.leak_at("var/sparse.img", "");
    let linked: Vec<&str> = audit
        .findings
        .iter()
        .filter(|f| {
            f.severity == "error" && f.path.starts_with("var/") && f.path.ends_with(".json")
        })
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(linked.len(), 1, "the hard-linked file once: {linked:?}");
    s.assert_silent(&audit.run);

    // Shared blocks.
    let src = tree(&s, "shared-tree", true);
    fs::create_dir_all(src.join("var")).unwrap();
    let mut big = vec![0u8; 1 << 20];
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i * 7 + i / 251) as u8;
    }
    fs::write(src.join("var/big"), &big).unwrap();
    let mut copies = String::new();
    for i in 0..100 {
        fs::write(src.join(format!("var/f{i}")), b"").unwrap();
        copies.push_str(&format!("copy_inode /var/big /var/f{i}\n"));
    }
    fs::write(s.dir.join("copies.txt"), copies).unwrap();
    let image = mkfs_ext4(&s, &src, "shared");
    sh(
        s.dir.path(),
        &format!(
            "debugfs -w -f copies.txt {} >/dev/null 2>&1",
            image.display()
        ),
    );
    let audit = s.audit(&image);
    audit.run.code(1);
    assert!(
        audit.run.stdout.contains("is a file system whose files hold more data than the image itself (75497472 bytes: blocks shared between files, or a damaged block map): the files past that were not searched"),
        "{}",
        audit.run.stdout
    );
}
