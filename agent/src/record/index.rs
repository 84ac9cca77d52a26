//! The sessions of a data directory, from their recordings: `agent sessions` (a table) and
//! `agent report` (totals per workload, and declared workloads that never ran).

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use super::{
    format::{Body, FILE_EXTENSION, Summary, format_time, is_valid_session_id, session_file},
    reader::{self, ReadError},
};

/// How a recording ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// It has its end line.
    Complete,
    /// It has its end line, after a truncation marker.
    Truncated,
    /// No end line (yet): a live session, or one cut off by a crash.
    Open,
}

impl Completion {
    pub fn as_str(self) -> &'static str {
        match self {
            Completion::Complete => "complete",
            Completion::Truncated => "truncated",
            Completion::Open => "open",
        }
    }
}

/// One session, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub path: PathBuf,
    pub session: String,
    pub workload: String,
    pub target: String,
    pub pid: u32,
    pub process: String,
    pub upstream_role: Option<String>,
    pub started: SystemTime,
    /// The end line's time, or the last entry's for an open recording.
    pub last: SystemTime,
    pub completion: Completion,
    pub summary: Summary,
}

/// Every readable recording in a sessions directory, oldest first, and the files that could
/// not be read (with why).
pub fn scan(dir: &Path) -> std::io::Result<(Vec<SessionInfo>, Vec<ReadError>)> {
    let files = super::retention::list(dir, &|_| false)?;
    let mut sessions = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match summarize(&dir.join(&file.name)) {
            Ok(info) => sessions.push(info),
            Err(err) => errors.push(err),
        }
    }
    sessions.sort_by(|a, b| a.started.cmp(&b.started).then(a.session.cmp(&b.session)));
    Ok((sessions, errors))
}

/// A session's facts: from the header and the end line when there is one (cheap), otherwise
/// by reading every entry.
pub fn summarize(path: &Path) -> Result<SessionInfo, ReadError> {
    let (head, header, end) = reader::read_header_and_end(path)?;
    let started = head.time().unwrap_or(SystemTime::UNIX_EPOCH);
    let mut info = SessionInfo {
        path: path.to_path_buf(),
        session: header.session.clone(),
        workload: header.workload.clone(),
        target: header.target.name.clone(),
        pid: header.process.pid,
        process: header.process.name.clone(),
        upstream_role: header.upstream_role.clone(),
        started,
        last: started,
        completion: Completion::Open,
        summary: Summary::default(),
    };
    if let Some(end) = end {
        info.last = end.time().unwrap_or(started);
        if let Body::End(end) = end.body {
            info.completion = if end.dropped > 0 {
                Completion::Truncated
            } else {
                Completion::Complete
            };
            info.summary = end.summary;
        }
        return Ok(info);
    }
    let recording = reader::read_file(path)?;
    let summary = &mut info.summary;
    for entry in &recording.entries {
        if let Some(t) = entry.time() {
            info.last = info.last.max(t);
        }
        match &entry.body {
            Body::Statement(_) => summary.statements += 1,
            Body::Decision(d) => match d.decision.as_str() {
                "allow" => summary.allowed += 1,
                "deny" => summary.denied += 1,
                _ => summary.approvals += 1,
            },
            Body::Result(r) => {
                summary.results += 1;
                summary.rows += r.rows;
                summary.masked += r.masked_total();
                summary.errors += u64::from(r.error.is_some());
            }
            _ => {}
        }
    }
    Ok(info)
}

/// Sessions active at or after `since` (started, or still going), of `workload` if given.
pub fn filter<'a>(
    sessions: &'a [SessionInfo],
    since: Option<SystemTime>,
    workload: Option<&str>,
) -> Vec<&'a SessionInfo> {
    sessions
        .iter()
        .filter(|s| since.is_none_or(|since| s.last >= since))
        .filter(|s| workload.is_none_or(|w| s.workload == w))
        .collect()
}

/// The file of a session: `id` may be a path to a file, a session id, or a unique prefix of
/// one.
pub fn find_session(dir: &Path, id: &str) -> Result<PathBuf, String> {
    let as_path = Path::new(id);
    if (id.contains('/') || id.ends_with(&format!(".{FILE_EXTENSION}"))) && as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    if !is_valid_session_id(id) {
        return Err(format!("{id:?} is not a session id nor a recording file"));
    }
    let exact = session_file(dir, id);
    if exact.is_file() {
        return Ok(exact);
    }
    let files = super::retention::list(dir, &|_| false)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut matches: Vec<&str> = files
        .iter()
        .map(|f| f.name.as_str())
        .filter(|name| name.starts_with(id))
        .collect();
    matches.sort_unstable();
    match matches.as_slice() {
        [one] => Ok(dir.join(one)),
        [] => Err(format!("no session {id:?} in {}", dir.display())),
        many => Err(format!(
            "{id:?} matches {} sessions: {}",
            many.len(),
            many.iter()
                .map(|name| name.trim_end_matches(&format!(".{FILE_EXTENSION}")))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// `agent sessions`: one line per session.
pub fn sessions_table(sessions: &[&SessionInfo]) -> String {
    let rows: Vec<[String; 11]> = sessions
        .iter()
        .map(|s| {
            [
                s.session.clone(),
                format_time(s.started)[..19].replace('T', " "),
                format_duration(s.last.duration_since(s.started).unwrap_or_default()),
                s.workload.clone(),
                s.target.clone(),
                s.pid.to_string(),
                s.process.clone(),
                s.summary.statements.to_string(),
                s.summary.denied.to_string(),
                s.summary.masked.to_string(),
                s.completion.as_str().to_string(),
            ]
        })
        .collect();
    table(
        &[
            "SESSION", "STARTED", "DURATION", "WORKLOAD", "TARGET", "PID", "PROCESS", "STMTS",
            "DENIED", "MASKED", "STATUS",
        ],
        &rows,
    )
}

/// Totals of one workload over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadTotals {
    pub sessions: u64,
    pub statements: u64,
    pub denials: u64,
    pub masked: u64,
    /// Statements that needed an approval.
    pub approvals: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub workloads: BTreeMap<String, WorkloadTotals>,
    /// Declared in the policy, no session in the period: identities to retire?
    pub never_ran: Vec<String>,
    /// Sessions of workloads the policy no longer declares.
    pub undeclared: Vec<String>,
}

/// Aggregates sessions per workload; `declared` are the policy's workloads.
pub fn report(sessions: &[&SessionInfo], declared: &[String]) -> Report {
    let mut out = Report::default();
    for s in sessions {
        let totals = out.workloads.entry(s.workload.clone()).or_default();
        totals.sessions += 1;
        totals.statements += s.summary.statements;
        totals.denials += s.summary.denied;
        totals.masked += s.summary.masked;
        totals.approvals += s.summary.approvals;
    }
    out.never_ran = declared
        .iter()
        .filter(|w| !out.workloads.contains_key(*w))
        .cloned()
        .collect();
    out.undeclared = out
        .workloads
        .keys()
        .filter(|w| !declared.contains(w))
        .cloned()
        .collect();
    out
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<[String; 6]> = self
            .workloads
            .iter()
            .map(|(w, t)| {
                [
                    w.clone(),
                    t.sessions.to_string(),
                    t.statements.to_string(),
                    t.denials.to_string(),
                    t.masked.to_string(),
                    t.approvals.to_string(),
                ]
            })
            .collect();
        f.write_str(&table(
            &[
                "WORKLOAD",
                "SESSIONS",
                "STATEMENTS",
                "DENIALS",
                "MASKED",
                "APPROVALS",
            ],
            &rows,
        ))?;
        if self.never_ran.is_empty() {
            writeln!(f, "\nevery declared workload ran in the period")?;
        } else {
            writeln!(
                f,
                "\ndeclared workloads with no session in the period (identities to retire?):"
            )?;
            for w in &self.never_ran {
                writeln!(f, "  {w}")?;
            }
        }
        if !self.undeclared.is_empty() {
            writeln!(f, "\nworkloads with sessions but no longer in the policy:")?;
            for w in &self.undeclared {
                writeln!(f, "  {w}")?;
            }
        }
        Ok(())
    }
}

/// A left-aligned text table (numbers too: simple and greppable).
fn table<const N: usize>(headers: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let _ = write!(text, "{cell:<width$}", width = widths[i]);
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{
        format::StatementEntry,
        writer::{
            Limits, OnError, Recorder,
            tests::{decision, header, write_sample},
        },
    };

    fn at(t: &str) -> SystemTime {
        humantime::parse_rfc3339(t).unwrap()
    }

    #[test]
    fn sessions_are_listed_oldest_first_with_their_counts() {
        let dir = tempfile::tempdir().unwrap();
        write_sample(dir.path(), "b", "nightly", "2026-01-02T00:00:00Z");
        write_sample(dir.path(), "a", "export", "2026-01-01T00:00:00Z");
        std::fs::write(dir.path().join("junk.jsonl"), "not json\n").unwrap();
        let (sessions, errors) = scan(dir.path()).unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let ids: Vec<&str> = sessions.iter().map(|s| s.session.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let s = &sessions[0];
        assert_eq!(s.completion, Completion::Complete);
        assert_eq!(s.summary.statements, 4);
        assert_eq!(s.summary.denied, 1);
        assert_eq!(s.summary.masked, 6);
        assert_eq!(
            s.last.duration_since(s.started).unwrap(),
            Duration::from_millis(54)
        );
        let table = sessions_table(&sessions.iter().collect::<Vec<_>>());
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("SESSION  STARTED"), "{table}");
        assert!(
            lines[1].starts_with("a        2026-01-01 00:00:00  0.1s"),
            "{table}"
        );
        assert!(lines[1].contains("export"), "{table}");
        assert!(lines[1].ends_with("complete"), "{table}");
    }

    #[test]
    fn an_open_recording_is_counted_from_its_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(
            dir.path(),
            header("live", "w"),
            Limits::default(),
            OnError::FailClosed,
        )
        .unwrap();
        let s = rec
            .record_statement(StatementEntry::new("Query", "delete from t", false))
            .unwrap();
        rec.record_decision(decision(s, "deny")).unwrap();
        let info = summarize(rec.path()).unwrap();
        assert_eq!(info.completion, Completion::Open);
        assert_eq!(info.summary.statements, 1);
        assert_eq!(info.summary.denied, 1);
        rec.finish("client-closed").unwrap();
    }

    #[test]
    fn filters_by_period_and_workload() {
        let dir = tempfile::tempdir().unwrap();
        write_sample(dir.path(), "old", "w1", "2026-01-01T00:00:00Z");
        write_sample(dir.path(), "new", "w1", "2026-01-05T00:00:00Z");
        write_sample(dir.path(), "other", "w2", "2026-01-05T00:00:00Z");
        let (sessions, _) = scan(dir.path()).unwrap();
        let since = Some(at("2026-01-04T00:00:00Z"));
        let ids = |v: Vec<&SessionInfo>| v.iter().map(|s| s.session.clone()).collect::<Vec<_>>();
        assert_eq!(ids(filter(&sessions, since, None)), ["new", "other"]);
        assert_eq!(ids(filter(&sessions, since, Some("w1"))), ["new"]);
        assert_eq!(ids(filter(&sessions, None, Some("w1"))), ["old", "new"]);
    }

    #[test]
    fn the_report_totals_per_workload_and_names_idle_identities() {
        let dir = tempfile::tempdir().unwrap();
        write_sample(dir.path(), "s1", "nightly", "2026-01-01T00:00:00Z");
        write_sample(dir.path(), "s2", "nightly", "2026-01-01T01:00:00Z");
        write_sample(dir.path(), "s3", "export", "2026-01-01T02:00:00Z");
        write_sample(dir.path(), "s4", "retired", "2026-01-01T03:00:00Z");
        let (sessions, _) = scan(dir.path()).unwrap();
        let declared = ["nightly", "export", "reporting", "legacy"].map(String::from);
        let r = report(&sessions.iter().collect::<Vec<_>>(), &declared);
        assert_eq!(
            r.workloads["nightly"],
            WorkloadTotals {
                sessions: 2,
                statements: 8,
                denials: 2,
                masked: 12,
                approvals: 2
            }
        );
        assert_eq!(r.workloads["export"].sessions, 1);
        assert_eq!(r.never_ran, ["reporting", "legacy"]);
        assert_eq!(r.undeclared, ["retired"]);
        let text = r.to_string();
        assert!(
            text.contains("nightly   2         8           2        12      2"),
            "{text}"
        );
        assert!(
            text.contains("identities to retire?):\n  reporting\n  legacy\n"),
            "{text}"
        );
    }

    #[test]
    fn a_session_is_found_by_id_prefix_or_path() {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(
            dir.path(),
            "20260101T000000Z-1-abc",
            "w",
            "2026-01-01T00:00:00Z",
        );
        write_sample(
            dir.path(),
            "20260101T000000Z-2-def",
            "w",
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(
            find_session(dir.path(), "20260101T000000Z-1-abc").unwrap(),
            done.path
        );
        assert_eq!(
            find_session(dir.path(), "20260101T000000Z-1").unwrap(),
            done.path
        );
        assert!(
            find_session(dir.path(), "20260101T000000Z")
                .unwrap_err()
                .contains("matches 2")
        );
        assert!(find_session(dir.path(), "nope").is_err());
        assert!(find_session(dir.path(), "../x").is_err());
        let path = done.path.to_str().unwrap();
        assert_eq!(
            find_session(Path::new("/nonexistent"), path).unwrap(),
            done.path
        );
    }
}
