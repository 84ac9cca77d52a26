//! A throwaway PostgreSQL cluster, started from a cached `initdb` template.
//!
//! `initdb` is the slow part, so it runs once per machine and PostgreSQL version into a template
//! directory under the system temp dir (`agent-tests-pg-template-<version>`); each server gets
//! its own copy (`cp -a`) in a fresh temp dir, its own port and its own `pg_hba.conf`.
//! PostgreSQL refuses to run as root: everything runs as the `postgres` user via `runuser`.

use crate::process::{OutputExt, run_with_timeout};
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The OS user that owns and runs the clusters.
pub const PG_OS_USER: &str = "postgres";
/// The database superuser created by `initdb` (and used by [`PgServer::psql_direct`]).
pub const PG_SUPERUSER: &str = "postgres";

const PG_CTL_TIMEOUT: Duration = Duration::from_secs(90);
const PSQL_TIMEOUT: Duration = Duration::from_secs(60);

/// How clients authenticate over TCP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgAuth {
    /// No password: `trust` for 127.0.0.0/8 and ::1/128 (and the Unix socket).
    #[default]
    Trust,
}

/// Options for [`PgServer::start`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The port to listen on; `None` picks a free one (and retries on a bind race).
    pub port: Option<u16>,
    /// `listen_addresses`. The default listens on 127.0.0.1, ::1 and 127.0.0.2 (the last one is
    /// the "unprotected destination" of the tests).
    pub listen_addresses: Vec<String>,
    /// Client authentication for TCP connections.
    pub auth: PgAuth,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            port: None,
            listen_addresses: vec!["127.0.0.1".into(), "::1".into(), "127.0.0.2".into()],
            auth: PgAuth::Trust,
            settings: Vec::new(),
        }
    }
}

/// A running throwaway PostgreSQL server; stopped (`pg_ctl stop -m immediate`) and deleted on
/// drop.
#[derive(Debug)]
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    stopped: bool,
}

impl PgServer {
    /// Starts a server with `opts`.
    pub fn start(opts: PgOptions) -> Result<Self> {
        let bin = pg_bin_dir()?;
        let template = template_dir(&bin)?;
        let (uid, gid) = os_user_ids(PG_OS_USER)?;

        let dir = tempfile::Builder::new()
            .prefix("agent-tests-pg-")
            .tempdir()
            .context("cannot create a temp dir for PostgreSQL")?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {} to {PG_OS_USER}", dir.path().display()))?;
        let data = dir.path().join("data");
        run_checked(
            Command::new("cp").arg("-a").arg(&template).arg(&data),
            PG_CTL_TIMEOUT,
        )?;
        let hba = data.join("pg_hba.conf");
        fs::write(&hba, hba_conf(&opts.auth))
            .with_context(|| format!("cannot write {}", hba.display()))?;
        std::os::unix::fs::chown(&hba, Some(uid), Some(gid))?;

        let mut server = Self {
            dir,
            bin,
            port: 0,
            stopped: true,
        };
        let attempts = if opts.port.is_some() { 1 } else { 5 };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = match opts.port {
                Some(port) => port,
                None => crate::net::free_port()?,
            };
            match server.pg_ctl_start(port, &opts) {
                Ok(()) => {
                    server.port = port;
                    server.stopped = false;
                    return Ok(server);
                }
                Err(e) => {
                    let bind_race = server.log_contents().contains("could not bind");
                    last_error = Some(e);
                    if !bind_race {
                        break;
                    }
                }
            }
        }
        let log = server.log_contents();
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start"))
            .context(format!("PostgreSQL did not start; its log:\n{log}")))
    }

    fn pg_ctl_start(&self, port: u16, opts: &PgOptions) -> Result<()> {
        let mut server_opts = format!(
            "-p {port} -c listen_addresses='{}' -c unix_socket_directories='{}' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c log_connections=on",
            opts.listen_addresses.join(","),
            self.dir.path().display()
        );
        for (name, value) in &opts.settings {
            server_opts.push_str(&format!(" -c {name}='{value}'"));
        }
        run_checked(
            Command::new("runuser")
                .args(["-u", PG_OS_USER, "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_path())
                .args(["-w", "-t", "60", "-o"])
                .arg(server_opts)
                .arg("start"),
            PG_CTL_TIMEOUT,
        )
        .map(drop)
    }

    /// The TCP port (the same on every listen address).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `bin` directory of the PostgreSQL version in use.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// The `psql` of that version (the real binary, not Debian's `pg_wrapper`).
    pub fn psql_path(&self) -> PathBuf {
        self.bin.join("psql")
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The server log so far (empty if unreadable).
    pub fn log_contents(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A psql command line (program first) that runs `sql` against this server via `host`
    /// (`127.0.0.1`, `::1`, ...) as the superuser, unaligned, tuples only, without `.psqlrc`.
    pub fn psql_args(&self, host: &str, sql: &str) -> Vec<String> {
        vec![
            self.psql_path().to_string_lossy().into_owned(),
            "-h".into(),
            host.into(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            PG_SUPERUSER.into(),
            "-d".into(),
            "postgres".into(),
            "-X".into(),
            "-A".into(),
            "-t".into(),
            "-v".into(),
            "ON_ERROR_STOP=1".into(),
            "-c".into(),
            sql.into(),
        ]
    }

    /// Runs `sql` with psql over TCP to 127.0.0.1 from this process (no agent involved) and
    /// returns its output without the final newline.
    pub fn psql_direct(&self, sql: &str) -> Result<String> {
        let args = self.psql_args("127.0.0.1", sql);
        let out = run_checked(
            Command::new(&args[0])
                .args(&args[1..])
                .env("PGCONNECT_TIMEOUT", "10"),
            PSQL_TIMEOUT,
        )?;
        Ok(out.stdout_text().trim_end_matches('\n').to_string())
    }

    /// Stops the server now (also done on drop).
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        run_checked(
            Command::new("runuser")
                .args(["-u", PG_OS_USER, "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"]),
            PG_CTL_TIMEOUT,
        )
        .map(drop)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- PostgreSQL log ({}) ---\n{}",
                self.log_path().display(),
                self.log_contents()
            );
        }
        if let Err(e) = self.stop() {
            eprintln!(
                "warning: cannot stop PostgreSQL on port {}: {e:#}",
                self.port
            );
        }
    }
}

fn hba_conf(auth: &PgAuth) -> String {
    let method = match auth {
        PgAuth::Trust => "trust",
    };
    format!(
        "# written by the agent-tests harness\n\
         local all all trust\n\
         host all all 127.0.0.0/8 {method}\n\
         host all all ::1/128 {method}\n"
    )
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb` (Debian's layout).
pub fn pg_bin_dir() -> Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    match candidates.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin \
             (install them: `apt-get install postgresql`, or run `cargo xtask setup`)"
        ),
    }
}

/// Numeric uid and gid of an OS user, from /etc/passwd.
pub fn os_user_ids(user: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("cannot read /etc/passwd")?;
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next()? != user {
                return None;
            }
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .with_context(|| {
            format!("no `{user}` user in /etc/passwd (installing `postgresql` creates it)")
        })
}

/// The initdb template for the PostgreSQL in `bin`, created once per machine and version.
fn template_dir(bin: &Path) -> Result<PathBuf> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(PoisonError::into_inner);

    let version = run_checked(
        Command::new(bin.join("initdb")).arg("--version"),
        PG_CTL_TIMEOUT,
    )?
    .stdout_text();
    let tag: String = version
        .trim()
        .trim_start_matches("initdb (PostgreSQL) ")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tmp = std::env::temp_dir();
    let template = tmp.join(format!("agent-tests-pg-template-{tag}"));
    if template.join("PG_VERSION").exists() {
        return Ok(template);
    }

    // Build next to the final place, then rename: the template appears complete or not at all,
    // even when several test processes race for it.
    let (uid, gid) = os_user_ids(PG_OS_USER)?;
    let building = tmp.join(crate::unique_name("agent-tests-pg-template-building"));
    fs::create_dir(&building).with_context(|| format!("cannot create {}", building.display()))?;
    std::os::unix::fs::chown(&building, Some(uid), Some(gid))
        .with_context(|| format!("cannot chown {} to {PG_OS_USER}", building.display()))?;
    let initdb = run_checked(
        Command::new("runuser")
            .args(["-u", PG_OS_USER, "--"])
            .arg(bin.join("initdb"))
            .arg("-D")
            .arg(&building)
            .args([
                "-A",
                "trust",
                "-U",
                PG_SUPERUSER,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]),
        Duration::from_secs(300),
    );
    if let Err(e) = initdb {
        let _ = fs::remove_dir_all(&building);
        return Err(e.context("initdb failed"));
    }
    if fs::rename(&building, &template).is_err() {
        // Another process won the race; use its template.
        let _ = fs::remove_dir_all(&building);
        if !template.join("PG_VERSION").exists() {
            bail!(
                "cannot create the PostgreSQL template {}",
                template.display()
            );
        }
    }
    Ok(template)
}

/// Runs a command with a timeout and fails (with its output) unless it exits with 0.
fn run_checked(cmd: &mut Command, timeout: Duration) -> Result<std::process::Output> {
    let description = crate::process::describe_command(cmd);
    let out = run_with_timeout(cmd, timeout)?;
    if !out.status.success() {
        bail!("`{description}` failed: {}", out.describe());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uid_and_gid_from_passwd() {
        assert_eq!(os_user_ids("root").unwrap(), (0, 0));
        assert!(os_user_ids("no-such-user-here").is_err());
    }

    /// A real throwaway server: starts, answers over IPv4, IPv6 and 127.0.0.2, and is gone
    /// after drop.
    #[test]
    fn throwaway_postgres_answers_select_1() {
        let pg = PgServer::start(PgOptions::default()).unwrap();
        assert_eq!(pg.psql_direct("select 1").unwrap(), "1");
        for host in ["::1", "127.0.0.2"] {
            let args = pg.psql_args(host, "select inet_server_addr()");
            let out = run_with_timeout(
                Command::new(&args[0]).args(&args[1..]),
                Duration::from_secs(30),
            )
            .unwrap();
            assert!(out.status.success(), "{}", out.describe());
            assert_eq!(out.stdout_text().trim(), host);
        }
        let data = pg.data_dir();
        let port = pg.port();
        drop(pg);
        assert!(!data.exists());
        assert!(crate::net::port_is_free(port));
    }

    #[test]
    fn two_servers_run_side_by_side() {
        let a = PgServer::start(PgOptions::default()).unwrap();
        let b = PgServer::start(PgOptions::default()).unwrap();
        assert_ne!(a.port(), b.port());
        assert_eq!(a.psql_direct("select 'a'").unwrap(), "a");
        assert_eq!(b.psql_direct("select 'b'").unwrap(), "b");
    }
}
