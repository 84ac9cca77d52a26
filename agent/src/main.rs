//! `agent`: command-line entry point. Parses arguments, sets up logging, and hands over to the
//! library; errors are reported here, once, with their causes.
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use chunk_agent::{cgroup::Cgroup2, daemon, exec, policy};
use clap::{Parser, Subcommand};

/// eBPF-assisted transparent interception agent for batch workloads.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the eBPF programs, intercept workload connections and serve the proxy.
    Run {
        /// Directory of policy files (*.toml).
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
        /// Port of the local proxy, on 127.0.0.1 and [::1].
        #[arg(long, default_value_t = 15432)]
        listen_port: u16,
        /// cgroup (relative to the cgroup2 mount) under which job cgroups are created.
        #[arg(long, default_value = "/chunk-agent")]
        cgroup_base: String,
        /// Audit log: a file (appended to) or `-` for standard output.
        #[arg(long, default_value = "-")]
        audit_log: PathBuf,
    },
    /// Run a command inside a fresh cgroup of a workload, so the agent intercepts it.
    Exec {
        /// Workload the command runs as.
        #[arg(long)]
        workload: String,
        /// Must match the running agent's --cgroup-base.
        #[arg(long, default_value = "/chunk-agent")]
        cgroup_base: String,
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Show how a statement is classified and decided for a workload and target.
    Explain {
        /// Directory of policy files (*.toml).
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
        /// The workload running the statement.
        #[arg(long)]
        workload: String,
        /// The (postgres) target it is sent to.
        #[arg(long)]
        target: String,
        /// The SQL text (one or several statements, as a job would send in one message).
        sql: String,
    },
    /// Validate a directory of policy files; print each error with file, line and column.
    Check {
        /// Directory of policy files (*.toml).
        #[arg(default_value = "policies")]
        policies: PathBuf,
    },
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Loads a policy directory, printing every error (file:line:column: message) on failure, and
/// the warnings of a valid set.
fn load_policies(dir: &std::path::Path) -> Option<policy::PolicySet> {
    match policy::load_dir(dir) {
        Ok(set) => {
            for warning in set.access_warnings() {
                eprintln!("warning: {warning}");
            }
            Some(set)
        }
        Err(errors) => {
            for error in errors.iter() {
                eprintln!("{error}");
            }
            eprintln!(
                "{}: {} error(s) in the policy set",
                dir.display(),
                errors.len()
            );
            None
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { policies } => match load_policies(&policies) {
            Some(set) => {
                println!("{}: OK ({})", policies.display(), set.summary());
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Explain {
            policies,
            workload,
            target,
            sql,
        } => {
            let Some(set) = load_policies(&policies) else {
                return ExitCode::FAILURE;
            };
            explain(&set, &workload, &target, &sql)
        }
        Command::Run {
            policies,
            listen_port,
            cgroup_base,
            audit_log,
        } => {
            init_logging("info");
            let Some(set) = load_policies(&policies) else {
                eprintln!("agent: refusing to start on an invalid policy set");
                return ExitCode::FAILURE;
            };
            let config = daemon::RunConfig {
                policies,
                listen_port,
                cgroup_base,
                audit_log,
            };
            report(run_daemon(set, config))
        }
        Command::Exec {
            workload,
            cgroup_base,
            command,
        } => {
            init_logging("warn");
            let result = Cgroup2::discover()
                .context("finding the cgroup2 mount")
                .and_then(|cgroups| {
                    let root = daemon::exec_root(&cgroup_base);
                    exec::run(&cgroups, &root, &workload, &command).map_err(Into::into)
                });
            match result {
                Ok(status) => exit_code_of(status),
                Err(err) => {
                    eprintln!("agent exec: {err:#}");
                    ExitCode::from(125)
                }
            }
        }
    }
}

/// Prints the classification and decision; exit 0 when allowed, 1 otherwise (2: bad arguments).
fn explain(set: &policy::PolicySet, workload: &str, target: &str, sql: &str) -> ExitCode {
    if set.workload(workload).is_none() {
        eprintln!("agent explain: no workload {workload:?} in the policy set");
        return ExitCode::from(2);
    }
    match set.target(target) {
        Some(t) if t.protocol == policy::Protocol::Postgres => {}
        Some(_) => {
            eprintln!("agent explain: target {target:?} is not a postgres target");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("agent explain: no target {target:?} in the policy set");
            return ExitCode::from(2);
        }
    }
    let rules = chunk_agent::sql::SqlPolicy::new(set);
    let control = rules.access(workload, target).unwrap_or_else(|| {
        std::sync::Arc::new(chunk_agent::sql::AccessControl::new(workload, target, None))
    });
    let explanation =
        chunk_agent::sql::Explanation::new(&control, sql, &chunk_agent::sql::NoPreparedStatements);
    println!("{explanation}");
    if explanation.decision().is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_daemon(set: policy::PolicySet, config: daemon::RunConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(daemon::run(set, config))?;
    Ok(())
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The command's exit code, or 128 + signal like a shell when it was killed.
fn exit_code_of(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code.clamp(0, 255) as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig).clamp(0, 255) as u8),
        _ => ExitCode::FAILURE,
    }
}
