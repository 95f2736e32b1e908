//! The checks of what is already in `--out`: a finished run's record, the
//! bundles and records an earlier run left, and an `--out` inside a
//! bundle.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::inputs::listed;
use super::journal::Journal;
use super::run::Run;
use crate::error::{Error, Result};
use crate::escape::escape;
use crate::plan::bundles::{DEVICES_CSV, DEVICES_JSON, JOURNAL};

impl Run<'_> {
    /// True when the record in `--out` is that of a finished run of the
    /// same arguments and every bundle it names is whole.
    pub(super) fn finished(&self, digest: &str) -> Result<bool> {
        #[derive(serde::Deserialize)]
        struct RunOnly {
            #[serde(default)]
            run: Option<String>,
        }
        let Some(file) = self.session.open_read(DEVICES_JSON)? else {
            return Ok(false);
        };
        let Ok(record) = serde_json::from_reader::<_, RunOnly>(BufReader::new(file)) else {
            return Ok(false);
        };
        if record.run.as_deref() != Some(digest) || !self.session.is_file(DEVICES_CSV)? {
            return Ok(false);
        }
        for id in self.ids {
            for f in self.bundle_files(id) {
                if !self.session.is_file(&f)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// An existing bundle or record is replaced only with force (a
    /// device's key must not be swapped by accident), or when the journal
    /// of this run's arguments names it.
    pub(super) fn check_existing(
        &self,
        journal: Option<&Journal>,
        kept: &HashSet<&str>,
        partial: &[(&str, Vec<String>)],
    ) -> Result<()> {
        let config = self.config;
        if config.force {
            return Ok(());
        }
        let resumed: HashSet<&str> = partial.iter().map(|(id, _)| *id).collect();
        let mut taken = Vec::new();
        for id in self.ids {
            if kept.contains(id.as_str()) || resumed.contains(id.as_str()) {
                continue;
            }
            let name = config.format.bundle_path(id);
            if self.exists(&name)? {
                taken.push(name);
            }
        }
        if journal.is_none() {
            for name in [DEVICES_JSON, DEVICES_CSV] {
                if self.exists(name)? {
                    taken.push(name.to_string());
                }
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        Err(Error::Invalid(format!(
            "`{}` already holds bundles or a record of an earlier run; nothing was written (give another --out folder, or --force to replace them):\n{}",
            escape(&config.out.display().to_string()),
            listed(&taken)
        )))
    }

    /// Anything (a file, a folder, a link) named `name` in `--out`.
    fn exists(&self, name: &str) -> Result<bool> {
        let path = self.config.out.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("look at", &path, e)),
        }
    }
}

/// `--out` must not be inside a bundle (a folder holding
/// `var/sota/import`, or one a record beside it names): the new keys would
/// land in that device's files.
pub(super) fn refuse_out_in_a_bundle(out: &Path) -> Result<()> {
    // The existing part of the folder, resolved: what is not there yet
    // holds no bundle.
    // Each ancestor once (a relative path ends at `.`): a finite walk,
    // even when the working folder itself is gone.
    let base = out
        .ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find_map(|a| std::fs::canonicalize(a).ok());
    let Some(base) = base else { return Ok(()) };
    let refuse = |bundle: &Path, why: &str| {
        Err(Error::Usage(format!(
            "--out `{}` is inside the device bundle `{}` ({why}): the keys would land in that device's files; nothing was written: give a folder outside every bundle",
            escape(&out.display().to_string()),
            escape(&bundle.display().to_string())
        )))
    };
    for folder in base.ancestors() {
        // A bundle's import folder holds its certificate or key (the
        // system's own `/var/sota/import` is not a bundle).
        let import = folder.join("var/sota/import");
        let holds = |name: &str| std::fs::symlink_metadata(import.join(name)).is_ok();
        if folder.parent().is_some() && (holds("client.pem") || holds("pkey.pem")) {
            return refuse(folder, "it holds var/sota/import with a certificate or key");
        }
        let (Some(parent), Some(name)) = (folder.parent(), folder.file_name()) else {
            continue;
        };
        let Some(name) = name.to_str() else { continue };
        if recorded_in(parent, name) {
            return refuse(folder, "a record beside it names it");
        }
    }
    Ok(())
}

/// True when `devices.json` or the journal in `folder` names a bundle
/// `name`.
pub(super) fn recorded_in(folder: &Path, name: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct PathOnly {
        path: String,
    }
    #[derive(serde::Deserialize)]
    struct Paths {
        devices: Vec<PathOnly>,
    }
    if let Ok(file) = std::fs::File::open(folder.join(DEVICES_JSON)) {
        if let Ok(record) = serde_json::from_reader::<_, Paths>(BufReader::new(file)) {
            if record.devices.iter().any(|d| d.path == name) {
                return true;
            }
        }
    }
    if let Ok(file) = std::fs::File::open(folder.join(JOURNAL)) {
        for line in BufReader::new(file).split(b'\n').map_while(io::Result::ok) {
            if serde_json::from_slice::<PathOnly>(&line).is_ok_and(|d| d.path == name) {
                return true;
            }
        }
    }
    false
}
