//! `cargo xtask test`: the one command that runs every check, stopping at the first failing step.

use crate::util::{agent_bin, cargo, section, show};
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

/// Seconds each fuzz target runs in `cargo xtask test` (CI): a smoke run from the committed
/// seeds; `cargo xtask fuzz` runs them longer.
pub const CI_FUZZ_SECONDS: u64 = 20;
/// CI builds the fuzz targets without optimizations: a cold optimized build of the seven
/// targets (the whole agent with coverage instrumentation and `codegen-units=1`) took 12 min
/// on the 2-core CI machine, far over the fuzzing step's budget.
pub const CI_FUZZ_DEV: bool = true;

pub fn run(no_lint: bool, no_setup: bool, no_fuzz: bool, cargo_test_args: &[String]) -> Result<()> {
    if no_setup {
        println!("skipping setup (--no-setup)");
    } else {
        crate::setup::run().context("step `setup` failed")?;
    }

    if no_lint {
        println!("skipping fmt and clippy (--no-lint)");
    } else {
        step(
            "format check",
            cargo().args(["fmt", "--all", "--", "--check"]),
        )?;
        step(
            "clippy",
            cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    }

    if no_fuzz {
        println!("skipping fuzzing (--no-fuzz)");
    } else {
        crate::fuzz::run(&crate::fuzz::Options {
            time: CI_FUZZ_SECONDS,
            targets: Vec::new(),
            merge: false,
            sanitizer: "none".into(),
            dev: CI_FUZZ_DEV,
        })
        .context("step `fuzz` failed")?;
    }

    step("build the agent", cargo().args(["build", "-p", "agent"]))?;
    let agent = agent_bin()?;
    if !agent.is_file() {
        bail!("`cargo build -p agent` did not produce {}", agent.display());
    }

    section("tests (cargo test --workspace)");
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--no-fail-fast"])
        .args(cargo_test_args)
        .env("AGENT_BIN", &agent)
        // The end-to-end tests of one binary share the host's kernel state (cgroups, bpffs
        // pins, eBPF programs of several agents): run them one at a time.
        .env("RUST_TEST_THREADS", "1");
    println!("AGENT_BIN={}", agent.display());
    let totals = run_and_count_tests(&mut cmd)?;
    // A plain closing line with the totals of every test binary of the workspace.
    println!(
        "\ntotal: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if !totals.success {
        bail!("step `cargo test --workspace` failed");
    }
    if totals.passed == 0 {
        bail!("`cargo test --workspace` ran no test");
    }
    Ok(())
}

fn step(name: &str, cmd: &mut Command) -> Result<()> {
    section(name);
    crate::util::run_cmd(cmd).with_context(|| format!("step `{name}` failed"))
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
    success: bool,
}

/// Runs `cargo test`, echoing its stdout while adding up its `test result:` lines.
fn run_and_count_tests(cmd: &mut Command) -> Result<Totals> {
    show(cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let stdout = child.stdout.take().context("stdout was not piped")?;
    let mut totals = Totals::default();
    let mut out = std::io::stdout();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        writeln!(out, "{line}")?;
        out.flush()?;
        if let Some((passed, failed, ignored)) = parse_test_result(&line) {
            totals.passed += passed;
            totals.failed += failed;
            totals.ignored += ignored;
        }
    }
    totals.success = child.wait()?.success() && totals.failed == 0;
    Ok(totals)
}

/// `(passed, failed, ignored)` from a libtest summary line such as
/// `test result: ok. 15 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 1.2s`.
fn parse_test_result(line: &str) -> Option<(u64, u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, counts) = rest.split_once(". ")?;
    let mut passed = None;
    let mut failed = None;
    let mut ignored = None;
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => passed = Some(n),
            "failed" => failed = Some(n),
            "ignored" => ignored = Some(n),
            _ => {}
        }
    }
    Some((passed?, failed?, ignored.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_summary_lines() {
        assert_eq!(
            parse_test_result(
                "test result: ok. 15 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; \
                 finished in 1.87s"
            ),
            Some((15, 0, 2))
        );
        assert_eq!(
            parse_test_result(
                "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out"
            ),
            Some((3, 1, 0))
        );
        assert_eq!(parse_test_result("running 15 tests"), None);
        assert_eq!(parse_test_result("test foo ... ok"), None);
    }
}
