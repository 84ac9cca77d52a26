//! `pg-load <host> <port> <mode> [args...]`: the client side of the load, fault and privacy tests
//! (`tests/tests/hardening.rs`), run as a job under `agent exec` so that its connections are
//! intercepted. It connects as `jobuser`, database `postgres`, without a password or TLS.
//!
//! Modes (each prints JSON lines on stdout; a line `{"ready": ...}` means "waiting for a line
//! on stdin", so the test can look at the agent while the sessions are open):
//! - `hold N`: opens N sessions at once, runs `select 1` on each, prints `ready`, waits, runs a
//!   query on each again and closes them; prints `{"sessions": N, ...}`.
//! - `restart N`: opens N sessions, prints `ready`, then each runs `select pg_sleep(60)` while
//!   the test restarts the server; prints each session's outcome (SQLSTATE and message, or the
//!   connection error) and how long it took (never waiting more than 30 s for any of them),
//!   prints `ready` again, waits, and checks that a new session works.
//! - `copy-in BYTES` / `copy-out BYTES`: `COPY sink FROM STDIN` of BYTES bytes of 1 KiB lines /
//!   `COPY (...) TO STDOUT` of BYTES bytes; prints bytes and seconds.
//! - `no-startup SECS`: a TCP connection that never sends a startup packet; prints after how
//!   many seconds the other side closed it (or that it did not within SECS).
//! - `stall-read`: a raw session that asks for a huge result and never reads it; prints
//!   `ready` once the query is sent, and exits when stdin gives a line.
//! - `secrets TOKEN_FILE`: reads a token from TOKEN_FILE and sends it as a SQL literal and as a
//!   bind parameter, reads `cards`, runs statements the policy denies (with the token and the
//!   card number as literals); prints every server error message seen, prints `ready` (pid
//!   included) and waits.

#![forbid(unsafe_code)]

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::BufRead;
use std::pin::pin;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::{Client, Config, NoTls};

const JOB_USER: &str = "jobuser";
const DBNAME: &str = "postgres";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: pg-load <host> <port> <mode> [args...]");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(&args[0], &args[1], &args[2], &args[3..]));
    match result {
        Ok(value) => println!("{value}"),
        Err(e) => {
            eprintln!("pg-load {}: error: {e:#}", args[2]);
            println!("{}", json!({ "ok": false, "error": format!("{e:#}") }));
            std::process::exit(1);
        }
    }
}

async fn run(host: &str, port: &str, mode: &str, rest: &[String]) -> Result<Value> {
    let port: u16 = port.parse().context("port")?;
    let target = Target {
        host: host.to_string(),
        port,
    };
    let arg = |i: usize| -> Result<&str> {
        rest.get(i)
            .map(String::as_str)
            .with_context(|| format!("{mode}: missing argument {}", i + 1))
    };
    match mode {
        "hold" => hold(&target, arg(0)?.parse()?).await,
        "restart" => restart(&target, arg(0)?.parse()?).await,
        "copy-in" => copy_in(&target, arg(0)?.parse()?).await,
        "copy-out" => copy_out(&target, arg(0)?.parse()?).await,
        "no-startup" => no_startup(&target, arg(0)?.parse()?).await,
        "stall-read" => stall_read(&target).await,
        "secrets" => secrets(&target, arg(0)?).await,
        other => bail!("unknown mode {other}"),
    }
}

struct Target {
    host: String,
    port: u16,
}

impl Target {
    async fn connect(&self) -> Result<Client> {
        let mut config = Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(JOB_USER)
            .dbname(DBNAME)
            .connect_timeout(CONNECT_TIMEOUT);
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
            .await
            .map_err(|_| anyhow!("connect timed out"))??;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    async fn tcp(&self) -> Result<TcpStream> {
        Ok(TcpStream::connect((self.host.as_str(), self.port)).await?)
    }
}

/// Prints a `ready` line and waits for a line (or EOF) on stdin.
async fn ready_and_wait(info: Value) -> Result<()> {
    println!("{}", json!({ "ready": info, "pid": std::process::id() }));
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)
    })
    .await??;
    Ok(())
}

async fn hold(target: &Target, n: usize) -> Result<Value> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let target = Target {
            host: target.host.clone(),
            port: target.port,
        };
        tasks.spawn(async move {
            let client = target
                .connect()
                .await
                .with_context(|| format!("session {i}"))?;
            let row = client.query_one("select $1::int4", &[&(i as i32)]).await?;
            ensure!(
                row.get::<_, i32>(0) == i as i32,
                "session {i}: wrong answer"
            );
            Ok::<_, anyhow::Error>(client)
        });
    }
    let mut clients = Vec::with_capacity(n);
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined? {
            Ok(client) => clients.push(client),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let open_secs = started.elapsed().as_secs_f64();
    ensure!(
        errors.is_empty(),
        "{} of {n} sessions failed; first: {}",
        errors.len(),
        errors[0]
    );
    ready_and_wait(json!({ "sessions": clients.len(), "open_secs": open_secs })).await?;
    let mut checks = tokio::task::JoinSet::new();
    for client in clients {
        checks.spawn(async move { client.simple_query("select 2").await.map(drop) });
    }
    let mut still_ok = 0;
    while let Some(joined) = checks.join_next().await {
        joined??;
        still_ok += 1;
    }
    Ok(json!({ "ok": true, "sessions": n, "open_secs": open_secs, "still_ok": still_ok }))
}

async fn restart(target: &Target, n: usize) -> Result<Value> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(target.connect().await?);
    }
    ready_and_wait(json!({ "sessions": n })).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        tasks.spawn(async move {
            let started = Instant::now();
            let outcome = tokio::time::timeout(
                Duration::from_secs(30),
                client.simple_query("select pg_sleep(60)"),
            )
            .await;
            let secs = started.elapsed().as_secs_f64();
            match outcome {
                Err(_) => json!({ "hung": true, "secs": secs }),
                Ok(Ok(_)) => json!({ "completed": true, "secs": secs }),
                Ok(Err(e)) => json!({
                    "sqlstate": e.code().map(|c| c.code().to_string()),
                    "error": e.to_string(),
                    "message": e.as_db_error().map(|d| d.message().to_string()),
                    "closed": e.is_closed(),
                    "secs": secs,
                }),
            }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined?);
    }
    // A session opened once the test says the server is back works.
    ready_and_wait(json!({ "outcomes": outcomes.len() })).await?;
    let fresh = target.connect().await?;
    let one = fresh
        .query_one("select 1::int4", &[])
        .await?
        .get::<_, i32>(0);
    Ok(json!({ "ok": true, "outcomes": outcomes, "after_restart": one }))
}

async fn copy_in(target: &Target, bytes: u64) -> Result<Value> {
    let client = target.connect().await?;
    let line = {
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        line
    };
    let mut chunk = BytesMut::with_capacity(64 * 1024);
    while chunk.len() < 64 * 1024 {
        chunk.put_slice(&line);
    }
    let chunk = chunk.freeze();
    let started = Instant::now();
    let sink = client
        .copy_in::<_, Bytes>("copy sink (line) from stdin")
        .await?;
    let mut sink = pin!(sink);
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(chunk.len() as u64) as usize;
        // Whole lines only: n is a multiple of the line length except for the last chunk.
        let n = n - n % line.len();
        ensure!(n > 0, "BYTES must be a multiple of {}", line.len());
        sink.send(chunk.slice(..n)).await?;
        sent += n as u64;
    }
    let rows = sink.as_mut().finish().await?;
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({ "ok": true, "bytes": sent, "rows": rows, "secs": secs }))
}

async fn copy_out(target: &Target, bytes: u64) -> Result<Value> {
    let client = target.connect().await?;
    let rows = bytes / 1024;
    let started = Instant::now();
    let stream = client
        .copy_out(&format!(
            "copy (select repeat('y', 1023) from generate_series(1, {rows})) to stdout"
        ))
        .await?;
    let mut stream = pin!(stream);
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        received += chunk?.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    ensure!(
        received == rows * 1024,
        "received {received} bytes, expected {}",
        rows * 1024
    );
    Ok(json!({ "ok": true, "bytes": received, "secs": secs }))
}

async fn no_startup(target: &Target, limit_secs: u64) -> Result<Value> {
    let mut stream = target.tcp().await?;
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let outcome = tokio::time::timeout(Duration::from_secs(limit_secs), async {
        let mut received = 0usize;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok::<_, std::io::Error>(received),
                Ok(n) => received += n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(received),
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    Ok(match outcome {
        Ok(Ok(received)) => {
            json!({ "ok": true, "closed": true, "secs": secs, "received": received })
        }
        Ok(Err(e)) => json!({ "ok": true, "closed": true, "secs": secs, "error": e.to_string() }),
        Err(_) => json!({ "ok": true, "closed": false, "secs": secs }),
    })
}

/// A StartupMessage for `jobuser` / `postgres`.
fn startup_message() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for (k, v) in [("user", JOB_USER), ("database", DBNAME)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

async fn stall_read(target: &Target) -> Result<Value> {
    let mut stream = target.tcp().await?;
    stream.write_all(&startup_message()).await?;
    // Read up to ReadyForQuery ('Z').
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        ensure!(Instant::now() < deadline, "no ReadyForQuery");
        let n = tokio::time::timeout(CONNECT_TIMEOUT, stream.read(&mut buf)).await??;
        ensure!(n > 0, "closed during startup");
        seen.extend_from_slice(&buf[..n]);
        if ready_for_query_at_end(&seen) {
            break;
        }
    }
    let sql = "select repeat('z', 1000) from generate_series(1, 50000000)\0";
    let mut query = vec![b'Q'];
    query.extend_from_slice(&((sql.len() + 4) as i32).to_be_bytes());
    query.extend_from_slice(sql.as_bytes());
    stream.write_all(&query).await?;
    // Never read again while waiting: the result piles up in the socket buffers.
    ready_and_wait(json!({ "stalled": true })).await?;
    drop(stream);
    Ok(json!({ "ok": true }))
}

/// Whether `bytes` (whole backend messages from the start of the session) end with a
/// ReadyForQuery.
fn ready_for_query_at_end(bytes: &[u8]) -> bool {
    let mut at = 0;
    let mut last = None;
    while bytes.len() >= at + 5 {
        let len = i32::from_be_bytes(bytes[at + 1..at + 5].try_into().expect("4 bytes"));
        let end = at + 1 + len as usize;
        if end > bytes.len() {
            return false;
        }
        last = Some(bytes[at]);
        at = end;
    }
    at == bytes.len() && last == Some(b'Z')
}

async fn secrets(target: &Target, token_file: &str) -> Result<Value> {
    let token = std::fs::read_to_string(token_file)?.trim().to_string();
    let client = target.connect().await?;
    let mut errors = Vec::new();
    let echoed: String = client
        .query_one(&format!("select '{token}'::text"), &[])
        .await?
        .get(0);
    ensure!(echoed == token, "the literal came back changed");
    let bound: String = client.query_one("select $1::text", &[&token]).await?.get(0);
    ensure!(bound == token, "the parameter came back changed");
    let cards: Vec<String> = client
        .query("select pan from cards order by id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ensure!(!cards.is_empty(), "no card rows");
    // Statements the policy denies, carrying the secrets as literals.
    for sql in [
        format!("delete from cards where pan = '{}'", cards[0]),
        format!("insert into cards (id, pan) values (99, '{token}')"),
        format!(
            "update cards set pan = '{token}' where pan = '{}'",
            cards[0]
        ),
    ] {
        match client.simple_query(&sql).await {
            Ok(_) => bail!("the policy should deny: {sql}"),
            Err(e) => errors.push(json!({
                "sqlstate": e.code().map(|c| c.code().to_string()),
                "error": e.to_string(),
                "message": e.as_db_error().map(|d| d.message().to_string()),
                "detail": e.as_db_error().and_then(|d| d.detail().map(str::to_string)),
                "hint": e.as_db_error().and_then(|d| d.hint().map(str::to_string)),
            })),
        }
    }
    // Still usable after the denials.
    client.simple_query("select 1").await?;
    ready_and_wait(json!({ "cards": cards.len() })).await?;
    Ok(json!({ "ok": true, "errors": errors }))
}
