//! `agent`: command-line entry point. Parses arguments, sets up logging, and hands over to the
//! library; errors are reported here, once, with their causes.
#![forbid(unsafe_code)]

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use chunk_agent::{cgroup::Cgroup2, daemon, exec, policy, record};
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
        /// Where the programs, links and maps are pinned on bpffs (they outlive the agent: fail
        /// closed). Default: /sys/fs/bpf/chunk-agent<cgroup base>.
        #[arg(long)]
        bpffs_dir: Option<PathBuf>,
        /// Audit log: a file (appended to) or `-` for standard output.
        #[arg(long, default_value = "-")]
        audit_log: PathBuf,
        /// Rotate the audit log file when it would grow past this size (e.g. 100MB).
        #[arg(long, value_parser = chunk_agent::audit::sink::parse_size)]
        audit_rotate_size: Option<u64>,
        /// Rotated audit files kept (PATH.1 ... PATH.N).
        #[arg(long, default_value_t = 5)]
        audit_rotate_keep: usize,
        /// Also send audit events to syslog (RFC 5424): udp://HOST:PORT, tcp://HOST:PORT or
        /// unix:///dev/log.
        #[arg(long)]
        audit_syslog: Option<chunk_agent::audit::sink::SyslogTarget>,
        /// Where session recordings are kept (in `sessions/`).
        #[arg(long, default_value = "/var/lib/chunk-agent")]
        data_dir: PathBuf,
        /// Size cap of one session's recording (e.g. 64MB); past it, a truncation marker.
        #[arg(long, default_value = "64MB", value_parser = chunk_agent::audit::sink::parse_size)]
        record_max_size: u64,
        /// When a recording cannot be written: `fail-closed` (the statement is refused) or
        /// `continue` (the session goes on unrecorded, with an audit error).
        #[arg(long, default_value = "fail-closed", value_parser = ["fail-closed", "continue"])]
        record_on_error: String,
        /// Recordings older than this are deleted (e.g. 30d).
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        record_retention_age: std::time::Duration,
        /// Beyond this total size the oldest recordings are deleted (e.g. 10GB).
        #[arg(long, default_value = "10GB", value_parser = chunk_agent::audit::sink::parse_size)]
        record_retention_size: u64,
        #[command(flatten)]
        approval: Box<chunk_agent::approval::ApprovalFlags>,
    },
    /// Approval requests and grants of a running agent (its approval API).
    Approvals(chunk_agent::approval::client::ApprovalsArgs),
    /// Detach and remove everything the agent pinned on bpffs (its programs stay in force after
    /// it stops, refusing workload connections: fail closed). Then workload jobs connect
    /// directly again. Idempotent.
    Uninstall {
        /// The cgroup base of the agent to uninstall (selects its pin directory).
        #[arg(long, default_value = "/chunk-agent")]
        cgroup_base: String,
        /// Pin directory, if the agent ran with --bpffs-dir.
        #[arg(long)]
        bpffs_dir: Option<PathBuf>,
        /// Proceed even while an agent holds the pin directory (its own handles keep its
        /// programs attached until it exits).
        #[arg(long)]
        force: bool,
    },
    /// Run a command inside a fresh cgroup of a workload, so the agent intercepts it.
    Exec {
        /// Workload the command runs as.
        #[arg(long)]
        workload: String,
        /// Must match the running agent's --cgroup-base.
        #[arg(long, default_value = "/chunk-agent")]
        cgroup_base: String,
        /// A file holding the job's workload token (JWT). It is handed to the agent in a
        /// root-only file for this job; the command never sees it.
        #[arg(long)]
        token_file: Option<PathBuf>,
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
    /// List the recorded sessions of a period (oldest first).
    Sessions {
        /// The agent's data directory (recordings are in its `sessions/`).
        #[arg(long, default_value = record::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Sessions active in this period before now (`24h`, `7days`, `30m`).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// Only this workload's sessions.
        #[arg(long)]
        workload: Option<String>,
    },
    /// Show a recorded session as it happened.
    Replay {
        /// The agent's data directory (recordings are in its `sessions/`).
        #[arg(long, default_value = record::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// A session id (or a unique prefix of one), or the path of a recording.
        session: String,
        /// Play N times faster than real time (waits are capped at 5 s).
        #[arg(long, default_value_t = 1.0, conflicts_with = "instant")]
        speed: f64,
        /// Show everything at once.
        #[arg(long)]
        instant: bool,
    },
    /// Per workload: sessions, statements, denials, masked values, approvals; and the
    /// declared workloads that never ran in the period.
    Report {
        /// The agent's data directory (recordings are in its `sessions/`).
        #[arg(long, default_value = record::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        /// Directory of policy files (*.toml): the declared workloads.
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
        /// The period before now (`24h`, `7days`, `30m`).
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
    },
    /// Check a recording's hash chain and final digest; name the first bad entry.
    /// Exit 0: intact; 1: tampered, cut off, or not the expected digest; 2: unreadable.
    Verify {
        /// The recording file.
        file: PathBuf,
        /// The digest it must have (from its `session-recorded` audit event).
        #[arg(long)]
        digest: Option<String>,
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
        Command::Sessions {
            data_dir,
            since,
            workload,
        } => sessions_command(&data_dir, since, workload.as_deref()),
        Command::Replay {
            data_dir,
            session,
            speed,
            instant,
        } => replay_command(&data_dir, &session, speed, instant),
        Command::Report {
            data_dir,
            policies,
            since,
        } => report_command(&data_dir, &policies, since),
        Command::Verify { file, digest } => verify_command(&file, digest.as_deref()),
        Command::Approvals(args) => chunk_agent::approval::client::run(args),
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
            bpffs_dir,
            audit_log,
            audit_rotate_size,
            audit_rotate_keep,
            audit_syslog,
            data_dir,
            record_max_size,
            record_on_error,
            record_retention_age,
            record_retention_size,
            approval,
        } => {
            init_logging("info");
            let approval = approval.into_config();
            let approval = match approval {
                Ok(approval) => approval,
                Err(err) => {
                    eprintln!("agent: {err}");
                    return ExitCode::FAILURE;
                }
            };
            let Some(set) = load_policies(&policies) else {
                eprintln!("agent: refusing to start on an invalid policy set");
                return ExitCode::FAILURE;
            };
            let config = daemon::RunConfig {
                policies,
                listen_port,
                cgroup_base,
                bpffs_dir,
                audit: chunk_agent::audit::sink::AuditConfig {
                    log: Some(audit_log),
                    rotate_size: audit_rotate_size,
                    rotate_keep: audit_rotate_keep,
                    syslog: audit_syslog,
                },
                recording: daemon::RecordingSettings {
                    data_dir,
                    limits: chunk_agent::record::Limits {
                        max_bytes: record_max_size,
                        ..Default::default()
                    },
                    on_error: if record_on_error == "continue" {
                        chunk_agent::record::OnError::Continue
                    } else {
                        chunk_agent::record::OnError::FailClosed
                    },
                    retention: chunk_agent::record::retention::Retention {
                        max_age: Some(record_retention_age),
                        max_total_bytes: Some(record_retention_size),
                    },
                },
                approval,
            };
            report(run_daemon(set, config))
        }
        Command::Uninstall {
            cgroup_base,
            bpffs_dir,
            force,
        } => uninstall_command(&cgroup_base, bpffs_dir, force),
        Command::Exec {
            workload,
            cgroup_base,
            token_file,
            command,
        } => {
            init_logging("warn");
            let result = Cgroup2::discover()
                .context("finding the cgroup2 mount")
                .and_then(|cgroups| {
                    let root = daemon::exec_root(&cgroup_base);
                    let token = exec::JobToken {
                        file: token_file.as_deref(),
                        dir: std::path::Path::new(chunk_agent::pg::token_auth::EXEC_TOKEN_DIR),
                    };
                    exec::run(&cgroups, &root, &workload, &command, &token).map_err(Into::into)
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

/// `agent uninstall`: exit 0 when nothing is pinned any more, 1 on refusal or error.
fn uninstall_command(cgroup_base: &str, bpffs_dir: Option<PathBuf>, force: bool) -> ExitCode {
    let dir = bpffs_dir
        .unwrap_or_else(|| chunk_agent::intercept::pins::default_instance_dir(cgroup_base));
    match chunk_agent::intercept::uninstall(&dir, force) {
        Ok(report) => {
            if report.agent_was_running {
                eprintln!(
                    "agent uninstall: warning: an agent is running; its programs stay attached \
                     until it exits"
                );
            }
            println!(
                "{}: {} pinned object(s) removed",
                report.instance.display(),
                report.removed
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("agent uninstall: {err}");
            ExitCode::FAILURE
        }
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

/// Every readable session of the data directory, oldest first (unreadable files are warned
/// about).
fn load_sessions(data_dir: &std::path::Path) -> Result<Vec<record::index::SessionInfo>, ExitCode> {
    let dir = record::sessions_dir(data_dir);
    match record::index::scan(&dir) {
        Ok((sessions, errors)) => {
            for error in errors {
                eprintln!("warning: {error}");
            }
            Ok(sessions)
        }
        Err(err) => {
            eprintln!("agent: cannot read {}: {err}", dir.display());
            Err(ExitCode::FAILURE)
        }
    }
}

fn period_start(since: std::time::Duration) -> Option<std::time::SystemTime> {
    std::time::SystemTime::now().checked_sub(since)
}

fn sessions_command(
    data_dir: &std::path::Path,
    since: std::time::Duration,
    workload: Option<&str>,
) -> ExitCode {
    let sessions = match load_sessions(data_dir) {
        Ok(sessions) => sessions,
        Err(code) => return code,
    };
    let shown = record::index::filter(&sessions, period_start(since), workload);
    if shown.is_empty() {
        eprintln!(
            "no sessions in {} for the last {}",
            record::sessions_dir(data_dir).display(),
            humantime::format_duration(since)
        );
    } else {
        print!("{}", record::index::sessions_table(&shown));
    }
    ExitCode::SUCCESS
}

fn replay_command(
    data_dir: &std::path::Path,
    session: &str,
    speed: f64,
    instant: bool,
) -> ExitCode {
    use record::replay::{Pace, ThreadSleeper, replay};
    if !speed.is_finite() || speed <= 0.0 {
        eprintln!("agent replay: --speed must be a positive number");
        return ExitCode::from(2);
    }
    let path = match record::index::find_session(&record::sessions_dir(data_dir), session) {
        Ok(path) => path,
        Err(err) => {
            eprintln!("agent replay: {err}");
            return ExitCode::from(2);
        }
    };
    let recording = match record::reader::read_file(&path) {
        Ok(recording) => recording,
        Err(err) => {
            eprintln!("agent replay: {err}");
            return ExitCode::FAILURE;
        }
    };
    let pace = if instant {
        Pace::Instant
    } else {
        Pace::Speed(speed)
    };
    let stdout = std::io::stdout();
    match replay(&recording, pace, &mut stdout.lock(), &mut ThreadSleeper) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("agent replay: {err}");
            ExitCode::FAILURE
        }
    }
}

fn report_command(
    data_dir: &std::path::Path,
    policies: &std::path::Path,
    since: std::time::Duration,
) -> ExitCode {
    let Some(set) = load_policies(policies) else {
        return ExitCode::FAILURE;
    };
    let sessions = match load_sessions(data_dir) {
        Ok(sessions) => sessions,
        Err(code) => return code,
    };
    let declared: Vec<String> = set.workloads.iter().map(|w| w.name.clone()).collect();
    let shown = record::index::filter(&sessions, period_start(since), None);
    println!(
        "sessions of the last {} in {}\n",
        humantime::format_duration(since),
        record::sessions_dir(data_dir).display()
    );
    print!("{}", record::index::report(&shown, &declared));
    ExitCode::SUCCESS
}

fn verify_command(file: &std::path::Path, digest: Option<&str>) -> ExitCode {
    let verification = match record::verify::verify_file(file) {
        Ok(v) => v,
        Err(err) => {
            eprintln!("agent verify: {}: {err}", file.display());
            return ExitCode::from(2);
        }
    };
    println!("{}: {verification}", file.display());
    if !verification.is_valid() {
        return ExitCode::FAILURE;
    }
    match (digest, verification.digest.as_deref()) {
        (Some(expected), Some(actual)) if !expected.eq_ignore_ascii_case(actual) => {
            println!(
                "{}: DIGEST MISMATCH: the file is consistent but is not the recording whose digest is {expected}",
                file.display()
            );
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    }
}
