//! The recording format, version 1: JSON lines, one entry per line, hash-chained.
//!
//! ```text
//! {"type":"header","seq":0,"t":"2026-01-01T12:00:00.000000Z","version":1,"session":"…",…,"prev":"000…0","hash":"…"}
//! {"type":"statement","seq":1,"t":"…","message":"Query","sql":"select * from orders where id = ?",…,"prev":"<hash of line 0>","hash":"…"}
//! {"type":"decision","seq":2,"t":"…","statement":1,"decision":"allow","rule":{…},…,"prev":"…","hash":"…"}
//! {"type":"result","seq":3,"t":"…","statement":1,"columns":["id"],"rows":1,…,"prev":"…","hash":"…"}
//! {"type":"end","seq":4,"t":"…","reason":"client-closed",…,"digest":"<sha256 of lines 0-3>","prev":"…","hash":"…"}
//! ```
//!
//! - Every line starts with `type`, `seq` (its index: the header is 0) and `t` (RFC 3339, UTC,
//!   microseconds; the header's `t` is the session's start), and ends with `prev` (the previous
//!   line's `hash`, 64 zeros for the header) and `hash`.
//! - `hash` is the lowercase hex SHA-256 of the line's bytes as written, without the `hash`
//!   member: the line with its last `,"hash":"…"` removed and `}` put back. So a verifier needs
//!   no JSON canonicalisation: it cuts the fixed-size suffix and hashes the rest.
//! - The last line is `end`; its `digest` is the SHA-256 of every byte before that line
//!   (`head -n -1 FILE | sha256sum` gives the same value).
//! - A `truncated` entry marks that the session's size cap was reached: nothing but `end`
//!   follows it, and `end.dropped` counts the entries that were not written.
//! - Nothing secret or unmasked is written: SQL literals are replaced by `?` and bind
//!   parameters by their length unless the policy keeps them (see [`StatementEntry::new`] and
//!   [`Param::from_wire`]); result rows are only recorded when the policy says so, after
//!   masking.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::{
    identity::{ConnectionFacts, Identity},
    pg::gate::Judged,
};

/// The format version this agent writes and reads.
pub const VERSION: u32 = 1;

/// The `prev` of the header line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Recordings live in `<data dir>/sessions/<session id>.jsonl`.
pub const SESSIONS_DIR: &str = "sessions";
pub const FILE_EXTENSION: &str = "jsonl";

/// The agent's default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/chunk-agent";

/// `,"hash":"` + 64 hex digits + `"}`: the fixed-size end of every line.
pub(crate) const HASH_SUFFIX_LEN: usize = HASH_MEMBER.len() + 64 + 2;
pub(crate) const HASH_MEMBER: &str = ",\"hash\":\"";

/// Where the recordings of a data directory are.
pub fn sessions_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SESSIONS_DIR)
}

/// The file of a session in a sessions directory.
pub fn session_file(sessions_dir: &Path, session: &str) -> PathBuf {
    sessions_dir.join(format!("{session}.{FILE_EXTENSION}"))
}

/// A new session id: `YYYYMMDDTHHMMSSZ-<connection id>-<6 random hex digits>`. Sorting ids
/// sorts sessions by start time (to the second); only `[0-9A-Za-z-]`, so it is a safe file name.
pub fn new_session_id(connection_id: u64, start: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(start).to_string();
    let compact: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    format!(
        "{compact}-{connection_id}-{:06x}",
        rand::random::<u32>() & 0xff_ffff
    )
}

/// Whether `id` can name a session file (no path separators, no dots at the start).
pub fn is_valid_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

pub fn parse_time(t: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(t).ok()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

pub(crate) fn is_hex64(s: &[u8]) -> bool {
    s.len() == 64 && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Who and what a session is about: the first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`VERSION`] when written by this agent.
    pub version: u32,
    pub session: String,
    /// The proxy's connection id (as in the audit events' `chunk.connection_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    pub workload: String,
    pub process: ProcessInfo,
    /// The subject and groups of the workload's token, if the session presented one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenInfo>,
    pub target: TargetInfo,
    /// The role the session really runs as upstream.
    #[serde(default)]
    pub upstream_role: Option<String>,
    /// The client's address, as the proxy saw it.
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub agent_version: Option<String>,
    /// The session's size cap in bytes.
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

impl Header {
    /// A header from what the proxy knows of an identified connection. The command line is
    /// read from `/proc` (and redacted); the caller fills `upstream_role`, `token` and
    /// `target.database` when it knows them.
    pub fn from_connection(
        session: &str,
        connection_id: u64,
        facts: &ConnectionFacts,
        identity: &Identity,
    ) -> Self {
        Self {
            version: VERSION,
            session: session.to_string(),
            connection_id: Some(connection_id.to_string()),
            workload: identity.workload.clone(),
            process: ProcessInfo {
                pid: facts.pid,
                uid: facts.uid,
                gid: facts.gid,
                name: facts.process_name.clone(),
                executable: facts.executable.clone(),
                command_line: read_command_line(facts.pid).unwrap_or_default(),
                cgroup_id: facts.cgroup_id,
                cgroup_path: facts.cgroup_path.clone(),
            },
            token: None,
            target: TargetInfo {
                name: identity.target.clone(),
                address: Some(facts.original_destination.to_string()),
                database: None,
            },
            upstream_role: None,
            client: Some(facts.client.to_string()),
            host: nix::unistd::gethostname()
                .ok()
                .map(|h| h.to_string_lossy().into_owned()),
            agent_version: Some(env!("CARGO_PKG_VERSION").to_string()),
            max_bytes: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    /// `comm` at connect time.
    pub name: String,
    #[serde(default)]
    pub executable: Option<String>,
    /// Arguments, redacted by [`redact_command_line`].
    #[serde(default)]
    pub command_line: Vec<String>,
    pub cgroup_id: u64,
    #[serde(default)]
    pub cgroup_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub subject: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub database: Option<String>,
}

/// At most this many bytes of one argument, and of the whole command line, are recorded.
const MAX_ARG: usize = 1024;
const MAX_COMMAND_LINE: usize = 8 * 1024;

/// `/proc/PID/cmdline`, redacted; `None` if the process is gone.
pub fn read_command_line(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(redact_command_line(&args))
}

/// Removes what looks like a secret from a command line: the password of a URL
/// (`postgresql://user:SECRET@host`), the value of `password=`/`passwd=`/`pwd=`/`token=`/
/// `secret=` (also as libpq `key=value` words and `--password=...` options), and the argument
/// after `--password`, `--token`, `--secret`, `--api-key`. Arguments are cut to 1 KiB and the
/// whole line to 8 KiB.
pub fn redact_command_line(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut total = 0;
    let mut hide_next = false;
    for arg in args {
        let mut arg = if hide_next {
            hide_next = false;
            "[redacted]".to_string()
        } else {
            redact_arg(arg)
        };
        let lower = arg.to_ascii_lowercase();
        if SECRET_OPTIONS.contains(&lower.as_str()) {
            hide_next = true;
        }
        if arg.len() > MAX_ARG {
            let mut cut = MAX_ARG;
            while !arg.is_char_boundary(cut) {
                cut -= 1;
            }
            arg.truncate(cut);
            arg.push_str("[…]");
        }
        total += arg.len();
        if total > MAX_COMMAND_LINE {
            out.push("[…]".to_string());
            break;
        }
        out.push(arg);
    }
    out
}

const SECRET_OPTIONS: &[&str] = &[
    "--password",
    "--passwd",
    "--token",
    "--secret",
    "--api-key",
    "--apikey",
    "--access-token",
];
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "api-key",
    "access_token",
    "access-token",
    "pgpassword",
    "sslpassword",
];

fn redact_arg(arg: &str) -> String {
    // key=value words (also several in one argument: a libpq conninfo string).
    let words: Vec<String> = arg
        .split(' ')
        .map(|word| {
            let word = redact_url_password(word);
            let bare = word.trim_start_matches('-');
            match bare.split_once('=') {
                Some((key, value))
                    if !value.is_empty()
                        && SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) =>
                {
                    format!("{}=[redacted]", &word[..word.len() - value.len() - 1])
                }
                _ => word,
            }
        })
        .collect();
    words.join(" ")
}

/// `scheme://user:password@host...` -> `scheme://user:[redacted]@host...`; also the
/// `password=` query parameter of such URLs.
fn redact_url_password(word: &str) -> String {
    let mut word = word.to_string();
    if let Some(scheme_end) = word.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = word[rest_start..]
            .find(['/', '?', '#'])
            .map_or(word.len(), |i| rest_start + i);
        if let Some(at) = word[rest_start..authority_end].rfind('@') {
            let userinfo = &word[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let from = rest_start + colon + 1;
                let to = rest_start + at;
                word.replace_range(from..to, "[redacted]");
            }
        }
        if let Some(q) = word.find('?') {
            let (base, query) = word.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}=[redacted]")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            word = format!("{base}{}", query.join("&"));
        }
    }
    word
}

/// How the literals of a statement's text were recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Literals {
    /// Every literal replaced by `?` (the default).
    Redacted,
    /// The text as the client sent it (the policy allows keeping values).
    Kept,
    /// The text could not be normalised: it is not recorded, only its length.
    Omitted,
}

/// A client message carrying SQL (or a reference to a prepared statement / portal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementEntry {
    /// The protocol message: `Query`, `Parse`, `Bind`, `Execute`, `FunctionCall`, ...
    pub message: String,
    /// The prepared statement or portal name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The SQL text, literals replaced by `?` unless `literals` is `kept`.
    #[serde(default)]
    pub sql: Option<String>,
    pub literals: Literals,
    /// Length in bytes of the text the client sent.
    #[serde(default)]
    pub sql_bytes: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Param>,
}

impl StatementEntry {
    /// A statement with its text: literals are replaced by `?` unless `keep_literals` (the
    /// policy allows keeping values). Texts the cheap normaliser cannot handle are normalised
    /// by PostgreSQL's parser; if that fails too, only their length is recorded.
    pub fn new(message: &str, sql: &str, keep_literals: bool) -> Self {
        let (text, literals) = if keep_literals {
            (Some(sql.to_string()), Literals::Kept)
        } else if let Some(fp) = crate::sql::fingerprint(sql) {
            (Some(fp.to_string()), Literals::Redacted)
        } else if let Ok(normalized) = pg_query::normalize(sql) {
            (Some(normalized), Literals::Redacted)
        } else {
            (None, Literals::Omitted)
        };
        Self {
            message: message.to_string(),
            name: None,
            sql: text,
            literals,
            sql_bytes: sql.len(),
            params: Vec::new(),
        }
    }

    /// A message without SQL text (`Bind`, `Execute`, `FunctionCall`).
    pub fn without_sql(message: &str) -> Self {
        Self {
            message: message.to_string(),
            name: None,
            sql: None,
            literals: Literals::Redacted,
            sql_bytes: 0,
            params: Vec::new(),
        }
    }

    pub fn with_name(mut self, name: &str) -> Self {
        self.name = (!name.is_empty()).then(|| name.to_string());
        self
    }

    pub fn with_params(mut self, params: Vec<Param>) -> Self {
        self.params = params;
        self
    }
}

/// A bind parameter: its value only where the policy keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "value", rename_all = "kebab-case")]
pub enum Param {
    Null,
    Redacted { bytes: usize },
    Kept { text: String },
}

impl Param {
    /// A parameter as it came on the wire (`None`: SQL NULL). Redacted unless `keep`; a kept
    /// value that is not UTF-8 text is written as `\x` and hex digits.
    pub fn from_wire(value: Option<&[u8]>, keep: bool) -> Self {
        match value {
            None => Param::Null,
            Some(bytes) if !keep => Param::Redacted { bytes: bytes.len() },
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => Param::Kept {
                    text: text.to_string(),
                },
                Err(_) => Param::Kept {
                    text: format!("\\x{}", to_hex(bytes)),
                },
            },
        }
    }
}

/// The rule that made a decision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub name: String,
    /// Where it is written (`file:line:col`), `None` for built-in rules.
    #[serde(default)]
    pub ruleset: Option<String>,
}

/// The policy decision on a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEntry {
    /// `seq` of the statement entry it is about.
    pub statement: u64,
    /// `allow`, `deny` or `approval`.
    pub decision: String,
    pub rule: RuleInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub cached: bool,
}

impl DecisionEntry {
    /// The gate's judgement of the message recorded as entry `statement`.
    pub fn from_judged(statement: u64, judged: &Judged) -> Self {
        let rule = judged.decision.rule();
        Self {
            statement,
            decision: judged.decision.outcome().to_string(),
            rule: RuleInfo {
                name: rule.name.clone(),
                ruleset: rule.source.as_ref().map(ToString::to_string),
            },
            reason: match &judged.decision {
                crate::sql::Decision::Deny { reason, .. } => Some(reason.clone()),
                _ => None,
            },
            kinds: judged.kinds.clone(),
            cached: judged.cached,
        }
    }

    pub fn is_denied(&self) -> bool {
        self.decision == "deny"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalEvent {
    Requested,
    Granted,
    Denied,
    Expired,
}

/// A step of a statement's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalEntry {
    pub statement: u64,
    pub event: ApprovalEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    /// The approval request's id in the approval service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An error the server (or the agent) answered a statement with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub sqlstate: String,
    /// The primary message only (never the DETAIL, which may quote values).
    pub message: String,
}

/// What a statement returned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultEntry {
    pub statement: u64,
    /// The command tag (`SELECT 10`, `INSERT 0 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default)]
    pub columns: Vec<String>,
    pub rows: u64,
    /// Bytes of result data sent to the client.
    pub bytes: u64,
    pub duration_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// Values masked, per column.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masked: BTreeMap<String, u64>,
}

impl ResultEntry {
    pub fn masked_total(&self) -> u64 {
        self.masked.values().sum()
    }
}

/// Result rows, recorded only when the policy says so, as sent to the client (already
/// masked). `None` is SQL NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsEntry {
    pub statement: u64,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// The size cap was reached: nothing but `end` follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruncatedEntry {
    pub reason: String,
    pub limit_bytes: u64,
    /// File size when the marker was written (before it).
    pub written_bytes: u64,
}

/// Counts of a whole session (including what was not written after a truncation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub statements: u64,
    pub allowed: u64,
    pub denied: u64,
    /// Statements that needed an approval.
    pub approvals: u64,
    pub results: u64,
    pub errors: u64,
    pub rows: u64,
    pub masked: u64,
}

/// The last line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndEntry {
    /// Why the session ended (`client-closed`, `error`, `agent-stopped`, ...).
    pub reason: String,
    /// Lines before this one.
    pub entries: u64,
    /// Bytes before this line.
    pub bytes: u64,
    /// Entries not written because of the size cap.
    pub dropped: u64,
    pub summary: Summary,
    /// SHA-256 of every byte before this line.
    pub digest: String,
}

/// The content of a line, by its `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Body {
    Header(Box<Header>),
    Statement(StatementEntry),
    Decision(DecisionEntry),
    Approval(ApprovalEntry),
    Result(ResultEntry),
    Rows(RowsEntry),
    Truncated(TruncatedEntry),
    End(EndEntry),
}

impl Body {
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Header(_) => "header",
            Body::Statement(_) => "statement",
            Body::Decision(_) => "decision",
            Body::Approval(_) => "approval",
            Body::Result(_) => "result",
            Body::Rows(_) => "rows",
            Body::Truncated(_) => "truncated",
            Body::End(_) => "end",
        }
    }
}

/// One line of a recording, as read back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub t: String,
    #[serde(flatten)]
    pub body: Body,
    pub prev: String,
    pub hash: String,
}

impl Entry {
    pub fn time(&self) -> Option<SystemTime> {
        parse_time(&self.t)
    }
}

/// Serialises a line (without its newline): `{"type":…,"seq":…,"t":…,<body>,"prev":…,"hash":…}`.
pub(crate) fn encode_line(
    kind: &str,
    seq: u64,
    t: &str,
    body: &impl Serialize,
    prev: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let inner = serde_json::to_vec(body)?;
    let mut line = Vec::with_capacity(inner.len() + 200);
    line.extend_from_slice(b"{\"type\":");
    serde_json::to_writer(&mut line, kind)?;
    line.extend_from_slice(b",\"seq\":");
    line.extend_from_slice(seq.to_string().as_bytes());
    line.extend_from_slice(b",\"t\":");
    serde_json::to_writer(&mut line, t)?;
    // `inner` is an object: splice its members in.
    if inner.len() > 2 {
        line.push(b',');
        line.extend_from_slice(&inner[1..inner.len() - 1]);
    }
    line.extend_from_slice(b",\"prev\":\"");
    line.extend_from_slice(prev.as_bytes());
    line.extend_from_slice(b"\"}");
    let hash = sha256_hex(&line);
    line.pop();
    line.extend_from_slice(HASH_MEMBER.as_bytes());
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"\"}");
    Ok(line)
}

/// Splits a line (without its newline) into the bytes its hash covers and the hash it
/// claims; `None` if it does not end like a line of this format.
pub(crate) fn split_hash(line: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    if line.len() < HASH_SUFFIX_LEN + 2 || !line.ends_with(b"\"}") {
        return None;
    }
    let suffix_start = line.len() - HASH_SUFFIX_LEN;
    let (covered, suffix) = line.split_at(suffix_start);
    if !suffix.starts_with(HASH_MEMBER.as_bytes()) {
        return None;
    }
    let claimed = &suffix[HASH_MEMBER.len()..HASH_MEMBER.len() + 64];
    if !is_hex64(claimed) {
        return None;
    }
    let mut covered = covered.to_vec();
    covered.push(b'}');
    Some((covered, claimed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_starts_with_type_seq_time_and_ends_with_prev_and_hash() {
        let body = Body::Truncated(TruncatedEntry {
            reason: "size-cap".into(),
            limit_bytes: 10,
            written_bytes: 9,
        });
        let Body::Truncated(inner) = &body else {
            unreachable!()
        };
        let line = encode_line(
            "truncated",
            3,
            "2026-01-01T00:00:00.000000Z",
            inner,
            GENESIS,
        )
        .unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.starts_with(r#"{"type":"truncated","seq":3,"t":"2026-01-01T00:00:00.000000Z","reason":"size-cap""#), "{text}");
        let entry: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(entry.body, body);
        assert_eq!(entry.prev, GENESIS);
        let (covered, claimed) = split_hash(&line).unwrap();
        assert_eq!(sha256_hex(&covered).as_bytes(), claimed);
        assert!(!String::from_utf8(covered).unwrap().contains("\"hash\""));
    }

    #[test]
    fn literals_are_redacted_unless_kept() {
        let e = StatementEntry::new("Query", "select * from t where ssn = '123-45-6789'", false);
        assert_eq!(e.literals, Literals::Redacted);
        let sql = e.sql.unwrap();
        assert!(!sql.contains("123"), "{sql}");
        assert!(sql.contains('?'), "{sql}");
        let kept = StatementEntry::new("Query", "select 'x'", true);
        assert_eq!(kept.sql.as_deref(), Some("select 'x'"));
        assert_eq!(kept.literals, Literals::Kept);
    }

    #[test]
    fn texts_the_fingerprint_cannot_read_are_normalised_by_the_parser_or_omitted() {
        let long = format!("select '{}'", "s".repeat(20_000));
        let e = StatementEntry::new("Query", &long, false);
        assert_eq!(e.literals, Literals::Redacted);
        assert!(!e.sql.as_deref().unwrap().contains("sss"));
        let broken = StatementEntry::new("Query", "select 'unterminated secret", false);
        assert_eq!(broken.literals, Literals::Omitted);
        assert_eq!(broken.sql, None);
        assert_eq!(broken.sql_bytes, 27);
    }

    #[test]
    fn parameters_are_redacted_by_default() {
        assert_eq!(
            Param::from_wire(Some(b"hunter2"), false),
            Param::Redacted { bytes: 7 }
        );
        assert_eq!(Param::from_wire(None, false), Param::Null);
        assert_eq!(
            Param::from_wire(Some(b"42"), true),
            Param::Kept { text: "42".into() }
        );
        assert_eq!(
            Param::from_wire(Some(&[0xff, 0]), true),
            Param::Kept {
                text: "\\xff00".into()
            }
        );
        let json = serde_json::to_string(&Param::Redacted { bytes: 7 }).unwrap();
        assert_eq!(json, r#"{"value":"redacted","bytes":7}"#);
    }

    #[test]
    fn command_line_secrets_are_redacted() {
        let args: Vec<String> = [
            "psql",
            "postgresql://app:s3cret@db:5432/x?sslmode=require&password=p2",
            "host=db password=s3cret user=app",
            "--password",
            "s3cret",
            "--token=abc",
            "-c",
            "select 1",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let out = redact_command_line(&args);
        let joined = out.join(" ");
        assert!(!joined.contains("s3cret"), "{joined}");
        assert!(!joined.contains("p2"), "{joined}");
        assert!(!joined.contains("abc"), "{joined}");
        assert_eq!(
            out[1],
            "postgresql://app:[redacted]@db:5432/x?sslmode=require&password=[redacted]"
        );
        assert_eq!(out[2], "host=db password=[redacted] user=app");
        assert_eq!(out[4], "[redacted]");
        assert_eq!(out[5], "--token=[redacted]");
        assert_eq!(out[7], "select 1");
    }

    #[test]
    fn session_ids_sort_by_time_and_are_file_names() {
        let t = humantime::parse_rfc3339("2026-01-02T03:04:05Z").unwrap();
        let id = new_session_id(42, t);
        assert!(id.starts_with("20260102T030405Z-42-"), "{id}");
        assert!(is_valid_session_id(&id));
        assert!(!is_valid_session_id("../etc/passwd"));
        assert!(!is_valid_session_id("a/b"));
    }
}
