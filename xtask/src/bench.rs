//! `cargo xtask bench`: the agent's cost, measured side by side with a direct connection and
//! with PgBouncer, on this machine, in one run.
//!
//! It sets up a throwaway PostgreSQL (SCRAM authentication, pgbench data at scale 10, a
//! 1,000,000-row table of about 50 MB), a PgBouncer in session mode and the release build of the
//! agent in each [`AgentConfig`], then measures:
//!
//! - pgbench select-only (`-S`) and TPC-B-like, `-M simple`, `-M extended` and `-M prepared`, at
//!   1, 8 and 32 clients, for every [`Setup`]: TPS, average, p50 and p99 latency (from pgbench's
//!   per-transaction logs) and the CPU time the proxy process and PostgreSQL used per
//!   transaction (from `/proc/<pid>/stat`);
//! - a large result (`psql -c "select ..."` of 1,000,000 rows): seconds, rows/s and MB/s;
//! - connection setup rate (`pgbench -C -S`): connects per second;
//! - the agent's resident memory with 1,000 idle intercepted connections, per connection.
//!
//! Agent cases run pgbench under `agent exec`, pointed at PostgreSQL's real address: the kernel
//! redirects its connections to the proxy, as for any job. Every case is repeated (min, median,
//! max). The report (Markdown) is printed and written to `--out`, with the targets and
//! whether they are met. Everything started is stopped on exit, also on error (the harness types
//! stop their process on drop); every command runs with a timeout; everything is on loopback.

use crate::util::{cargo, run_cmd, section, target_dir};
use agent_tests::pg::PG_SUPERUSER;
use agent_tests::policy::PostgresPolicy;
use agent_tests::process::{OutputExt, describe_command, run_with_timeout};
use agent_tests::{
    AgentOptions, AgentProcess, PgAuth, PgBouncer, PgBouncerOptions, PgOptions, PgServer, Secret,
    loopback_addresses, single_target_policy,
};
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The role every client logs in as (directly, through PgBouncer, or injected by the agent).
const BENCH_ROLE: &str = "bench";
/// The policy's target name.
const TARGET: &str = "bench-pg";
/// pgbench's scale factor (1,000,000 rows in `pgbench_accounts`).
const SCALE: u32 = 10;
/// Rows of the large-result table.
const LARGE_ROWS: u64 = 1_000_000;
/// The large-result query (about 50 bytes of `psql -A -t` output per row).
const LARGE_QUERY: &str = "select id, val, grp from bench_large";
/// Idle connections for the memory measurement.
const IDLE_CONNECTIONS: u32 = 1000;
/// `application_name` of the idle connections (the agent keeps it in its
/// `chunk:<workload> (<name>)`).
const IDLE_APP_NAME: &str = "bench-idle";
/// Clients and seconds of the connection-rate case.
const CONNECT_CLIENTS: u32 = 8;
/// How long to wait after a client ends before reading CPU times.
const SETTLE: Duration = Duration::from_millis(300);
/// A `PGPASSFILE` that does not exist: only `PGPASSWORD`, when given, authenticates a client.
const NO_PGPASS: &str = "/nonexistent/chunk-agent-bench-no-pgpass";

/// The access rules of the policy: read and write the pgbench tables and the large table, read
/// the catalogs (pgbench reads them at start). Nothing else.
const ACCESS_RULES: &str = "allow = [\n    \
     { name = \"catalogs\", operations = [\"read\"], tables = [\"pg_catalog.*\", \"information_schema.*\"] },\n    \
     { name = \"pgbench\", operations = [\"read\", \"write\"], tables = [\"public.pgbench_*\", \"public.bench_large\"] },\n]";

/// The policy lines that turn masking on, for [`AgentConfig::Full`]: appended to the
/// workload's `[[workload.access]]` table. Two column rules on columns the benchmarks return
/// (pgbench's `abalance`, read by select-only and TPC-B, and the large result's `val`), and a
/// content rule (detectors) that scans every other text value of every result (the large
/// result's `grp`).
///
/// `agent check` decides whether this agent build supports them (parsing is strict: an unknown
/// field is an error), and a probe query through the agent whether it applies them; otherwise
/// masking is reported as not supported, never pretended.
pub const MASKING_LINES: &str = "mask = [\n    \
     { name = \"balances\", columns = [\"public.pgbench_accounts.abalance\"], strategy = \"null\" },\n    \
     { name = \"large-values\", columns = [\"public.bench_large.val\"], strategy = \"redact\" },\n    \
     { name = \"contacts\", detectors = [\"email\", \"card\"], strategy = \"redact\" },\n]";

/// The policy lines that make session recording keep the most, for [`AgentConfig::Full`]:
/// appended after the workload's `[[workload.access]]` table (so they open the workload's
/// `[workload.recording]` table). Every PostgreSQL session is recorded in every configuration
/// (statements, result summaries); this one also keeps bind values, SQL literals and the
/// first result rows of every statement.
pub const RECORDING_LINES: &str = "\n[workload.recording]\nbind_values = \"keep\"\n\
     sql_literals = \"keep\"\nresult_rows = 10";

/// The label of [`AgentConfig::Full`], set once the features this agent build supports are known
/// (e.g. `agent (policy+masking)` when recording is not supported).
static FULL_LABEL: OnceLock<String> = OnceLock::new();

/// `cargo xtask bench` options.
#[derive(Debug, Clone)]
pub struct Options {
    /// 1 repetition, 5 s per pgbench run, fewer cases.
    pub quick: bool,
    /// The results file (relative paths are relative to the workspace root).
    pub out: PathBuf,
    pub no_setup: bool,
    /// Use this agent binary instead of building the release one.
    pub agent_bin: Option<PathBuf>,
    /// Override the number of repetitions.
    pub repetitions: Option<u32>,
    /// Override the seconds per pgbench run.
    pub duration: Option<u32>,
    /// Set up, print the client command of each setup, wait; measure nothing.
    pub hold: bool,
}

/// How the agent is configured for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentConfig {
    /// eBPF redirect and the proxy's identification and audit, bytes relayed as they are
    /// (`protocol = "tcp"`): the client authenticates to PostgreSQL itself.
    Interception,
    /// A `protocol = "postgres"` target: credentials injected (static, SCRAM upstream), every
    /// statement judged against `[[workload.access]]` rules and audited.
    PolicyOn,
    /// [`AgentConfig::PolicyOn`] plus masking ([`MASKING_LINES`]) and recording
    /// ([`RECORDING_LINES`]), those of the two this agent build supports.
    Full,
}

impl AgentConfig {
    const ALL: [AgentConfig; 3] = [Self::Interception, Self::PolicyOn, Self::Full];

    fn label(self) -> &'static str {
        match self {
            Self::Interception => "agent (interception)",
            Self::PolicyOn => "agent (policy)",
            Self::Full => FULL_LABEL
                .get()
                .map(String::as_str)
                .unwrap_or("agent (policy+masking+recording)"),
        }
    }

    fn workload(self) -> &'static str {
        match self {
            Self::Interception => "bench-intercept",
            Self::PolicyOn => "bench-policy",
            Self::Full => "bench-full",
        }
    }

    /// The policy file for a server on `pg_port` whose `bench` password is in `secret`;
    /// `full_lines` are added to the access table of [`AgentConfig::Full`].
    fn policy(self, pg_port: u16, secret: &Path, full_lines: &str) -> String {
        let addresses = loopback_addresses(pg_port);
        match self {
            Self::Interception => {
                single_target_policy(self.workload(), &[], TARGET, "tcp", &addresses)
            }
            Self::PolicyOn | Self::Full => {
                let mut policy =
                    PostgresPolicy::new(self.workload(), TARGET, addresses, BENCH_ROLE, secret);
                let mut access = ACCESS_RULES.to_string();
                if self == Self::Full && !full_lines.is_empty() {
                    access.push('\n');
                    access.push_str(full_lines);
                }
                policy.access = Some(access);
                policy.to_toml()
            }
        }
    }

    /// Whether the client itself must authenticate (the agent only relays bytes).
    fn client_needs_password(self) -> bool {
        self == Self::Interception
    }
}

/// Where the client's connections go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Direct,
    PgBouncer,
    Agent(AgentConfig),
}

impl Setup {
    const ALL: [Setup; 5] = [
        Self::Direct,
        Self::PgBouncer,
        Self::Agent(AgentConfig::Interception),
        Self::Agent(AgentConfig::PolicyOn),
        Self::Agent(AgentConfig::Full),
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::PgBouncer => "pgbouncer (session)",
            Self::Agent(config) => config.label(),
        }
    }
}

/// A pgbench built-in script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    SelectOnly,
    TpcbLike,
}

impl Script {
    fn label(self) -> &'static str {
        match self {
            Self::SelectOnly => "select-only",
            Self::TpcbLike => "tpcb-like",
        }
    }

    fn builtin(self) -> &'static str {
        match self {
            Self::SelectOnly => "select-only",
            Self::TpcbLike => "tpcb-like",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
struct Plan {
    quick: bool,
    repetitions: u32,
    duration: u32,
    scripts: Vec<Script>,
    modes: Vec<&'static str>,
    clients: Vec<u32>,
}

impl Plan {
    fn new(opts: &Options) -> Self {
        let (repetitions, duration, modes) = if opts.quick {
            (1, 5, vec!["simple", "prepared"])
        } else {
            (3, 15, vec!["simple", "extended", "prepared"])
        };
        Self {
            quick: opts.quick,
            repetitions: opts.repetitions.unwrap_or(repetitions).max(1),
            duration: opts.duration.unwrap_or(duration).max(1),
            scripts: vec![Script::SelectOnly, Script::TpcbLike],
            modes,
            clients: vec![1, 8, 32],
        }
    }

    /// A rough duration estimate, for the user.
    fn estimate(&self, setups: usize) -> Duration {
        let per_run = f64::from(self.duration) + 1.5;
        let pgbench_runs = (self.scripts.len() * self.modes.len() * self.clients.len() * setups)
            as f64
            * f64::from(self.repetitions);
        let connect = (setups as f64) * f64::from(self.repetitions) * per_run;
        let large = (setups as f64) * f64::from(self.repetitions) * 3.0;
        let fixed = 90.0 + 40.0 * (setups as f64 - 2.0);
        Duration::from_secs_f64(pgbench_runs * per_run + connect + large + fixed)
    }
}

/// One pgbench run.
#[derive(Debug, Clone)]
struct PgbenchRun {
    tps: f64,
    avg_us: f64,
    p50_us: f64,
    p99_us: f64,
    /// CPU of the proxy process (agent or PgBouncer) per transaction, µs.
    proxy_cpu_us: Option<f64>,
    /// CPU of all PostgreSQL processes per transaction, µs.
    pg_cpu_us: f64,
}

/// One large-result run.
#[derive(Debug, Clone)]
struct LargeRun {
    seconds: f64,
    proxy_cpu_ms: Option<f64>,
}

/// One idle-connections measurement.
#[derive(Debug, Clone)]
struct MemoryRun {
    before_kib: u64,
    after_kib: u64,
    connect_seconds: f64,
}

/// The outcome of a case: its runs, or why there are none.
#[derive(Debug, Clone)]
enum Outcome<T> {
    Runs(Vec<T>),
    NotSupported(String),
    Failed(String),
}

impl<T> Outcome<T> {
    fn runs(&self) -> Option<&[T]> {
        match self {
            Self::Runs(runs) if !runs.is_empty() => Some(runs),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct PgbenchCase {
    script: Script,
    mode: &'static str,
    clients: u32,
    setup: Setup,
    outcome: Outcome<PgbenchRun>,
}

#[derive(Debug)]
struct ConnectCase {
    setup: Setup,
    outcome: Outcome<PgbenchRun>,
}

#[derive(Debug)]
struct LargeCase {
    setup: Setup,
    outcome: Outcome<LargeRun>,
}

/// A case run several times, whose runs gather in its [`Outcome`].
trait RepeatedCase {
    type Run;
    fn outcome(&mut self) -> &mut Outcome<Self::Run>;
}

macro_rules! repeated_case {
    ($case:ty, $run:ty) => {
        impl RepeatedCase for $case {
            type Run = $run;
            fn outcome(&mut self) -> &mut Outcome<$run> {
                &mut self.outcome
            }
        }
    };
}
repeated_case!(PgbenchCase, PgbenchRun);
repeated_case!(ConnectCase, PgbenchRun);
repeated_case!(LargeCase, LargeRun);

/// Runs every case `repetitions` times, side by side (each repetition runs every case in turn,
/// so background noise spreads over all setups). `run` gives the line's prefix and the run with
/// its description; a case whose run fails is marked failed and not run again.
fn run_side_by_side<C: RepeatedCase>(
    repetitions: u32,
    cases: &mut [C],
    mut run: impl FnMut(&C, u32) -> (String, Result<(String, C::Run)>),
) {
    for rep in 1..=repetitions {
        for case in cases.iter_mut() {
            if !matches!(case.outcome(), Outcome::Runs(_)) {
                continue;
            }
            let (prefix, result) = run(case, rep);
            let outcome = case.outcome();
            match result {
                Ok((line, one)) => {
                    println!("{prefix} {line}");
                    if let Outcome::Runs(runs) = outcome {
                        runs.push(one);
                    }
                }
                Err(e) => {
                    println!("{prefix} FAILED: {e:#}");
                    *outcome = Outcome::Failed(one_line(&format!("{e:#}")));
                }
            }
        }
    }
}

#[derive(Debug)]
struct MemoryCase {
    config: AgentConfig,
    outcome: Outcome<MemoryRun>,
}

/// Everything measured, and the facts of the machine.
#[derive(Debug)]
struct Results {
    plan: Plan,
    facts: Vec<(String, String)>,
    large_bytes: u64,
    pgbench: Vec<PgbenchCase>,
    connect: Vec<ConnectCase>,
    large: Vec<LargeCase>,
    memory: Vec<MemoryCase>,
    full_notes: Vec<String>,
    elapsed: Duration,
}

pub fn run(opts: Options) -> Result<()> {
    let started = Instant::now();
    if opts.no_setup {
        println!("skipping setup (--no-setup)");
    } else {
        crate::setup::run()?;
    }
    let plan = Plan::new(&opts);

    section("build the agent (release)");
    let agent_bin = match &opts.agent_bin {
        Some(bin) => {
            println!("using {}", bin.display());
            bin.clone()
        }
        None => {
            run_cmd(cargo().args(["build", "--release", "-p", "agent"]))?;
            target_dir()?.join("release").join("agent")
        }
    };

    section("set up PostgreSQL, pgbench data (scale 10), PgBouncer and the agents");
    let env = Env::start(&agent_bin)?;
    let setups: Vec<Setup> = Setup::ALL
        .into_iter()
        .filter(|s| env.supports(*s))
        .collect();
    if opts.hold {
        return env.hold(&setups);
    }
    let estimate = plan.estimate(setups.len());
    println!(
        "\n{} run: {} repetition(s), {} s per pgbench run; estimated time of the measurements: \
         about {} min",
        if plan.quick { "quick" } else { "full" },
        plan.repetitions,
        plan.duration,
        estimate.as_secs().div_ceil(60)
    );
    let mut facts = machine_facts(&env, &agent_bin)?;
    facts.push(("Load average at start".into(), load_average()));

    section("warm-up (and a check that every path works)");
    for setup in &setups {
        for script in [Script::SelectOnly, Script::TpcbLike] {
            let run = env
                .pgbench(*setup, script, "prepared", 8, 2, &[])
                .with_context(|| format!("warm-up of {} failed", setup.label()))?;
            println!(
                "{:<36} {:<12} {:>9.0} tps",
                setup.label(),
                script.label(),
                run.tps
            );
        }
    }

    section("pgbench: TPS, latency, CPU per transaction");
    let mut pgbench: Vec<PgbenchCase> = Vec::new();
    for script in &plan.scripts {
        for mode in &plan.modes {
            for clients in &plan.clients {
                for setup in Setup::ALL {
                    pgbench.push(PgbenchCase {
                        script: *script,
                        mode,
                        clients: *clients,
                        setup,
                        outcome: env.initial_outcome(setup),
                    });
                }
            }
        }
    }
    let total = pgbench
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Runs(_)))
        .count()
        * plan.repetitions as usize;
    let mut done = 0;
    run_side_by_side(plan.repetitions, &mut pgbench, |case, rep| {
        done += 1;
        let prefix = format!(
            "[{done}/{total}] rep {rep} {:<11} {:<8} {:>2} clients {:<34}",
            case.script.label(),
            case.mode,
            case.clients,
            case.setup.label()
        );
        let result = env.pgbench(
            case.setup,
            case.script,
            case.mode,
            case.clients,
            plan.duration,
            &[],
        );
        (prefix, result.map(|run| (describe_run(&run), run)))
    });

    section("connection setup rate (pgbench -C -S, 8 clients)");
    let mut connect: Vec<ConnectCase> = Setup::ALL
        .into_iter()
        .map(|setup| ConnectCase {
            setup,
            outcome: env.initial_outcome(setup),
        })
        .collect();
    run_side_by_side(plan.repetitions, &mut connect, |case, rep| {
        let result = env.pgbench(
            case.setup,
            Script::SelectOnly,
            "simple",
            CONNECT_CLIENTS,
            plan.duration,
            &["-C"],
        );
        (
            format!("rep {rep} {:<34}", case.setup.label()),
            result.map(|run| (format!("{:.0} connects/s", run.tps), run)),
        )
    });

    section("large result: 1,000,000 rows through psql");
    let mut large: Vec<LargeCase> = Setup::ALL
        .into_iter()
        .map(|setup| LargeCase {
            setup,
            outcome: env.initial_outcome(setup),
        })
        .collect();
    run_side_by_side(plan.repetitions, &mut large, |case, rep| {
        let result = env.large_result(case.setup).map(|run| {
            let line = format!(
                "{:.2} s, {:.1} MB/s",
                run.seconds,
                env.large_bytes as f64 / run.seconds / 1e6
            );
            (line, run)
        });
        (format!("rep {rep} {:<34}", case.setup.label()), result)
    });

    section("agent memory with 1,000 idle intercepted connections (a fresh agent each)");
    let mut memory = Vec::new();
    for config in AgentConfig::ALL {
        let outcome = match env.initial_outcome(Setup::Agent(config)) {
            Outcome::Runs(_) => match env.idle_memory(&agent_bin, config) {
                Ok(run) => {
                    println!(
                        "{:<34} {} KiB -> {} KiB: {:.2} KiB per connection ({} connections \
                         in {:.1} s)",
                        config.label(),
                        run.before_kib,
                        run.after_kib,
                        per_connection_kib(&run),
                        IDLE_CONNECTIONS,
                        run.connect_seconds
                    );
                    Outcome::Runs(vec![run])
                }
                Err(e) => {
                    println!("{:<34} FAILED: {e:#}", config.label());
                    Outcome::Failed(one_line(&format!("{e:#}")))
                }
            },
            other => other,
        };
        memory.push(MemoryCase { config, outcome });
    }

    facts.push(("Load average at end".into(), load_average()));
    let results = Results {
        plan,
        facts,
        large_bytes: env.large_bytes,
        pgbench,
        connect,
        large,
        memory,
        full_notes: env.full_notes.clone(),
        elapsed: started.elapsed(),
    };
    drop(env);

    let report = render(&results);
    let out = if opts.out.is_absolute() {
        opts.out.clone()
    } else {
        agent_tests::workspace_root().join(&opts.out)
    };
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::write(&out, &report).with_context(|| format!("cannot write {}", out.display()))?;
    section(&format!("results (written to {})", out.display()));
    println!("{report}");

    let failures = results
        .pgbench
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
        .count()
        + results
            .connect
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .count()
        + results
            .large
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .count()
        + results
            .memory
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .count();
    if failures > 0 {
        bail!("{failures} case(s) failed (see the report)");
    }
    Ok(())
}

/// What runs during the benchmark. Field order is drop order: agents and PgBouncer stop before
/// PostgreSQL.
struct Env {
    agents: Vec<(AgentConfig, AgentProcess)>,
    bouncer: PgBouncer,
    pg: PgServer,
    secret: Secret,
    work: tempfile::TempDir,
    /// What [`AgentConfig::Full`] adds to the policy (empty: the configuration is n/a).
    full_lines: String,
    /// What this agent build does not support of the Full configuration, and why.
    full_notes: Vec<String>,
    pgbench: PathBuf,
    psql: PathBuf,
    postmaster: u32,
    clk_tck: f64,
    large_bytes: u64,
}

impl Env {
    fn start(agent_bin: &Path) -> Result<Self> {
        let work = tempfile::Builder::new()
            .prefix("chunk-agent-bench-")
            .tempdir()?;
        let pg = PgServer::start(PgOptions {
            auth: PgAuth::Scram,
            settings: [
                // The memory case's 1,000 idle sessions, and with masking as many catalog
                // connections of the agent.
                ("max_connections", "2200"),
                ("shared_buffers", "512MB"),
                ("max_wal_size", "4GB"),
                ("log_connections", "off"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..PgOptions::default()
        })?;
        let pgbench = pg.bin_dir().join("pgbench");
        let psql = pg.psql_path();
        println!(
            "PostgreSQL on 127.0.0.1:{} (SCRAM), data in {}",
            pg.port(),
            pg.data_dir().display()
        );

        let init = Instant::now();
        let out = run_with_timeout(
            Command::new(&pgbench)
                .arg("-h")
                .arg(pg.socket_dir())
                .args(["-p", &pg.port().to_string(), "-U", PG_SUPERUSER])
                .args(["-i", "-s", &SCALE.to_string(), "-q", "postgres"]),
            Duration::from_secs(900),
        )?;
        if !out.status.success() {
            bail!("pgbench -i failed: {}", out.describe());
        }
        println!(
            "pgbench -i -s {SCALE}: {:.1} s",
            init.elapsed().as_secs_f64()
        );
        let secret = Secret::random("bench-")?;
        pg.create_login_role(BENCH_ROLE, secret.value())?;
        pg.admin_sql(&format!(
            "create table bench_large as select g as id, md5(g::text) as val, \
             'group-' || (g % 1000) as grp from generate_series(1, {LARGE_ROWS}) g"
        ))?;
        pg.admin_sql(&format!(
            "grant select, insert, update, delete on pgbench_accounts, pgbench_branches, \
             pgbench_tellers, pgbench_history, bench_large to {BENCH_ROLE}"
        ))?;
        pg.admin_sql("vacuum analyze")?;
        pg.admin_sql("checkpoint")?;
        // psql -A -t output: the values, two separators and a newline per row.
        let large_bytes: u64 = pg
            .admin_sql(
                "select sum(octet_length(id::text) + octet_length(val) + octet_length(grp) + 3) \
                 from bench_large",
            )?
            .trim()
            .parse()
            .context("cannot read the size of the large result")?;
        // Bring the tables into shared buffers.
        pg.admin_sql(
            "select count(*) from pgbench_accounts; select count(*) from bench_large; \
             select count(*) from pgbench_tellers; select count(*) from pgbench_branches",
        )?;
        println!(
            "large result: {LARGE_ROWS} rows, {:.1} MB of psql output",
            large_bytes as f64 / 1e6
        );

        let bouncer = PgBouncer::start(PgBouncerOptions::session_scram(
            pg.port(),
            &[(BENCH_ROLE, secret.value())],
        ))?;
        println!(
            "PgBouncer (session mode, SCRAM) on 127.0.0.1:{} (pid {})",
            bouncer.port(),
            bouncer.pid().unwrap_or_default()
        );

        let mut agents = Vec::new();
        for config in [AgentConfig::Interception, AgentConfig::PolicyOn] {
            let agent = start_agent(agent_bin, &config.policy(pg.port(), &secret.path(), ""))?;
            println!(
                "{} running (pid {}), workload {}",
                config.label(),
                agent.pid().unwrap_or_default(),
                config.workload()
            );
            agents.push((config, agent));
        }
        let (full_lines, full_notes) = full_support(agent_bin, &work, &pg, &secret, &psql)?;
        if full_lines.is_empty() {
            println!(
                "{}: n/a (not supported by this agent build)",
                AgentConfig::Full.label()
            );
        } else {
            let policy = AgentConfig::Full.policy(pg.port(), &secret.path(), &full_lines);
            let agent = start_agent(agent_bin, &policy)?;
            println!(
                "{} running (pid {}), workload {}",
                AgentConfig::Full.label(),
                agent.pid().unwrap_or_default(),
                AgentConfig::Full.workload()
            );
            agents.push((AgentConfig::Full, agent));
        }
        for note in &full_notes {
            println!("  {note}");
        }
        let postmaster = postmaster_pid(&pg)?;
        let clk_tck = clock_ticks()?;
        Ok(Self {
            agents,
            bouncer,
            pg,
            secret,
            work,
            full_lines,
            full_notes,
            pgbench,
            psql,
            postmaster,
            clk_tck,
            large_bytes,
        })
    }

    /// `--hold`: prints, for each setup, its proxy's pid and a pgbench command through it,
    /// then waits until the marker file is removed (everything is then stopped as usual).
    fn hold(&self, setups: &[Setup]) -> Result<()> {
        section("holding (--hold): run clients through the setups, profile their proxies");
        let args: Vec<String> = [
            "-n", "-S", "-M", "prepared", "-c", "1", "-T", "30", "postgres",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for setup in setups {
            let cmd = self.client_command(*setup, &self.pgbench, &args)?;
            let envs: Vec<String> = cmd
                .get_envs()
                .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
                .collect();
            println!(
                "{:<36} proxy pid {:<8} {} {}",
                setup.label(),
                self.proxy_pid(*setup)
                    .map_or_else(|| "-".into(), |p| p.to_string()),
                envs.join(" "),
                describe_command(&cmd)
            );
        }
        let marker = self.work.path().join("hold");
        fs::write(
            &marker,
            "remove this file to end `cargo xtask bench --hold`\n",
        )?;
        println!("\nholding until {} is removed", marker.display());
        while marker.exists() {
            thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    }

    fn agent(&self, config: AgentConfig) -> Option<&AgentProcess> {
        self.agents
            .iter()
            .find(|(c, _)| *c == config)
            .map(|(_, a)| a)
    }

    fn supports(&self, setup: Setup) -> bool {
        match setup {
            Setup::Agent(config) => self.agent(config).is_some(),
            Setup::Direct | Setup::PgBouncer => true,
        }
    }

    fn initial_outcome<T>(&self, setup: Setup) -> Outcome<T> {
        if self.supports(setup) {
            Outcome::Runs(Vec::new())
        } else {
            Outcome::NotSupported("n/a (not supported by this agent build)".into())
        }
    }

    fn proxy_pid(&self, setup: Setup) -> Option<u32> {
        match setup {
            Setup::Direct => None,
            Setup::PgBouncer => self.bouncer.pid(),
            Setup::Agent(config) => self.agent(config).and_then(AgentProcess::pid),
        }
    }

    /// `program -h 127.0.0.1 -p PORT -U bench args...` for `setup`: straight to PostgreSQL,
    /// to PgBouncer, or under `agent exec` to PostgreSQL's real address.
    fn client_command(&self, setup: Setup, program: &Path, args: &[String]) -> Result<Command> {
        let port = match setup {
            Setup::PgBouncer => self.bouncer.port(),
            Setup::Direct | Setup::Agent(_) => self.pg.port(),
        };
        let mut argv: Vec<OsString> = vec![
            program.into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
            "-U".into(),
            BENCH_ROLE.into(),
        ];
        argv.extend(args.iter().map(OsString::from));
        let (mut cmd, password) = match setup {
            Setup::Agent(config) => {
                let agent = self
                    .agent(config)
                    .with_context(|| format!("{} is not running", config.label()))?;
                (
                    agent.exec_command(config.workload(), &argv),
                    config.client_needs_password(),
                )
            }
            Setup::Direct | Setup::PgBouncer => {
                let mut cmd = Command::new(&argv[0]);
                cmd.args(&argv[1..]);
                (cmd, true)
            }
        };
        cmd.env("PGPASSFILE", NO_PGPASS)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD")
            .env_remove("PGAPPNAME");
        if password {
            cmd.env("PGPASSWORD", self.secret.value());
        }
        Ok(cmd)
    }

    /// CPU ticks of the proxy process (if any) and of PostgreSQL.
    fn cpu_snapshot(&self, setup: Setup) -> Result<(Option<u64>, u64)> {
        let proxy = match self.proxy_pid(setup) {
            Some(pid) => Some(process_ticks(pid)?.own()),
            None => None,
        };
        Ok((proxy, postgres_ticks(self.postmaster)?))
    }

    fn ticks_to_us(&self, ticks: u64) -> f64 {
        ticks as f64 * 1e6 / self.clk_tck
    }

    /// The audit log of an agent case grows by a line per statement: empty it after each run
    /// (the agent appends, so it keeps writing at the new end).
    fn truncate_audit_logs(&self) -> Result<()> {
        for (_, agent) in &self.agents {
            fs::OpenOptions::new()
                .write(true)
                .open(agent.audit_path())
                .and_then(|f| f.set_len(0))
                .with_context(|| format!("cannot truncate {}", agent.audit_path().display()))?;
        }
        Ok(())
    }

    /// One pgbench run of `duration` seconds; `extra` are more pgbench options (`-C`).
    fn pgbench(
        &self,
        setup: Setup,
        script: Script,
        mode: &str,
        clients: u32,
        duration: u32,
        extra: &[&str],
    ) -> Result<PgbenchRun> {
        if script == Script::TpcbLike {
            // What pgbench does before a run unless `-n` (which the policy would not allow).
            self.pg.admin_sql("truncate pgbench_history")?;
            self.pg
                .admin_sql("vacuum pgbench_branches, pgbench_tellers")?;
        }
        let logs = tempfile::Builder::new()
            .prefix("pgbench-log-")
            .tempdir_in(self.work.path())?;
        let prefix = logs.path().join("tx");
        let mut args: Vec<String> = [
            "-n",
            "-b",
            script.builtin(),
            "-M",
            mode,
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &duration.to_string(),
            "-l",
            "--log-prefix",
            &prefix.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("postgres".into());
        let mut cmd = self.client_command(setup, &self.pgbench, &args)?;
        let (proxy_before, pg_before) = self.cpu_snapshot(setup)?;
        let out = run_with_timeout(&mut cmd, Duration::from_secs(u64::from(duration) + 120))?;
        // Let the backends of the run end and be reaped (their CPU moves to the postmaster's
        // children's times): one read in the middle of an exit would miss it.
        thread::sleep(SETTLE);
        let (proxy_after, pg_after) = self.cpu_snapshot(setup)?;
        if matches!(setup, Setup::Agent(_)) {
            self.truncate_audit_logs()?;
        }
        if !out.status.success() {
            bail!("`{}` failed: {}", describe_command(&cmd), tail(&out));
        }
        let stdout = out.stdout_text();
        let transactions = field_after(&stdout, "number of transactions actually processed: ")
            .context("no transaction count in pgbench's output")?;
        if transactions < 1.0 {
            bail!("pgbench processed no transaction: {}", tail(&out));
        }
        let failed = field_after(&stdout, "number of failed transactions: ").unwrap_or(0.0);
        if failed > 0.0 {
            bail!("pgbench: {failed} failed transactions: {}", tail(&out));
        }
        let tps = field_after(&stdout, "tps = ").context("no tps in pgbench's output")?;
        let mut latencies = read_latencies(logs.path())?;
        if latencies.is_empty() {
            bail!(
                "pgbench wrote no per-transaction log in {}",
                logs.path().display()
            );
        }
        latencies.sort_unstable();
        let avg_us = latencies.iter().map(|&l| l as f64).sum::<f64>() / latencies.len() as f64;
        Ok(PgbenchRun {
            tps,
            avg_us,
            p50_us: percentile(&latencies, 50.0),
            p99_us: percentile(&latencies, 99.0),
            proxy_cpu_us: proxy_before.zip(proxy_after).map(|(before, after)| {
                self.ticks_to_us(after.saturating_sub(before)) / transactions
            }),
            pg_cpu_us: self.ticks_to_us(pg_after.saturating_sub(pg_before)) / transactions,
        })
    }

    /// `psql -c LARGE_QUERY` with its output thrown away.
    fn large_result(&self, setup: Setup) -> Result<LargeRun> {
        let args: Vec<String> = ["-d", "postgres", "-X", "-A", "-t", "-q", "-v"]
            .iter()
            .map(|s| s.to_string())
            .chain(["ON_ERROR_STOP=1".into(), "-c".into(), LARGE_QUERY.into()])
            .collect();
        let mut cmd = self.client_command(setup, &self.psql, &args)?;
        let stderr_path = self.work.path().join("psql-large.stderr");
        let (proxy_before, _) = self.cpu_snapshot(setup)?;
        let started = Instant::now();
        let status = run_discarding_stdout(&mut cmd, &stderr_path, Duration::from_secs(300))?;
        let seconds = started.elapsed().as_secs_f64();
        thread::sleep(SETTLE);
        let (proxy_after, _) = self.cpu_snapshot(setup)?;
        if matches!(setup, Setup::Agent(_)) {
            self.truncate_audit_logs()?;
        }
        if !status.success() {
            bail!(
                "`{}` failed ({status}): {}",
                describe_command(&cmd),
                fs::read_to_string(&stderr_path).unwrap_or_default().trim()
            );
        }
        Ok(LargeRun {
            seconds,
            proxy_cpu_ms: proxy_before
                .zip(proxy_after)
                .map(|(before, after)| self.ticks_to_us(after.saturating_sub(before)) / 1e3),
        })
    }

    /// A fresh agent in `config`; its VmRSS after one connection, then with
    /// [`IDLE_CONNECTIONS`] idle connections of one `pgbench` under `agent exec`.
    fn idle_memory(&self, agent_bin: &Path, config: AgentConfig) -> Result<MemoryRun> {
        let agent = start_agent(
            agent_bin,
            &config.policy(self.pg.port(), &self.secret.path(), &self.full_lines),
        )?;
        let pid = agent.pid().context("the agent has no pid")?;
        let client = |program: &Path, args: &[&str]| {
            let mut argv: Vec<OsString> = vec![
                program.into(),
                "-h".into(),
                "127.0.0.1".into(),
                "-p".into(),
                self.pg.port().to_string().into(),
                "-U".into(),
                BENCH_ROLE.into(),
            ];
            argv.extend(args.iter().map(OsString::from));
            let mut cmd = agent.exec_command(config.workload(), &argv);
            cmd.env("PGPASSFILE", NO_PGPASS)
                .env("PGCONNECT_TIMEOUT", "10")
                .env("PGAPPNAME", IDLE_APP_NAME)
                .env_remove("PGPASSWORD");
            if config.client_needs_password() {
                cmd.env("PGPASSWORD", self.secret.value());
            }
            cmd
        };
        // One connection first: what is allocated once (pools, caches) is not per connection.
        let out = run_with_timeout(
            &mut client(&self.psql, &["-d", "postgres", "-X", "-c", "select 1"]),
            Duration::from_secs(60),
        )?;
        if !out.status.success() {
            bail!("the first connection failed: {}", tail(&out));
        }
        thread::sleep(Duration::from_millis(500));
        let before_kib = vm_rss_kib(pid)?;

        let script = self.work.path().join("idle.sql");
        fs::write(&script, "\\sleep 600 s\n")?;
        let script = script.to_string_lossy().into_owned();
        let n = IDLE_CONNECTIONS.to_string();
        let mut cmd = client(
            &self.pgbench,
            &[
                "-n", "-c", &n, "-j", "4", "-t", "1", "-f", &script, "postgres",
            ],
        );
        let stderr_path = self.work.path().join("pgbench-idle.stderr");
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&stderr_path)?)
            .spawn()
            .with_context(|| format!("cannot start `{}`", describe_command(&cmd)))?;
        let count_sql = format!(
            "select count(*) from pg_stat_activity where application_name like '%{IDLE_APP_NAME}%'"
        );
        let count = || -> Result<u32> {
            self.pg
                .admin_sql(&count_sql)?
                .trim()
                .parse()
                .context("cannot count the idle connections")
        };
        let measured = (|| -> Result<MemoryRun> {
            let deadline = Instant::now() + Duration::from_secs(180);
            loop {
                if count()? >= IDLE_CONNECTIONS {
                    break;
                }
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "the idle client exited with {status} before opening {n} connections: {}",
                        fs::read_to_string(&stderr_path).unwrap_or_default().trim()
                    );
                }
                if Instant::now() >= deadline {
                    bail!("{n} idle connections not open after 180 s");
                }
                thread::sleep(Duration::from_millis(200));
            }
            let connect_seconds = started.elapsed().as_secs_f64();
            thread::sleep(Duration::from_secs(2));
            let after_kib = vm_rss_kib(pid)?;
            if count()? < IDLE_CONNECTIONS {
                bail!("some idle connections closed during the measurement");
            }
            Ok(MemoryRun {
                before_kib,
                after_kib,
                connect_seconds,
            })
        })();
        // `agent exec` forwards SIGTERM to pgbench.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while count().unwrap_or(0) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(200));
        }
        drop(agent);
        measured
    }
}

/// Which of masking and recording this agent build supports: the lines to add to the policy
/// of [`AgentConfig::Full`] (empty: none), and a note for each one it does not support. Sets
/// the configuration's label accordingly.
fn full_support(
    agent_bin: &Path,
    work: &tempfile::TempDir,
    pg: &PgServer,
    secret: &Secret,
    psql: &Path,
) -> Result<(String, Vec<String>)> {
    let check = |lines: &str| {
        check_policy(
            agent_bin,
            work,
            &AgentConfig::Full.policy(pg.port(), &secret.path(), lines),
        )
    };
    let mut lines = Vec::new();
    let mut features = Vec::new();
    let mut notes = Vec::new();
    match check(MASKING_LINES)? {
        Ok(()) => match masking_applied(agent_bin, pg, secret, psql)? {
            Ok(()) => {
                lines.push(MASKING_LINES);
                features.push("masking");
            }
            Err(why) => notes.push(format!(
                "masking: n/a (not supported by this agent build: `agent check` accepts the mask \
                 rules, but {why})"
            )),
        },
        Err(reason) => notes.push(format!(
            "masking: n/a (not supported by this agent build: `agent check` refuses the mask \
             rules: {reason})"
        )),
    }
    match check(RECORDING_LINES)? {
        Ok(()) => {
            lines.push(RECORDING_LINES);
            features.push("recording");
        }
        Err(reason) => notes.push(format!(
            "recording: n/a (not supported by this agent build: `agent check` refuses \
             `{RECORDING_LINES}`: {reason})"
        )),
    }
    let label = if features.is_empty() {
        "agent (policy+masking+recording)".to_string()
    } else {
        format!("agent (policy+{})", features.join("+"))
    };
    let _ = FULL_LABEL.set(label);
    Ok((lines.join("\n"), notes))
}

/// Whether an agent with [`MASKING_LINES`] really masks: a masked value read through it must
/// differ from the stored one.
fn masking_applied(
    agent_bin: &Path,
    pg: &PgServer,
    secret: &Secret,
    psql: &Path,
) -> Result<std::result::Result<(), String>> {
    let sql = "select val from bench_large where id = 1";
    let clear = pg.admin_sql(sql)?;
    let agent = start_agent(
        agent_bin,
        &AgentConfig::Full.policy(pg.port(), &secret.path(), MASKING_LINES),
    )?;
    let port = pg.port().to_string();
    let psql = psql.to_string_lossy();
    let out = agent.exec(
        AgentConfig::Full.workload(),
        &[
            psql.as_ref(),
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            BENCH_ROLE,
            "-d",
            "postgres",
            "-X",
            "-A",
            "-t",
            "-c",
            sql,
        ],
    )?;
    if !out.status.success() {
        return Ok(Err(format!(
            "a query on a masked column fails through the agent ({})",
            tail(&out)
        )));
    }
    if out.stdout_text().trim() == clear.trim() {
        return Ok(Err(
            "the proxy returns the masked column in clear (masking is not applied yet)".into(),
        ));
    }
    Ok(Ok(()))
}

/// Starts the agent with one policy file, logging at its production level. `TOKIO_WORKER_THREADS`
/// is passed on when set (to compare runtime sizes).
fn start_agent(agent_bin: &Path, policy: &str) -> Result<AgentProcess> {
    let mut env = vec![("RUST_LOG".into(), "info".into())];
    if let Ok(threads) = std::env::var("TOKIO_WORKER_THREADS") {
        env.push(("TOKIO_WORKER_THREADS".into(), threads));
    }
    AgentProcess::start_with(AgentOptions {
        policy_files: vec![("bench.toml".into(), policy.into())],
        agent_bin: Some(agent_bin.to_path_buf()),
        env,
        ..AgentOptions::default()
    })
}

/// `agent check` on a directory holding `policy`: `Ok(Err(first error line))` when refused.
fn check_policy(
    agent_bin: &Path,
    work: &tempfile::TempDir,
    policy: &str,
) -> Result<std::result::Result<(), String>> {
    let dir = work.path().join("check-full");
    fs::create_dir_all(&dir)?;
    fs::write(dir.join("bench.toml"), policy)?;
    let out = run_with_timeout(
        Command::new(agent_bin).arg("check").arg(&dir),
        Duration::from_secs(60),
    )?;
    if out.status.success() {
        return Ok(Ok(()));
    }
    let reason = out
        .stderr_text()
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("refused")
        .replace(&format!("{}/", dir.display()), "")
        .trim()
        .to_string();
    Ok(Err(reason))
}

/// Runs `cmd` with stdout to /dev/null and stderr to `stderr_path`, killed after `timeout`.
fn run_discarding_stdout(
    cmd: &mut Command,
    stderr_path: &Path,
    timeout: Duration,
) -> Result<std::process::ExitStatus> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(stderr_path)?)
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe_command(cmd)))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{}` did not finish within {timeout:?} and was killed",
                describe_command(cmd)
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// CPU times of a process from `/proc/<pid>/stat`, in clock ticks.
#[derive(Debug, Clone, Copy)]
struct Ticks {
    utime: u64,
    stime: u64,
    cutime: u64,
    cstime: u64,
    ppid: u32,
}

impl Ticks {
    /// The process's own CPU (all its threads).
    fn own(self) -> u64 {
        self.utime + self.stime
    }
}

fn parse_stat(stat: &str) -> Option<Ticks> {
    // The command name (field 2) is in parentheses and may hold spaces: fields after the last
    // `)` start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Ticks {
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
    })
}

fn process_ticks(pid: u32) -> Result<Ticks> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat (has the process exited?)"))?;
    parse_stat(&stat).with_context(|| format!("cannot parse /proc/{pid}/stat: {stat}"))
}

/// All the CPU PostgreSQL used so far: the postmaster's own and its reaped children's
/// (backends that ended), plus its live children's.
fn postgres_ticks(postmaster: u32) -> Result<u64> {
    let main = process_ticks(postmaster)?;
    let mut total = main.own() + main.cutime + main.cstime;
    for entry in fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A child may end between the listing and the read: skip it.
        if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat"))
            && let Some(ticks) = parse_stat(&stat)
            && ticks.ppid == postmaster
        {
            total += ticks.own();
        }
    }
    Ok(total)
}

fn postmaster_pid(pg: &PgServer) -> Result<u32> {
    let path = pg.data_dir().join("postmaster.pid");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("no pid in {}", path.display()))
}

fn clock_ticks() -> Result<f64> {
    let out = run_with_timeout(
        Command::new("getconf").arg("CLK_TCK"),
        Duration::from_secs(10),
    )?;
    let ticks: f64 = out
        .stdout_text()
        .trim()
        .parse()
        .context("cannot read `getconf CLK_TCK`")?;
    if ticks <= 0.0 {
        bail!("getconf CLK_TCK says {ticks}");
    }
    Ok(ticks)
}

fn vm_rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// The latencies (µs) of pgbench's per-transaction logs in `dir` (`client_id
/// transaction_no time script_no time_epoch time_us ...`; `time` is `failed` or `skipped` for
/// transactions that did not complete).
fn read_latencies(dir: &Path) -> Result<Vec<u64>> {
    let mut latencies = Vec::new();
    for entry in fs::read_dir(dir)? {
        let text = fs::read_to_string(entry?.path())?;
        latencies.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok()),
        );
    }
    Ok(latencies)
}

/// The `p`-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// The number right after `label` in `text` (`tps = 123.4 (...)`, `...: 5678`).
fn field_after(text: &str, label: &str) -> Option<f64> {
    let rest = &text[text.find(label)? + label.len()..];
    let number: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number.parse().ok()
}

/// The end of a command's output, for error messages.
fn tail(out: &Output) -> String {
    let text = format!("{}\n{}", out.stdout_text(), out.stderr_text());
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    format!("{}: {}", out.status, lines[start..].join(" | "))
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line
    }
}

fn describe_run(run: &PgbenchRun) -> String {
    let mut text = format!(
        "{:>8.0} tps  avg {:>7.1} µs  p99 {:>8.1} µs  PG {:>6.1} µs/tx",
        run.tps, run.avg_us, run.p99_us, run.pg_cpu_us
    );
    if let Some(cpu) = run.proxy_cpu_us {
        let _ = write!(text, "  proxy {cpu:>6.1} µs/tx");
    }
    text
}

fn per_connection_kib(run: &MemoryRun) -> f64 {
    (run.after_kib as f64 - run.before_kib as f64) / f64::from(IDLE_CONNECTIONS)
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// First line of a command's stdout, or `?`.
fn first_line(cmd: &mut Command) -> String {
    run_with_timeout(cmd, Duration::from_secs(30))
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| o.stdout_text().lines().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn machine_facts(env: &Env, agent_bin: &Path) -> Result<Vec<(String, String)>> {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "?".into());
    let cores = thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    let root = agent_tests::workspace_root();
    let commit =
        first_line(
            Command::new("git")
                .arg("-C")
                .arg(&root)
                .args(["rev-parse", "--short", "HEAD"]),
        );
    let dirty = run_with_timeout(
        Command::new("git").arg("-C").arg(&root).args([
            "status",
            "--porcelain",
            "--untracked-files=no",
        ]),
        Duration::from_secs(30),
    )
    .map(|o| !o.stdout_text().trim().is_empty())
    .unwrap_or(false);
    let agent = format!(
        "{} ({}commit {commit}{})",
        agent_bin.strip_prefix(&root).unwrap_or(agent_bin).display(),
        if agent_bin.ends_with("release/agent") {
            "release build, "
        } else {
            ""
        },
        if dirty {
            " with uncommitted changes"
        } else {
            ""
        }
    );
    Ok(vec![
        (
            "Date".into(),
            first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        ),
        (
            "Kernel".into(),
            fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into()),
        ),
        ("CPU".into(), cpu),
        ("Cores".into(), cores),
        ("Memory".into(), memory),
        (
            "PostgreSQL".into(),
            first_line(Command::new(env.pg.bin_dir().join("postgres")).arg("--version")),
        ),
        (
            "PgBouncer".into(),
            PgBouncer::version().unwrap_or_else(|_| "?".into()),
        ),
        (
            "pgbench".into(),
            first_line(Command::new(&env.pgbench).arg("--version")),
        ),
        ("Agent".into(), agent),
    ])
}

// ------------------------------------------------------------------------------------------
// The report
// ------------------------------------------------------------------------------------------

/// Min, median and max.
#[derive(Debug, Clone, Copy)]
struct Stats {
    min: f64,
    median: f64,
    max: f64,
    n: usize,
}

fn stats(values: impl IntoIterator<Item = f64>) -> Option<Stats> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Stats {
        min: v[0],
        median,
        max: v[n - 1],
        n,
    })
}

/// A number with a precision that suits its size.
fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// `median (min–max)`, or just the value for a single run.
fn cell(s: Option<Stats>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n == 1 => num(s.median),
        Some(s) => format!("{} ({}–{})", num(s.median), num(s.min), num(s.max)),
    }
}

fn outcome_note<T>(outcome: &Outcome<T>) -> Option<String> {
    match outcome {
        Outcome::Runs(_) => None,
        Outcome::NotSupported(reason) => Some(reason.clone()),
        Outcome::Failed(reason) => Some(format!("FAILED: {reason}")),
    }
}

impl Results {
    fn pgbench_case(
        &self,
        script: Script,
        mode: &str,
        clients: u32,
        setup: Setup,
    ) -> Option<&[PgbenchRun]> {
        self.pgbench
            .iter()
            .find(|c| {
                c.script == script && c.mode == mode && c.clients == clients && c.setup == setup
            })
            .and_then(|c| c.outcome.runs())
    }

    fn median_of(
        &self,
        script: Script,
        mode: &str,
        clients: u32,
        setup: Setup,
        metric: fn(&PgbenchRun) -> Option<f64>,
    ) -> Option<f64> {
        let runs = self.pgbench_case(script, mode, clients, setup)?;
        stats(runs.iter().filter_map(metric)).map(|s| s.median)
    }
}

/// A target's verdict: the measured value (worst case over the cases it applies to) and
/// whether it is met.
struct Verdict {
    target: String,
    setup: String,
    value: String,
    met: Option<bool>,
}

fn targets(r: &Results) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for config in [
        AgentConfig::PolicyOn,
        AgentConfig::Interception,
        AgentConfig::Full,
    ] {
        let agent = Setup::Agent(config);
        let supported = r
            .pgbench
            .iter()
            .any(|c| c.setup == agent && !matches!(c.outcome, Outcome::NotSupported(_)));
        let na = |target: &str| Verdict {
            target: target.into(),
            setup: config.label().into(),
            value: "n/a (not supported by this agent build)".into(),
            met: None,
        };

        // 1. TPS >= 1.2x PgBouncer at 8 and 32 clients.
        let target = "TPS ≥ 1.2× pgbouncer at 8 and 32 clients";
        if !supported {
            verdicts.push(na(target));
        } else {
            let mut ratios: Vec<(f64, String)> = Vec::new();
            for script in &r.plan.scripts {
                for mode in &r.plan.modes {
                    for clients in [8, 32] {
                        let tps = |s| r.median_of(*script, mode, clients, s, |x| Some(x.tps));
                        if let (Some(a), Some(b)) = (tps(agent), tps(Setup::PgBouncer)) {
                            ratios.push((
                                a / b,
                                format!("{} -M {mode}, {clients} clients", script.label()),
                            ));
                        }
                    }
                }
            }
            ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
            verdicts.push(match (ratios.first(), ratios.last()) {
                (Some(worst), Some(best)) => Verdict {
                    target: target.into(),
                    setup: config.label().into(),
                    value: format!(
                        "{:.2}× (worst: {}) … {:.2}× (best: {}), over {} cases",
                        worst.0,
                        worst.1,
                        best.0,
                        best.1,
                        ratios.len()
                    ),
                    met: Some(worst.0 >= 1.2),
                },
                _ => Verdict {
                    target: target.into(),
                    setup: config.label().into(),
                    value: "no data".into(),
                    met: None,
                },
            });
        }

        // 2. Added p50 latency <= 25 µs at 1 client (select-only).
        let target = "added p50 latency ≤ 25 µs at 1 client (select-only)";
        if !supported {
            verdicts.push(na(target));
        } else {
            let mut added: Vec<(f64, &str)> = Vec::new();
            for mode in &r.plan.modes {
                let p50 = |s| r.median_of(Script::SelectOnly, mode, 1, s, |x| Some(x.p50_us));
                if let (Some(a), Some(d)) = (p50(agent), p50(Setup::Direct)) {
                    added.push((a - d, mode));
                }
            }
            let worst = added
                .iter()
                .cloned()
                .fold(None, |acc: Option<(f64, &str)>, x| match acc {
                    Some(a) if a.0 >= x.0 => Some(a),
                    _ => Some(x),
                });
            verdicts.push(Verdict {
                target: target.into(),
                setup: config.label().into(),
                value: if added.is_empty() {
                    "no data".into()
                } else {
                    added
                        .iter()
                        .map(|(v, m)| format!("{:+.1} µs (-M {m})", v))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                met: worst.map(|w| w.0 <= 25.0),
            });
        }

        // 3. Agent CPU < 10 µs per cached select-only statement.
        let target = "agent CPU < 10 µs per select-only statement";
        if !supported {
            verdicts.push(na(target));
        } else {
            let mut cpu: Vec<(f64, String)> = Vec::new();
            for mode in &r.plan.modes {
                for clients in &r.plan.clients {
                    if let Some(v) = r.median_of(Script::SelectOnly, mode, *clients, agent, |x| {
                        x.proxy_cpu_us
                    }) {
                        cpu.push((
                            v,
                            format!(
                                "-M {mode}, {clients} client{}",
                                if *clients == 1 { "" } else { "s" }
                            ),
                        ));
                    }
                }
            }
            cpu.sort_by(|a, b| a.0.total_cmp(&b.0));
            verdicts.push(match (cpu.first(), cpu.last()) {
                (Some(best), Some(worst)) => Verdict {
                    target: target.into(),
                    setup: config.label().into(),
                    value: format!(
                        "{:.1} µs (best: {}) … {:.1} µs (worst: {})",
                        best.0, best.1, worst.0, worst.1
                    ),
                    met: Some(worst.0 < 10.0),
                },
                _ => Verdict {
                    target: target.into(),
                    setup: config.label().into(),
                    value: "no data".into(),
                    met: None,
                },
            });
        }

        // 4. Memory < 4 KiB per idle connection.
        let target = "< 4 KiB agent memory per idle connection";
        let memory = r.memory.iter().find(|m| m.config == config);
        verdicts.push(match memory.map(|m| &m.outcome) {
            Some(Outcome::Runs(runs)) if !runs.is_empty() => {
                let kib = per_connection_kib(&runs[0]);
                Verdict {
                    target: target.into(),
                    setup: config.label().into(),
                    value: format!("{kib:.2} KiB"),
                    met: Some(kib < 4.0),
                }
            }
            Some(Outcome::Failed(reason)) => Verdict {
                target: target.into(),
                setup: config.label().into(),
                value: format!("FAILED: {reason}"),
                met: None,
            },
            _ => na(target),
        });

        // 5. Large result: proxy CPU < 100 ns per row passed through, < 200 ns per row with
        // masking (one masked column).
        let (target, limit) = if config == AgentConfig::Full {
            ("proxy CPU < 200 ns/row, masking on (large result)", 200.0)
        } else {
            ("proxy CPU < 100 ns/row, pass-through (large result)", 100.0)
        };
        let large = r.large.iter().find(|c| c.setup == agent);
        verdicts.push(match large.map(|c| &c.outcome) {
            Some(Outcome::Runs(runs)) if !runs.is_empty() => {
                match stats(
                    runs.iter()
                        .filter_map(|x| x.proxy_cpu_ms)
                        .map(|ms| ms * 1e6 / LARGE_ROWS as f64),
                ) {
                    Some(ns) => Verdict {
                        target: target.into(),
                        setup: config.label().into(),
                        value: format!("{:.0} ns/row", ns.median),
                        met: Some(ns.median < limit),
                    },
                    None => Verdict {
                        target: target.into(),
                        setup: config.label().into(),
                        value: "no data".into(),
                        met: None,
                    },
                }
            }
            Some(Outcome::Failed(reason)) => Verdict {
                target: target.into(),
                setup: config.label().into(),
                value: format!("FAILED: {reason}"),
                met: None,
            },
            _ => na(target),
        });
    }
    verdicts
}

fn render(r: &Results) -> String {
    let mut md = String::new();
    let plan = &r.plan;
    let _ = writeln!(md, "# chunk agent benchmark results\n");
    let _ = writeln!(
        md,
        "Produced by `cargo xtask bench{}` ({} run: {} repetition(s) per case, {} s per pgbench \
         run; {} min in all). Cells are `median (min–max)` over the repetitions.{}\n",
        if plan.quick { " --quick" } else { "" },
        if plan.quick { "quick" } else { "full" },
        plan.repetitions,
        plan.duration,
        r.elapsed.as_secs().div_ceil(60),
        if plan.quick {
            " A quick run is a smoke test: one short repetition, fewer cases; its numbers are \
             indicative only."
        } else {
            ""
        }
    );
    let _ = writeln!(md, "| Machine | |\n|---|---|");
    for (name, value) in &r.facts {
        let _ = writeln!(md, "| {name} | {value} |");
    }

    let _ = writeln!(md, "\n## Targets\n");
    let _ = writeln!(
        md,
        "| Target | Setup | Measured | Met? |\n|---|---|---|---|"
    );
    for v in targets(r) {
        let met = match v.met {
            Some(true) => "**met**",
            Some(false) => "**not met**",
            None => "n/a",
        };
        let _ = writeln!(md, "| {} | {} | {} | {met} |", v.target, v.setup, v.value);
    }
    for (config, what) in [
        (AgentConfig::PolicyOn, "masking off"),
        (AgentConfig::Full, "masking on"),
    ] {
        if let Some(large) = r.large.iter().find(|c| c.setup == Setup::Agent(config))
            && let Some(s) = large
                .outcome
                .runs()
                .and_then(|runs| stats(runs.iter().map(|x| x.seconds)))
        {
            let _ = writeln!(
                md,
                "\nLarge result through `{}` ({what}): {:.0} rows/s, {:.1} MB/s (median).",
                config.label(),
                LARGE_ROWS as f64 / s.median,
                r.large_bytes as f64 / s.median / 1e6
            );
        }
    }

    let _ = writeln!(md, "\n## pgbench\n");
    let _ = writeln!(
        md,
        "Scale {SCALE}, `-n -j min(clients,2) -T {}`, per-transaction logs (`-l`) for the \
         latencies. CPU columns: CPU time (user + system) of the proxy process (the agent or \
         PgBouncer) and of all PostgreSQL processes, divided by the transactions.\n",
        plan.duration
    );
    let _ = writeln!(
        md,
        "| Script | Mode | Clients | Setup | TPS | avg latency µs | p50 µs | p99 µs | proxy CPU \
         µs/tx | PostgreSQL CPU µs/tx |\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|"
    );
    for case in &r.pgbench {
        let row_start = format!(
            "| {} | {} | {} | {} |",
            case.script.label(),
            case.mode,
            case.clients,
            case.setup.label()
        );
        match &case.outcome {
            Outcome::Runs(runs) if !runs.is_empty() => {
                let proxy = if case.setup == Setup::Direct {
                    "–".into()
                } else {
                    cell(stats(runs.iter().filter_map(|x| x.proxy_cpu_us)))
                };
                let _ = writeln!(
                    md,
                    "{row_start} {} | {} | {} | {} | {proxy} | {} |",
                    cell(stats(runs.iter().map(|x| x.tps))),
                    cell(stats(runs.iter().map(|x| x.avg_us))),
                    cell(stats(runs.iter().map(|x| x.p50_us))),
                    cell(stats(runs.iter().map(|x| x.p99_us))),
                    cell(stats(runs.iter().map(|x| x.pg_cpu_us))),
                );
            }
            other => {
                let note = outcome_note(other).unwrap_or_else(|| "no run".into());
                let _ = writeln!(md, "{row_start} {note} | | | | | |");
            }
        }
    }

    let _ = writeln!(md, "\n## Connection setup rate\n");
    let _ = writeln!(
        md,
        "`pgbench -C -S -M simple -c {CONNECT_CLIENTS}`: a new connection (TCP, startup, SCRAM \
         authentication) per transaction; connects/s is pgbench's TPS. Through the agent \
         (policy) each connect is an eBPF redirect, the proxy's identification and an upstream \
         SCRAM login with the injected credentials.\n"
    );
    let _ = writeln!(
        md,
        "| Setup | connects/s | p50 connect+select µs | p99 µs | proxy CPU µs/connect | \
         PostgreSQL CPU µs/connect |\n|---|---:|---:|---:|---:|---:|"
    );
    for case in &r.connect {
        match &case.outcome {
            Outcome::Runs(runs) if !runs.is_empty() => {
                let proxy = if case.setup == Setup::Direct {
                    "–".into()
                } else {
                    cell(stats(runs.iter().filter_map(|x| x.proxy_cpu_us)))
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {proxy} | {} |",
                    case.setup.label(),
                    cell(stats(runs.iter().map(|x| x.tps))),
                    cell(stats(runs.iter().map(|x| x.p50_us))),
                    cell(stats(runs.iter().map(|x| x.p99_us))),
                    cell(stats(runs.iter().map(|x| x.pg_cpu_us))),
                );
            }
            other => {
                let note = outcome_note(other).unwrap_or_else(|| "no run".into());
                let _ = writeln!(md, "| {} | {note} | | | | |", case.setup.label());
            }
        }
    }

    let _ = writeln!(md, "\n## Large result\n");
    let _ = writeln!(
        md,
        "`psql -X -A -t -c \"{LARGE_QUERY}\" > /dev/null`: {LARGE_ROWS} rows, {:.1} MB of \
         output; wall-clock time of psql (connect, query, receive, format). Masking off: \
         `agent (policy)`; masking on: `{}` (the `val` column redacted, `grp` \
         scanned by the content rule). proxy CPU ns/row: the proxy's CPU time divided by the rows.\n",
        r.large_bytes as f64 / 1e6,
        AgentConfig::Full.label()
    );
    let _ = writeln!(
        md,
        "| Setup | seconds | rows/s | MB/s | proxy CPU ms | proxy CPU ns/row |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    for case in &r.large {
        match &case.outcome {
            Outcome::Runs(runs) if !runs.is_empty() => {
                let seconds = stats(runs.iter().map(|x| x.seconds));
                let per = |f: fn(f64) -> f64| stats(runs.iter().map(|x| f(x.seconds)));
                let bytes = r.large_bytes as f64;
                let (proxy, per_row) = if case.setup == Setup::Direct {
                    ("–".into(), "–".into())
                } else {
                    (
                        cell(stats(runs.iter().filter_map(|x| x.proxy_cpu_ms))),
                        cell(stats(
                            runs.iter()
                                .filter_map(|x| x.proxy_cpu_ms)
                                .map(|ms| ms * 1e6 / LARGE_ROWS as f64),
                        )),
                    )
                };
                let rows_per_s = per(|s| LARGE_ROWS as f64 / s);
                let mb_per_s = stats(runs.iter().map(|x| bytes / x.seconds / 1e6));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {proxy} | {per_row} |",
                    case.setup.label(),
                    cell(seconds),
                    cell(rows_per_s),
                    cell(mb_per_s),
                );
            }
            other => {
                let note = outcome_note(other).unwrap_or_else(|| "no run".into());
                let _ = writeln!(md, "| {} | {note} | | | | |", case.setup.label());
            }
        }
    }

    let _ = writeln!(md, "\n## Agent memory with idle connections\n");
    let _ = writeln!(
        md,
        "A fresh agent; VmRSS after one connection, then with {IDLE_CONNECTIONS} idle \
         intercepted connections (one `pgbench -c {IDLE_CONNECTIONS}` under `agent exec` whose \
         clients connect and sleep).\n"
    );
    let _ = writeln!(
        md,
        "| Setup | VmRSS before KiB | VmRSS with {IDLE_CONNECTIONS} KiB | KiB per connection | \
         seconds to open them |\n|---|---:|---:|---:|---:|"
    );
    for case in &r.memory {
        match &case.outcome {
            Outcome::Runs(runs) if !runs.is_empty() => {
                let run = &runs[0];
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:.2} | {:.1} |",
                    case.config.label(),
                    run.before_kib,
                    run.after_kib,
                    per_connection_kib(run),
                    run.connect_seconds
                );
            }
            other => {
                let note = outcome_note(other).unwrap_or_else(|| "no run".into());
                let _ = writeln!(md, "| {} | {note} | | | |", case.config.label());
            }
        }
    }

    if !r.full_notes.is_empty() {
        let _ = writeln!(md, "\n`{}`:\n", AgentConfig::Full.label());
        for note in &r.full_notes {
            let _ = writeln!(md, "- {}", note.replace('`', "'"));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_the_name() {
        let stat = "1234 (tokio (rt) w) S 42 1234 1234 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 \
                    9 0 100 1000000 200 18446744073709551615";
        let t = parse_stat(stat).unwrap();
        assert_eq!(
            (t.ppid, t.utime, t.stime, t.cutime, t.cstime),
            (42, 250, 75, 3, 4)
        );
        assert_eq!(t.own(), 325);
    }

    #[test]
    fn percentiles_and_stats() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7], 99.0), 7.0);
        let s = stats([3.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 2.5, 10.0, 4));
        assert_eq!(cell(stats([5.0])), "5.00");
        assert_eq!(cell(stats([1000.4, 900.0, 1100.0])), "1000 (900–1100)");
    }

    #[test]
    fn reads_pgbench_output_fields() {
        let out = "number of transactions actually processed: 12345\n\
                   number of failed transactions: 0 (0.000%)\n\
                   tps = 2469.123456 (without initial connection time)\n";
        assert_eq!(
            field_after(out, "number of transactions actually processed: "),
            Some(12345.0)
        );
        assert_eq!(
            field_after(out, "number of failed transactions: "),
            Some(0.0)
        );
        assert_eq!(field_after(out, "tps = "), Some(2469.123456));
        assert_eq!(field_after(out, "nothing: "), None);
    }

    #[test]
    fn policies_render() {
        let secret = Path::new("/s/pw");
        let tcp = AgentConfig::Interception.policy(5432, secret, "x = 1");
        assert!(tcp.contains("protocol = \"tcp\""), "{tcp}");
        let policy = AgentConfig::PolicyOn.policy(5432, secret, "x = 1");
        assert!(policy.contains("[[workload.access]]"), "{policy}");
        assert!(policy.contains("public.pgbench_*"), "{policy}");
        assert!(!policy.contains("mask"), "{policy}");
        let full = AgentConfig::Full.policy(5432, secret, MASKING_LINES);
        assert!(full.contains(MASKING_LINES), "{full}");
        assert!(!policy.contains("x = 1"), "{policy}");
    }
}
