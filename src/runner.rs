//! Every external command (vagrant, virsh, docker, ssh, bash) goes through
//! the `Runner` trait: `Duct` runs it for real, `DryRun` prints it, and
//! `Recorder` lets tests check the exact sequence without running anything.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// How to install the program, should it be missing: said by whoever
    /// knows the program (a provider knows its own tools).
    pub if_missing: Option<&'static str>,
}

impl Cmd {
    pub fn new<I, S>(program: &str, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd { program: program.into(), args: args.into_iter().map(Into::into).collect(), ..Default::default() }
    }

    pub fn if_missing(mut self, hint: &'static str) -> Cmd {
        self.if_missing = Some(hint);
        self
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Cmd {
        self.dir = Some(dir.into());
        self
    }

    /// The command as a shell would read it (for logs, errors and --dry-run).
    pub fn display(&self) -> String {
        let mut words = vec![self.program.clone()];
        words.extend(self.args.iter().cloned());
        shell_words::join(words)
    }
}

/// How to treat a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Keep stdout and stderr for the caller.
    Capture,
    /// Show the output as it comes (unless quiet) and append it to a log file.
    Stream { log: Option<PathBuf>, quiet: bool },
    /// Hand the terminal to the command (`ssh`).
    Inherit,
    /// stdout into this file (a tar stream from a node); stderr kept.
    ToFile(PathBuf),
    /// stdin from this file (a tar stream to a node); output kept.
    FromFile(PathBuf),
}

#[derive(Debug, Clone, Default)]
pub struct Output {
    /// None when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The last lines of output, for error messages.
    pub fn tail(&self, lines: usize) -> String {
        let all: Vec<&str> = self.stdout.lines().chain(self.stderr.lines()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

pub trait Runner: Send + Sync {
    fn run(&self, cmd: &Cmd, mode: &Mode) -> Result<Output>;
    /// False for runners that do not really run anything (--dry-run).
    fn is_real(&self) -> bool {
        true
    }
}

/// Runs a command and turns a non-zero exit into an error with the output's tail.
pub fn check(runner: &dyn Runner, cmd: &Cmd, mode: &Mode, hint: &str) -> Result<Output> {
    check_with(runner, cmd, mode, |_| hint.to_string())
}

/// Like `check`, with advice that depends on what the command printed.
pub fn check_with(runner: &dyn Runner, cmd: &Cmd, mode: &Mode, hint: impl Fn(&Output) -> String) -> Result<Output> {
    let out = runner.run(cmd, mode)?;
    if out.ok() {
        return Ok(out);
    }
    if crate::signals::requested() {
        return Err(Error::Interrupted(cmd.display()));
    }
    Err(Error::Command {
        command: cmd.display(),
        code: match out.code {
            Some(c) => format!(" (exit {c})"),
            None => " (killed by a signal)".into(),
        },
        tail: out.tail(25),
        hint: hint(&out),
    })
}

fn install_hint(cmd: &Cmd) -> String {
    match cmd.if_missing {
        Some(hint) => hint.into(),
        None => format!("install `{}` and make sure it is on PATH", cmd.program),
    }
}

/// The real runner.
pub struct Duct;

impl Runner for Duct {
    fn run(&self, cmd: &Cmd, mode: &Mode) -> Result<Output> {
        tracing::debug!(command = %cmd.display(), dir = ?cmd.dir, "run");
        let mut expr = duct::cmd(&cmd.program, &cmd.args).unchecked();
        if let Some(d) = &cmd.dir {
            expr = expr.dir(d);
        }
        for (k, v) in &cmd.env {
            expr = expr.env(k, v);
        }
        let not_found = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Missing { program: cmd.program.clone(), hint: install_hint(cmd) }
            } else {
                Error::io(&cmd.program, e)
            }
        };
        match mode {
            Mode::Capture => {
                let out = expr.stdout_capture().stderr_capture().stdin_null().run().map_err(not_found)?;
                Ok(Output {
                    code: out.status.code(),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
            Mode::Inherit => {
                let out = expr.run().map_err(not_found)?;
                Ok(Output { code: out.status.code(), ..Default::default() })
            }
            Mode::ToFile(path) => {
                let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
                let out = expr.stdout_file(file).stderr_capture().stdin_null().run().map_err(not_found)?;
                Ok(Output { code: out.status.code(), stderr: String::from_utf8_lossy(&out.stderr).into_owned(), ..Default::default() })
            }
            Mode::FromFile(path) => {
                let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                let out = expr.stdin_file(file).stdout_capture().stderr_capture().run().map_err(not_found)?;
                Ok(Output {
                    code: out.status.code(),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                })
            }
            Mode::Stream { log, quiet } => {
                let mut log = match log {
                    Some(p) => Some(
                        std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(|e| Error::io(p, e))?,
                    ),
                    None => None,
                };
                if let Some(f) = log.as_mut() {
                    let _ = writeln!(f, "$ {}", cmd.display());
                }
                let reader = expr.stderr_to_stdout().reader().map_err(not_found)?;
                let pids = reader.pids();
                let _forward = crate::signals::forward_to(pids);
                let mut tail = VecDeque::new();
                for line in BufReader::new(&reader).split(b'\n') {
                    let line = String::from_utf8_lossy(&line.map_err(|e| Error::io(&cmd.program, e))?).into_owned();
                    if !quiet {
                        eprintln!("{line}");
                    }
                    if let Some(f) = log.as_mut() {
                        let _ = writeln!(f, "{line}");
                    }
                    tail.push_back(line);
                    if tail.len() > 200 {
                        tail.pop_front();
                    }
                }
                let status = reader.try_wait().map_err(|e| Error::io(&cmd.program, e))?.map(|o| o.status.code());
                Ok(Output { code: status.flatten(), stdout: Vec::from(tail).join("\n"), stderr: String::new() })
            }
        }
    }
}

/// Prints each command instead of running it, and pretends it succeeded.
pub struct DryRun;

impl Runner for DryRun {
    fn run(&self, cmd: &Cmd, _: &Mode) -> Result<Output> {
        match &cmd.dir {
            Some(d) => println!("(cd {} && {})", shell_words::quote(&d.display().to_string()), cmd.display()),
            None => println!("{}", cmd.display()),
        }
        Ok(Output { code: Some(0), ..Default::default() })
    }
    fn is_real(&self) -> bool {
        false
    }
}

type Respond = Box<dyn Fn(&Cmd) -> Output + Send + Sync>;

/// Records commands and answers them from a closure; for tests.
pub struct Recorder {
    pub calls: Mutex<Vec<String>>,
    respond: Respond,
}

impl Recorder {
    pub fn new(respond: impl Fn(&Cmd) -> Output + Send + Sync + 'static) -> Recorder {
        Recorder { calls: Mutex::new(Vec::new()), respond: Box::new(respond) }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Runner for Recorder {
    fn run(&self, cmd: &Cmd, _: &Mode) -> Result<Output> {
        self.calls.lock().unwrap().push(cmd.display());
        Ok((self.respond)(cmd))
    }
}

/// Runs `f` on every item at once (threads), keeping the order of results;
/// the first error wins after all have finished.
pub fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|i| s.spawn(|| f(i))).collect();
        handles.into_iter().map(|h| h.join().expect("worker thread panicked")).collect()
    })
}
