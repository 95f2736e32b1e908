//! `audit`'s arguments and their conversion.

use std::path::PathBuf;

use clap::Args;

use super::shared::FormatArg;
use crate::commands::audit;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The credentials archive whose host secrets must not be in the image
    #[arg(long, value_name = "CREDENTIALS", env = "SOTA_PACKED_CREDENTIALS")]
    pub credentials: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// A file whose bytes, and private key when it is one, must not be in
    /// the image either (a fleet CA key, a signing key); repeatable
    #[arg(long, value_name = "FILE")]
    pub secret_file: Vec<PathBuf>,

    /// Report every private key in the image (PEM, DER, OpenSSH, PKCS#12)
    /// but where --manifest and --allow allow one
    #[arg(long)]
    pub any_private_key: bool,

    /// The manifest `stage --manifest` wrote: its device files may hold
    /// private keys (with --any-private-key)
    #[arg(long, value_name = "FILE", requires = "any_private_key")]
    pub manifest: Option<PathBuf>,

    /// A root-relative path where a private key is allowed (with
    /// --any-private-key); repeatable
    #[arg(long, value_name = "PATH", requires = "any_private_key")]
    pub allow: Vec<String>,

    /// Audit only what this ref (or commit id) of the OSTree repository
    /// PATH reaches: the commit an image build just made, not the earlier
    /// builds the repository keeps
    #[arg(long, value_name = "REF")]
    pub ostree_ref: Option<String>,

    /// Debug: write the fixed strings searched for, which are secrets, to
    /// a new file (mode 0600), one per line, for `rg -F -f`
    #[arg(long, value_name = "FILE", hide = true)]
    pub print_needles: Option<PathBuf>,

    /// Root file systems to audit: folders (IMAGE_ROOTFS), archives of them
    /// (tar, cpio, zip, compressed or not), disk or file system images,
    /// repositories (git, OSTree)
    #[arg(value_name = "PATH", required = true)]
    pub roots: Vec<PathBuf>,
}

impl AuditArgs {
    pub(super) fn into_config(self) -> audit::Config {
        audit::Config {
            credentials: self.credentials,
            roots: self.roots,
            format: self.format.into(),
            secret_files: self.secret_file,
            any_private_key: self.any_private_key,
            manifest: self.manifest,
            allow: self.allow,
            print_needles: self.print_needles,
            ostree_ref: self.ostree_ref,
        }
    }
}
