//! `[workload.recording]`: what the session recordings of a workload keep beyond the default
//! (statements with literals as `?`, bind parameters as their sizes, result summaries), and
//! what happens when a recording cannot be written. Raw schema, validation and model (pure).

use serde::Deserialize;
use toml::Spanned;

use super::error::{PolicyError, SourceText};

/// Most result rows a policy may ask to record per statement.
pub const MAX_RESULT_ROWS: u32 = 10_000;

/// A `[workload.recording]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecording {
    /// `"redact"` or `"keep"`, checked in validation (so that a typo gets the list).
    pub(crate) bind_values: Option<Spanned<String>>,
    pub(crate) sql_literals: Option<Spanned<String>>,
    pub(crate) result_rows: Option<Spanned<i64>>,
    pub(crate) on_error: Option<Spanned<String>>,
}

/// Whether recorded values are kept or replaced by their size (`?` for SQL literals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Values {
    #[default]
    Redact,
    Keep,
}

/// What a recording that cannot be written does to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingFailure {
    /// Refuse the session (or the statement): nothing runs unrecorded.
    FailClosed,
    /// Go on unrecorded, with an audit event.
    Continue,
}

/// The recording settings of a workload (all defaults when the section is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordingSettings {
    /// Bind parameter values of extended-protocol statements.
    pub bind_values: Values,
    /// Literals in SQL text.
    pub sql_literals: Values,
    /// Result rows recorded per statement, as the job received them (after masking).
    pub result_rows: u32,
    /// `None`: the agent's `--record-on-error`.
    pub on_error: Option<RecordingFailure>,
}

pub(crate) fn validate(
    src: &SourceText<'_>,
    raw: &Spanned<RawRecording>,
) -> Result<RecordingSettings, Vec<PolicyError>> {
    let r = raw.get_ref();
    let mut errors = Vec::new();
    let mut values = |field: &str, v: &Option<Spanned<String>>| match v {
        None => Values::Redact,
        Some(v) => match v.get_ref().as_str() {
            "redact" => Values::Redact,
            "keep" => Values::Keep,
            other => {
                errors.push(src.error_at(
                    v.span(),
                    format!("`{field}` is \"{other}\": it must be \"redact\" or \"keep\""),
                ));
                Values::Redact
            }
        },
    };
    let bind_values = values("bind_values", &r.bind_values);
    let sql_literals = values("sql_literals", &r.sql_literals);
    let result_rows = match &r.result_rows {
        None => 0,
        Some(n) => match u32::try_from(*n.get_ref()) {
            Ok(n) if n <= MAX_RESULT_ROWS => n,
            _ => {
                errors.push(src.error_at(
                    n.span(),
                    format!(
                        "result_rows = {} is out of range: it must be between 0 and \
                         {MAX_RESULT_ROWS}",
                        n.get_ref()
                    ),
                ));
                0
            }
        },
    };
    let on_error = match &r.on_error {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            "fail-closed" => Some(RecordingFailure::FailClosed),
            "continue" => Some(RecordingFailure::Continue),
            other => {
                errors.push(src.error_at(
                    v.span(),
                    format!(
                        "`on_error` is \"{other}\": it must be \"fail-closed\" or \"continue\""
                    ),
                ));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(RecordingSettings {
            bind_values,
            sql_literals,
            result_rows,
            on_error,
        })
    } else {
        Err(errors)
    }
}
