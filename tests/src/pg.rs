//! A throwaway PostgreSQL cluster, started from a cached `initdb` template.
//!
//! `initdb` is the slow part, so it runs once per machine and PostgreSQL version into a template
//! directory under the system temp dir (`agent-tests-pg-template-<version>`); each server gets
//! its own copy (`cp -a`) in a fresh temp dir, its own port and its own `pg_hba.conf`.
//! PostgreSQL refuses to run as root: everything runs as the `postgres` user via `runuser`.
//!
//! Over TCP a server may require a password ([`PgAuth`]); the Unix socket (in the server's temp
//! dir) always trusts, so the harness administers any server with [`PgServer::admin_sql`].
//! With [`PgOptions::tls`] the server also speaks TLS, with a certificate for 127.0.0.1 and ::1
//! signed by a throwaway CA ([`PgServer::ca_pem_path`]).

use crate::process::{OutputExt, run_with_timeout};
use crate::tls::TestCa;
use anyhow::{Context, Result, bail};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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

/// How clients authenticate over TCP (127.0.0.0/8 and ::1/128). The Unix socket always uses
/// `trust`, so that the harness can administer the server ([`PgServer::admin_sql`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PgAuth {
    /// No password: `trust`.
    #[default]
    Trust,
    /// `scram-sha-256`, with `password_encryption = scram-sha-256`.
    Scram,
    /// `md5`, with `password_encryption = md5` (so that the server really asks for MD5: with a
    /// SCRAM verifier stored, an `md5` hba line would switch to SCRAM).
    Md5,
    /// `password`: the password in clear text (stored as a SCRAM verifier).
    Password,
}

impl PgAuth {
    /// The `pg_hba.conf` method for host connections.
    pub fn hba_method(self) -> &'static str {
        match self {
            PgAuth::Trust => "trust",
            PgAuth::Scram => "scram-sha-256",
            PgAuth::Md5 => "md5",
            PgAuth::Password => "password",
        }
    }

    /// The `password_encryption` setting used with this method.
    pub fn password_encryption(self) -> &'static str {
        match self {
            PgAuth::Md5 => "md5",
            PgAuth::Trust | PgAuth::Scram | PgAuth::Password => "scram-sha-256",
        }
    }
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
    /// Serve TLS too (`ssl=on`) with a certificate for 127.0.0.1 and ::1 signed by a throwaway
    /// CA (see [`PgServer::ca_pem_path`]). Plain-text connections stay accepted.
    pub tls: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            port: None,
            listen_addresses: vec!["127.0.0.1".into(), "::1".into(), "127.0.0.2".into()],
            auth: PgAuth::Trust,
            settings: Vec::new(),
            tls: false,
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
    auth: PgAuth,
    tls: bool,
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

        let mut opts = opts;
        opts.settings.push((
            "password_encryption".into(),
            opts.auth.password_encryption().into(),
        ));
        if opts.tls {
            let (cert, key) = write_server_tls_files(dir.path(), uid, gid)?;
            opts.settings.push(("ssl".into(), "on".into()));
            opts.settings
                .push(("ssl_cert_file".into(), cert.display().to_string()));
            opts.settings
                .push(("ssl_key_file".into(), key.display().to_string()));
        }

        let mut server = Self {
            dir,
            bin,
            port: 0,
            auth: opts.auth,
            tls: opts.tls,
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

    /// How TCP clients authenticate.
    pub fn auth(&self) -> PgAuth {
        self.auth
    }

    /// The directory of the server's Unix socket (`.s.PGSQL.<port>`): pass it as `-h` to psql.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PEM file of the CA that signed the server certificate, when the server was started
    /// with [`PgOptions::tls`].
    pub fn ca_pem_path(&self) -> Option<PathBuf> {
        self.tls.then(|| self.dir.path().join(CA_PEM))
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

    /// Restarts the server on the same port with the same settings (`pg_ctl restart -m fast`):
    /// open sessions are terminated (their clients get FATAL 57P01), then the server accepts
    /// connections again. Returns once it does.
    pub fn restart(&self) -> Result<()> {
        run_checked(
            Command::new("runuser")
                .args(["-u", PG_OS_USER, "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_path())
                .args(["-w", "-t", "60", "-m", "fast", "restart"]),
            PG_CTL_TIMEOUT,
        )
        .map(drop)
    }

    /// The pid of the postmaster (first line of `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Result<u32> {
        let path = self.data_dir().join("postmaster.pid");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("no pid in {}", path.display()))
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
    /// returns its output without the final newline. On a server whose TCP connections need a
    /// password ([`PgAuth`] other than `Trust`) it goes over the Unix socket instead.
    pub fn psql_direct(&self, sql: &str) -> Result<String> {
        if self.auth != PgAuth::Trust {
            return self.admin_sql(sql);
        }
        let args = self.psql_args("127.0.0.1", sql);
        let out = run_checked(
            Command::new(&args[0])
                .args(&args[1..])
                .env("PGCONNECT_TIMEOUT", "10"),
            PSQL_TIMEOUT,
        )?;
        Ok(out.stdout_text().trim_end_matches('\n').to_string())
    }

    /// Runs `sql` (one or more statements, as one `-c`: a single implicit transaction unless it
    /// holds transaction control) as the superuser over the Unix socket (always `trust`), in
    /// database `postgres`; returns psql's unaligned, tuples-only output without the final
    /// newline. Fails on the first SQL error.
    pub fn admin_sql(&self, sql: &str) -> Result<String> {
        self.admin_sql_in("postgres", sql)
    }

    /// [`Self::admin_sql`] in database `dbname`.
    pub fn admin_sql_in(&self, dbname: &str, sql: &str) -> Result<String> {
        let out = run_checked(
            Command::new(self.psql_path())
                .arg("-h")
                .arg(self.socket_dir())
                .arg("-p")
                .arg(self.port.to_string())
                .args(["-U", PG_SUPERUSER, "-d", dbname])
                .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
                .env_remove("PGPASSWORD")
                .env("PGCONNECT_TIMEOUT", "10"),
            PSQL_TIMEOUT,
        )?;
        Ok(out.stdout_text().trim_end_matches('\n').to_string())
    }

    /// Creates a role that can log in with `password` (stored the way the server's
    /// `password_encryption` says: SCRAM, or MD5 for [`PgAuth::Md5`]).
    pub fn create_login_role(&self, name: &str, password: &str) -> Result<()> {
        self.admin_sql(&format!(
            "create role {} login password {}",
            quote_ident(name),
            quote_literal(password)
        ))
        .map(drop)
        .with_context(|| format!("cannot create the login role {name}"))
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
    let method = auth.hba_method();
    format!(
        "# written by the agent-tests harness\n\
         local all all trust\n\
         host all all 127.0.0.0/8 {method}\n\
         host all all ::1/128 {method}\n"
    )
}

/// The file name of the CA certificate in a TLS server's directory.
const CA_PEM: &str = "ca.pem";

/// Generates a throwaway CA (`<dir>/ca.pem`) and a server certificate for 127.0.0.1, ::1 and
/// `localhost` (`<dir>/server.crt`, key `<dir>/server.key` owned by the server's OS user, mode
/// 0600 as PostgreSQL requires). Returns the certificate and key paths.
fn write_server_tls_files(dir: &Path, uid: u32, gid: u32) -> Result<(PathBuf, PathBuf)> {
    let ca = TestCa::new("agent-tests throwaway PostgreSQL CA")?;
    ca.write_cert_pem(&dir.join(CA_PEM))?;
    let server = ca.issue_server_cert("localhost", &["127.0.0.1", "::1", "localhost"])?;
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    fs::write(&cert, &server.cert_pem)
        .with_context(|| format!("cannot write {}", cert.display()))?;
    fs::write(&key, &server.key_pem).with_context(|| format!("cannot write {}", key.display()))?;
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600))?;
    for path in [&cert, &key] {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {}", path.display()))?;
    }
    Ok((cert, key))
}

/// `name` as a quoted SQL identifier (`"na""me"`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `value` as a standard SQL string literal (`'it''s'`).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A secret (a password) in a file that only its owner can read (mode 0600), in a temp dir
/// deleted on drop: what a policy's `password = { file = "..." }` points to. The file holds the
/// value without a trailing newline.
pub struct Secret {
    dir: tempfile::TempDir,
    value: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// A secret file holding `value`.
    pub fn new(value: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("agent-tests-secret-")
            .tempdir()
            .context("cannot create a temp dir for a secret")?;
        let secret = Self {
            dir,
            value: value.to_string(),
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(secret.path())
            .with_context(|| format!("cannot create {}", secret.path().display()))?;
        file.write_all(value.as_bytes())?;
        // The mode given to open() is filtered by the umask: make sure.
        fs::set_permissions(secret.path(), fs::Permissions::from_mode(0o600))?;
        Ok(secret)
    }

    /// A secret file holding `<prefix><32 random hex digits>`: distinctive enough to be searched
    /// for in logs and outputs.
    pub fn random(prefix: &str) -> Result<Self> {
        Self::new(&format!("{prefix}{}", random_hex(16)?))
    }

    /// The absolute path of the file.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("secret")
    }

    /// The secret itself.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// `bytes` random bytes from the kernel, as lowercase hex.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
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
    use std::process::Output;

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

    /// psql over TCP with a libpq connection string, `password` in `PGPASSWORD` (never
    /// prompting), and no `.pgpass`.
    fn psql_conninfo(pg: &PgServer, conninfo: &str, password: Option<&str>, sql: &str) -> Output {
        let mut cmd = Command::new(pg.psql_path());
        cmd.arg(conninfo)
            .args(["-X", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSFILE", "/nonexistent/agent-tests-no-pgpass")
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD");
        if let Some(password) = password {
            cmd.env("PGPASSWORD", password);
        }
        run_with_timeout(&mut cmd, Duration::from_secs(30)).unwrap()
    }

    /// A server with `auth`: the Unix socket trusts, TCP logins need the right password, and the
    /// server log shows the method used.
    fn check_password_auth(auth: PgAuth, method_in_log: &str, stored_prefix: &str) {
        let pg = PgServer::start(PgOptions {
            auth,
            ..PgOptions::default()
        })
        .unwrap();
        assert_eq!(pg.admin_sql("select current_user").unwrap(), "postgres");
        assert_eq!(pg.psql_direct("select 7").unwrap(), "7");
        pg.create_login_role("alice", "it's a pw").unwrap();
        assert_eq!(
            pg.admin_sql(
                "select left(rolpassword, position('$' in rolpassword || '$') - 1) \
                 from pg_authid where rolname = 'alice'"
            )
            .unwrap()
            .get(..stored_prefix.len()),
            Some(stored_prefix),
        );
        let port = pg.port();
        for host in ["127.0.0.1", "::1"] {
            let conninfo = format!("host={host} port={port} user=alice dbname=postgres");
            let ok = psql_conninfo(&pg, &conninfo, Some("it's a pw"), "select current_user");
            assert!(ok.status.success(), "{}", ok.describe());
            assert_eq!(ok.stdout_text().trim(), "alice");

            let wrong = psql_conninfo(&pg, &conninfo, Some("wrong"), "select 1");
            assert!(!wrong.status.success(), "{}", wrong.describe());
            assert!(
                wrong
                    .stderr_text()
                    .contains("password authentication failed"),
                "{}",
                wrong.describe()
            );
            let none = psql_conninfo(&pg, &conninfo, None, "select 1");
            assert!(!none.status.success(), "{}", none.describe());
        }
        // The superuser has no password: TCP refuses it too.
        let conninfo = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
        let su = psql_conninfo(&pg, &conninfo, None, "select 1");
        assert!(!su.status.success(), "{}", su.describe());
        assert!(
            pg.log_contents().contains(method_in_log),
            "no `{method_in_log}` in the server log:\n{}",
            pg.log_contents()
        );
    }

    #[test]
    fn scram_server_checks_passwords_over_tcp_and_trusts_the_socket() {
        check_password_auth(PgAuth::Scram, "method=scram-sha-256", "SCRAM-SHA-256");
    }

    #[test]
    fn md5_server_stores_md5_and_asks_for_it() {
        check_password_auth(PgAuth::Md5, "method=md5", "md5");
    }

    #[test]
    fn password_server_asks_for_the_clear_text_password() {
        check_password_auth(PgAuth::Password, "method=password", "SCRAM-SHA-256");
    }

    #[test]
    fn tls_server_passes_verify_full_with_its_ca_only() {
        let pg = PgServer::start(PgOptions {
            auth: PgAuth::Scram,
            tls: true,
            ..PgOptions::default()
        })
        .unwrap();
        pg.create_login_role("bob", "pw-bob").unwrap();
        let ca = pg.ca_pem_path().expect("a TLS server has a CA file");
        assert!(ca.is_file());
        let port = pg.port();
        for host in ["127.0.0.1", "::1"] {
            let conninfo = format!(
                "host={host} port={port} user=bob dbname=postgres sslmode=verify-full \
                 sslrootcert={}",
                ca.display()
            );
            let out = psql_conninfo(
                &pg,
                &conninfo,
                Some("pw-bob"),
                "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
            );
            assert!(out.status.success(), "{}", out.describe());
            assert_eq!(out.stdout_text().trim(), "t");
        }

        let other = tempfile::tempdir().unwrap();
        let other_ca = other.path().join("other-ca.pem");
        TestCa::new("another CA")
            .unwrap()
            .write_cert_pem(&other_ca)
            .unwrap();
        let conninfo = format!(
            "host=127.0.0.1 port={port} user=bob dbname=postgres sslmode=verify-full \
             sslrootcert={}",
            other_ca.display()
        );
        let out = psql_conninfo(&pg, &conninfo, Some("pw-bob"), "select 1");
        assert!(!out.status.success(), "{}", out.describe());
        assert!(
            out.stderr_text().contains("certificate verify failed"),
            "{}",
            out.describe()
        );
        assert!(
            PgServer::start(PgOptions::default())
                .unwrap()
                .ca_pem_path()
                .is_none()
        );
    }

    #[test]
    fn secret_files_are_private_and_exact() {
        let secret = Secret::random("S3cr3t-").unwrap();
        assert!(secret.value().starts_with("S3cr3t-"));
        assert_eq!(secret.value().len(), "S3cr3t-".len() + 32);
        assert!(secret.path().is_absolute());
        let meta = fs::metadata(secret.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(secret.path()).unwrap(), secret.value());
        assert_ne!(
            Secret::random("x").unwrap().value(),
            Secret::random("x").unwrap().value()
        );
        let path = secret.path();
        drop(secret);
        assert!(!path.exists());
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
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
