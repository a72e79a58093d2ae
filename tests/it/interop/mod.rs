//! Real clients and servers from the ecosystem against a real gateway:
//! the programs users already run, installed by the test command
//! (`scripts/test.sh`) from PyPI, npm and Debian. A missing tool fails its
//! test with the command that installs it: nothing is skipped.
//!
//! The client programs themselves live in `tests/interop/` (Node, Go);
//! these modules start a gateway, run them, and assert the exact scrape.

mod browser;
mod curl;
mod go;
mod node;
mod prometheus;
mod python;

use std::path::PathBuf;
use std::process::Command;

/// `tests/interop/<rel>`.
pub fn interop_dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(rel)
}

/// Runs a client program to completion off the async runtime's worker and
/// returns its stdout; fails the test with its stderr if it fails or cannot
/// start.
pub fn run_client(what: &str, cmd: &mut Command) -> String {
    let out = tokio::task::block_in_place(|| cmd.output()).unwrap_or_else(|e| {
        panic!("{what}: cannot start {:?}: {e} (scripts/test.sh installs it)", cmd.get_program())
    });
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
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
