//! [`sota`]: the real `sota-stage` binary as a test scenario, and [`Run`],
//! its outcome with chaining assertions that print the whole output when
//! they fail.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Variables the tool reads from the environment. A developer's shell or a
/// bitbake environment may set them, so every run starts without them; a
/// test that wants one sets it with [`Sota::env`].
pub const HERMETIC_ENV: [&str; 5] = [
    "SOTA_PACKED_CREDENTIALS",
    "SOTA_P12_PASSWORD",
    "SOTA_CLIENT_PROV",
    "SOTA_HARDWARE_ID",
    "SOURCE_DATE_EPOCH",
];

/// Long enough for a debug build on a busy CI host; a hung run fails
/// instead of hanging the suite.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The exit status Rust gives a process that panicked.
const PANIC_EXIT: i32 = 101;

/// `sota-stage` with `args`, the environment made hermetic.
pub fn sota<I, S>(args: I) -> Sota
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(env!("CARGO_BIN_EXE_sota-stage"));
    for name in HERMETIC_ENV {
        command.env_remove(name);
    }
    let mut sota = Sota {
        command,
        args: Vec::new(),
        stdin: None,
        timeout: DEFAULT_TIMEOUT,
    };
    for arg in args {
        sota = sota.arg(arg);
    }
    sota
}

/// A `sota-stage` invocation being set up; [`Sota::run`] runs it.
#[derive(Debug)]
pub struct Sota {
    command: Command,
    /// Kept for the failure report.
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Sota {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Sota {
        self.command.arg(arg.as_ref());
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Sota
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            self = self.arg(arg);
        }
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Sota {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Sota {
        self.command.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Sota {
        self.command.current_dir(dir);
        self
    }

    /// Feeds `bytes` on standard input (otherwise stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Sota {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Sota {
        self.timeout = timeout;
        self
    }

    /// The command as it will run, to inspect its environment changes.
    pub fn command(&self) -> &Command {
        &self.command
    }

    /// Runs to completion. Fails the test when the process cannot start,
    /// outlives the timeout, dies from a signal or panics.
    #[track_caller]
    pub fn run(mut self) -> Run {
        let shown = self.shown();
        let mut child = self
            .command
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
                    break Err(format!("timed out after {:?}", self.timeout));
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
        let mut shown = String::from("sota-stage");
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
    /// A run made up by hand, to test assertions on.
    pub fn fake(code: i32, stdout: &str, stderr: &str) -> Run {
        Run {
            code,
            stdout: stdout.to_owned(),
            stderr: stderr.to_owned(),
            command: "sota-stage (fake)".to_owned(),
        }
    }

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

    /// Fails on exit code 101 or a panic message: the tool must refuse bad
    /// input with an error, never by panicking. [`Sota::run`] calls it.
    #[track_caller]
    pub fn assert_no_panic(&self) -> &Run {
        if self.code == PANIC_EXIT || self.stderr.contains("panicked at") {
            self.fail("the process panicked");
        }
        self
    }

    #[track_caller]
    fn fail(&self, why: &str) -> ! {
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
