//! The key schema: every section and key aktualizr reads, with its type,
//! its default and whether its value is secret.
//!
//! aktualizr's `Config::updateFromPropertyTree` takes each key it knows
//! with `ptree::get_optional<T>`; the `T` is the [`ValueType`] here. Types
//! and defaults come from domain.md section 3 where it gives them, else
//! docs/lint.md ("The schema") says where they come from. This is the one
//! place that says which keys are secret (`KeySpec::secret`): the checks
//! and the explanation read it from here.

/// How aktualizr reads the value of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `std::string`: every `"` removed, no escapes, taken as is otherwise.
    String,
    /// `boost::filesystem::path`: a bare word, or a `"`-quoted string whose
    /// escape character is `&`; anything left over and the key is ignored.
    Path,
    /// `int`: bare decimal, else ignored.
    Integer,
    /// `uint64_t`: bare decimal, else ignored; `-5` wraps around.
    Unsigned,
    /// `bool`: bare `true`, `false`, `1` or `0`, else ignored.
    Boolean,
    /// A string compared with the known values, case-sensitively.
    Enum(&'static [&'static str]),
}

impl ValueType {
    /// The name used in docs/lint.md and in messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Path => "path",
            ValueType::Integer => "integer",
            ValueType::Unsigned => "unsigned",
            ValueType::Boolean => "boolean",
            ValueType::Enum(_) => "enum",
        }
    }
}

/// One key aktualizr reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub section: &'static str,
    pub key: &'static str,
    pub ty: ValueType,
    /// aktualizr's default, as text, where it is a constant.
    pub default: Option<&'static str>,
    /// A password or PIN: its value never appears in any output.
    pub secret: bool,
}

impl KeySpec {
    const fn new(section: &'static str, key: &'static str, ty: ValueType) -> Self {
        KeySpec {
            section,
            key,
            ty,
            default: None,
            secret: false,
        }
    }

    const fn default(self, value: &'static str) -> Self {
        KeySpec {
            default: Some(value),
            ..self
        }
    }

    const fn secret(self) -> Self {
        KeySpec {
            secret: true,
            ..self
        }
    }
}

const CRYPTO_SOURCE: ValueType = ValueType::Enum(&["file", "pkcs11"]);

const STRING: ValueType = ValueType::String;
const PATH: ValueType = ValueType::Path;
const INTEGER: ValueType = ValueType::Integer;
const UNSIGNED: ValueType = ValueType::Unsigned;
const BOOLEAN: ValueType = ValueType::Boolean;

/// The sections aktualizr reads, in the order `Config::updateFromPropertyTree`
/// reads them.
pub const SECTIONS: &[&str] = &[
    "logger",
    "p11",
    "tls",
    "provision",
    "uptane",
    "pacman",
    "storage",
    "import",
    "telemetry",
    "bootloader",
];

/// Every key aktualizr reads. Types and defaults: domain.md section 3 where
/// it gives them, else docs/lint.md says where they come from.
pub const SCHEMA: &[KeySpec] = &[
    KeySpec::new("logger", "loglevel", INTEGER).default("2"),
    // [p11]
    KeySpec::new("p11", "module", PATH),
    KeySpec::new("p11", "pass", STRING).secret(),
    KeySpec::new("p11", "uptane_key_id", STRING),
    KeySpec::new("p11", "tls_cacert_id", STRING),
    KeySpec::new("p11", "tls_pkey_id", STRING),
    KeySpec::new("p11", "tls_clientcert_id", STRING),
    // [tls]
    KeySpec::new("tls", "server", STRING),
    KeySpec::new("tls", "server_url_path", PATH),
    KeySpec::new("tls", "ca_source", CRYPTO_SOURCE).default("file"),
    KeySpec::new("tls", "pkey_source", CRYPTO_SOURCE).default("file"),
    KeySpec::new("tls", "cert_source", CRYPTO_SOURCE).default("file"),
    // [provision]
    KeySpec::new("provision", "server", STRING),
    KeySpec::new("provision", "p12_password", STRING)
        .default("")
        .secret(),
    KeySpec::new("provision", "expiry_days", STRING).default("36000"),
    KeySpec::new("provision", "provision_path", PATH).default(""),
    KeySpec::new("provision", "device_id", STRING),
    KeySpec::new("provision", "primary_ecu_serial", STRING),
    KeySpec::new("provision", "primary_ecu_hardware_id", STRING),
    KeySpec::new("provision", "ecu_registration_endpoint", STRING),
    KeySpec::new(
        "provision",
        "mode",
        ValueType::Enum(&["SharedCred", "DeviceCred", "SharedCredReuse"]),
    ),
    // [uptane]
    KeySpec::new("uptane", "polling_sec", UNSIGNED).default("10"),
    KeySpec::new("uptane", "director_server", STRING),
    KeySpec::new("uptane", "repo_server", STRING),
    KeySpec::new("uptane", "key_source", CRYPTO_SOURCE).default("file"),
    KeySpec::new(
        "uptane",
        "key_type",
        ValueType::Enum(&["RSA2048", "RSA3072", "RSA4096", "ED25519"]),
    )
    .default("RSA2048"),
    KeySpec::new("uptane", "force_install_completion", BOOLEAN).default("false"),
    KeySpec::new("uptane", "secondary_config_file", PATH),
    KeySpec::new("uptane", "secondary_preinstall_wait_sec", UNSIGNED).default("600"),
    // [pacman]: unknown keys are kept too (see OPEN_SECTIONS).
    KeySpec::new(
        "pacman",
        "type",
        ValueType::Enum(&["ostree", "none", "debian", "android"]),
    )
    .default("ostree"),
    KeySpec::new("pacman", "os", STRING),
    KeySpec::new("pacman", "sysroot", PATH),
    KeySpec::new("pacman", "ostree_server", STRING),
    KeySpec::new("pacman", "images_path", PATH),
    KeySpec::new("pacman", "packages_file", PATH),
    KeySpec::new("pacman", "fake_need_reboot", BOOLEAN).default("false"),
    // [storage]
    KeySpec::new(
        "storage",
        "type",
        ValueType::Enum(&["sqlite", "filesystem"]),
    )
    .default("sqlite"),
    // `/` + paths::SOTA_DIR (checked by a test: a const cannot join them).
    KeySpec::new("storage", "path", PATH).default("/var/sota"),
    KeySpec::new("storage", "sqldb_path", STRING).default("sql.db"),
    KeySpec::new("storage", "uptane_metadata_path", STRING),
    KeySpec::new("storage", "uptane_private_key_path", STRING),
    KeySpec::new("storage", "uptane_public_key_path", STRING),
    KeySpec::new("storage", "tls_cacert_path", STRING),
    KeySpec::new("storage", "tls_pkey_path", STRING),
    KeySpec::new("storage", "tls_clientcert_path", STRING),
    // [import]
    // `/` + paths::IMPORT_DIR (checked by a test).
    KeySpec::new("import", "base_path", PATH).default("/var/sota/import"),
    KeySpec::new("import", "uptane_private_key_path", STRING),
    KeySpec::new("import", "uptane_public_key_path", STRING),
    KeySpec::new("import", "tls_cacert_path", STRING),
    KeySpec::new("import", "tls_pkey_path", STRING),
    KeySpec::new("import", "tls_clientcert_path", STRING),
    // [telemetry]
    KeySpec::new("telemetry", "report_network", BOOLEAN).default("true"),
    KeySpec::new("telemetry", "report_config", BOOLEAN).default("true"),
    // [bootloader]
    KeySpec::new(
        "bootloader",
        "rollback_mode",
        ValueType::Enum(&["none", "uboot_generic", "uboot_masked", "fiovb"]),
    )
    .default("none"),
    KeySpec::new("bootloader", "reboot_sentinel_dir", PATH),
    KeySpec::new("bootloader", "reboot_sentinel_name", PATH),
    KeySpec::new("bootloader", "reboot_command", STRING),
];

/// Sections whose unknown keys aktualizr keeps (as `pacman.extra`).
pub const OPEN_SECTIONS: &[&str] = &["pacman"];

/// The schema entry of `[section] key`, exact match (aktualizr's names are
/// case-sensitive).
pub fn key_spec(section: &str, key: &str) -> Option<&'static KeySpec> {
    SCHEMA
        .iter()
        .find(|spec| spec.section == section && spec.key == key)
}

/// True when aktualizr reads a section of that exact name.
pub fn is_section(name: &str) -> bool {
    SECTIONS.contains(&name)
}

/// True when aktualizr keeps unknown keys of that section.
pub fn accepts_unknown_keys(section: &str) -> bool {
    OPEN_SECTIONS.contains(&section)
}

/// The keys aktualizr reads in one section.
pub fn keys_of(section: &str) -> impl Iterator<Item = &'static KeySpec> + '_ {
    SCHEMA.iter().filter(move |spec| spec.section == section)
}

/// Every key of this exact name, whatever its section, in schema order.
pub fn keys_named(key: &str) -> impl Iterator<Item = &'static KeySpec> + '_ {
    SCHEMA.iter().filter(move |spec| spec.key == key)
}

/// The keys whose values never appear in any output.
pub fn secret_keys() -> impl Iterator<Item = &'static KeySpec> {
    SCHEMA.iter().filter(|spec| spec.secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aktualizr::paths;

    #[test]
    fn schema_has_no_duplicates_and_known_sections() {
        for (i, a) in SCHEMA.iter().enumerate() {
            assert!(is_section(a.section), "{}", a.section);
            for b in &SCHEMA[i + 1..] {
                assert!(
                    !(a.section == b.section && a.key == b.key),
                    "{}.{}",
                    a.section,
                    a.key
                );
            }
        }
    }

    #[test]
    fn domain_path_keys_are_paths() {
        for (section, key) in [
            ("provision", "provision_path"),
            ("tls", "server_url_path"),
            ("import", "base_path"),
            ("storage", "path"),
            ("p11", "module"),
            ("uptane", "secondary_config_file"),
            ("pacman", "sysroot"),
            ("pacman", "images_path"),
            ("pacman", "packages_file"),
            ("bootloader", "reboot_sentinel_dir"),
            ("bootloader", "reboot_sentinel_name"),
        ] {
            assert_eq!(key_spec(section, key).map(|s| s.ty), Some(ValueType::Path));
        }
        let paths = SCHEMA.iter().filter(|s| s.ty == ValueType::Path).count();
        assert_eq!(paths, 11);
    }

    #[test]
    fn path_defaults_are_the_device_paths() {
        let default = |section, key| key_spec(section, key).and_then(|spec| spec.default);
        let device = |dir: &str| format!("/{dir}");
        assert_eq!(
            default("storage", "path"),
            Some(device(paths::SOTA_DIR).as_str())
        );
        assert_eq!(
            default("import", "base_path"),
            Some(device(paths::IMPORT_DIR).as_str())
        );
    }

    #[test]
    fn the_secrets_are_the_password_and_the_pin() {
        let secrets: Vec<_> = secret_keys().map(|s| (s.section, s.key)).collect();
        assert_eq!(secrets, [("p11", "pass"), ("provision", "p12_password")]);
    }
}
