//! Running commands visibly.

use agent_tests::process::describe_command;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Prints a section header.
pub fn section(title: &str) {
    let rule = "=".repeat(title.chars().count().max(60));
    println!("\n{rule}\n{title}\n{rule}");
}

/// A command the way a person would type it (`cargo` for the cargo that runs us, paths inside
/// the workspace relative to it).
pub fn display_command(cmd: &Command) -> String {
    let mut text = describe_command(cmd);
    if let Some(cargo) = std::env::var_os("CARGO") {
        let cargo = cargo.to_string_lossy().into_owned();
        if let Some(rest) = text.strip_prefix(&cargo) {
            text = format!("cargo{rest}");
        }
    }
    let root = format!("{}/", agent_tests::workspace_root().display());
    text.replace(&root, "")
}

/// Prints a command the way a person would type it.
pub fn show(cmd: &Command) {
    println!("$ {}", display_command(cmd));
}

/// Prints `cmd`, runs it with inherited stdio and fails unless it exits with 0.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    show(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("cannot run `{}`", display_command(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display_command(cmd));
    }
    Ok(())
}

/// Runs `cmd` quietly (no output shown) and tells whether it exited with 0.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` quietly and returns its stdout if it exited with 0.
pub fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The cargo that runs us (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(agent_tests::workspace_root());
    cmd
}

/// The workspace's target directory, as cargo sees it.
pub fn target_dir() -> Result<PathBuf> {
    let metadata = output_of(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))
        .context("`cargo metadata` failed")?;
    let metadata: serde_json::Value =
        serde_json::from_str(&metadata).context("cannot parse `cargo metadata` output")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` has no target_directory")
}

/// The agent binary built by `cargo build -p agent`.
pub fn agent_bin() -> Result<PathBuf> {
    Ok(target_dir()?.join("debug").join("agent"))
}
