//! `lint`'s arguments and their conversion.

use std::path::PathBuf;

use clap::Args;

use super::shared::FormatArg;
use crate::commands::lint;

#[derive(Debug, Args)]
#[command(
    override_usage = "sota-stage lint [OPTIONS] <PATH>...\n       sota-stage lint [OPTIONS] --root <DIR> [PATH]..."
)]
pub struct LintArgs {
    /// aktualizr config files or conf.d folders, read like `aktualizr
    /// --config PATH...`: a folder's *.toml files (hidden ones too, not
    /// recursive), all applied in byte-wise file-name order, a later PATH's
    /// file hiding an earlier one of the same name. Required unless --root
    /// is given; with --root, each PATH is taken inside DIR and replaces
    /// the default folders
    #[arg(value_name = "PATH", required_unless_present = "root")]
    pub paths: Vec<PathBuf>,

    /// Read DIR/usr/lib/sota/conf.d then DIR/etc/sota/conf.d the way
    /// aktualizr does, and print paths relative to DIR
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Show the configuration aktualizr ends up with, key by key, with the
    /// file and line each value comes from and the derived server URLs
    /// (p12_password and p11.pass masked)
    #[arg(long)]
    pub explain: bool,

    /// Exit 1 on warnings too
    #[arg(long)]
    pub deny_warnings: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,
}

impl LintArgs {
    pub(super) fn into_config(self) -> lint::Config {
        lint::Config {
            paths: self.paths,
            root: self.root,
            explain: self.explain,
            deny_warnings: self.deny_warnings,
            format: self.format.into(),
        }
    }
}
