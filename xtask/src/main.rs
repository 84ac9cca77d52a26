//! Developer tasks for the chunk agent workspace, run as `cargo xtask <task>`:
//!
//! - `setup`: install what building and testing need (idempotent).
//! - `demo`: build the agent and show it intercepting an unmodified job's PostgreSQL connection.
//! - `test`: the one command that runs every check (format, lints, build, all tests).
//! - `bench`: measure the agent side by side with a direct connection and PgBouncer.
//! - `fuzz`: run the cargo-fuzz targets of `fuzz/` for a bounded time each.
//! - `soak`: a steady workload through the agent for N minutes, checking its memory stays flat.
//!
//! This crate must build without the eBPF toolchain: it does not depend on the agent crate.

#![forbid(unsafe_code)]

mod bench;
mod demo;
mod fuzz;
mod setup;
mod soak;
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
        /// Skip the bounded fuzzing step.
        #[arg(long)]
        no_fuzz: bool,
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
    /// Build the cargo-fuzz targets of `fuzz/` once, then run each (or the named ones) for
    /// `--time` seconds from its committed seeds; a crash fails and prints the reproducer.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Add the inputs that reach new coverage to `fuzz/corpus/<target>/` (to commit).
        #[arg(long)]
        merge: bool,
        /// libFuzzer sanitizer: `none` (fast builds, Rust's own checks) or `address`.
        #[arg(long, default_value = "none")]
        sanitizer: String,
        /// Build without optimizations: a shorter build, fewer executions per second.
        #[arg(long)]
        dev: bool,
        /// Targets to run (default: all).
        targets: Vec<String>,
    },
    /// Soak: a steady mixed pgbench workload through the agent for `--minutes`, sampling the
    /// agent's memory every 10 s; fails if its RSS grows by more than `--max-growth-mib` after
    /// the warm-up.
    Soak {
        /// Duration of the workload, in minutes.
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// Concurrent pgbench clients.
        #[arg(long, default_value_t = 4)]
        clients: u32,
        /// Allowed RSS growth after the warm-up, in MiB.
        #[arg(long, default_value_t = soak::DEFAULT_MAX_GROWTH_MIB)]
        max_growth_mib: u64,
        /// Use this agent binary (default: build and use the debug one).
        #[arg(long)]
        agent_bin: Option<std::path::PathBuf>,
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
            no_fuzz,
            cargo_test_args,
        } => test::run(no_lint, no_setup, no_fuzz, &cargo_test_args),
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
        Task::Fuzz {
            time,
            merge,
            sanitizer,
            dev,
            targets,
        } => fuzz::run(&fuzz::Options {
            time,
            targets,
            merge,
            sanitizer,
            dev,
        }),
        Task::Soak {
            minutes,
            clients,
            max_growth_mib,
            agent_bin,
        } => soak::run(&soak::Options {
            minutes,
            clients,
            max_growth_mib,
            agent_bin,
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
