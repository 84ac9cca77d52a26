//! `pg-scenarios <host> <port> <scenario> [args...]`: a PostgreSQL client (tokio-postgres, or
//! raw protocol messages) that runs one scenario against `host:port` and prints one JSON object
//! with what it saw on stdout.
//!
//! It connects as user `jobuser` (a role that does not exist upstream: only credential injection
//! by the agent's proxy lets it in), database `postgres`, without a password and without TLS
//! (`NoTls`: the hop to the agent is host-local). The end-to-end tests run it under
//! `agent exec`, so that its connections go through the eBPF interception.
//!
//! Exit status 0 when the scenario ran and its own checks held; otherwise non-zero, with the
//! error on stderr (`... (SQLSTATE XXXXX)` for database errors) and a JSON object
//! `{"ok": false, "error": ..., "sqlstate": ..., "severity": ..., "message": ...}` on stdout.
//!
//! tokio-postgres scenarios: `queries`, `transaction`, `prepared`, `binary`, `cancel`, `copy`,
//! `notify`, `large`, `pipeline`, `cancel-unknown`.
//! Raw-protocol scenarios: `raw-startup [--ssl-request] [--gssenc-request] [name=value...]`
//! (startup, then report every message until ReadyForQuery, an error or EOF), `malformed`
//! (startup, then a Query message whose length field is 2: reports what comes back and whether
//! the connection is closed), `cancel-raw` (CancelRequests with a wrong and with the right key).
//!
//! `rows SQL...`: runs each statement three ways, simple protocol (text results), extended
//! protocol (binary results) and a statement prepared once and run twice, and reports every
//! row as strings (`null` for NULL); the masking tests read what the job received.
//!
//! Policy-enforcement scenarios (they expect the tables of `tests/tests/policy_enforcement.rs`:
//! `public.t (id int4, v text)` with ids 1 to 5 and an empty `staging.x (id int4, v text)`, and
//! an access policy that allows reading `public.*` and writing `staging.*` only):
//! `policy-extended` (denied statements over the extended protocol, reported, not failed on),
//! `function-call` (a raw FunctionCall message: reports the response and whether the session
//! is still usable), `policy-extended-raw` (raw extended-protocol batches holding a denied
//! Parse, Describe or Bind: reports the exact backend messages of each batch).

#![forbid(unsafe_code)]

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use std::pin::pin;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, SimpleQueryMessage};

/// The user the job claims to be: it does not exist upstream.
const JOB_USER: &str = "jobuser";
const DBNAME: &str = "postgres";
/// How long any single network wait may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: pg-scenarios <host> <port> <scenario> [args...]\n\
    scenarios: queries transaction prepared binary cancel copy notify large pipeline \
    cancel-unknown raw-startup malformed cancel-raw policy-extended function-call \
    policy-extended-raw rows";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let host = args[0].clone();
    let Ok(port) = args[1].parse::<u16>() else {
        eprintln!("invalid port {:?}\n{USAGE}", args[1]);
        return ExitCode::from(2);
    };
    let scenario = args[2].clone();
    let rest = args[3..].to_vec();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = Target { host, port };
    let result = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), run(&target, &scenario, &rest))
            .await
            .unwrap_or_else(|_| Err(anyhow!("scenario {scenario} did not finish within 300 s")))
    });
    match result {
        Ok(mut value) => {
            if let Value::Object(map) = &mut value {
                map.insert("ok".into(), Value::Bool(true));
                map.insert("scenario".into(), Value::String(scenario));
            }
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let report = error_report(&e);
            eprintln!(
                "pg-scenarios {scenario}: error: {e:#}{}",
                sqlstate_suffix(&e)
            );
            println!("{report}");
            ExitCode::FAILURE
        }
    }
}

/// The first tokio-postgres error in `e`'s chain.
fn pg_error(e: &anyhow::Error) -> Option<&tokio_postgres::Error> {
    e.chain()
        .find_map(|c| c.downcast_ref::<tokio_postgres::Error>())
}

fn sqlstate_suffix(e: &anyhow::Error) -> String {
    match pg_error(e).and_then(tokio_postgres::Error::code) {
        Some(code) => format!(" (SQLSTATE {})", code.code()),
        None => String::new(),
    }
}

fn error_report(e: &anyhow::Error) -> Value {
    let mut report = json!({ "ok": false, "error": format!("{e:#}") });
    if let Some(pg) = pg_error(e) {
        report["sqlstate"] = json!(pg.code().map(|c| c.code()));
        if let Some(db) = pg.as_db_error() {
            report["severity"] = json!(db.severity());
            report["message"] = json!(db.message());
            report["detail"] = json!(db.detail());
        }
    }
    report
}

struct Target {
    host: String,
    port: u16,
}

impl Target {
    fn config(&self) -> Config {
        let mut config = Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(JOB_USER)
            .dbname(DBNAME)
            .connect_timeout(IO_TIMEOUT);
        config
    }

    /// A connected client whose connection runs in a background task.
    async fn connect(&self) -> Result<Client> {
        let (client, connection) = self
            .config()
            .connect(NoTls)
            .await
            .with_context(|| format!("cannot connect to {}:{}", self.host, self.port))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("connection error: {e}");
            }
        });
        Ok(client)
    }

    async fn tcp(&self) -> Result<TcpStream> {
        let addr = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&addr))
            .await
            .map_err(|_| anyhow!("TCP connect to {addr} timed out"))?
            .with_context(|| format!("cannot connect to {addr}"))
    }
}

async fn run(target: &Target, scenario: &str, rest: &[String]) -> Result<Value> {
    match scenario {
        "queries" => queries(target).await,
        "transaction" => transaction(target).await,
        "prepared" => prepared(target).await,
        "binary" => binary(target).await,
        "cancel" => cancel(target).await,
        "copy" => copy(target).await,
        "notify" => notify(target).await,
        "large" => large(target).await,
        "pipeline" => pipeline(target).await,
        "cancel-unknown" => cancel_unknown(target).await,
        "raw-startup" => raw_startup(target, rest).await,
        "malformed" => malformed(target).await,
        "cancel-raw" => cancel_raw(target).await,
        "policy-extended" => policy_extended(target).await,
        "function-call" => function_call(target).await,
        "policy-extended-raw" => policy_extended_raw(target).await,
        "rows" => rows(target, rest).await,
        other => bail!("unknown scenario {other:?}\n{USAGE}"),
    }
}

// ------------------------------------------------------------------------------------------
// tokio-postgres scenarios
// ------------------------------------------------------------------------------------------

/// `rows SQL...`: see the module documentation.
async fn rows(target: &Target, statements: &[String]) -> Result<Value> {
    let client = target.connect().await?;
    let mut report = Vec::new();
    for sql in statements {
        let mut simple = Vec::new();
        for message in client.simple_query(sql).await? {
            if let SimpleQueryMessage::Row(row) = message {
                simple.push(Value::Array(
                    (0..row.len()).map(|i| json!(row.get(i))).collect(),
                ));
            }
        }
        let extended: Vec<Value> = client
            .query(sql.as_str(), &[])
            .await?
            .iter()
            .map(binary_row)
            .collect::<Result<_>>()?;
        let statement = client.prepare(sql).await?;
        let mut prepared = Vec::new();
        for _ in 0..2 {
            let rows = client.query(&statement, &[]).await?;
            prepared.push(Value::Array(
                rows.iter().map(binary_row).collect::<Result<_>>()?,
            ));
        }
        report.push(json!({
            "sql": sql,
            "simple": simple,
            "extended": extended,
            "prepared": prepared,
        }));
    }
    Ok(json!({ "ok": true, "statements": report }))
}

/// A row received in binary format, each value as a string.
fn binary_row(row: &tokio_postgres::Row) -> Result<Value> {
    let mut cells = Vec::new();
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let cell = if *ty == Type::INT4 {
            json!(row.try_get::<_, Option<i32>>(i)?.map(|v| v.to_string()))
        } else if *ty == Type::INT8 {
            json!(row.try_get::<_, Option<i64>>(i)?.map(|v| v.to_string()))
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            json!(row.try_get::<_, Option<String>>(i)?)
        } else {
            bail!(
                "column {} has type {ty}, which the rows scenario does not read",
                column.name()
            )
        };
        cells.push(cell);
    }
    Ok(Value::Array(cells))
}

/// Who the session runs as, as seen by the server.
async fn session_identity(client: &Client) -> Result<Value> {
    let row = client
        .query_one(
            "select current_user::text, session_user::text, \
             coalesce(application_name, '')::text \
             from pg_stat_activity where pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(json!({
        "current_user": row.get::<_, String>(0),
        "session_user": row.get::<_, String>(1),
        "application_name": row.get::<_, String>(2),
    }))
}

async fn queries(target: &Target) -> Result<Value> {
    let client = target.connect().await?;
    let messages = client
        .simple_query("select 1 as one; select 'two' as two, null::text as nothing; select 3")
        .await?;
    let mut simple_rows = Vec::new();
    let mut command_tags = Vec::new();
    for message in &messages {
        match message {
            SimpleQueryMessage::Row(row) => {
                let cells: Vec<Value> = (0..row.len())
                    .map(|i| json!(row.get(i).map(str::to_string)))
                    .collect();
                simple_rows.push(Value::Array(cells));
            }
            SimpleQueryMessage::CommandComplete(n) => command_tags.push(json!(n)),
            _ => {}
        }
    }
    let row = client
        .query(
            "select $1::int4 + $2::int4 as sum, $3::text || '!' as shout",
            &[&40i32, &2i32, &"hey"],
        )
        .await?;
    ensure!(row.len() == 1, "expected one row, got {}", row.len());
    let sum: i32 = row[0].get(0);
    let shout: String = row[0].get(1);
    let many = client
        .query(
            "select g from generate_series(1, 5) g where g > $1",
            &[&2i32],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, i32>(0))
        .collect::<Vec<_>>();
    let error = client
        .simple_query("select nonexistent_column_xyz from pg_class")
        .await
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_string()));
    // The session still works after an error.
    let after_error: i32 = client.query_one("select 5", &[]).await?.get(0);
    let mut out = json!({
        "simple_rows": simple_rows,
        "simple_command_complete": command_tags,
        "sum": sum,
        "shout": shout,
        "filtered": many,
        "error_sqlstate": error,
        "after_error": after_error,
    });
    merge(&mut out, session_identity(&client).await?);
    Ok(out)
}

async fn count(client: &Client) -> Result<i64> {
    Ok(client
        .query_one("select count(*) from t", &[])
        .await?
        .get(0))
}

async fn transaction(target: &Target) -> Result<Value> {
    let mut client = target.connect().await?;
    client
        .batch_execute("create temp table t (id int4 primary key, v text)")
        .await?;
    let tx = client.transaction().await?;
    tx.execute("insert into t values (1, 'a'), (2, 'b')", &[])
        .await?;
    let inside: i64 = tx.query_one("select count(*) from t", &[]).await?.get(0);
    tx.rollback().await?;
    let after_rollback = count(&client).await?;

    let mut tx = client.transaction().await?;
    tx.execute("insert into t values ($1, $2)", &[&3i32, &"c"])
        .await?;
    {
        let sp = tx.savepoint("sp1").await?;
        sp.execute("insert into t values (4, 'd')", &[]).await?;
        sp.rollback().await?;
    }
    tx.commit().await?;
    let after_commit = count(&client).await?;

    // An error inside a transaction: the transaction is aborted, a rollback recovers.
    let tx = client.transaction().await?;
    let error = tx
        .query("select 1 / 0", &[])
        .await
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_string()));
    let in_failed = tx
        .query("select 1", &[])
        .await
        .err()
        .and_then(|e| e.code().map(|c| c.code().to_string()));
    tx.rollback().await?;
    let after_error = count(&client).await?;

    // Transaction control with the simple protocol.
    client
        .batch_execute("begin; insert into t values (10, 'x'); rollback")
        .await?;
    let after_simple_rollback = count(&client).await?;

    Ok(json!({
        "inside": inside,
        "after_rollback": after_rollback,
        "after_commit": after_commit,
        "error_sqlstate": error,
        "in_failed_sqlstate": in_failed,
        "after_error": after_error,
        "after_simple_rollback": after_simple_rollback,
    }))
}

async fn prepared(target: &Target) -> Result<Value> {
    let client = target.connect().await?;
    let stmt = client.prepare("select $1::int8 * 2, $2::text").await?;
    let mut sum = 0i64;
    let mut last = String::new();
    for i in 0..100i64 {
        let row = client.query_one(&stmt, &[&i, &format!("n{i}")]).await?;
        sum += row.get::<_, i64>(0);
        last = row.get(1);
    }
    // A second named statement, used interleaved with the first one.
    let other = client.prepare_typed("select $1 + 1", &[Type::INT4]).await?;
    let a: i32 = client.query_one(&other, &[&41i32]).await?.get(0);
    let b: i64 = client.query_one(&stmt, &[&21i64, &"x"]).await?.get(0);
    Ok(json!({
        "executions": 100,
        "sum": sum,
        "last": last,
        "params": stmt.params().len(),
        "columns": stmt.columns().len(),
        "interleaved": [a, b],
    }))
}

/// A UUID in binary format (16 bytes), without the uuid crate.
struct RawUuid([u8; 16]);

impl<'a> FromSql<'a> for RawUuid {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawUuid(raw.try_into()?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::UUID
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn micros_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

async fn binary(target: &Target) -> Result<Value> {
    let client = target.connect().await?;
    let row = client
        .query_one(
            "select 42::int4, 9000000000::int8, 3.5::float8, 'héllo wörld'::text, \
             '\\xdeadbeef00ff'::bytea, true, '2024-01-02 03:04:05.678'::timestamp, \
             'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, null::int4, 32767::int2, \
             1.25::float4, '2024-01-02 03:04:05.678+00'::timestamptz",
            &[],
        )
        .await?;
    let bytea: Vec<u8> = row.get(4);
    let timestamp: SystemTime = row.get(6);
    let uuid: RawUuid = row.get(7);
    let null_int4: Option<i32> = row.get(8);
    let timestamptz: SystemTime = row.get(11);

    // Round trip: binary parameters in, binary results out.
    let ts = UNIX_EPOCH + Duration::from_micros(1_704_164_645_678_000);
    let blob: Vec<u8> = (0..=255u8).collect();
    let back = client
        .query_one(
            "select $1::int4, $2::int8, $3::float8, $4::text, $5::bytea, $6::bool, \
             $7::timestamp, $8::int4",
            &[
                &-7i32,
                &i64::MIN,
                &-0.125f64,
                &"ünïcødé ✓",
                &blob,
                &false,
                &ts,
                &None::<i32>,
            ],
        )
        .await?;
    let roundtrip_equal = back.get::<_, i32>(0) == -7
        && back.get::<_, i64>(1) == i64::MIN
        && back.get::<_, f64>(2) == -0.125
        && back.get::<_, String>(3) == "ünïcødé ✓"
        && back.get::<_, Vec<u8>>(4) == blob
        && !back.get::<_, bool>(5)
        && back.get::<_, SystemTime>(6) == ts
        && back.get::<_, Option<i32>>(7).is_none();

    Ok(json!({
        "int4": row.get::<_, i32>(0),
        "int8": row.get::<_, i64>(1),
        "float8": row.get::<_, f64>(2),
        "text": row.get::<_, String>(3),
        "bytea_hex": hex(&bytea),
        "bool": row.get::<_, bool>(5),
        "timestamp_micros": micros_since_epoch(timestamp),
        "uuid_hex": hex(&uuid.0),
        "null_int4": null_int4,
        "int2": row.get::<_, i16>(9),
        "float4": row.get::<_, f32>(10),
        "timestamptz_micros": micros_since_epoch(timestamptz),
        "roundtrip_equal": roundtrip_equal,
    }))
}

async fn cancel(target: &Target) -> Result<Value> {
    let client = target.connect().await?;
    // A second session watches for the sleep to be running, so that the cancel is sent while
    // it runs (a cancel that arrives before the query starts is ignored by the server).
    let watcher = target.connect().await?;
    let mut results = Vec::new();
    for protocol in ["simple", "extended"] {
        let token = client.cancel_token();
        let pid: i32 = client
            .query_one("select pg_backend_pid()", &[])
            .await?
            .get(0);
        let watcher = &watcher;
        let canceller = async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let running: i64 = watcher
                    .query_one(
                        "select count(*) from pg_stat_activity \
                         where pid = $1 and state = 'active' and query like '%pg_sleep(30)%'",
                        &[&pid],
                    )
                    .await?
                    .get(0);
                if running > 0 || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let sent = Instant::now();
            token.cancel_query(NoTls).await?;
            Ok::<_, tokio_postgres::Error>(sent)
        };
        let started = Instant::now();
        let query = tokio::time::timeout(Duration::from_secs(15), async {
            let outcome = match protocol {
                "simple" => client.simple_query("select pg_sleep(30)").await.map(drop),
                _ => client.query("select pg_sleep(30)", &[]).await.map(drop),
            };
            (outcome, Instant::now())
        });
        let (outcome, sent) = tokio::join!(query, canceller);
        let sent = sent.context("cancel_query failed")?;
        let (outcome, finished) = match outcome {
            Ok((outcome, finished)) => (Ok(outcome), finished),
            Err(elapsed) => (Err(elapsed), Instant::now()),
        };
        let elapsed = finished.duration_since(started);
        let sqlstate = match outcome {
            Err(_) => bail!("{protocol}: pg_sleep(30) was not cancelled within 15 s"),
            Ok(Ok(())) => bail!("{protocol}: pg_sleep(30) completed: it was not cancelled"),
            Ok(Err(e)) => e
                .code()
                .map(|c| c.code().to_string())
                .ok_or_else(|| anyhow!("{protocol}: error without SQLSTATE: {e}"))?,
        };
        let after_cancel_ms = finished.saturating_duration_since(sent).as_millis();
        results.push(json!({
            "protocol": protocol,
            "sqlstate": sqlstate,
            "elapsed_ms": elapsed.as_millis(),
            "after_cancel_ms": after_cancel_ms,
        }));
    }
    let usable_after: i32 = client.query_one("select 11", &[]).await?.get(0);
    Ok(json!({ "cancels": results, "usable_after": usable_after }))
}

async fn copy(target: &Target) -> Result<Value> {
    const ROWS: usize = 10_000;
    let client = target.connect().await?;
    client
        .batch_execute("create temp table c (id int4, name text)")
        .await?;
    let sink = client
        .copy_in::<_, Bytes>("copy c (id, name) from stdin")
        .await?;
    let mut sink = pin!(sink);
    let mut chunk = String::new();
    let mut expected_out_bytes = 0usize;
    for i in 0..ROWS {
        let line = format!("{i}\tname-{i}\n");
        expected_out_bytes += line.len();
        chunk.push_str(&line);
        if chunk.len() >= 16 * 1024 {
            sink.send(Bytes::from(std::mem::take(&mut chunk))).await?;
        }
    }
    if !chunk.is_empty() {
        sink.send(Bytes::from(chunk)).await?;
    }
    let copied_in = sink.as_mut().finish().await?;
    let row = client
        .query_one("select count(*), sum(id)::int8 from c", &[])
        .await?;
    let count: i64 = row.get(0);
    let sum_id: i64 = row.get(1);

    let stream = client.copy_out("copy c (id, name) to stdout").await?;
    let mut stream = pin!(stream);
    let mut out_bytes = 0usize;
    let mut out_lines = 0usize;
    while let Some(data) = stream.next().await {
        let data = data?;
        out_bytes += data.len();
        out_lines += data.iter().filter(|b| **b == b'\n').count();
    }

    // A COPY that fails half-way (bad data): an error, and the session stays usable.
    let bad_sink = client
        .copy_in::<_, Bytes>("copy c (id, name) from stdin")
        .await?;
    let mut bad_sink = pin!(bad_sink);
    bad_sink
        .send(Bytes::from_static(b"1\tok\nnot-a-number\tbad\n"))
        .await?;
    let bad_sqlstate = match bad_sink.as_mut().finish().await {
        Ok(n) => bail!("a COPY with a bad row succeeded ({n} rows)"),
        Err(e) => e.code().map(|c| c.code().to_string()),
    };
    let count_after_bad: i64 = client
        .query_one("select count(*) from c", &[])
        .await?
        .get(0);

    Ok(json!({
        "copied_in": copied_in,
        "count": count,
        "sum_id": sum_id,
        "copied_out_bytes": out_bytes,
        "copied_out_lines": out_lines,
        "expected_out_bytes": expected_out_bytes,
        "bad_copy_sqlstate": bad_sqlstate,
        "count_after_bad_copy": count_after_bad,
    }))
}

async fn notify(target: &Target) -> Result<Value> {
    let (listener, mut connection) = target
        .config()
        .connect(NoTls)
        .await
        .context("cannot connect the listener")?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("listener connection error: {e}");
                    break;
                }
            }
        }
    });
    listener.batch_execute("listen chunk_events").await?;
    let notifier = target.connect().await?;
    let payload = format!("hello from the notifier at {:?}", SystemTime::now());
    let sent = Instant::now();
    notifier
        .execute("select pg_notify('chunk_events', $1)", &[&payload])
        .await?;
    let notification = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .map_err(|_| anyhow!("no notification within 5 s"))?
        .context("the listener connection ended before a notification arrived")?;
    let latency = sent.elapsed();
    // The listener still answers queries afterwards.
    let usable_after: i32 = listener.query_one("select 12", &[]).await?.get(0);
    Ok(json!({
        "channel": notification.channel(),
        "payload": notification.payload(),
        "expected_payload": payload,
        "latency_ms": latency.as_millis(),
        "usable_after": usable_after,
    }))
}

async fn large(target: &Target) -> Result<Value> {
    let client = target.connect().await?;
    let started = Instant::now();
    let stream = client
        .query_raw(
            "select g, md5(g::text) || 'abcdefgh' from generate_series(1, 1000000) g",
            std::iter::empty::<i32>(),
        )
        .await?;
    let mut stream = pin!(stream);
    let mut rows = 0u64;
    let mut text_bytes = 0u64;
    let mut last = 0i32;
    let mut in_order = true;
    while let Some(row) = stream.try_next().await? {
        rows += 1;
        let g: i32 = row.get(0);
        let text: &str = row.get(1);
        text_bytes += text.len() as u64;
        in_order &= i64::from(g) == i64::try_from(rows)?;
        last = g;
    }
    Ok(json!({
        "rows": rows,
        "text_bytes": text_bytes,
        "last": last,
        "in_order": in_order,
        "elapsed_ms": started.elapsed().as_millis(),
    }))
}

async fn pipeline(target: &Target) -> Result<Value> {
    let client = target.connect().await?;
    let stmt = client.prepare("select $1::int4 * 10").await?;
    let client = &client;
    let stmt = &stmt;
    // 50 queries in flight on one connection (tokio-postgres pipelines them), one of which
    // fails: the failure must not disturb the others.
    let futures = (0..50i32).map(|i| async move {
        let result = if i == 25 {
            client.query_one("select 1 / 0", &[]).await
        } else if i % 2 == 0 {
            client.query_one(stmt, &[&i]).await
        } else {
            client.query_one("select $1::int4 * 10", &[&i]).await
        };
        (i, result.map(|row| row.get::<_, i32>(0)))
    });
    let started = Instant::now();
    let outcomes = futures_util::future::join_all(futures).await;
    let elapsed = started.elapsed();
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (i, outcome) in outcomes {
        match outcome {
            Ok(v) => {
                ensure!(v == i * 10, "query {i} returned {v}, expected {}", i * 10);
                results.push(v);
            }
            Err(e) => errors.push(json!({
                "index": i,
                "sqlstate": e.code().map(|c| c.code().to_string()),
            })),
        }
    }
    Ok(json!({
        "ok_count": results.len(),
        "results": results,
        "errors": errors,
        "elapsed_ms": elapsed.as_millis(),
    }))
}

/// A CancelRequest with a key nobody was given: the proxy drops it (closes that connection) and
/// the running query completes normally.
async fn cancel_unknown(target: &Target) -> Result<Value> {
    let client = target.connect().await?;
    let query = client.simple_query("select pg_sleep(2), 'done'");
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pid = u32::from_be_bytes(random_bytes::<4>());
        let key = random_bytes::<4>();
        send_cancel_request(target, pid, &key).await
    };
    let (result, closed) = tokio::join!(query, cancel);
    let messages = result.context("the query was disturbed by an unknown cancel key")?;
    let done = messages.iter().any(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(1) == Some("done"),
        _ => false,
    });
    Ok(json!({
        "query_completed": done,
        "cancel_connection_closed": closed?,
    }))
}

// ------------------------------------------------------------------------------------------
// raw protocol scenarios
// ------------------------------------------------------------------------------------------

const PROTOCOL_3_0: u32 = 196_608;
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;

/// Some bytes that are different every run (no RNG crate needed).
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if let Ok(bytes) = std::fs::read("/proc/sys/kernel/random/uuid") {
        for (o, b) in out
            .iter_mut()
            .zip(bytes.iter().filter(|b| b.is_ascii_hexdigit()))
        {
            *o = *b;
        }
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        .to_be_bytes();
    for (i, o) in out.iter_mut().enumerate() {
        *o ^= nanos[i % 4];
    }
    out
}

fn startup_message(params: &[(String, String)]) -> Vec<u8> {
    let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
    for (name, value) in params {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = u32::try_from(body.len() + 4)
        .unwrap_or(u32::MAX)
        .to_be_bytes()
        .to_vec();
    msg.extend_from_slice(&body);
    msg
}

fn tagged_message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![tag];
    msg.extend_from_slice(
        &u32::try_from(body.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    msg.extend_from_slice(body);
    msg
}

fn query_message(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    tagged_message(b'Q', &body)
}

/// A backend message, or the end of the stream.
enum Incoming {
    Message(u8, Vec<u8>),
    /// EOF or a connection reset.
    Closed(String),
}

/// Reads one backend message (within [`IO_TIMEOUT`]); everything read is appended to `seen`.
async fn read_message(stream: &mut TcpStream, seen: &mut Vec<u8>) -> Result<Incoming> {
    let mut header = [0u8; 5];
    match tokio::time::timeout(IO_TIMEOUT, stream.read_exact(&mut header)).await {
        Err(_) => bail!("no message from the server within {IO_TIMEOUT:?}"),
        Ok(Err(e)) => return Ok(Incoming::Closed(e.to_string())),
        Ok(Ok(_)) => {}
    }
    seen.extend_from_slice(&header);
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    ensure!(
        (4..=64 * 1024 * 1024).contains(&len),
        "bad message length {len} for message type {:?}",
        header[0] as char
    );
    let mut body = vec![0u8; len - 4];
    match tokio::time::timeout(IO_TIMEOUT, stream.read_exact(&mut body)).await {
        Err(_) => bail!("truncated message from the server (timeout)"),
        Ok(Err(e)) => return Ok(Incoming::Closed(format!("in a message body: {e}"))),
        Ok(Ok(_)) => {}
    }
    seen.extend_from_slice(&body);
    Ok(Incoming::Message(header[0], body))
}

fn cstrings(body: &[u8]) -> Vec<String> {
    body.split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The fields of an ErrorResponse/NoticeResponse: `{"S": ..., "C": ..., "M": ...}`.
fn error_fields(body: &[u8]) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut rest = body;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
        fields.insert(
            (code as char).to_string(),
            Value::String(String::from_utf8_lossy(&tail[..end]).into_owned()),
        );
        rest = tail.get(end + 1..).unwrap_or(&[]);
    }
    fields
}

/// A JSON description of a backend message.
fn describe(tag: u8, body: &[u8]) -> Value {
    let mut v = json!({ "type": (tag as char).to_string(), "length": body.len() + 4 });
    match tag {
        b'R' if body.len() >= 4 => {
            v["auth"] = json!(u32::from_be_bytes([body[0], body[1], body[2], body[3]]));
        }
        b'S' => {
            let strings = cstrings(body);
            v["name"] = json!(strings.first());
            v["value"] = json!(strings.get(1));
        }
        b'K' if body.len() >= 4 => {
            v["pid"] = json!(u32::from_be_bytes([body[0], body[1], body[2], body[3]]));
            v["key_hex"] = json!(hex(&body[4..]));
        }
        b'E' | b'N' => v["fields"] = Value::Object(error_fields(body)),
        b'Z' => v["status"] = json!(body.first().map(|b| (*b as char).to_string())),
        b'C' => v["tag"] = json!(cstrings(body).first()),
        b'v' if body.len() >= 4 => {
            v["minor"] = json!(u32::from_be_bytes([body[0], body[1], body[2], body[3]]));
        }
        _ => {}
    }
    v
}

/// What a raw session saw.
#[derive(Default)]
struct RawLog {
    messages: Vec<Value>,
    bytes: Vec<u8>,
    closed: Option<String>,
}

impl RawLog {
    fn to_json(&self) -> Value {
        json!({
            "messages": self.messages,
            "closed": self.closed.is_some(),
            "closed_reason": self.closed,
            "received_bytes": self.bytes.len(),
            // Everything received, as text: lets tests search it (e.g. for a secret).
            "received_text": String::from_utf8_lossy(&self.bytes),
        })
    }

    fn first_error(&self) -> Option<&Value> {
        self.messages.iter().find(|m| m["type"] == "E")
    }
}

/// Reads messages until ReadyForQuery (`Ok(true)`), an ErrorResponse, an authentication
/// request other than AuthenticationOk, or the end of the stream (`Ok(false)`).
async fn read_until_ready(stream: &mut TcpStream, log: &mut RawLog) -> Result<bool> {
    loop {
        match read_message(stream, &mut log.bytes).await? {
            Incoming::Closed(reason) => {
                log.closed = Some(reason);
                return Ok(false);
            }
            Incoming::Message(tag, body) => {
                let auth_request = tag == b'R' && body.get(..4) != Some(&[0, 0, 0, 0]);
                log.messages.push(describe(tag, &body));
                match tag {
                    b'Z' => return Ok(true),
                    b'E' => {
                        // A FATAL error: the server closes the connection after it.
                        drain_until_closed(stream, log).await?;
                        return Ok(false);
                    }
                    _ if auth_request => return Ok(false),
                    _ => {}
                }
            }
        }
    }
}

/// Reads (and logs) messages until the connection is closed (or [`IO_TIMEOUT`] passes: then
/// `closed` stays unset).
async fn drain_until_closed(stream: &mut TcpStream, log: &mut RawLog) -> Result<()> {
    loop {
        match read_message(stream, &mut log.bytes).await {
            Err(_) => return Ok(()),
            Ok(Incoming::Closed(reason)) => {
                log.closed = Some(reason);
                return Ok(());
            }
            Ok(Incoming::Message(tag, body)) => log.messages.push(describe(tag, &body)),
        }
    }
}

/// Optional SSLRequest / GSSENCRequest (each must get 'N'), then a StartupMessage as `jobuser`
/// with `extra` parameters; reads until ReadyForQuery or an error.
async fn raw_session(
    target: &Target,
    ssl_request: bool,
    gssenc_request: bool,
    extra: &[(String, String)],
) -> Result<(TcpStream, RawLog, Value)> {
    let mut stream = target.tcp().await?;
    let mut pre = Map::new();
    for (wanted, name, code) in [
        (gssenc_request, "gssenc_response", GSSENC_REQUEST),
        (ssl_request, "ssl_response", SSL_REQUEST),
    ] {
        if !wanted {
            continue;
        }
        let mut request = 8u32.to_be_bytes().to_vec();
        request.extend_from_slice(&code.to_be_bytes());
        stream.write_all(&request).await?;
        let mut answer = [0u8; 1];
        tokio::time::timeout(IO_TIMEOUT, stream.read_exact(&mut answer))
            .await
            .map_err(|_| anyhow!("no answer to the {name} request"))?
            .with_context(|| format!("no answer to the {name} request"))?;
        pre.insert(name.into(), json!((answer[0] as char).to_string()));
        ensure!(
            answer[0] == b'N',
            "expected 'N' to the {name} request, got {:?}",
            answer[0] as char
        );
    }
    let mut params = vec![
        ("user".to_string(), JOB_USER.to_string()),
        ("database".to_string(), DBNAME.to_string()),
    ];
    params.extend(extra.iter().cloned());
    stream.write_all(&startup_message(&params)).await?;
    let mut log = RawLog::default();
    let ready = read_until_ready(&mut stream, &mut log).await?;
    pre.insert("ready".into(), json!(ready));
    Ok((stream, log, Value::Object(pre)))
}

async fn raw_startup(target: &Target, rest: &[String]) -> Result<Value> {
    let mut ssl_request = false;
    let mut gssenc_request = false;
    let mut extra = Vec::new();
    for arg in rest {
        match arg.as_str() {
            "--ssl-request" => ssl_request = true,
            "--gssenc-request" => gssenc_request = true,
            other => {
                let (name, value) = other
                    .split_once('=')
                    .with_context(|| format!("expected name=value, got {other:?}"))?;
                extra.push((name.to_string(), value.to_string()));
            }
        }
    }
    let (mut stream, mut log, mut out) =
        raw_session(target, ssl_request, gssenc_request, &extra).await?;
    if out["ready"] == true {
        let rows = query_and_log(&mut stream, &mut log, "select current_user::text").await?;
        out["current_user"] = json!(rows.first());
        let _ = stream.write_all(&tagged_message(b'X', &[])).await;
    }
    merge(&mut out, log.to_json());
    out["error"] = log.first_error().cloned().unwrap_or(Value::Null);
    Ok(out)
}

/// Sends a simple Query and reads until ReadyForQuery; returns the first column of each row.
async fn query_and_log(stream: &mut TcpStream, log: &mut RawLog, sql: &str) -> Result<Vec<String>> {
    stream.write_all(&query_message(sql)).await?;
    let mut rows = Vec::new();
    loop {
        match read_message(stream, &mut log.bytes).await? {
            Incoming::Closed(reason) => {
                log.closed = Some(reason);
                return Ok(rows);
            }
            Incoming::Message(tag, body) => {
                if tag == b'D' && body.len() >= 6 {
                    let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                    if let Ok(len) = usize::try_from(len) {
                        let end = (6 + len).min(body.len());
                        rows.push(String::from_utf8_lossy(&body[6..end]).into_owned());
                    }
                }
                log.messages.push(describe(tag, &body));
                if tag == b'Z' {
                    return Ok(rows);
                }
            }
        }
    }
}

async fn malformed(target: &Target) -> Result<Value> {
    let (mut stream, mut log, mut out) = raw_session(target, false, false, &[]).await?;
    ensure!(
        out["ready"] == true,
        "the startup did not reach ReadyForQuery: {}",
        log.to_json()
    );
    let startup_messages = log.messages.len();
    // 'Q' with a length of 2: less than the 4 bytes of the length field itself.
    stream.write_all(b"Q\x00\x00\x00\x02").await?;
    // Some padding, so that a proxy waiting for more bytes is not stuck either.
    let _ = stream.write_all(b"garbage garbage garbage\x00").await;
    drain_until_closed(&mut stream, &mut log).await?;
    let after: Vec<Value> = log.messages[startup_messages..].to_vec();
    let error = after.iter().find(|m| m["type"] == "E").cloned();
    merge(&mut out, log.to_json());
    out["after_garbage"] = Value::Array(after);
    out["error"] = error.unwrap_or(Value::Null);
    Ok(out)
}

/// Sends a CancelRequest through a new connection; returns whether that connection was closed
/// by the other side within [`IO_TIMEOUT`] (nothing is ever answered to a CancelRequest).
async fn send_cancel_request(target: &Target, pid: u32, key: &[u8]) -> Result<bool> {
    let mut stream = target.tcp().await?;
    let mut msg = u32::try_from(12 + key.len())?.to_be_bytes().to_vec();
    msg.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
    msg.extend_from_slice(&pid.to_be_bytes());
    msg.extend_from_slice(key);
    stream.write_all(&msg).await?;
    let mut buf = [0u8; 64];
    match tokio::time::timeout(IO_TIMEOUT, stream.read(&mut buf)).await {
        Err(_) => Ok(false),
        Ok(Ok(0)) | Ok(Err(_)) => Ok(true),
        Ok(Ok(n)) => bail!(
            "unexpected answer to a CancelRequest: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
}

/// Runs `sql` on a raw session while a CancelRequest with (`pid`, `key`) is sent 300 ms after
/// it; returns the SQLSTATE of the error it ended with, or `None` if it completed.
async fn raw_query_with_cancel(
    target: &Target,
    stream: &mut TcpStream,
    log: &mut RawLog,
    sql: &str,
    pid: u32,
    key: &[u8],
) -> Result<(Option<String>, Duration)> {
    let started = Instant::now();
    let first = log.messages.len();
    let query = query_and_log(stream, log, sql);
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send_cancel_request(target, pid, key).await
    };
    let (rows, closed) = tokio::join!(query, cancel);
    rows?;
    closed?;
    let sqlstate = log.messages[first..]
        .iter()
        .find(|m| m["type"] == "E")
        .and_then(|m| m["fields"]["C"].as_str())
        .map(str::to_string);
    Ok((sqlstate, started.elapsed()))
}

async fn cancel_raw(target: &Target) -> Result<Value> {
    let (mut stream, mut log, _) = raw_session(target, false, false, &[]).await?;
    let key_data = log
        .messages
        .iter()
        .find(|m| m["type"] == "K")
        .cloned()
        .with_context(|| format!("no BackendKeyData at startup: {}", log.to_json()))?;
    let pid = u32::try_from(
        key_data["pid"]
            .as_u64()
            .context("BackendKeyData without pid")?,
    )?;
    let key_hex = key_data["key_hex"].as_str().unwrap_or_default().to_string();
    let key: Vec<u8> = (0..key_hex.len() / 2)
        .map(|i| u8::from_str_radix(&key_hex[2 * i..2 * i + 2], 16))
        .collect::<std::result::Result<_, _>>()?;
    ensure!(!key.is_empty(), "empty cancel key");
    let mut wrong = key.clone();
    wrong[0] ^= 0x5a;

    let (wrong_key_sqlstate, wrong_elapsed) = raw_query_with_cancel(
        target,
        &mut stream,
        &mut log,
        "select pg_sleep(2)",
        pid,
        &wrong,
    )
    .await?;
    let (wrong_pid_sqlstate, _) = raw_query_with_cancel(
        target,
        &mut stream,
        &mut log,
        "select pg_sleep(1)",
        pid.wrapping_add(1),
        &key,
    )
    .await?;
    let (right_key_sqlstate, right_elapsed) = raw_query_with_cancel(
        target,
        &mut stream,
        &mut log,
        "select pg_sleep(30)",
        pid,
        &key,
    )
    .await?;
    let rows = query_and_log(&mut stream, &mut log, "select 'still here'").await?;
    let _ = stream.write_all(&tagged_message(b'X', &[])).await;
    Ok(json!({
        "backend_pid": pid,
        "key_len": key.len(),
        "wrong_key_sqlstate": wrong_key_sqlstate,
        "wrong_key_elapsed_ms": wrong_elapsed.as_millis(),
        "wrong_pid_sqlstate": wrong_pid_sqlstate,
        "right_key_sqlstate": right_key_sqlstate,
        "right_key_elapsed_ms": right_elapsed.as_millis(),
        "usable_after": rows.first(),
        "received_text": String::from_utf8_lossy(&log.bytes),
    }))
}

// ------------------------------------------------------------------------------------------
// policy-enforcement scenarios
// ------------------------------------------------------------------------------------------

/// What a statement the policy should deny ended with: `{"succeeded": true}`, or the error's
/// SQLSTATE and the fields of its ErrorResponse.
fn outcome<T>(result: std::result::Result<T, tokio_postgres::Error>) -> Value {
    match result {
        Ok(_) => json!({ "succeeded": true }),
        Err(e) => {
            let mut v = json!({
                "succeeded": false,
                "sqlstate": e.code().map(|c| c.code().to_string()),
                "error": e.to_string(),
            });
            if let Some(db) = e.as_db_error() {
                v["severity"] = json!(db.severity());
                v["message"] = json!(db.message());
                v["detail"] = json!(db.detail());
                v["hint"] = json!(db.hint());
                v["context"] = json!(db.where_());
                v["file"] = json!(db.file());
                v["line"] = json!(db.line());
                v["routine"] = json!(db.routine());
            }
            v
        }
    }
}

async fn count_of(client: &Client, table: &str) -> Result<i64> {
    Ok(client
        .query_one(&format!("select count(*) from {table}"), &[])
        .await
        .with_context(|| format!("cannot count the rows of {table}"))?
        .get(0))
}

/// Denied statements over the extended protocol (and one simple-protocol batch): each denial
/// is reported, and the session must stay usable after every one of them (a failure there
/// fails the scenario).
async fn policy_extended(target: &Target) -> Result<Value> {
    let mut client = target.connect().await?;

    // A Parse of a denied statement (prepare: Parse, Describe, Sync).
    let prepare_denied = outcome(client.prepare("delete from public.t").await);
    let count_after_prepare = count_of(&client, "public.t").await?;

    // An allowed prepared statement, executed 10 times.
    let stmt = client
        .prepare("select v from public.t where id = $1")
        .await?;
    let mut values = Vec::new();
    for i in 0..10i32 {
        let row = client.query_one(&stmt, &[&(i % 5 + 1)]).await?;
        values.push(row.get::<_, String>(0));
    }

    // Denied statements with parameters (prepared, then bound and executed).
    let query_denied = outcome(
        client
            .query("delete from public.t where id = $1", &[&1i32])
            .await,
    );
    let execute_denied = outcome(
        client
            .execute("update public.t set v = $1 where id = $2", &[&"x", &2i32])
            .await,
    );
    let count_after_denied = count_of(&client, "public.t").await?;

    // A simple-protocol batch whose tail is denied: nothing of it runs.
    let batch_denied = outcome(
        client
            .batch_execute("insert into staging.x values (100, 'batch'); delete from public.t")
            .await,
    );
    let staging_after_batch = count_of(&client, "staging.x").await?;

    // In flight at once on the connection: allowed, denied, allowed.
    let (first, denied, last) = tokio::join!(
        client.query_one(&stmt, &[&3i32]),
        client.execute("delete from public.t where id = $1", &[&4i32]),
        client.query_one("select count(*) from public.t", &[]),
    );
    let pipelined = json!({
        "first": first.map(|r| r.get::<_, String>(0)).map_err(|e| e.to_string()).ok(),
        "denied": outcome(denied),
        "last": last.map(|r| r.get::<_, i64>(0)).map_err(|e| e.to_string()).ok(),
    });

    // A denied statement in a transaction aborts it, as an error of the server would.
    let tx = client.transaction().await?;
    tx.execute("insert into staging.x values ($1, $2)", &[&7i32, &"in-tx"])
        .await?;
    let tx_denied = outcome(
        tx.execute("delete from public.t where id = $1", &[&1i32])
            .await,
    );
    let tx_after_denied = outcome(tx.query("select 1", &[]).await);
    tx.rollback().await?;
    let staging_after_rollback = count_of(&client, "staging.x").await?;

    // And the session still writes what the policy allows.
    client
        .execute(
            "insert into staging.x values ($1, $2)",
            &[&8i32, &"committed"],
        )
        .await?;
    let usable: Vec<Value> = client
        .query("select id, v from staging.x order by id", &[])
        .await?
        .iter()
        .map(|r| json!([r.get::<_, i32>(0), r.get::<_, String>(1)]))
        .collect();
    Ok(json!({
        "prepare_denied": prepare_denied,
        "count_after_prepare": count_after_prepare,
        "prepared_values": values,
        "query_denied": query_denied,
        "execute_denied": execute_denied,
        "count_after_denied": count_after_denied,
        "batch_denied": batch_denied,
        "staging_after_batch": staging_after_batch,
        "pipelined": pipelined,
        "tx_denied": tx_denied,
        "tx_after_denied": tx_after_denied,
        "staging_after_rollback": staging_after_rollback,
        "staging_rows": usable,
        "count_final": count_of(&client, "public.t").await?,
    }))
}

/// Reads and logs messages until ReadyForQuery or the end of the stream.
async fn read_response(stream: &mut TcpStream, log: &mut RawLog) -> Result<()> {
    loop {
        match read_message(stream, &mut log.bytes).await? {
            Incoming::Closed(reason) => {
                log.closed = Some(reason);
                return Ok(());
            }
            Incoming::Message(tag, body) => {
                log.messages.push(describe(tag, &body));
                if tag == b'Z' {
                    return Ok(());
                }
            }
        }
    }
}

/// A FunctionCall message calling `lo_creat(-1)` (which would create a large object) by OID,
/// then a query on the same session.
async fn function_call(target: &Target) -> Result<Value> {
    let (mut stream, mut log, mut out) = raw_session(target, false, false, &[]).await?;
    ensure!(
        out["ready"] == true,
        "the startup did not reach ReadyForQuery: {}",
        log.to_json()
    );
    let rows = query_and_log(
        &mut stream,
        &mut log,
        "select 'pg_catalog.lo_creat(integer)'::regprocedure::oid::text",
    )
    .await?;
    let oid: u32 = rows
        .first()
        .with_context(|| format!("no OID for lo_creat: {}", log.to_json()))?
        .parse()?;
    let first = log.messages.len();
    let arg = b"-1";
    let mut body = oid.to_be_bytes().to_vec();
    body.extend_from_slice(&1i16.to_be_bytes()); // one argument format code:
    body.extend_from_slice(&0i16.to_be_bytes()); // text
    body.extend_from_slice(&1i16.to_be_bytes()); // one argument:
    body.extend_from_slice(&i32::try_from(arg.len())?.to_be_bytes());
    body.extend_from_slice(arg);
    body.extend_from_slice(&0i16.to_be_bytes()); // text result
    stream.write_all(&tagged_message(b'F', &body)).await?;
    read_response(&mut stream, &mut log).await?;
    let response: Vec<Value> = log.messages[first..].to_vec();
    let usable = query_and_log(&mut stream, &mut log, "select 'still usable'").await?;
    let _ = stream.write_all(&tagged_message(b'X', &[])).await;
    out["oid"] = json!(oid);
    out["function_call_response"] = Value::Array(response.clone());
    out["error"] = response
        .iter()
        .find(|m| m["type"] == "E")
        .cloned()
        .unwrap_or(Value::Null);
    out["usable_after"] = json!(usable.first());
    out["closed"] = json!(log.closed.is_some());
    Ok(out)
}

fn cstring(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// Parse (no parameter types).
fn parse_message(name: &str, sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstring(&mut body, name);
    cstring(&mut body, sql);
    body.extend_from_slice(&0i16.to_be_bytes());
    tagged_message(b'P', &body)
}

/// Bind of `statement` to `portal`, without parameters, text results.
fn bind_message(portal: &str, statement: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstring(&mut body, portal);
    cstring(&mut body, statement);
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    tagged_message(b'B', &body)
}

/// Describe of a statement (`kind` b'S') or portal (b'P').
fn describe_message(kind: u8, name: &str) -> Vec<u8> {
    let mut body = vec![kind];
    cstring(&mut body, name);
    tagged_message(b'D', &body)
}

/// Execute of `portal`, all rows.
fn execute_message(portal: &str) -> Vec<u8> {
    let mut body = Vec::new();
    cstring(&mut body, portal);
    body.extend_from_slice(&0i32.to_be_bytes());
    tagged_message(b'E', &body)
}

/// Sends `messages` in one write and reads the response until ReadyForQuery; returns the
/// backend messages.
async fn raw_batch(
    stream: &mut TcpStream,
    log: &mut RawLog,
    messages: &[Vec<u8>],
) -> Result<Vec<Value>> {
    let first = log.messages.len();
    stream.write_all(&messages.concat()).await?;
    read_response(stream, log).await?;
    Ok(log.messages[first..].to_vec())
}

/// Raw extended-protocol batches (each ending with Sync) against the policy of
/// `policy_enforcement.rs`: an allowed INSERT then a denied DELETE in one batch (one implicit
/// transaction), then a Describe and a Bind of the denied statement in later batches, then an
/// allowed batch.
async fn policy_extended_raw(target: &Target) -> Result<Value> {
    let (mut stream, mut log, mut out) = raw_session(target, false, false, &[]).await?;
    ensure!(
        out["ready"] == true,
        "the startup did not reach ReadyForQuery: {}",
        log.to_json()
    );
    let sync = tagged_message(b'S', &[]);
    let mixed = raw_batch(
        &mut stream,
        &mut log,
        &[
            parse_message("ins", "insert into staging.x values (1, 'raw')"),
            bind_message("", "ins"),
            execute_message(""),
            parse_message("del", "delete from public.t where id = 1"),
            bind_message("", "del"),
            describe_message(b'P', ""),
            execute_message(""),
            sync.clone(),
        ],
    )
    .await?;
    let describe_denied = raw_batch(
        &mut stream,
        &mut log,
        &[describe_message(b'S', "del"), sync.clone()],
    )
    .await?;
    let bind_denied = raw_batch(
        &mut stream,
        &mut log,
        &[bind_message("p", "del"), execute_message("p"), sync.clone()],
    )
    .await?;
    let allowed = raw_batch(
        &mut stream,
        &mut log,
        &[
            bind_message("", "ins"),
            execute_message(""),
            parse_message("", "select count(*)::text from staging.x"),
            bind_message("", ""),
            execute_message(""),
            sync,
        ],
    )
    .await?;
    let rows = query_and_log(&mut stream, &mut log, "select count(*)::text from public.t").await?;
    let _ = stream.write_all(&tagged_message(b'X', &[])).await;
    out["mixed"] = Value::Array(mixed);
    out["describe_denied"] = Value::Array(describe_denied);
    out["bind_denied"] = Value::Array(bind_denied);
    out["allowed"] = Value::Array(allowed);
    out["t_count"] = json!(rows.first());
    out["closed"] = json!(log.closed.is_some());
    Ok(out)
}

/// Adds the fields of `extra` (an object) to `out` (an object).
fn merge(out: &mut Value, extra: Value) {
    if let (Value::Object(out), Value::Object(extra)) = (out, extra) {
        out.extend(extra);
    }
}
