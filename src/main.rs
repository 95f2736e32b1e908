//! The `sota-stage` binary: parse the command line, run the command, print
//! what it returns, and map errors to the documented exit status.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sota_stage::cli::Cli;
use sota_stage::error::{EXIT_IO, EXIT_OK, EXIT_USAGE};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            // Nothing better to do if the terminal is gone.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli
        .command
        .into_config()
        .and_then(|config| sota_stage::commands::run(config, progress))
    {
        Ok(outcome) => {
            if !outcome.stderr.is_empty() {
                // Messages for a terminal: whatever slipped through unescaped
                // is escaped here, line by line (stdout may be a fragment or
                // JSON, and is written as is).
                let stderr = sota_stage::escape::escape_lines(&outcome.stderr);
                let _ = std::io::stderr().write_all(stderr.as_bytes());
            }
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(outcome.stdout.as_bytes()).is_err() || stdout.flush().is_err() {
                return ExitCode::from(EXIT_IO);
            }
            ExitCode::from(outcome.exit)
        }
        Err(e) => {
            let mut message = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                // Archive errors already carry their cause in the message.
                if !message.contains(&cause.to_string()) {
                    message.push_str(&format!(": {cause}"));
                }
                source = cause.source();
            }
            // The parts that come from outside are escaped where the message
            // is made; this catches any that were not, line by line.
            eprintln!("{}", sota_stage::escape::escape_lines(&message));
            ExitCode::from(e.exit_code())
        }
    }
}

/// Says what a run is waiting for, on standard error, as it starts waiting.
fn progress(line: &str) {
    eprintln!("{}", sota_stage::escape::escape_lines(line));
}
