//! Problems found in inputs, and the output formats every reporting command
//! shares. A problem is data: the library never prints.

use serde::Serialize;

/// A count with its noun in the right number: `1 file`, `2 files`,
/// `0 files`. `many` is given, not made: `1 entry`, `2 entries`.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// How bad a problem is. `Error` makes the command exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing wrong with an input. The message never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub message: String,
}

impl Problem {
    pub fn error(message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Anything reported with a severity: an archive's [`Problem`], a lint
/// diagnostic.
pub trait Graded {
    fn severity(&self) -> Severity;
}

impl Graded for Problem {
    fn severity(&self) -> Severity {
        self.severity
    }
}

/// True when any of the items is an error.
pub fn has_errors<'a, T: Graded + 'a>(items: impl IntoIterator<Item = &'a T>) -> bool {
    items
        .into_iter()
        .any(|item| item.severity() == Severity::Error)
}

/// The output format of a reporting command (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}
