//! [`Recorder`]: writes one session's recording, entry by entry, on the proxy's hot path.
//!
//! Entries go to a buffer; the buffer reaches the file at each statement boundary
//! ([`Recorder::record_decision`], [`Recorder::record_approval`], [`Recorder::flush`]), so a
//! statement is in the file (the page cache) before it is forwarded, at the price of one
//! `write(2)` per statement. `fsync` is a policy ([`FsyncPolicy`]). Each line costs one
//! serialisation and two SHA-256 passes over its bytes (its hash, and the file digest).

use std::{
    fs::{DirBuilder, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::format::{
    self, ApprovalEntry, DecisionEntry, EndEntry, GENESIS, Header, ResultEntry, RowsEntry,
    StatementEntry, Summary, TruncatedEntry, VERSION,
};

/// Room kept below the cap for the `truncated` marker and the `end` line.
pub const RESERVED_BYTES: u64 = 2048;

/// What time it is (injectable so tests write recordings with known timing).
pub trait Clock: Send {
    fn now(&self) -> SystemTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// When the recording is forced to stable storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never (the page cache is enough: an agent crash loses nothing, a host crash may).
    Never,
    /// Once, when the session ends (the default).
    #[default]
    OnFinish,
    /// At every statement boundary (`fdatasync`): slow, for the paranoid.
    EveryStatement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The file never grows beyond this: when the next entry would not fit (with
    /// [`RESERVED_BYTES`] kept for the marker and the end), a `truncated` entry is written and
    /// nothing else but `end`. The header is always written.
    pub max_bytes: u64,
    pub fsync: FsyncPolicy,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            fsync: FsyncPolicy::default(),
        }
    }
}

/// What the policy says when the recording cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnError {
    /// The statement is not forwarded (the default).
    #[default]
    FailClosed,
    /// The session goes on unrecorded; the error is reported once ([`Recorder::take_error`])
    /// for an audit event.
    Continue,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write the session recording {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("the session recording {path} failed earlier ({message}): nothing more is recorded")]
    Disabled { path: PathBuf, message: String },
    #[error("invalid session id {0:?}")]
    BadSessionId(String),
}

enum State {
    Open,
    Truncated,
    Failed(String),
}

/// How a finished recording ended, for the `session-recorded` audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub session: String,
    /// Lines, the end line included.
    pub entries: u64,
    pub bytes: u64,
    /// The end line's digest (SHA-256 of everything before it).
    pub digest: String,
    pub truncated: bool,
    pub dropped: u64,
    pub summary: Summary,
}

/// The recording file and the lines not written to it yet. Unlike a `BufWriter`, it holds no
/// buffer between statements (a session waiting for its client keeps no memory for its
/// recording); more than [`Output::MAX_PENDING`] bytes are written at once.
struct Output {
    file: File,
    pending: Vec<u8>,
}

impl Output {
    const MAX_PENDING: usize = 64 * 1024;

    fn new(file: File) -> Self {
        Self {
            file,
            pending: Vec::new(),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > Self::MAX_PENDING {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending lines (one `write(2)` unless interrupted) and frees the buffer.
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.file.write_all(&pending)?;
        }
        Ok(())
    }

    fn get_ref(&self) -> &File {
        &self.file
    }
}

/// One session's recording.
pub struct Recorder {
    path: PathBuf,
    session: String,
    out: Option<Output>,
    limits: Limits,
    on_error: OnError,
    clock: Box<dyn Clock>,
    state: State,
    /// Hash of the last line written.
    prev: String,
    /// Digest of every byte written so far.
    file_digest: Sha256,
    seq: u64,
    written: u64,
    dropped: u64,
    summary: Summary,
    unreported: Option<RecordError>,
    finished: bool,
}

impl Recorder {
    /// Creates `<dir>/<header.session>.jsonl` (mode 0600, `dir` 0700 if created) and writes
    /// the header. Under [`OnError::Continue`] a failure gives a recorder that records nothing
    /// (its error comes out of [`Recorder::take_error`]); under [`OnError::FailClosed`] it is
    /// an error: the session must not go on.
    pub fn create(
        dir: &Path,
        header: Header,
        limits: Limits,
        on_error: OnError,
    ) -> Result<Self, RecordError> {
        Self::create_with_clock(dir, header, limits, on_error, Box::new(SystemClock))
    }

    pub fn create_with_clock(
        dir: &Path,
        mut header: Header,
        limits: Limits,
        on_error: OnError,
        clock: Box<dyn Clock>,
    ) -> Result<Self, RecordError> {
        if !format::is_valid_session_id(&header.session) {
            return Err(RecordError::BadSessionId(header.session));
        }
        header.version = VERSION;
        header.max_bytes = Some(limits.max_bytes);
        let path = format::session_file(dir, &header.session);
        let mut recorder = Self {
            path: path.clone(),
            session: header.session.clone(),
            out: None,
            limits,
            on_error,
            clock,
            state: State::Open,
            prev: GENESIS.to_string(),
            file_digest: Sha256::new(),
            seq: 0,
            written: 0,
            dropped: 0,
            summary: Summary::default(),
            unreported: None,
            finished: false,
        };
        let opened = DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .and_then(|()| {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
            });
        match opened {
            Ok(file) => recorder.out = Some(Output::new(file)),
            Err(err) => recorder.fail(err.to_string())?,
        }
        recorder.write_entry("header", &header, true)?;
        recorder.flush()?;
        Ok(recorder)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn session(&self) -> &str {
        &self.session
    }

    /// Bytes in the file so far (buffered ones included).
    pub fn bytes(&self) -> u64 {
        self.written
    }

    pub fn is_truncated(&self) -> bool {
        matches!(self.state, State::Truncated)
    }

    /// The error a [`OnError::Continue`] recorder swallowed, once: report it as an audit
    /// event (`recording-failed`).
    pub fn take_error(&mut self) -> Option<RecordError> {
        self.unreported.take()
    }

    /// Records a client message carrying SQL; returns its `seq`, which the decision, approval
    /// and result entries refer to. Buffered: the following [`Recorder::record_decision`]
    /// flushes both before the statement is forwarded.
    pub fn record_statement(&mut self, entry: StatementEntry) -> Result<u64, RecordError> {
        self.summary.statements += 1;
        let seq = self.seq;
        self.write_entry("statement", &entry, false)?;
        Ok(seq)
    }

    /// Records the decision on a statement, then flushes (the statement boundary): call it
    /// before forwarding.
    pub fn record_decision(&mut self, entry: DecisionEntry) -> Result<(), RecordError> {
        match entry.decision.as_str() {
            "allow" => self.summary.allowed += 1,
            "deny" => self.summary.denied += 1,
            _ => self.summary.approvals += 1,
        }
        self.write_entry("decision", &entry, false)?;
        self.boundary()
    }

    /// Records an approval event, then flushes.
    pub fn record_approval(&mut self, entry: ApprovalEntry) -> Result<(), RecordError> {
        self.write_entry("approval", &entry, false)?;
        self.boundary()
    }

    /// Records a result summary (buffered).
    pub fn record_result(&mut self, entry: ResultEntry) -> Result<(), RecordError> {
        self.summary.results += 1;
        self.summary.rows += entry.rows;
        self.summary.masked += entry.masked_total();
        if entry.error.is_some() {
            self.summary.errors += 1;
        }
        self.write_entry("result", &entry, false)
    }

    /// Records result rows (buffered): only when the policy says so, after masking.
    pub fn record_rows(&mut self, entry: RowsEntry) -> Result<(), RecordError> {
        self.write_entry("rows", &entry, false)
    }

    /// Hands the buffer to the file.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        if let (State::Open | State::Truncated, Some(out)) = (&self.state, self.out.as_mut())
            && let Err(err) = out.flush()
        {
            return self.fail(err.to_string());
        }
        self.check_failed()
    }

    /// Writes the `end` line, flushes and (by policy) syncs.
    pub fn finish(mut self, reason: &str) -> Result<Finished, RecordError> {
        self.finish_inner(reason)
    }

    fn finish_inner(&mut self, reason: &str) -> Result<Finished, RecordError> {
        self.finished = true;
        if let State::Failed(message) = &self.state {
            return Err(RecordError::Disabled {
                path: self.path.clone(),
                message: message.clone(),
            });
        }
        let digest = format::to_hex(&self.file_digest.clone().finalize());
        let end = EndEntry {
            reason: reason.chars().take(64).collect(),
            entries: self.seq,
            bytes: self.written,
            dropped: self.dropped,
            summary: self.summary.clone(),
            digest: digest.clone(),
        };
        self.write_entry("end", &end, true)?;
        self.flush()?;
        if self.limits.fsync != FsyncPolicy::Never
            && let Some(out) = &self.out
            && let Err(err) = out.get_ref().sync_all()
        {
            self.fail(err.to_string())?;
        }
        self.check_failed()?;
        Ok(Finished {
            path: self.path.clone(),
            session: self.session.clone(),
            entries: self.seq,
            bytes: self.written,
            digest,
            truncated: self.dropped > 0 || self.truncated_marker_written(),
            dropped: self.dropped,
            summary: self.summary.clone(),
        })
    }

    fn truncated_marker_written(&self) -> bool {
        matches!(self.state, State::Truncated)
    }

    fn boundary(&mut self) -> Result<(), RecordError> {
        self.flush()?;
        if self.limits.fsync == FsyncPolicy::EveryStatement
            && let (State::Open, Some(out)) = (&self.state, &self.out)
            && let Err(err) = out.get_ref().sync_data()
        {
            return self.fail(err.to_string());
        }
        Ok(())
    }

    /// Writes one line, or the truncation marker when it would not fit. `always`: the header
    /// and the end, which are written whatever the size.
    fn write_entry(
        &mut self,
        kind: &str,
        body: &impl Serialize,
        always: bool,
    ) -> Result<(), RecordError> {
        match self.state {
            State::Failed(_) => return self.check_failed(),
            State::Truncated if !always => {
                self.dropped += 1;
                return Ok(());
            }
            _ => {}
        }
        let t = format::format_time(self.clock.now());
        let line = match format::encode_line(kind, self.seq, &t, body, &self.prev) {
            Ok(line) => line,
            Err(err) => return self.fail(format!("cannot encode a {kind} entry: {err}")),
        };
        if !always && self.written + line.len() as u64 + 1 + RESERVED_BYTES > self.limits.max_bytes
        {
            let marker = TruncatedEntry {
                reason: "size-cap".into(),
                limit_bytes: self.limits.max_bytes,
                written_bytes: self.written,
            };
            let marker_line =
                match format::encode_line("truncated", self.seq, &t, &marker, &self.prev) {
                    Ok(line) => line,
                    Err(err) => return self.fail(format!("cannot encode the marker: {err}")),
                };
            self.append(&marker_line)?;
            self.state = State::Truncated;
            self.dropped += 1;
            return self.flush();
        }
        self.append(&line)
    }

    fn append(&mut self, line: &[u8]) -> Result<(), RecordError> {
        let Some(out) = self.out.as_mut() else {
            return self.check_failed();
        };
        let result = out.write_all(line).and_then(|()| out.write_all(b"\n"));
        if let Err(err) = result {
            return self.fail(err.to_string());
        }
        // The line's hash: the 64 hex digits before the closing `"}`.
        let hash = &line[line.len() - 66..line.len() - 2];
        self.prev = String::from_utf8_lossy(hash).into_owned();
        self.file_digest.update(line);
        self.file_digest.update(b"\n");
        self.written += line.len() as u64 + 1;
        self.seq += 1;
        Ok(())
    }

    /// Stops recording for good; an error for a fail-closed recorder, remembered otherwise.
    fn fail(&mut self, message: String) -> Result<(), RecordError> {
        let error = RecordError::Write {
            path: self.path.clone(),
            message: message.clone(),
        };
        tracing::error!(%error, "session recording failed");
        self.state = State::Failed(message);
        self.out = None;
        match self.on_error {
            OnError::FailClosed => Err(error),
            OnError::Continue => {
                self.unreported.get_or_insert(error);
                Ok(())
            }
        }
    }

    fn check_failed(&self) -> Result<(), RecordError> {
        match (&self.state, self.on_error) {
            (State::Failed(message), OnError::FailClosed) => Err(RecordError::Disabled {
                path: self.path.clone(),
                message: message.clone(),
            }),
            _ => Ok(()),
        }
    }
}

impl Drop for Recorder {
    /// A recorder dropped without [`Recorder::finish`] (a session task aborted) still ends its
    /// file properly.
    fn drop(&mut self) {
        if !self.finished && !matches!(self.state, State::Failed(_)) {
            let _ = self.finish_inner("aborted");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;
    use crate::record::format::{
        ApprovalEvent, ErrorInfo, Param, ProcessInfo, RuleInfo, TargetInfo, TokenInfo,
    };

    /// A clock tests move by hand.
    #[derive(Clone)]
    pub(crate) struct FakeClock(pub Arc<Mutex<SystemTime>>);

    impl FakeClock {
        pub(crate) fn at(t: &str) -> Self {
            Self(Arc::new(Mutex::new(humantime::parse_rfc3339(t).unwrap())))
        }
        pub(crate) fn advance(&self, d: Duration) {
            *self.0.lock().unwrap() += d;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    pub(crate) fn header(session: &str, workload: &str) -> Header {
        Header {
            version: VERSION,
            session: session.into(),
            connection_id: Some("7".into()),
            workload: workload.into(),
            process: ProcessInfo {
                pid: 4321,
                uid: 1000,
                gid: 100,
                name: "psql".into(),
                executable: Some("/usr/bin/psql".into()),
                command_line: vec!["psql".into(), "-h".into(), "127.0.0.1".into()],
                cgroup_id: 99,
                cgroup_path: Some(format!("/chunk-agent/jobs/{workload}/job-1")),
            },
            token: Some(TokenInfo {
                subject: "spiffe://example/job".into(),
                groups: vec!["batch".into()],
            }),
            target: TargetInfo {
                name: "db".into(),
                address: Some("127.0.0.1:5432".into()),
                database: Some("app".into()),
            },
            upstream_role: Some("app_ro".into()),
            client: Some("127.0.0.1:40000".into()),
            host: Some("host1".into()),
            agent_version: Some("0.1.0".into()),
            max_bytes: None,
        }
    }

    pub(crate) fn decision(statement: u64, outcome: &str) -> DecisionEntry {
        DecisionEntry {
            statement,
            decision: outcome.into(),
            rule: RuleInfo {
                name: if outcome == "allow" {
                    "allow[0]"
                } else {
                    "orders-read-only"
                }
                .into(),
                ruleset: Some("demo.toml:12:1".into()),
            },
            reason: (outcome == "deny").then(|| "`write` on `orders`".to_string()),
            kinds: vec!["SELECT".into()],
            cached: false,
        }
    }

    /// A small session: two selects (one masked column), a denied delete, an approval.
    /// Statements are 10 ms apart; results 2 ms after their statement.
    pub(crate) fn write_sample(dir: &Path, session: &str, workload: &str, start: &str) -> Finished {
        let clock = FakeClock::at(start);
        let mut rec = Recorder::create_with_clock(
            dir,
            header(session, workload),
            Limits::default(),
            OnError::FailClosed,
            Box::new(clock.clone()),
        )
        .unwrap();
        for i in 0..2 {
            clock.advance(Duration::from_millis(10));
            let s = rec
                .record_statement(
                    StatementEntry::new(
                        "Parse",
                        "select id, ssn from customers where id = $1",
                        false,
                    )
                    .with_params(vec![Param::from_wire(Some(b"4111-1111"), false)]),
                )
                .unwrap();
            rec.record_decision(decision(s, "allow")).unwrap();
            clock.advance(Duration::from_millis(2));
            let mut masked = std::collections::BTreeMap::new();
            masked.insert("ssn".to_string(), 3);
            rec.record_result(ResultEntry {
                statement: s,
                command: Some("SELECT 3".into()),
                columns: vec!["id".into(), "ssn".into()],
                rows: 3,
                bytes: 120 + i,
                duration_us: 2000,
                error: None,
                masked,
            })
            .unwrap();
            rec.record_rows(RowsEntry {
                statement: s,
                columns: vec!["id".into(), "ssn".into()],
                rows: vec![vec![Some("1".into()), Some("***-**-1234".into())]],
            })
            .unwrap();
        }
        clock.advance(Duration::from_millis(10));
        let s = rec
            .record_statement(StatementEntry::new(
                "Query",
                "delete from orders where id = 5",
                false,
            ))
            .unwrap();
        rec.record_decision(decision(s, "deny")).unwrap();
        rec.record_result(ResultEntry {
            statement: s,
            error: Some(ErrorInfo {
                sqlstate: "42501".into(),
                message: "denied by the chunk agent".into(),
            }),
            ..ResultEntry::default()
        })
        .unwrap();
        clock.advance(Duration::from_millis(10));
        let s = rec
            .record_statement(StatementEntry::new("Query", "truncate audit_log", false))
            .unwrap();
        rec.record_decision(decision(s, "approval")).unwrap();
        rec.record_approval(ApprovalEntry {
            statement: s,
            event: ApprovalEvent::Granted,
            approver: Some("alice".into()),
            reference: Some("req-1".into()),
            reason: None,
        })
        .unwrap();
        clock.advance(Duration::from_millis(10));
        rec.finish("client-closed").unwrap()
    }

    #[test]
    fn a_recorder_can_move_into_a_session_task() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<Recorder>();
    }

    #[test]
    fn a_recording_reads_back_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
        let bytes = std::fs::read(&done.path).unwrap();
        assert_eq!(bytes.len() as u64, done.bytes);
        let rec = crate::record::reader::read_file(&done.path).unwrap();
        assert_eq!(rec.header.session, "s1");
        assert_eq!(rec.header.max_bytes, Some(Limits::default().max_bytes));
        assert_eq!(rec.entries.len() as u64, done.entries);
        assert!(rec.end().is_some());
        let v = crate::record::verify::verify_file(&done.path).unwrap();
        assert!(v.is_valid(), "{v}");
        assert_eq!(v.digest.as_deref(), Some(done.digest.as_str()));
        assert_eq!(done.summary.statements, 4);
        assert_eq!(done.summary.denied, 1);
        assert_eq!(done.summary.approvals, 1);
        assert_eq!(done.summary.masked, 6);
    }

    #[test]
    fn the_digest_is_the_sha256_of_everything_before_the_end_line() {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
        let text = std::fs::read_to_string(&done.path).unwrap();
        let end_start = text[..text.len() - 1].rfind('\n').unwrap() + 1;
        assert_eq!(
            format::sha256_hex(&text.as_bytes()[..end_start]),
            done.digest
        );
    }

    #[test]
    fn nothing_secret_reaches_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
        let text = std::fs::read_to_string(&done.path).unwrap();
        assert!(!text.contains("4111-1111"), "a bind value leaked");
        assert!(!text.contains("= 5"), "a literal leaked");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&done.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_size_cap_writes_a_marker_and_stops() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_bytes: 4096,
            fsync: FsyncPolicy::Never,
        };
        let mut rec = Recorder::create(
            dir.path(),
            header("capped", "w"),
            limits,
            OnError::FailClosed,
        )
        .unwrap();
        let mut n = 0;
        while !rec.is_truncated() {
            let s = rec
                .record_statement(StatementEntry::new("Query", "select 1", false))
                .unwrap();
            rec.record_decision(decision(s, "allow")).unwrap();
            n += 1;
            assert!(n < 100, "never truncated");
        }
        for _ in 0..5 {
            let s = rec
                .record_statement(StatementEntry::new("Query", "select 2", false))
                .unwrap();
            rec.record_decision(decision(s, "allow")).unwrap();
        }
        let done = rec.finish("client-closed").unwrap();
        assert!(done.truncated);
        assert!(done.dropped >= 10, "{}", done.dropped);
        assert_eq!(done.summary.statements, n + 5);
        let size = std::fs::metadata(&done.path).unwrap().len();
        assert!(size <= 4096, "{size}");
        let text = std::fs::read_to_string(&done.path).unwrap();
        let kinds: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(kinds[kinds.len() - 2], "truncated");
        assert_eq!(kinds[kinds.len() - 1], "end");
        assert!(!text.contains("select 2"));
        let v = crate::record::verify::verify_file(&done.path).unwrap();
        assert!(v.is_valid(), "{v}");
        assert!(v.truncated.is_some(), "{v}");
    }

    #[test]
    fn a_recording_that_cannot_be_created_fails_closed_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let err = Recorder::create(
            &blocker,
            header("s", "w"),
            Limits::default(),
            OnError::FailClosed,
        )
        .err()
        .unwrap();
        assert!(matches!(err, RecordError::Write { .. }), "{err}");
    }

    #[test]
    fn a_continue_policy_records_nothing_and_reports_the_error_once() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let mut rec = Recorder::create(
            &blocker,
            header("s", "w"),
            Limits::default(),
            OnError::Continue,
        )
        .unwrap();
        assert!(rec.take_error().is_some());
        assert!(rec.take_error().is_none());
        let s = rec
            .record_statement(StatementEntry::new("Query", "select 1", false))
            .unwrap();
        rec.record_decision(decision(s, "allow")).unwrap();
        assert!(matches!(
            rec.finish("client-closed"),
            Err(RecordError::Disabled { .. })
        ));
    }

    #[test]
    fn a_write_failure_refuses_every_later_statement_when_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(
            dir.path(),
            header("s", "w"),
            Limits::default(),
            OnError::FailClosed,
        )
        .unwrap();
        // Simulate a broken disk.
        let _ = rec.fail("No space left on device".into());
        let err = rec
            .record_statement(StatementEntry::new("Query", "select 1", false))
            .unwrap_err();
        assert!(matches!(err, RecordError::Disabled { .. }), "{err}");
        assert!(rec.finish("client-closed").is_err());
    }

    #[test]
    fn two_sessions_cannot_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let _a = Recorder::create(
            dir.path(),
            header("s", "w"),
            Limits::default(),
            OnError::FailClosed,
        )
        .unwrap();
        assert!(
            Recorder::create(
                dir.path(),
                header("s", "w"),
                Limits::default(),
                OnError::FailClosed
            )
            .is_err()
        );
        assert!(matches!(
            Recorder::create(
                dir.path(),
                header("../x", "w"),
                Limits::default(),
                OnError::FailClosed
            ),
            Err(RecordError::BadSessionId(_))
        ));
    }

    #[test]
    fn a_dropped_recorder_still_ends_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let mut rec = Recorder::create(
                dir.path(),
                header("s", "w"),
                Limits::default(),
                OnError::FailClosed,
            )
            .unwrap();
            rec.record_statement(StatementEntry::new("Query", "select 1", false))
                .unwrap();
            rec.path().to_path_buf()
        };
        let v = crate::record::verify::verify_file(&path).unwrap();
        assert!(v.is_valid(), "{v}");
        let rec = crate::record::reader::read_file(&path).unwrap();
        assert_eq!(rec.end().unwrap().reason, "aborted");
    }
}
