//! Where aktualizr looks on a device (domain.md sections 3 and 4), relative
//! to the device root: the one place these paths are written down.

/// aktualizr's storage folder; `0700`, it holds the device's keys.
pub const SOTA_DIR: &str = "var/sota";
/// `[import] base_path`: files aktualizr imports on first start.
pub const IMPORT_DIR: &str = "var/sota/import";
/// The folder of the configuration the image ships.
pub const SYSTEM_CONFIG_DIR: &str = "usr/lib/sota/conf.d";
/// The folder of local configuration; a file here hides a same-named file
/// of [`SYSTEM_CONFIG_DIR`].
pub const LOCAL_CONFIG_DIR: &str = "etc/sota/conf.d";
/// aktualizr's default configuration folders, in the order it reads them.
pub const DEFAULT_CONFIG_DIRS: [&str; 2] = [SYSTEM_CONFIG_DIR, LOCAL_CONFIG_DIR];
/// `[provision] provision_path` of shared-credential provisioning.
pub const PROVISIONING_ZIP: &str = "var/sota/sota_provisioning_credentials.zip";
/// The device folders that belong to aktualizr's setup alone: nothing but
/// what sota-stage stages may be in them.
pub const OWNED_DIRS: [&str; 2] = [SOTA_DIR, "usr/lib/sota"];
