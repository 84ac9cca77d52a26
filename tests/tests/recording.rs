//! End-to-end tests of session recording: a real session through the interception is recorded
//! before its statements run, replays as it happened, verifies, detects tampering, and keeps no
//! secret or literal value. Real kernel, real PostgreSQL, real psql.

#![forbid(unsafe_code)]

use agent_tests::policy::PostgresPolicy;
use agent_tests::{
    AgentOptions, AgentProcess, OutputExt, PgAuth, PgOptions, PgServer, Secret, action_of,
    loopback_addresses, run_with_timeout,
};
use anyhow::{Context, Result, ensure};
use std::process::Command;
use std::time::Duration;

const WORKLOAD: &str = "itest-recorded";
const TARGET: &str = "itest-recdb";
const LITERAL: &str = "literal-7f3a-never-recorded";

struct Setup {
    pg: PgServer,
    secret: Secret,
    agent: AgentProcess,
}

fn setup() -> Result<Setup> {
    setup_with("", "")
}

/// `access`: more lines of the access table; `workload`: lines of a `[workload.recording]`
/// table (none when empty).
fn setup_with(access: &str, recording: &str) -> Result<Setup> {
    let pg = PgServer::start(PgOptions {
        auth: PgAuth::Scram,
        ..PgOptions::default()
    })?;
    let secret = Secret::random("Rec-Secret-")?;
    pg.create_login_role("chunker", secret.value())?;
    pg.admin_sql(
        "create table items (id int primary key, label text); \
         insert into items values (1, 'one'), (2, 'two'); \
         grant all on items to chunker",
    )?;
    let mut policy = PostgresPolicy::new(
        WORKLOAD,
        TARGET,
        loopback_addresses(pg.port()),
        "chunker",
        &secret.path(),
    );
    policy.access = Some(format!(
        "allow = [{{ name = \"read-items\", operations = [\"read\"], tables = [\"public.items\"] }}]\n{access}"
    ));
    let mut toml = policy.to_toml();
    if !recording.is_empty() {
        toml.push_str(&format!("\n[workload.recording]\n{recording}\n"));
    }
    // A declared workload that never runs: `agent report` lists it as an identity to retire.
    toml.push_str(&format!(
        "\n[[workload]]\nname = \"itest-idle\"\ntargets = [\"{TARGET}\"]\n\n\
         [[workload.access]]\ntarget = \"{TARGET}\"\n"
    ));
    let agent = AgentProcess::start_with(AgentOptions::with_policy(&toml))?;
    Ok(Setup { pg, secret, agent })
}

fn agent_cmd() -> Command {
    Command::new(agent_tests::agent_bin())
}

fn run(cmd: &mut Command) -> Result<std::process::Output> {
    run_with_timeout(cmd, Duration::from_secs(60))
}

/// psql as a job of the workload, reading `sql` on its standard input: the recording's header
/// keeps psql's command line, and the test's literal must only ever travel in the SQL.
fn psql_job(s: &Setup, sql: &str) -> Result<std::process::Output> {
    let script = format!(
        "psql -h 127.0.0.1 -p {} -U jobuser -d postgres -X -w -v ON_ERROR_STOP=1 -f - <<'SQL'\n{sql}\nSQL\n",
        s.pg.port()
    );
    s.agent.exec(WORKLOAD, &["sh", "-c", &script])
}

fn wait_recorded(agent: &AgentProcess) -> Result<()> {
    agent.wait_for_event(
        |e| action_of(e) == "session-recorded",
        Duration::from_secs(10),
    )?;
    Ok(())
}

#[test]
fn a_session_is_recorded_replays_verifies_and_detects_tampering() -> Result<()> {
    let s = setup()?;
    let out = psql_job(
        &s,
        &format!("select label from items where label <> '{LITERAL}' order by id"),
    )?;
    ensure!(out.status.success(), "{}", out.describe());
    let denied = psql_job(&s, "delete from items")?;
    ensure!(!denied.status.success(), "the delete should be denied");
    wait_recorded(&s.agent)?;
    s.agent.wait_for_event(
        |e| {
            action_of(e) == "session-recorded"
                && agent_tests::audit::JsonPath::str_at(e, "chunk.connection_id") != Some("1")
        },
        Duration::from_secs(10),
    )?;

    let files = s.agent.recordings();
    ensure!(files.len() == 2, "two sessions, two recordings: {files:?}");
    for file in &files {
        let verify = run(agent_cmd().arg("verify").arg(file))?;
        ensure!(verify.status.success(), "{}", verify.describe());
        let text = std::fs::read_to_string(file)?;
        ensure!(!text.contains(LITERAL), "a literal value was recorded");
        ensure!(
            !text.contains(s.secret.value()),
            "the password was recorded"
        );
    }

    // The first session replays with its statement, decision and result.
    let session = files[0]
        .file_stem()
        .context("file name")?
        .to_string_lossy()
        .into_owned();
    let data_dir = s.agent.data_dir();
    let replay = run(agent_cmd()
        .args(["replay", "--instant", "--data-dir"])
        .arg(&data_dir)
        .arg(&session))?;
    ensure!(replay.status.success(), "{}", replay.describe());
    let shown = replay.stdout_text();
    ensure!(shown.contains("select label from items"), "{shown}");
    ensure!(shown.contains("read-items"), "the decision's rule: {shown}");
    ensure!(shown.contains(WORKLOAD), "{shown}");
    let second = std::fs::read_to_string(&files[1])?;
    ensure!(
        second.contains("\"statement-denied\"") || second.contains("deny"),
        "{second}"
    );

    // `agent sessions` lists both; `agent report` counts them and names the idle workload.
    let sessions = run(agent_cmd().args(["sessions", "--data-dir"]).arg(&data_dir))?;
    ensure!(sessions.status.success(), "{}", sessions.describe());
    ensure!(
        sessions.stdout_text().matches(WORKLOAD).count() >= 2,
        "{}",
        sessions.describe()
    );
    let report = run(agent_cmd()
        .args(["report", "--data-dir"])
        .arg(&data_dir)
        .arg("--policies")
        .arg(s.agent.policy_dir()))?;
    ensure!(report.status.success(), "{}", report.describe());
    ensure!(
        report.stdout_text().contains("itest-idle"),
        "{}",
        report.describe()
    );

    // One byte changed anywhere after the header: verify names the first bad entry.
    let tampered = s.agent.data_dir().join("tampered.jsonl");
    let mut bytes = std::fs::read(&files[0])?;
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&tampered, &bytes)?;
    let verify = run(agent_cmd().arg("verify").arg(&tampered))?;
    ensure!(
        !verify.status.success(),
        "tampering not detected: {}",
        verify.describe()
    );
    ensure!(
        verify.stdout_text().contains("entry") || verify.stderr_text().contains("entry"),
        "{}",
        verify.describe()
    );
    Ok(())
}

#[test]
fn an_unwritable_recording_directory_refuses_the_session_by_default() -> Result<()> {
    let s = setup()?;
    // Make the sessions directory unusable: a file where the next recording must go is not
    // enough (names are unique), so replace the directory by a file.
    let sessions = s.agent.data_dir().join("sessions");
    std::fs::remove_dir_all(&sessions)?;
    std::fs::write(&sessions, "not a directory")?;
    let out = psql_job(&s, "select 1")?;
    ensure!(
        !out.status.success(),
        "the session must be refused: {}",
        out.describe()
    );
    ensure!(
        out.stderr_text().contains("cannot record"),
        "{}",
        out.describe()
    );
    s.agent.wait_for_event(
        |e| action_of(e) == "recording-failed",
        Duration::from_secs(10),
    )?;
    Ok(())
}

#[test]
fn policy_keeps_bind_values_and_masked_rows_and_can_continue_unrecorded() -> Result<()> {
    let s = setup_with(
        "mask = [{ name = \"labels\", columns = [\"public.items.label\"], strategy = \"redact\" }]",
        "bind_values = \"keep\"\nresult_rows = 1\non_error = \"continue\"",
    )?;
    // psycopg binds the parameter server-side (extended protocol).
    let script = format!(
        "import psycopg\n\
         with psycopg.connect(host='127.0.0.1', port={}, user='jobuser', dbname='postgres') as c:\n\
         \x20   print(c.execute('select id, label from items where label <> %s order by id', ['{LITERAL}']).fetchall())\n",
        s.pg.port()
    );
    let out = s.agent.exec(WORKLOAD, &["python3", "-c", &script])?;
    ensure!(out.status.success(), "{}", out.describe());
    ensure!(
        out.stdout_text().contains("[REDACTED]"),
        "{}",
        out.describe()
    );
    wait_recorded(&s.agent)?;
    let file = s
        .agent
        .recordings()
        .into_iter()
        .next()
        .context("a recording")?;
    let text = std::fs::read_to_string(&file)?;
    // The policy keeps bind values: the parameter is in the recording.
    ensure!(text.contains(LITERAL), "bind value not kept:\n{text}");
    // One result row is kept, as the job received it: masked.
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"type\":\"rows\""))
        .collect();
    ensure!(rows.len() == 1, "one rows entry expected:\n{text}");
    ensure!(
        rows[0].contains("[REDACTED]") && !rows[0].contains("\"one\""),
        "{}",
        rows[0]
    );
    ensure!(
        !rows[0].contains("\"two\""),
        "only result_rows = 1 row: {}",
        rows[0]
    );
    let replay = run(agent_cmd()
        .args(["replay", "--instant", "--data-dir"])
        .arg(s.agent.data_dir())
        .arg(file.file_stem().context("stem")?))?;
    ensure!(replay.status.success(), "{}", replay.describe());

    // on_error = "continue": a recording that cannot be written lets the session run, with
    // an audit event.
    let sessions = s.agent.data_dir().join("sessions");
    std::fs::remove_dir_all(&sessions)?;
    std::fs::write(&sessions, "not a directory")?;
    let out = psql_job(&s, "select count(*) from items")?;
    ensure!(out.status.success(), "{}", out.describe());
    s.agent.wait_for_event(
        |e| action_of(e) == "recording-failed",
        Duration::from_secs(10),
    )?;
    Ok(())
}
