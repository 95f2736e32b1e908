//! `sota-stage stage`: split, render and write, all or nothing, with an
//! optional manifest written in the same transaction (design.md sections
//! 4-6).

use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::commands::shared::{
    file_label, flag_file, options_text, read_checked, read_templates, refuse_outputs_over_inputs,
    template_inputs, warnings_text, Named, Outcome,
};
use crate::error::{Error, Result, EXIT_OK};
use crate::files::{self, Kind};
use crate::intake::catalogue::Side;
use crate::plan::files::{Plan, MODE_FILE};
use crate::plan::manifest::Manifest;
use crate::plan::options::StageOptions;
use crate::plan::staging;
use crate::report::counted;
use crate::write::apply::{self, Outside, Roots};

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
    /// fsync the files and the folders they land in.
    pub sync: bool,
    /// How long to wait for another run on the same roots.
    pub lock_timeout: Duration,
    /// The other files the command line read (password, PIN and device
    /// certificate files), named by their flags: no output may be one.
    pub inputs: Vec<Named>,
    /// What the command line warns about (aktualizr's example PIN).
    pub warnings: Vec<String>,
}

/// `waiting` is told, once, when the run waits for another one that holds
/// its roots.
pub fn run(config: &Config, waiting: fn(&str)) -> Result<Outcome> {
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
    check_overlaps(config, &plan)?;
    check_outputs(config, &plan)?;
    if let Some(path) = &config.manifest {
        let roots = [
            Some(config.device_root.as_path()),
            config.host_root.as_deref(),
        ];
        check_manifest_path(path, &roots)?;
        check_old_manifest(path)?;
    }
    let roots = Roots {
        device: &config.device_root,
        host: config.host_root.as_deref(),
    };
    let json = Manifest::from_plan(&plan).to_json();
    let manifest = config.manifest.as_deref().map(|path| Outside {
        path,
        bytes: json.as_bytes(),
        mode: MODE_FILE,
    });
    let write = apply::Options {
        epoch: opts.epoch,
        force: config.force,
        sync: config.sync,
        lock_timeout: config.lock_timeout,
        waiting: Some(waiting),
    };
    let applied = apply::apply(&plan, &roots, manifest.as_ref(), &write)?;
    let mut stderr = options_text(&config.warnings, &opts.fragment);
    stderr.push_str(&warnings_text(&label, &plan.warnings));
    if applied.recovered > 0 {
        stderr.push_str(&format!(
            "removed {} of an interrupted run\n",
            counted(applied.recovered as u64, "leftover", "leftovers")
        ));
    }
    stderr.push_str(&format!(
        "staged {} for {}: {} written, {} already in place",
        label,
        plan.method,
        counted(applied.written as u64, "file", "files"),
        applied.unchanged
    ));
    if applied.removed > 0 {
        stderr.push_str(&format!(", {} no longer staged removed", applied.removed));
    }
    stderr.push('\n');
    Ok(Outcome {
        stdout: String::new(),
        stderr,
        exit: EXIT_OK,
    })
}

/// No file the run writes or removes (the manifest, a staged file, a file
/// `--force` removes) is one it reads: the archive, a template, a password,
/// PIN or device certificate file.
fn check_outputs(config: &Config, plan: &Plan) -> Result<()> {
    let mut inputs = vec![(
        flag_file("--credentials", &config.credentials),
        config.credentials.clone(),
    )];
    inputs.extend(template_inputs(config.template_dir.as_deref()));
    inputs.extend(config.inputs.iter().cloned());
    let root_flag = |side: Side| match side {
        Side::Device => "--device-root",
        Side::Host => "--host-root",
    };
    let root = |side: Side| match side {
        Side::Device => Some(config.device_root.as_path()),
        Side::Host => config.host_root.as_deref(),
    };
    let mut outputs: Vec<Named> = Vec::new();
    if let Some(path) = &config.manifest {
        outputs.push((flag_file("--manifest", path), path.clone()));
    }
    let staged = plan
        .files
        .iter()
        .map(|f| (f.side, f.path.as_str(), "the staged file"));
    let retired = plan
        .retired
        .iter()
        .map(|(side, rel)| (*side, rel.as_str(), "the file --force removes,"));
    for (side, rel, what) in staged.chain(retired) {
        if let Some(root) = root(side) {
            outputs.push((
                format!("{what} {}:{rel} (under {})", side.as_str(), root_flag(side)),
                root.join(rel),
            ));
        }
    }
    refuse_outputs_over_inputs(&outputs, &inputs)
}

/// An existing file at `--manifest` is replaced only when it reads as a
/// manifest of this tool: never a file of something else given by mistake.
fn check_old_manifest(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => {}
        // Missing, or not a file (refused by the writer).
        _ => return Ok(()),
    }
    let readable = files::read(path, Kind::Manifest)
        .ok()
        .is_some_and(|bytes| Manifest::parse(&file_label(path), &bytes).is_ok());
    if readable {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{} exists and is not a manifest of sota-stage; it is replaced only when it is one, and nothing was written: remove it or give another path",
        flag_file("--manifest", path)
    )))
}

/// The roots and the manifest must not overlap (after `..` and the
/// symlinks of existing folders are resolved): a host root in or around
/// the device root would put host secrets (`targets.sec`, the OAuth2 secret
/// in `treehub.json`) into the image, and a manifest inside a root would
/// replace a staged file or ship the build host's listing. Refused before
/// anything is written.
fn check_overlaps(config: &Config, plan: &Plan) -> Result<()> {
    let device = resolve(&config.device_root)?;
    let host = config.host_root.as_deref().map(resolve).transpose()?;
    let show = |p: &Path| format!("`{}`", p.display());
    if let Some(host) = &host {
        if host.starts_with(&device) || device.starts_with(host) {
            return Err(Error::Usage(format!(
                "--host-root {} and --device-root {} overlap: the host's secrets would land in the image; give two separate folders",
                show(config.host_root.as_deref().unwrap_or(Path::new(""))),
                show(&config.device_root)
            )));
        }
    }
    let Some(given) = &config.manifest else {
        return Ok(());
    };
    let manifest = resolve(given)?;
    let roots = [
        (Side::Device, "--device-root", Some(&device)),
        (Side::Host, "--host-root", host.as_ref()),
    ];
    for (side, flag, root) in roots {
        let Some(root) = root else { continue };
        if let Ok(rel) = manifest.strip_prefix(root) {
            let rel = rel.to_string_lossy();
            if plan.files.iter().any(|f| f.side == side && f.path == rel) {
                return Err(Error::Usage(format!(
                    "--manifest {} is the staged file {}:{rel}; write the manifest outside the roots",
                    show(given),
                    side.as_str()
                )));
            }
            return Err(Error::Usage(format!(
                "--manifest {} is inside {flag}: {}; write the manifest outside the roots",
                show(given),
                if side == Side::Device {
                    "it would ship the build host's listing in the image"
                } else {
                    "it would be one of the host files"
                }
            )));
        }
        if root.starts_with(&manifest) {
            return Err(Error::Usage(format!(
                "--manifest {} is {flag} or a folder above it; write the manifest to a file outside the roots",
                show(given)
            )));
        }
    }
    Ok(())
}

/// `path` made absolute, with `.` and `..` applied and every symlink of
/// the part that exists resolved; the part that does not exist yet is
/// taken as written.
fn resolve(path: &Path) -> Result<PathBuf> {
    let mut out = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir()
            .and_then(std::fs::canonicalize)
            .map_err(|e| Error::io("find the current folder for", path, e))?
    };
    let mut exists = true;
    for part in path.components() {
        match part {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
                exists = out.exists();
            }
            Component::Normal(name) => {
                out.push(name);
                if !exists {
                    continue;
                }
                match std::fs::symlink_metadata(&out) {
                    Ok(m) if m.file_type().is_symlink() => {
                        out = std::fs::canonicalize(&out)
                            .map_err(|e| Error::io("resolve the symlink", &out, e))?;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => exists = false,
                    Err(e) => return Err(Error::io("look at", &out, e)),
                }
            }
        }
    }
    Ok(out)
}

/// A manifest whose folder is missing (and is no root or parent of one,
/// which staging creates) is refused with everything else, before the
/// first write (design.md section 5); so is one that is a folder.
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
