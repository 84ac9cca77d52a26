//! Session recording glue for the PostgreSQL proxy: which recordings are open, and, per session,
//! the recorder with what it needs to tie each statement to its result.
//!
//! The client side records a statement and its decision before the message is forwarded; the
//! server side adds up rows and bytes of the request that answers it (by the tracker's
//! [`RequestId`]) and writes the result when the request completes.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Instant,
};

use super::{
    codec::{BackendMessage, FrontendMessage, decode_backend_frame},
    gate::Judged,
    session::RequestId,
};
use crate::mask::MaskCount;
use crate::policy::{RecordingFailure, RecordingSettings, Values};
use crate::record::{
    self, ApprovalEntry, DecisionEntry, Finished, Limits, OnError, Param, RecordError, Recorder,
    ResultEntry, RowsEntry, StatementEntry,
    format::{ApprovalEvent, ErrorInfo},
};

/// Where sessions are recorded, and which recordings are still being written (retention must
/// not delete those).
pub struct Recording {
    pub sessions_dir: PathBuf,
    pub limits: Limits,
    pub on_error: OnError,
    open: Mutex<HashSet<String>>,
}

impl Recording {
    /// Creates `<data_dir>/sessions` (mode 0700) if needed.
    pub fn prepare(data_dir: &Path, limits: Limits, on_error: OnError) -> io::Result<Self> {
        let sessions_dir = record::sessions_dir(data_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&sessions_dir)?;
        std::fs::set_permissions(&sessions_dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self {
            sessions_dir,
            limits,
            on_error,
            open: Mutex::new(HashSet::new()),
        })
    }

    pub fn is_open(&self, session: &str) -> bool {
        self.lock().contains(session)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a failed recording of a workload with `settings` does: the policy's choice, else
    /// the agent's.
    pub fn on_error(&self, settings: &RecordingSettings) -> OnError {
        match settings.on_error {
            Some(RecordingFailure::FailClosed) => OnError::FailClosed,
            Some(RecordingFailure::Continue) => OnError::Continue,
            None => self.on_error,
        }
    }

    /// Starts the recording of a session of a workload with `settings`.
    pub fn start(
        &self,
        header: record::Header,
        settings: &RecordingSettings,
    ) -> Result<SessionRecording, RecordError> {
        let session = header.session.clone();
        self.lock().insert(session.clone());
        let on_error = self.on_error(settings);
        match Recorder::create(&self.sessions_dir, header, self.limits, on_error) {
            Ok(recorder) => Ok(SessionRecording {
                recorder,
                portals: HashMap::new(),
                pending: HashMap::new(),
                current: None,
                keep_params: settings.bind_values == Values::Keep,
                keep_literals: settings.sql_literals == Values::Keep,
                result_rows: settings.result_rows as usize,
            }),
            Err(e) => {
                self.lock().remove(&session);
                Err(e)
            }
        }
    }

    /// Ends a session's recording.
    pub fn finish(
        &self,
        recording: SessionRecording,
        reason: &str,
    ) -> Result<Finished, RecordError> {
        let session = recording.recorder.session().to_owned();
        let finished = recording.recorder.finish(reason);
        self.lock().remove(&session);
        finished
    }
}

/// A result being added up.
struct Pending {
    statement: u64,
    started: Instant,
    rows: u64,
    bytes: u64,
    columns: Vec<String>,
    command: Option<String>,
    error: Option<ErrorInfo>,
    /// Values masked, per site (e.g. `column public.t.email`).
    masked: BTreeMap<String, u64>,
    /// The first rows, as sent to the client, when the policy records rows.
    kept_rows: Vec<Vec<Option<String>>>,
}

/// One session's recorder and bookkeeping. Bounded: at most one pending entry per pending
/// request of the tracker (itself bounded), names as many as the gate allows.
pub struct SessionRecording {
    recorder: Recorder,
    /// Portal -> seq of its Bind entry.
    portals: HashMap<String, u64>,
    pending: HashMap<RequestId, Pending>,
    /// The seq of the client message being forwarded (for the requests it produces).
    current: Option<u64>,
    /// Policy: bind values and SQL literals kept; result rows recorded per statement.
    keep_params: bool,
    keep_literals: bool,
    result_rows: usize,
}

impl SessionRecording {
    pub fn recorder_mut(&mut self) -> &mut Recorder {
        &mut self.recorder
    }

    /// Records a client message before it is forwarded: its statement and, when the gate
    /// judged it, the decision. Parameters are redacted (their sizes kept).
    pub fn client_message(
        &mut self,
        msg: &FrontendMessage,
        judged: Option<&Judged>,
    ) -> Result<(), RecordError> {
        self.current = None;
        let entry = match msg {
            FrontendMessage::Query(q) => StatementEntry::new("Query", &q.sql, self.keep_literals),
            FrontendMessage::Parse(p) => {
                StatementEntry::new("Parse", &p.query, self.keep_literals).with_name(&p.name)
            }
            FrontendMessage::Bind(b) => StatementEntry::without_sql("Bind")
                .with_name(&b.statement)
                .with_params(
                    b.params
                        .iter()
                        .map(|v| Param::from_wire(v.as_deref(), self.keep_params))
                        .collect(),
                ),
            FrontendMessage::Execute(e) => {
                // An execution: its result belongs to the Bind that made the portal.
                self.current = self.portals.get(&e.portal).copied();
                if judged.is_none() {
                    return Ok(());
                }
                StatementEntry::without_sql("Execute").with_name(&e.portal)
            }
            FrontendMessage::FunctionCall(_) => StatementEntry::without_sql("FunctionCall"),
            _ if judged.is_some() => StatementEntry::without_sql(msg.name()),
            _ => return Ok(()),
        };
        let seq = self.recorder.record_statement(entry)?;
        if let FrontendMessage::Bind(b) = msg {
            if self.portals.len() >= super::gate::MAX_NAMES {
                // The gate refuses more names than this; stale portals only lose their link.
                self.portals.clear();
            }
            self.portals.insert(b.portal.clone(), seq);
        }
        if let Some(judged) = judged {
            self.recorder
                .record_decision(DecisionEntry::from_judged(seq, judged))?;
        }
        self.current = Some(seq);
        Ok(())
    }

    /// A request forwarded for the current client message: its result (if it has one worth
    /// recording) is added up under the message's entry.
    pub fn forwarded(&mut self, id: RequestId, msg: &FrontendMessage) {
        let Some(statement) = self.current else {
            return;
        };
        if matches!(
            msg,
            FrontendMessage::Query(_)
                | FrontendMessage::Execute(_)
                | FrontendMessage::FunctionCall(_)
        ) {
            self.pending.insert(
                id,
                Pending {
                    statement,
                    started: Instant::now(),
                    rows: 0,
                    bytes: 0,
                    columns: Vec::new(),
                    command: None,
                    error: None,
                    masked: BTreeMap::new(),
                    kept_rows: Vec::new(),
                },
            );
        }
    }

    /// A step of the approval of the current client message's statement.
    pub fn approval(
        &mut self,
        event: ApprovalEvent,
        approver: Option<String>,
        reference: Option<String>,
    ) {
        if let Some(statement) = self.current {
            // A failure is kept by the recorder (and reported at the end) like any other.
            let _ = self.recorder.record_approval(ApprovalEntry {
                statement,
                event,
                approver,
                reference,
                reason: None,
            });
        }
    }

    /// Values of request `id`'s result masked (before its completing frame is recorded).
    pub fn masked(&mut self, id: RequestId, counts: &[MaskCount]) {
        if let Some(pending) = self.pending.get_mut(&id) {
            for c in counts {
                *pending.masked.entry(c.site.clone()).or_insert(0) += c.count;
            }
        }
    }

    /// A server frame answering request `id` (as sent to the client: after masking); writes
    /// the result (and the rows the policy keeps) when `completes`.
    pub fn server_frame(
        &mut self,
        id: RequestId,
        completes: bool,
        tag: u8,
        frame: &[u8],
    ) -> Result<(), RecordError> {
        let Some(pending) = self.pending.get_mut(&id) else {
            return Ok(());
        };
        match tag {
            b'D' => {
                pending.rows += 1;
                pending.bytes += frame.len() as u64;
                if pending.kept_rows.len() < self.result_rows
                    && let Some(BackendMessage::DataRow(row)) = decode_backend_frame(frame)
                {
                    pending
                        .kept_rows
                        .push(row.values().map(|v| v.map(value_text)).collect());
                }
            }
            b'd' => pending.bytes += frame.len() as u64,
            b'T' | b'C' | b'E' => match decode_backend_frame(frame) {
                Some(BackendMessage::RowDescription(rd)) => {
                    pending.columns = rd.fields.iter().map(|f| f.name.clone()).collect();
                }
                Some(BackendMessage::CommandComplete(c)) => pending.command = Some(c.tag),
                Some(BackendMessage::ErrorResponse(e)) => {
                    pending.error = Some(ErrorInfo {
                        sqlstate: e.code().unwrap_or_default().to_owned(),
                        message: e.message().unwrap_or_default().to_owned(),
                    });
                }
                _ => {}
            },
            _ => {}
        }
        if completes && let Some(done) = self.pending.remove(&id) {
            if !done.kept_rows.is_empty() {
                self.recorder.record_rows(RowsEntry {
                    statement: done.statement,
                    columns: done.columns.clone(),
                    rows: done.kept_rows,
                })?;
            }
            self.recorder.record_result(ResultEntry {
                statement: done.statement,
                command: done.command,
                columns: done.columns,
                rows: done.rows,
                bytes: done.bytes,
                duration_us: done.started.elapsed().as_micros() as u64,
                error: done.error,
                masked: done.masked,
            })?;
        }
        Ok(())
    }
}

/// A value as recorded: UTF-8 text as it is, anything else (binary formats) as `\x` and hex.
fn value_text(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) => text.to_owned(),
        Err(_) => {
            let mut out = String::with_capacity(2 + value.len() * 2);
            out.push_str("\\x");
            for b in value {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}
