//! The unit tests of the scanner, and the needles other modules' tests
//! search with.

use std::io::{self, Cursor, Read};

use super::stream::CHUNK;
use super::what::{what_is, What};
use super::*;
use crate::audit::decode::Codec;
use crate::audit::findings::Limits;
use crate::audit::formats::Format;
use crate::audit::patterns::{Kind, Needles, DEVICE_ZIP, SHARED_P12};

pub(crate) const SECRET: &str = "unit-test-client-secret-4242";

/// Needles of an archive whose treehub.json holds [`SECRET`].
pub(crate) fn needles() -> Needles {
    Needles::of_client_secret(SECRET)
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
    let commit = Place::file("objects/ab/cd.filez".into()).inner(&format!("main!/{DEVICE_ZIP}"));
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
