//! `sota-stage stage`: split, render and write, all or nothing, with an
//! optional manifest (design.md sections 4-6).

use std::io;
use std::path::{Path, PathBuf};

use crate::commands::shared::{file_label, read_checked, read_templates, warnings_text, Outcome};
use crate::error::{Error, Result, EXIT_OK};
use crate::plan::files::MODE_FILE;
use crate::plan::manifest::Manifest;
use crate::plan::options::StageOptions;
use crate::plan::staging;
use crate::write::apply::{self, Roots};

/// Everything one `stage` run needs.
#[derive(Debug)]
pub struct Config {
    pub options: StageOptions,
    pub template_dir: Option<PathBuf>,
    pub credentials: PathBuf,
    pub device_root: PathBuf,
    pub host_root: Option<PathBuf>,
    pub manifest: Option<PathBuf>,
    pub allow_http: bool,
    pub force: bool,
}

pub fn run(config: &Config) -> Result<Outcome> {
    let opts = &config.options;
    let templates = read_templates(config.template_dir.as_deref())?;
    let label = file_label(&config.credentials);
    let (archive, findings) = read_checked(
        &config.credentials,
        &opts.fragment.p12_password,
        config.allow_http,
        opts.now,
    )?;
    let plan = staging::plan(&label, &archive, &findings, opts, &templates)?;
    let manifest = Manifest::from_plan(&plan);
    if let Some(path) = &config.manifest {
        let roots = [
            Some(config.device_root.as_path()),
            config.host_root.as_deref(),
        ];
        check_manifest_path(path, &roots)?;
    }
    let roots = Roots {
        device: &config.device_root,
        host: config.host_root.as_deref(),
    };
    let applied = apply::apply(&plan, &roots, opts.epoch, config.force)?;
    if let Some(path) = &config.manifest {
        apply::write_file(path, manifest.to_json().as_bytes(), MODE_FILE, opts.epoch)?;
    }
    let mut stderr = warnings_text(&label, &plan.warnings);
    stderr.push_str(&format!(
        "staged {} for {}: {} files written, {} already in place\n",
        label, plan.method, applied.written, applied.unchanged
    ));
    Ok(Outcome {
        stdout: String::new(),
        stderr,
        exit: EXIT_OK,
    })
}

/// The manifest is written after the roots, so a manifest that cannot be
/// written would fail the run with the roots already changed: its folder is
/// checked with everything else, before the first write (design.md
/// section 5). A folder that does not exist yet is fine when it is a root
/// or a parent of one: staging creates it.
fn check_manifest_path(path: &Path, roots: &[Option<&Path>]) -> Result<()> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::io(
                "write the manifest in",
                folder,
                io::Error::other("not a folder"),
            ))
        }
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                && roots.iter().flatten().any(|r| r.starts_with(folder)) => {}
        Err(e) => return Err(Error::io("write the manifest in", folder, e)),
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(Error::io(
            "write the manifest to",
            path,
            io::Error::other("it is a folder"),
        ));
    }
    Ok(())
}
