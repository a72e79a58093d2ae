//! Real clients and servers from the ecosystem against a real gateway:
//! the programs users already run, installed by the test command
//! (`scripts/test.sh`) from PyPI, npm and Debian. A missing tool fails its
//! test with the command that installs it: nothing is skipped.
//!
//! The client programs themselves live in `tests/interop/` (Node, Go);
//! these modules start a gateway, run them, and assert the exact scrape.

mod browser;
mod cumulative;
mod curl;
pub mod go;
mod node;
pub mod prometheus;
pub mod python;
mod remote_write;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `tests/interop/<rel>`.
pub fn interop_dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(rel)
}

/// Runs a client program to completion and returns its stdout; fails the
/// test with its stderr if it fails or cannot start.
pub fn run_client(what: &str, cmd: &mut Command) -> String {
    String::from_utf8_lossy(&pipe(what, cmd, b"")).into_owned()
}

/// Runs `cmd` with `input` on its stdin and returns its stdout; fails the
/// test with its stderr if it fails or cannot start.
pub fn pipe(what: &str, cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{what}: cannot start {:?}: {e} (scripts/test.sh installs it)",
                cmd.get_program()
            )
        });
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from another thread: a child that answers before reading all
    // of its input must not deadlock the test.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `node`, with the test command's `tests/interop/node/node_modules` in
/// place (it runs `npm ci` there).
pub fn node(script: &str) -> Command {
    let dir = interop_dir("node");
    assert!(
        dir.join("node_modules").is_dir(),
        "{} has no node_modules: run scripts/test.sh (npm ci there)",
        dir.display()
    );
    let mut cmd = Command::new(std::env::var("PAG_NODE").unwrap_or_else(|_| "node".into()));
    cmd.current_dir(&dir).arg(script);
    cmd
}
