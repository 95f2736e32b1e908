//! The output of `device-certs`, planned: one bundle per device (a folder
//! or a reproducible tar holding the device-cred files aktualizr imports),
//! and the record of what was issued, `devices.json` and `devices.csv`
//! (docs/device-certs.md), and the journal of a run. No file access:
//! certificates and keys come in as bytes, a [`Plan`] of one batch for
//! [`crate::write::apply`] goes out; the record is serialized into a
//! writer as the devices come, never held whole.
//!
//! The device paths are device-cred's, from the method table; a bundle's
//! folders get the modes `stage` gives them on a device (`var/sota` and
//! `var/sota/import` 0700).

use serde::{Deserialize, Serialize};

use crate::crypto::x509::CertInfo;
use crate::error::{Error, Result};
use crate::intake::catalogue::Side;
use crate::plan::files::{dir_mode, file_mode, FileSpec, Plan};
use crate::plan::methods::{Method, Source};
use crate::plan::tar::{self, Entry};
use crate::secret::Secret;
use crate::time::format_date_time;

/// The record of the run, beside the bundles.
pub const DEVICES_JSON: &str = "devices.json";
pub const DEVICES_CSV: &str = "devices.csv";

/// True when `id` names a file of the record in the output folder (any
/// case: a folder on a case-insensitive file system clashes too): a bundle
/// of that name would be the record, or the record would land in it.
pub fn is_reserved(id: &str) -> bool {
    [DEVICES_JSON, DEVICES_CSV, JOURNAL]
        .iter()
        .any(|name| id.eq_ignore_ascii_case(name))
}

/// How each bundle is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `OUT/<id>/var/sota/import/...`
    Dir,
    /// `OUT/<id>.tar`, holding `var/sota/import/...`.
    Tar,
}

impl Format {
    /// Where the bundle of `id` goes, relative to the output folder.
    pub fn bundle_path(self, id: &str) -> String {
        match self {
            Format::Dir => id.to_string(),
            Format::Tar => format!("{id}.tar"),
        }
    }
}

/// One device's certificate and key.
#[derive(Debug)]
pub struct DeviceBundle<'a> {
    pub id: &'a str,
    pub cert: &'a CertInfo,
    /// `client.pem`: the certificate, then the CA file's certificates
    /// below the root.
    pub cert_pem: &'a str,
    /// `pkey.pem`; none when the device holds its key (a request).
    pub key_pem: Option<&'a Secret<String>>,
    /// As the record names it (`ec-p256`, `rsa-3072`).
    pub key_type: &'a str,
    /// Where the key came from, as the record names it: `minted` (made
    /// here) or `csr` (the device's, from its request).
    pub key_source: &'static str,
}

/// The fleet-wide files every bundle carries too (`--credentials`):
/// (device path, bytes), public.
pub type FleetFiles = Vec<(&'static str, Vec<u8>)>;

/// The record's view of the fleet CA.
#[derive(Debug, Serialize)]
struct CaRecord<'a> {
    subject: &'a str,
    sha256: &'a str,
}

/// One device in the record, and one line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    pub id: String,
    pub serial: String,
    pub sha256: String,
    pub not_before: String,
    pub not_after: String,
    pub key_type: String,
    /// `minted` or `csr`.
    pub key_source: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    pub public_key_sha256: String,
    pub path: String,
}

impl DeviceRecord {
    /// The record of one bundle.
    pub fn of(b: &DeviceBundle<'_>, format: Format) -> DeviceRecord {
        DeviceRecord {
            id: b.id.to_string(),
            serial: serial_number(&b.cert.serial_hex).to_string(),
            sha256: b.cert.sha256.clone(),
            not_before: format_date_time(b.cert.not_before),
            not_after: format_date_time(b.cert.not_after),
            key_type: b.key_type.to_string(),
            key_source: b.key_source.to_string(),
            public_key_sha256: crate::digest::sha256_hex(&b.cert.spki_der),
            path: format.bundle_path(b.id),
        }
    }
}

/// The journal of a run (docs/device-certs.md, "Killed runs"): the
/// run's header line, then one [`DeviceRecord`] a line, appended before a
/// batch's bundles are renamed into place.
pub const JOURNAL: &str = ".sota-stage-devices.journal";

/// The first line of the journal: what the run was asked for, each part
/// as a digest or value, so that a run with other arguments is told which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunHeader {
    /// 1.
    pub journal: u32,
    /// SHA-256 of the fleet CA certificate.
    pub fleet_ca: String,
    /// Where its key is: `file:` and the SHA-256 of the key file, or
    /// `token:` and the PKCS#11 URI (which never holds a PIN).
    pub fleet_ca_key: String,
    /// SHA-256 of the ids, each followed by a newline, in order.
    pub ids: String,
    pub devices: usize,
    pub format: String,
    /// The key type minted, or `csr`.
    pub key_type: String,
    /// SHA-256 over the request files of `--csr` (each file's name and
    /// SHA-256, in order); empty when keys are minted.
    pub requests: String,
    pub days: u32,
    /// SHA-256 of the subject attributes besides CN.
    pub subject: String,
    /// SHA-256 of the fleet-wide files every bundle carries.
    pub fleet_files: String,
}

impl RunHeader {
    /// The parts in which `self` and `other` differ, named for the user.
    pub fn differences(&self, other: &RunHeader) -> Vec<&'static str> {
        let mut out = Vec::new();
        let parts: [(bool, &'static str); 10] = [
            (self.fleet_ca != other.fleet_ca, "fleet CA"),
            (self.fleet_ca_key != other.fleet_ca_key, "fleet CA key"),
            (
                self.ids != other.ids || self.devices != other.devices,
                "device ids",
            ),
            (self.format != other.format, "format"),
            (self.key_type != other.key_type, "key type"),
            (self.requests != other.requests, "certificate requests"),
            (self.days != other.days, "days"),
            (self.subject != other.subject, "subject"),
            (self.fleet_files != other.fleet_files, "credentials"),
            (self.journal != other.journal, "journal version"),
        ];
        for (differs, name) in parts {
            if differs {
                out.push(name);
            }
        }
        out
    }
}

/// A journal line, with its newline.
pub fn journal_line<T: Serialize>(value: &T) -> Result<String> {
    let mut line = serde_json::to_string(value)
        .map_err(|e| Error::Invalid(format!("cannot write {JOURNAL}: {e}")))?;
    line.push('\n');
    Ok(line)
}

#[derive(Debug, Serialize)]
struct Record<'a, D: Serialize> {
    schema: u32,
    /// [`RunHeader`]'s digest: a finished run told from another.
    run: &'a str,
    fleet_ca: CaRecord<'a>,
    devices: D,
}

/// The devices of the record, serialized as they come: the record of
/// 100,000 devices is never held in memory.
struct Streamed<I>(std::cell::RefCell<Option<I>>);

impl<I: Iterator<Item = std::io::Result<DeviceRecord>>> Serialize for Streamed<I> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let devices = self
            .0
            .borrow_mut()
            .take()
            .ok_or_else(|| S::Error::custom("the devices were already written"))?;
        let mut seq = serializer.serialize_seq(None)?;
        for device in devices {
            seq.serialize_element(&device.map_err(S::Error::custom)?)?;
        }
        seq.end()
    }
}

/// `devices.json`, devices as `devices` gives them, written as they come.
pub fn write_json(
    out: &mut dyn std::io::Write,
    ca: &CertInfo,
    run: &str,
    devices: impl Iterator<Item = std::io::Result<DeviceRecord>>,
) -> std::io::Result<()> {
    let record = Record {
        schema: 1,
        run,
        fleet_ca: CaRecord {
            subject: &ca.subject,
            sha256: &ca.sha256,
        },
        devices: Streamed(std::cell::RefCell::new(Some(devices))),
    };
    serde_json::to_writer_pretty(&mut *out, &record).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// `devices.csv`, devices as `devices` gives them.
pub fn write_csv(
    out: &mut dyn std::io::Write,
    devices: impl Iterator<Item = std::io::Result<DeviceRecord>>,
) -> std::io::Result<()> {
    out.write_all(
        b"id,serial,sha256,not_before,not_after,key_type,path,key_source,public_key_sha256\n",
    )?;
    // Ids are `[A-Za-z0-9._-]` and the rest hex, dates and fixed names:
    // nothing needs quoting.
    for d in devices {
        let d = d?;
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            d.id,
            d.serial,
            d.sha256,
            d.not_before,
            d.not_after,
            d.key_type,
            d.path,
            d.key_source,
            d.public_key_sha256
        )?;
    }
    Ok(())
}

/// The files of `id`'s bundle, relative to the output folder; `with_key`
/// when the bundle holds its key (minted here, not a request's).
pub fn bundle_files(id: &str, fleet: &FleetFiles, format: Format, with_key: bool) -> Vec<String> {
    match format {
        Format::Tar => vec![format.bundle_path(id)],
        Format::Dir => {
            let (cert_path, key_path) = device_paths();
            std::iter::once(cert_path)
                .chain(with_key.then_some(key_path))
                .chain(fleet.iter().map(|(p, _)| *p))
                .map(|p| format!("{id}/{p}"))
                .collect()
        }
    }
}

/// Where device-cred's certificate and key go on a device.
fn device_paths() -> (&'static str, &'static str) {
    let method = Method::DeviceCred;
    // The method table stages both of these for device-cred.
    (
        method
            .path_of(Source::DeviceCert)
            .unwrap_or("var/sota/import/client.pem"),
        method
            .path_of(Source::DeviceKey)
            .unwrap_or("var/sota/import/pkey.pem"),
    )
}

/// The plan of one batch: its bundles under the output folder (planned as
/// [`Side::Host`], a root of the tool's own). The record is written from
/// the journal at the end of the run.
pub fn plan(
    bundles: &[DeviceBundle<'_>],
    fleet: &FleetFiles,
    format: Format,
    epoch: i64,
) -> Result<Plan> {
    let method = Method::DeviceCred;
    let (cert_path, key_path) = device_paths();
    let mut files = Vec::new();
    for b in bundles {
        let mut device: Vec<(&str, &[u8], bool)> = vec![(cert_path, b.cert_pem.as_bytes(), false)];
        if let Some(key) = b.key_pem {
            device.push((key_path, key.expose().as_bytes(), true));
        }
        device.extend(fleet.iter().map(|(p, bytes)| (*p, bytes.as_slice(), false)));
        match format {
            Format::Dir => {
                for (path, bytes, secret) in device {
                    files.push(FileSpec::new(
                        Side::Host,
                        format!("{}/{path}", b.id),
                        bytes.to_vec(),
                        secret,
                    ));
                }
            }
            Format::Tar => {
                let tar = bundle_tar(&device, epoch)?;
                files.push(FileSpec::new(
                    Side::Host,
                    format.bundle_path(b.id),
                    tar,
                    true,
                ));
            }
        }
    }
    let mut plan = Plan::new(method, String::new(), files, Vec::new());
    for dir in &mut plan.dirs {
        if let Some((_, inside)) = dir.path.split_once('/') {
            dir.mode = dir_mode(Side::Device, inside);
        }
    }
    Ok(plan)
}

/// A bundle as a tar: the files with their folders, with `stage`'s modes.
fn bundle_tar(files: &[(&str, &[u8], bool)], epoch: i64) -> Result<Vec<u8>> {
    let mut dirs: Vec<&str> = Vec::new();
    for (path, _, _) in files {
        let mut at = *path;
        while let Some((parent, _)) = at.rsplit_once('/') {
            if !dirs.contains(&parent) {
                dirs.push(parent);
            }
            at = parent;
        }
    }
    let mut entries: Vec<Entry<'_>> = dirs
        .iter()
        .map(|path| Entry::Dir {
            path,
            mode: dir_mode(Side::Device, path),
        })
        .collect();
    entries.extend(files.iter().map(|(path, bytes, secret)| Entry::File {
        path,
        mode: file_mode(*secret),
        bytes,
    }));
    tar::build(&entries, epoch)
}

/// The serial as a number in hex, as `openssl x509 -serial` prints it
/// (lowercase): without the zero byte DER puts before a set top bit.
fn serial_number(der_hex: &str) -> &str {
    let mut s = der_hex;
    while s.len() > 2 && s.starts_with("00") {
        s = &s[2..];
    }
    s
}
