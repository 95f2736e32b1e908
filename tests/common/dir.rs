//! [`TestDir`]: one private folder per test under `CARGO_TARGET_TMPDIR`
//! (the system's temporary folder for the unit tests, which include this
//! file through `src/test_support.rs` and have no `CARGO_TARGET_TMPDIR`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Set (to anything) to keep every test folder for a post-mortem.
const KEEP_ENV: &str = "KEEP_TEST_DIRS";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh folder named after the running test, the process id and a
/// counter, so parallel tests and repeated runs never share one. Removed on
/// drop unless `KEEP_TEST_DIRS` is set.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// A folder named after the current test (libtest names each test's
    /// thread after the test).
    #[track_caller]
    pub fn new() -> TestDir {
        let thread = std::thread::current();
        TestDir::named(thread.name().unwrap_or("test"))
    }

    /// A folder whose name starts with `label`.
    #[track_caller]
    pub fn named(label: &str) -> TestDir {
        let base = option_env!("CARGO_TARGET_TMPDIR")
            .map_or_else(std::env::temp_dir, PathBuf::from)
            .join("sota-stage-tests");
        fs::create_dir_all(&base)
            .unwrap_or_else(|e| panic!("cannot create `{}`: {e}", base.display()));
        let clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(80)
            .collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("{clean}-{}-{n}", std::process::id()));
        // Left over from an earlier run whose pid was reused: start clean.
        if path.exists() {
            let _ = fs::remove_dir_all(&path);
        }
        fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create `{}`: {e}", path.display()));
        TestDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Writes `bytes` to `rel`, creating parent folders; returns the path.
    #[track_caller]
    pub fn write(&self, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("cannot create `{}`: {e}", parent.display()));
        }
        fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("cannot write `{}`: {e}", path.display()));
        path
    }

    /// [`TestDir::write`], fluently: `TestDir::new().with_file("a", "..")`.
    #[track_caller]
    pub fn with_file(self, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) -> TestDir {
        self.write(rel, bytes);
        self
    }

    /// [`TestDir::mkdir`], fluently.
    #[track_caller]
    pub fn with_dir(self, rel: impl AsRef<Path>) -> TestDir {
        self.mkdir(rel);
        self
    }

    /// Creates the folder `rel` (and its parents); returns the path.
    #[track_caller]
    pub fn mkdir(&self, rel: impl AsRef<Path>) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create `{}`: {e}", path.display()));
        path
    }

    /// The bytes of `rel`.
    #[track_caller]
    pub fn read(&self, rel: impl AsRef<Path>) -> Vec<u8> {
        let path = self.join(rel);
        fs::read(&path).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()))
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("{KEEP_ENV}: kept `{}`", self.path.display());
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "set {KEEP_ENV}=1 to keep the test folder `{}`",
                self.path.display()
            );
        }
        // Best effort: a folder left behind is not worth a second panic.
        let _ = fs::remove_dir_all(&self.path);
    }
}
