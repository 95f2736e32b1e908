//! The output of `device-certs`, planned: one bundle per device (a folder
//! or a reproducible tar holding the device-cred files aktualizr imports),
//! and the record of what was issued, `devices.json` and `devices.csv`
//! (docs/device-certs.md). Pure: certificates and keys come in as bytes,
//! a [`Plan`] for [`crate::write::apply`] goes out.
//!
//! The device paths are device-cred's, from the method table; a bundle's
//! folders get the modes `stage` gives them on a device (`var/sota` and
//! `var/sota/import` 0700).

use serde::Serialize;

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

/// One line of the record.
#[derive(Debug, Serialize)]
struct DeviceRecord<'a> {
    id: &'a str,
    serial: &'a str,
    sha256: &'a str,
    not_before: String,
    not_after: String,
    key_type: &'a str,
    key_source: &'a str,
    /// SHA-256 of the DER SubjectPublicKeyInfo.
    public_key_sha256: String,
    path: String,
}

#[derive(Debug, Serialize)]
struct Record<'a> {
    schema: u32,
    fleet_ca: CaRecord<'a>,
    devices: Vec<DeviceRecord<'a>>,
}

/// The plan of a run: every bundle and the record, under the output folder
/// (planned as [`Side::Host`], a root of the tool's own).
pub fn plan(
    ca: &CertInfo,
    bundles: &[DeviceBundle<'_>],
    fleet: &FleetFiles,
    format: Format,
    epoch: i64,
) -> Result<Plan> {
    let method = Method::DeviceCred;
    // The method table stages both of these for device-cred.
    let cert_path = method
        .path_of(Source::DeviceCert)
        .unwrap_or("var/sota/import/client.pem");
    let key_path = method
        .path_of(Source::DeviceKey)
        .unwrap_or("var/sota/import/pkey.pem");
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
    let (json, csv) = record(ca, bundles, format)?;
    files.push(FileSpec::new(
        Side::Host,
        DEVICES_JSON,
        json.into_bytes(),
        false,
    ));
    files.push(FileSpec::new(
        Side::Host,
        DEVICES_CSV,
        csv.into_bytes(),
        false,
    ));
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

/// `devices.json` and `devices.csv`, devices in the order given.
fn record(ca: &CertInfo, bundles: &[DeviceBundle<'_>], format: Format) -> Result<(String, String)> {
    let devices: Vec<DeviceRecord<'_>> = bundles
        .iter()
        .map(|b| DeviceRecord {
            id: b.id,
            serial: serial_number(&b.cert.serial_hex),
            sha256: &b.cert.sha256,
            not_before: format_date_time(b.cert.not_before),
            not_after: format_date_time(b.cert.not_after),
            key_type: b.key_type,
            key_source: b.key_source,
            public_key_sha256: crate::digest::sha256_hex(&b.cert.spki_der),
            path: format.bundle_path(b.id),
        })
        .collect();
    let mut csv = String::from(
        "id,serial,sha256,not_before,not_after,key_type,path,key_source,public_key_sha256\n",
    );
    // Ids are `[A-Za-z0-9._-]` and the rest hex, dates and fixed names:
    // nothing needs quoting.
    for d in &devices {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            d.id,
            d.serial,
            d.sha256,
            d.not_before,
            d.not_after,
            d.key_type,
            d.path,
            d.key_source,
            d.public_key_sha256
        ));
    }
    let record = Record {
        schema: 1,
        fleet_ca: CaRecord {
            subject: &ca.subject,
            sha256: &ca.sha256,
        },
        devices,
    };
    let mut json = serde_json::to_string_pretty(&record)
        .map_err(|e| Error::Invalid(format!("cannot write {DEVICES_JSON}: {e}")))?;
    json.push('\n');
    Ok((json, csv))
}
