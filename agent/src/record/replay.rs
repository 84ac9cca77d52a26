//! `agent replay`: shows a recorded session as it happened, entry by entry, waiting between
//! entries as long as the session did (scaled by `--speed`, none with `--instant`). Waits go
//! through a [`Sleeper`], so tests do not sleep.

use std::{
    fmt::Write as _,
    io::{self, Write},
    time::{Duration, SystemTime},
};

use super::{
    format::{Body, Entry, Header, Literals, Param},
    reader::Recording,
};

/// A single wait is never longer than this (an idle hour is shown, not waited for).
pub const MAX_WAIT: Duration = Duration::from_secs(5);

pub trait Sleeper {
    fn sleep(&mut self, duration: Duration);
}

pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// No waiting.
    Instant,
    /// Real time divided by this factor (2: twice as fast).
    Speed(f64),
}

impl Pace {
    /// The wait for a gap of `gap` in the session: scaled, capped at [`MAX_WAIT`].
    pub fn wait(self, gap: Duration) -> Duration {
        match self {
            Pace::Instant => Duration::ZERO,
            Pace::Speed(speed) if speed > 0.0 && speed.is_finite() => {
                gap.div_f64(speed).min(MAX_WAIT)
            }
            Pace::Speed(_) => Duration::ZERO,
        }
    }
}

/// Writes the session to `out`, waiting between entries as `pace` says.
pub fn replay(
    recording: &Recording,
    pace: Pace,
    out: &mut dyn Write,
    sleeper: &mut dyn Sleeper,
) -> io::Result<()> {
    out.write_all(render_header(&recording.header, recording.started()).as_bytes())?;
    let start = recording.started();
    let mut previous = start;
    for entry in recording.entries.iter().skip(1) {
        let t = entry.time();
        if let (Some(t), Some(prev)) = (t, previous) {
            let gap = t.duration_since(prev).unwrap_or_default();
            let wait = pace.wait(gap);
            if gap > MAX_WAIT {
                writeln!(out, "{:>9}  … {} idle …", "", format_gap(gap))?;
            }
            if !wait.is_zero() {
                out.flush()?;
                sleeper.sleep(wait);
            }
            previous = Some(t);
        }
        let offset = match (t, start) {
            (Some(t), Some(start)) => t.duration_since(start).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        out.write_all(render_entry(entry, offset).as_bytes())?;
    }
    if let Some((line, reason)) = &recording.unreadable {
        writeln!(
            out,
            "(the recording stops at line {line}: {reason}; run `agent verify` on it)"
        )?;
    } else if recording.end().is_none() {
        writeln!(
            out,
            "(no end line: the session is still going, or was cut off)"
        )?;
    }
    out.flush()
}

fn format_gap(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

pub fn render_header(h: &Header, started: Option<SystemTime>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "session  {}", h.session);
    let mut target = h.target.name.clone();
    if let Some(addr) = &h.target.address {
        let _ = write!(target, " ({addr})");
    }
    if let Some(db) = &h.target.database {
        let _ = write!(target, " database {db}");
    }
    let _ = writeln!(s, "workload {}  target {target}", h.workload);
    if let Some(role) = &h.upstream_role {
        let _ = writeln!(s, "role     {role} (upstream)");
    }
    let p = &h.process;
    let _ = write!(
        s,
        "process  pid {} {} uid {} gid {}",
        p.pid, p.name, p.uid, p.gid
    );
    if let Some(exe) = &p.executable {
        let _ = write!(s, " ({exe})");
    }
    s.push('\n');
    if !p.command_line.is_empty() {
        let _ = writeln!(s, "command  {}", p.command_line.join(" "));
    }
    let _ = writeln!(
        s,
        "cgroup   {} (id {})",
        p.cgroup_path.as_deref().unwrap_or("?"),
        p.cgroup_id
    );
    if let Some(token) = &h.token {
        let _ = write!(s, "token    {}", token.subject);
        if !token.groups.is_empty() {
            let _ = write!(s, " (groups {})", token.groups.join(", "));
        }
        s.push('\n');
    }
    if let Some(started) = started {
        let _ = writeln!(s, "started  {}", super::format::format_time(started));
    }
    s.push('\n');
    s
}

/// One entry as text, prefixed with its time since the start (`+1.234s`).
pub fn render_entry(entry: &Entry, offset: Duration) -> String {
    let time = format!("+{:.3}s", offset.as_secs_f64());
    let mut s = String::new();
    match &entry.body {
        Body::Header(_) => {}
        Body::Statement(st) => {
            let text = match (&st.sql, st.literals) {
                (Some(sql), _) => sql.clone(),
                (None, Literals::Omitted) => {
                    format!("<{} bytes of SQL, not recorded>", st.sql_bytes)
                }
                (None, _) => String::new(),
            };
            let name = st
                .name
                .as_ref()
                .map(|n| format!(" [{n}]"))
                .unwrap_or_default();
            let _ = writeln!(s, "{time:>9}  #{} {}{name}  {text}", entry.seq, st.message);
            for (i, p) in st.params.iter().enumerate() {
                let value = match p {
                    Param::Null => "NULL".to_string(),
                    Param::Redacted { bytes } => format!("<redacted, {bytes} bytes>"),
                    Param::Kept { text } => format!("{text:?}"),
                };
                let _ = writeln!(s, "{:>9}    ${} = {value}", "", i + 1);
            }
        }
        Body::Decision(d) => {
            let label = match d.decision.as_str() {
                "allow" => "ALLOW",
                "deny" => "DENY",
                "approval" => "APPROVAL",
                other => other,
            };
            let _ = write!(s, "{time:>9}     {label:<8} by {}", d.rule.name);
            if let Some(ruleset) = &d.rule.ruleset {
                let _ = write!(s, " ({ruleset})");
            }
            if let Some(reason) = &d.reason {
                let _ = write!(s, ": {reason}");
            }
            if !d.kinds.is_empty() {
                let _ = write!(s, "  [{}]", d.kinds.join(", "));
            }
            s.push('\n');
        }
        Body::Approval(a) => {
            let event = serde_json::to_value(a.event)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let _ = write!(s, "{time:>9}     approval {event} (#{})", a.statement);
            if let Some(who) = &a.approver {
                let _ = write!(s, " by {who}");
            }
            if let Some(reference) = &a.reference {
                let _ = write!(s, " [{reference}]");
            }
            if let Some(reason) = &a.reason {
                let _ = write!(s, ": {reason}");
            }
            s.push('\n');
        }
        Body::Result(r) => {
            let _ = write!(s, "{time:>9}     result   ");
            if let Some(error) = &r.error {
                let _ = write!(s, "ERROR {}: {}", error.sqlstate, error.message);
            } else {
                if let Some(command) = &r.command {
                    let _ = write!(s, "{command}: ");
                }
                let _ = write!(s, "{} rows, {} bytes", r.rows, r.bytes);
                if !r.columns.is_empty() {
                    let _ = write!(s, ", columns {}", r.columns.join(", "));
                }
            }
            let _ = write!(s, ", {:.1} ms", r.duration_us as f64 / 1000.0);
            if !r.masked.is_empty() {
                let masked: Vec<String> =
                    r.masked.iter().map(|(c, n)| format!("{c} {n}")).collect();
                let _ = write!(s, "; masked {}", masked.join(", "));
            }
            s.push('\n');
        }
        Body::Rows(rows) => {
            for row in &rows.rows {
                let cells: Vec<&str> = row.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect();
                let _ = writeln!(s, "{:>9}       | {} |", "", cells.join(" | "));
            }
        }
        Body::Truncated(t) => {
            let _ = writeln!(
                s,
                "{time:>9}  -- truncated: the session reached its {} byte cap; nothing more was recorded",
                t.limit_bytes
            );
        }
        Body::End(end) => {
            let sum = &end.summary;
            let _ = writeln!(
                s,
                "{time:>9}  end ({}): {} statements, {} denied, {} needing approval, {} error(s), {} rows, {} masked values",
                end.reason,
                sum.statements,
                sum.denied,
                sum.approvals,
                sum.errors,
                sum.rows,
                sum.masked
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{reader::read_file, writer::tests::write_sample};

    #[derive(Default)]
    struct FakeSleeper(Vec<Duration>);

    impl Sleeper for FakeSleeper {
        fn sleep(&mut self, duration: Duration) {
            self.0.push(duration);
        }
    }

    fn sample() -> Recording {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
        read_file(&done.path).unwrap()
    }

    fn run(pace: Pace) -> (String, Vec<Duration>) {
        let mut out = Vec::new();
        let mut sleeper = FakeSleeper::default();
        replay(&sample(), pace, &mut out, &mut sleeper).unwrap();
        (String::from_utf8(out).unwrap(), sleeper.0)
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn real_speed_waits_as_long_as_the_session_did() {
        let (_, waits) = run(Pace::Speed(1.0));
        assert_eq!(
            waits,
            [10 * MS, 2 * MS, 10 * MS, 2 * MS, 10 * MS, 10 * MS, 10 * MS]
        );
    }

    #[test]
    fn speed_two_halves_every_wait() {
        let (_, waits) = run(Pace::Speed(2.0));
        assert_eq!(waits, [5 * MS, MS, 5 * MS, MS, 5 * MS, 5 * MS, 5 * MS]);
    }

    #[test]
    fn instant_never_waits_and_shows_the_same() {
        let (text, waits) = run(Pace::Instant);
        assert!(waits.is_empty());
        assert_eq!(text, run(Pace::Speed(3.0)).0);
    }

    #[test]
    fn long_idle_gaps_are_shown_not_waited_for() {
        assert_eq!(Pace::Speed(1.0).wait(Duration::from_secs(3600)), MAX_WAIT);
        assert_eq!(
            Pace::Speed(1.0).wait(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(Pace::Instant.wait(Duration::from_secs(2)), Duration::ZERO);
    }

    #[test]
    fn the_rendering_shows_who_what_and_how_it_was_decided() {
        let (text, _) = run(Pace::Instant);
        for expected in [
            "session  s1\n",
            "workload w  target db (127.0.0.1:5432) database app\n",
            "role     app_ro (upstream)\n",
            "process  pid 4321 psql uid 1000 gid 100 (/usr/bin/psql)\n",
            "command  psql -h 127.0.0.1\n",
            "token    spiffe://example/job (groups batch)\n",
            "started  2026-01-01T12:00:00.000000Z\n",
            "  +0.010s  #1 Parse  select id, ssn from customers where id = $1\n",
            "             $1 = <redacted, 9 bytes>\n",
            "  +0.010s     ALLOW    by allow[0] (demo.toml:12:1)  [SELECT]\n",
            "  +0.012s     result   SELECT 3: 3 rows, 120 bytes, columns id, ssn, 2.0 ms; masked ssn 3\n",
            "                | 1 | ***-**-1234 |\n",
            "  +0.044s     APPROVAL by orders-read-only (demo.toml:12:1)  [SELECT]\n",
            "  +0.034s  #9 Query  delete from orders where id = ?\n",
            "  +0.034s     DENY     by orders-read-only (demo.toml:12:1): `write` on `orders`  [SELECT]\n",
            "  +0.034s     result   ERROR 42501: denied by the chunk agent, 0.0 ms\n",
            "  +0.044s     approval granted (#12) by alice [req-1]\n",
            "  +0.054s  end (client-closed): 4 statements, 1 denied, 1 needing approval, 1 error(s), 6 rows, 6 masked values\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("4111"), "{text}");
    }
}
