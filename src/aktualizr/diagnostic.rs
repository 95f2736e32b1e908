//! [`Diagnostic`]: one problem in one aktualizr config file, with its
//! position, what aktualizr really does and the fix, and the collector the
//! checks fill for one file.
//!
//! A diagnostic is data: the checks build it, `lint` and `render` print or
//! refuse on it. Its message and fix never hold the value of a secret key
//! ([`crate::aktualizr::schema::secret_keys`]).

use serde::Serialize;

use crate::report::{Graded, Severity};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub severity: Severity,
    /// What aktualizr really does.
    pub message: String,
    /// What to write instead, when there is one answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Graded for Diagnostic {
    fn severity(&self) -> Severity {
        self.severity
    }
}

impl Diagnostic {
    /// A warning: aktualizr starts, but does not read the file as written.
    pub fn warning(
        file: impl Into<String>,
        (line, column): (usize, usize),
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            column,
            severity: Severity::Warning,
            message: message.into(),
            fix,
        }
    }
}

/// The diagnostics of one file, as the checks find them.
#[derive(Debug)]
pub struct FileDiagnostics<'a> {
    file: &'a str,
    list: Vec<Diagnostic>,
}

impl<'a> FileDiagnostics<'a> {
    pub fn new(file: &'a str) -> Self {
        FileDiagnostics {
            file,
            list: Vec::new(),
        }
    }

    /// aktualizr stops on this file.
    pub fn error(&mut self, line: usize, column: usize, message: String, fix: Option<String>) {
        self.list.push(Diagnostic {
            severity: Severity::Error,
            ..Diagnostic::warning(self.file, (line, column), message, fix)
        });
    }

    /// aktualizr silently ignores or mangles something.
    pub fn warn(&mut self, line: usize, column: usize, message: String, fix: Option<String>) {
        self.list
            .push(Diagnostic::warning(self.file, (line, column), message, fix));
    }

    /// The diagnostics sorted by line and column.
    pub fn into_sorted(self) -> Vec<Diagnostic> {
        let mut list = self.list;
        list.sort_by_key(|d| (d.line, d.column));
        list
    }
}
