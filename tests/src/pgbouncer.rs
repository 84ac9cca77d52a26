//! A throwaway PgBouncer (Debian's `/usr/sbin/pgbouncer`) in front of a [`crate::PgServer`].
//!
//! It runs as the `postgres` OS user (PgBouncer refuses to run as root), in the foreground, as a
//! direct child of this process (so [`PgBouncer::pid`] is PgBouncer's own pid), with its
//! configuration, user list and log in a temp dir deleted on drop. It listens on 127.0.0.1
//! only, on a free port (retried on a bind race), without a Unix socket.

use crate::pg::{PG_OS_USER, os_user_ids};
use crate::process::{OutputExt, run_with_timeout};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Where Debian's `pgbouncer` package installs the binary.
pub const PGBOUNCER_BIN: &str = "/usr/sbin/pgbouncer";

/// Options for [`PgBouncer::start`].
#[derive(Debug, Clone)]
pub struct PgBouncerOptions {
    /// The PostgreSQL server's address (every database name is forwarded to it: `* = ...`).
    pub upstream_host: String,
    pub upstream_port: u16,
    /// `auth_type` (`scram-sha-256`, `md5`, `plain`, `trust`).
    pub auth_type: String,
    /// The user list: `(user, password)`, written in clear text to `userlist.txt` (mode 0600),
    /// so that PgBouncer can do SCRAM both with its clients and with the server.
    pub users: Vec<(String, String)>,
    /// `pool_mode` (`session`, `transaction`, `statement`).
    pub pool_mode: String,
    /// `max_client_conn`.
    pub max_client_conn: u32,
    /// `default_pool_size`.
    pub default_pool_size: u32,
    /// The port; `None` picks a free one.
    pub port: Option<u16>,
    /// Extra `name = value` lines for the `[pgbouncer]` section.
    pub settings: Vec<(String, String)>,
}

impl PgBouncerOptions {
    /// Session pooling in front of `127.0.0.1:upstream_port`, SCRAM-SHA-256 with `users`.
    pub fn session_scram(upstream_port: u16, users: &[(&str, &str)]) -> Self {
        Self {
            upstream_host: "127.0.0.1".into(),
            upstream_port,
            auth_type: "scram-sha-256".into(),
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            pool_mode: "session".into(),
            max_client_conn: 2000,
            default_pool_size: 100,
            port: None,
            settings: Vec::new(),
        }
    }
}

/// A running PgBouncer; stopped (SIGTERM, then SIGKILL) and its directory deleted on drop.
#[derive(Debug)]
pub struct PgBouncer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl PgBouncer {
    /// Starts PgBouncer and waits until it accepts TCP connections.
    pub fn start(opts: PgBouncerOptions) -> Result<Self> {
        if !Path::new(PGBOUNCER_BIN).is_file() {
            bail!(
                "{PGBOUNCER_BIN} not found (install it: `apt-get install pgbouncer`, or run \
                 `cargo xtask setup`)"
            );
        }
        let (uid, gid) = os_user_ids(PG_OS_USER)?;
        let dir = tempfile::Builder::new()
            .prefix("agent-tests-pgbouncer-")
            .tempdir()
            .context("cannot create a temp dir for PgBouncer")?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        let mut bouncer = Self {
            child: None,
            dir,
            port: 0,
        };
        let userlist = bouncer.dir.path().join("userlist.txt");
        let mut users = String::new();
        for (user, password) in &opts.users {
            let _ = writeln!(users, "{} {}", quoted(user), quoted(password));
        }
        fs::write(&userlist, users)?;
        fs::set_permissions(&userlist, fs::Permissions::from_mode(0o600))?;
        std::os::unix::fs::chown(&userlist, Some(uid), Some(gid))?;

        let attempts = if opts.port.is_some() { 1 } else { 5 };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = match opts.port {
                Some(port) => port,
                None => crate::net::free_port()?,
            };
            match bouncer.spawn_and_wait(&opts, port, uid, gid) {
                Ok(()) => {
                    bouncer.port = port;
                    return Ok(bouncer);
                }
                Err(e) => {
                    bouncer.stop();
                    let bind_race = bouncer.log_contents().contains("in use");
                    last_error = Some(e);
                    if !bind_race {
                        break;
                    }
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("PgBouncer did not start"))
            .context(format!(
                "PgBouncer did not start; its log:\n{}",
                bouncer.log_contents()
            )))
    }

    fn spawn_and_wait(
        &mut self,
        opts: &PgBouncerOptions,
        port: u16,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        let config = self.config_path();
        fs::write(&config, self.config_text(opts, port))?;
        std::os::unix::fs::chown(&config, Some(uid), Some(gid))?;
        let log = fs::File::create(self.dir.path().join("pgbouncer.stderr.log"))?;
        let mut cmd = Command::new(PGBOUNCER_BIN);
        cmd.arg(&config)
            .current_dir(self.dir.path())
            .uid(uid)
            .gid(gid)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {PGBOUNCER_BIN}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!("PgBouncer exited with {status} before it was ready");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("PgBouncer does not accept connections on {addr} after 30 s");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn config_text(&self, opts: &PgBouncerOptions, port: u16) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "[databases]");
        let _ = writeln!(
            text,
            "* = host={} port={}",
            opts.upstream_host, opts.upstream_port
        );
        let _ = writeln!(text, "\n[pgbouncer]");
        let dir = self.dir.path().display();
        for (name, value) in [
            ("listen_addr", "127.0.0.1".to_string()),
            ("listen_port", port.to_string()),
            ("unix_socket_dir", String::new()),
            ("auth_type", opts.auth_type.clone()),
            ("auth_file", format!("{dir}/userlist.txt")),
            ("pool_mode", opts.pool_mode.clone()),
            ("max_client_conn", opts.max_client_conn.to_string()),
            ("default_pool_size", opts.default_pool_size.to_string()),
            ("logfile", format!("{dir}/pgbouncer.log")),
            ("pidfile", format!("{dir}/pgbouncer.pid")),
            ("ignore_startup_parameters", "extra_float_digits".into()),
        ] {
            let _ = writeln!(text, "{name} = {value}");
        }
        for (name, value) in &opts.settings {
            let _ = writeln!(text, "{name} = {value}");
        }
        text
    }

    /// PgBouncer's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.ini")
    }

    /// Its log file and stderr so far (empty if unreadable).
    pub fn log_contents(&self) -> String {
        let mut text =
            fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default();
        text.push_str(
            &fs::read_to_string(self.dir.path().join("pgbouncer.stderr.log")).unwrap_or_default(),
        );
        text
    }

    /// `pgbouncer --version`'s first line, e.g. `PgBouncer 1.18.0`.
    pub fn version() -> Result<String> {
        let out = run_with_timeout(
            Command::new(PGBOUNCER_BIN).arg("--version"),
            Duration::from_secs(10),
        )?;
        if !out.status.success() {
            bail!("`{PGBOUNCER_BIN} --version` failed: {}", out.describe());
        }
        Ok(out.stdout_text().lines().next().unwrap_or("").to_string())
    }

    /// Stops PgBouncer: SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.wait();
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A user list field: `"value"` with `"` doubled.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PgAuth, PgOptions, PgServer};

    /// A real PgBouncer in session mode in front of a SCRAM server: the right password gets
    /// through (SCRAM on both hops), a wrong one does not.
    #[test]
    fn session_pooler_with_scram_on_both_hops() {
        let pg = PgServer::start(PgOptions {
            auth: PgAuth::Scram,
            ..PgOptions::default()
        })
        .unwrap();
        pg.create_login_role("bench", "pw \"bench\"").unwrap();
        let bouncer = PgBouncer::start(PgBouncerOptions::session_scram(
            pg.port(),
            &[("bench", "pw \"bench\"")],
        ))
        .unwrap();
        assert!(bouncer.pid().is_some());
        for (password, ok) in [("pw \"bench\"", true), ("wrong", false)] {
            let out = run_with_timeout(
                Command::new(pg.psql_path())
                    .arg(format!(
                        "host=127.0.0.1 port={} user=bench dbname=postgres",
                        bouncer.port()
                    ))
                    .args(["-X", "-A", "-t", "-w", "-c", "select current_user"])
                    .env("PGPASSFILE", "/nonexistent/agent-tests-no-pgpass")
                    .env("PGPASSWORD", password),
                Duration::from_secs(30),
            )
            .unwrap();
            assert_eq!(out.status.success(), ok, "{}", out.describe());
            if ok {
                assert_eq!(out.stdout_text().trim(), "bench");
            }
        }
        assert!(!PgBouncer::version().unwrap().is_empty());
    }
}
