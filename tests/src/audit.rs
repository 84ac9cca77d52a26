//! Reading the agent's audit log (JSON lines, ECS-style field names).
//!
//! Events are looked up by dotted path (`"chunk.cgroup.path"`), tolerating any extra fields.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;

/// Dotted-path lookups on a JSON value.
pub trait JsonPath {
    /// The value at `path` (`"a.b.c"`; a segment may also index an array: `"event.type.0"`).
    fn at(&self, path: &str) -> Option<&Value>;
    /// The string at `path`, if it is a string.
    fn str_at(&self, path: &str) -> Option<&str>;
    /// The integer at `path`, if it is a non-negative integer (or a string holding one).
    fn u64_at(&self, path: &str) -> Option<u64>;
    /// Whether the array at `path` contains the string `item`.
    fn array_contains(&self, path: &str, item: &str) -> bool;
}

impl JsonPath for Value {
    fn at(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(self, |v, segment| match v {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
    }

    fn str_at(&self, path: &str) -> Option<&str> {
        self.at(path).and_then(Value::as_str)
    }

    fn u64_at(&self, path: &str) -> Option<u64> {
        match self.at(path)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    fn array_contains(&self, path: &str, item: &str) -> bool {
        self.at(path)
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|v| v.as_str() == Some(item)))
    }
}

/// `event.action` of an audit event (`"connection-accepted"`, ...), or `""`.
pub fn action_of(event: &Value) -> &str {
    event.str_at("event.action").unwrap_or("")
}

/// Parses the complete lines of an audit log. A last line without its newline is still being
/// written and is ignored; a complete line that is not JSON is an error.
pub fn parse_audit_log(text: &str) -> Result<Vec<Value>> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("audit log line {} is not JSON: {line}", i + 1))
        })
        .collect()
}

/// Reads and parses an audit log file (a missing file has no events yet).
pub fn read_audit_log(path: &Path) -> Result<Vec<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_audit_log(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_nested_fields_by_path() {
        let v: Value = serde_json::json!({
            "event": {"action": "connection-accepted", "type": ["connection", "start"]},
            "process": {"pid": 42},
            "chunk": {"cgroup": {"id": "7", "path": "/a/b"}},
        });
        assert_eq!(action_of(&v), "connection-accepted");
        assert_eq!(v.str_at("chunk.cgroup.path"), Some("/a/b"));
        assert_eq!(v.u64_at("process.pid"), Some(42));
        assert_eq!(v.u64_at("chunk.cgroup.id"), Some(7));
        assert_eq!(v.str_at("event.type.1"), Some("start"));
        assert!(v.array_contains("event.type", "connection"));
        assert!(v.at("chunk.missing.path").is_none());
        assert!(v.str_at("process.pid").is_none());
    }

    #[test]
    fn ignores_a_partial_last_line() {
        let events = parse_audit_log("{\"a\":1}\n\n{\"b\":2}\n{\"c\":").unwrap();
        assert_eq!(events.len(), 2);
        assert!(parse_audit_log("not json\n").is_err());
        assert!(parse_audit_log("").unwrap().is_empty());
    }
}
