//! Developer tasks for the chunk agent workspace, run as `cargo xtask <task>`:
//!
//! - `setup`: install what building and testing need (idempotent).
//! - `demo`: build the agent and show it intercepting an unmodified job's PostgreSQL connection.
//! - `test`: the one command that runs every check (format, lints, build, all tests).
//! - `bench`: measure the agent side by side with a direct connection and PgBouncer.
//!
//! This crate must build without the eBPF toolchain: it does not depend on the agent crate.

#![forbid(unsafe_code)]

mod bench;
mod demo;
mod setup;
mod test;
mod util;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Developer tasks for the chunk agent"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the build and test prerequisites (apt packages, bpf-linker, nightly rust-src,
    /// bpffs). Idempotent; needs root.
    Setup,
    /// Build the agent, start a throwaway PostgreSQL and the agent, run an unmodified psql job
    /// under `agent exec` and outside it, and show what the agent saw.
    Demo {
        /// Skip `setup` (when you know the prerequisites are installed).
        #[arg(long)]
        no_setup: bool,
    },
    /// Run every check: setup, `cargo fmt --check`, clippy, build the agent, `cargo test
    /// --workspace` (including the end-to-end tests against the real kernel).
    Test {
        /// Skip the format and clippy checks.
        #[arg(long)]
        no_lint: bool,
        /// Skip `setup`.
        #[arg(long)]
        no_setup: bool,
        /// Extra arguments for `cargo test` (after `--`), e.g. `-- --test interception`.
        #[arg(last = true)]
        cargo_test_args: Vec<String>,
    },
    /// Benchmark: pgbench (select-only and TPC-B-like, simple/extended/prepared, 1/8/32
    /// clients), a large result, connection setup rate and idle-connection memory, direct,
    /// through PgBouncer and through the agent; writes a Markdown table (see docs/benchmarks.md).
    Bench {
        /// Smoke run: 1 repetition, 5 s per pgbench run, fewer cases.
        #[arg(long)]
        quick: bool,
        /// The results file (relative to the workspace root).
        #[arg(long, default_value = "docs/benchmarks-latest.md")]
        out: std::path::PathBuf,
        /// Skip `setup`.
        #[arg(long)]
        no_setup: bool,
        /// Benchmark this agent binary instead of building `--release` and using it.
        #[arg(long)]
        agent_bin: Option<std::path::PathBuf>,
        /// Repetitions of each case (default: 3, or 1 with `--quick`).
        #[arg(long)]
        repetitions: Option<u32>,
        /// Seconds per pgbench run (default: 15, or 5 with `--quick`).
        #[arg(long)]
        duration: Option<u32>,
        /// Set everything up, print how to run a client through each setup (for profiling),
        /// and wait until the file it names is removed; measures nothing.
        #[arg(long)]
        hold: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Setup => setup::run(),
        Task::Demo { no_setup } => demo::run(no_setup),
        Task::Test {
            no_lint,
            no_setup,
            cargo_test_args,
        } => test::run(no_lint, no_setup, &cargo_test_args),
        Task::Bench {
            quick,
            out,
            no_setup,
            agent_bin,
            repetitions,
            duration,
            hold,
        } => bench::run(bench::Options {
            quick,
            out,
            no_setup,
            agent_bin,
            repetitions,
            duration,
            hold,
        }),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
