//! [`sota`]: the real `sota-stage` binary as a test scenario, and [`Run`],
//! its outcome with chaining assertions that print the whole output when
//! they fail. [`Cmd`] runs any program the same way: `tests/bitbake.rs`
//! runs `bitbake`, which runs the tool.
//!
//! Every run is hermetic (no `SOTA_*` variable, no `SOURCE_DATE_EPOCH`
//! unless the test sets one), has a timeout that kills the process, and
//! fails the test when the process panicked.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough for a debug build on a busy CI host; a hung run fails
/// instead of hanging the suite.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The exit status Rust gives a process that panicked.
const PANIC_EXIT: i32 = 101;

/// `sota-stage` with `args`, the environment made hermetic.
pub fn sota<I, S>(args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Cmd::new(env!("CARGO_BIN_EXE_sota-stage")).args(args)
}

/// The variables a run starts without: every `SOTA_*` variable of this
/// process (the tool reads several, and a developer's shell or a bitbake
/// environment may set any of them, today's or a future one's) and
/// `SOURCE_DATE_EPOCH`. A test that wants one sets it with [`Cmd::env`].
fn inherited_settings() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| name.to_string_lossy().starts_with("SOTA_"))
        .chain([OsString::from("SOURCE_DATE_EPOCH")])
        .collect()
}

/// A run being set up; [`Cmd::run`] runs it.
#[derive(Debug)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    /// Set (`Some`) or removed (`None`), in order, after the hermetic
    /// removals.
    env: Vec<(OsString, Option<OsString>)>,
    current_dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    umask: Option<u32>,
}

impl Cmd {
    /// `program`, the environment made hermetic.
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            umask: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.current_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Feeds `bytes` on standard input (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// Runs under this umask (through `sh`, which sets it and `exec`s).
    pub fn umask(mut self, umask: u32) -> Cmd {
        self.umask = Some(umask);
        self
    }

    fn command(&self) -> Command {
        let mut command = match self.umask {
            None => Command::new(&self.program),
            Some(umask) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("umask {umask:03o}; exec \"$0\" \"$@\""))
                    .arg(&self.program);
                sh
            }
        };
        command.args(&self.args);
        for name in inherited_settings() {
            command.env_remove(name);
        }
        for (key, value) in &self.env {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.current_dir {
            command.current_dir(dir);
        }
        command
    }

    /// Runs to completion. Fails the test when the process cannot start,
    /// outlives the timeout (it is killed), dies from a signal or panics.
    #[track_caller]
    pub fn run(mut self) -> Run {
        let shown = self.shown();
        let mut child = self
            .command()
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{shown}`: {e}"));
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        if let (Some(mut pipe), Some(input)) = (child.stdin.take(), self.stdin.take()) {
            // A tool that exits without reading stdin closes the pipe: not
            // the test's concern, the exit code tells.
            thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("timed out after {:?} (killed)", self.timeout));
                }
                Ok(None) => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot wait for `{shown}`: {e}"),
            }
        };
        let joined = |h: Option<thread::JoinHandle<Vec<u8>>>| {
            let bytes = h.and_then(|h| h.join().ok()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let mut run = Run {
            code: -1,
            stdout: joined(stdout),
            stderr: joined(stderr),
            command: shown,
        };
        match status {
            Ok(status) => match status.code() {
                Some(code) => run.code = code,
                None => run.fail(&format!("the process died: {status}")),
            },
            Err(why) => run.fail(&why),
        }
        run.assert_no_panic();
        run
    }

    fn shown(&self) -> String {
        let program = Path::new(&self.program);
        let mut shown = program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned();
        if let Some(umask) = self.umask {
            shown = format!("(umask {umask:03o}) {shown}");
        }
        for arg in &self.args {
            shown.push(' ');
            let arg = arg.to_string_lossy();
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
                shown.push_str(&format!("{arg:?}"));
            } else {
                shown.push_str(&arg);
            }
        }
        shown
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// What a run printed and how it exited. The assertions chain and, on
/// failure, show the command, the exit code and both streams in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for failure reports.
    pub command: String,
}

impl Run {
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        if self.code != expected {
            self.fail(&format!("expected exit code {expected}, got {}", self.code));
        }
        self
    }

    #[track_caller]
    pub fn success(&self) -> &Run {
        self.code(0)
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        if !self.stdout.contains(needle) {
            self.fail(&format!("stdout lacks {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        if !self.stderr.contains(needle) {
            self.fail(&format!("stderr lacks {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Run {
        if self.stdout.contains(needle) {
            self.fail(&format!("stdout has {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Run {
        if self.stderr.contains(needle) {
            self.fail(&format!("stderr has {needle:?}"));
        }
        self
    }

    /// Neither stream has `needle`: for secrets that must never be printed.
    #[track_caller]
    pub fn output_lacks(&self, needle: &str) -> &Run {
        self.stdout_lacks(needle).stderr_lacks(needle)
    }

    /// Stdout is exactly `expected`, for messages asserted byte for byte.
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Run {
        if self.stdout != expected {
            self.fail(&format!("stdout is not exactly {expected:?}"));
        }
        self
    }

    #[track_caller]
    pub fn stderr_is(&self, expected: &str) -> &Run {
        if self.stderr != expected {
            self.fail(&format!("stderr is not exactly {expected:?}"));
        }
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_str(&self.stdout) {
            Ok(value) => value,
            Err(e) => self.fail(&format!("stdout is not JSON: {e}")),
        }
    }

    /// Fails on exit code 101 or a panic message in either stream (bitbake
    /// shows a failed task's stderr on its stdout): the tool must refuse bad
    /// input with an error, never by panicking. [`Cmd::run`] calls it.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Run {
        let said = |out: &str| out.contains("panicked at");
        if self.code == PANIC_EXIT || said(&self.stdout) || said(&self.stderr) {
            self.fail("the process panicked");
        }
        self
    }

    #[track_caller]
    pub fn fail(&self, why: &str) -> ! {
        panic!("{why}\n{self}")
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        writeln!(f, "exit code: {}", self.code)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        writeln!(f, "--- stderr ---\n{}", self.stderr)?;
        write!(f, "--- end ---")
    }
}
