//! `agent verify`: checks a recording's hash chain and final digest, and names the first bad
//! entry (its index, which is its `seq`, its line and its byte offset).
//!
//! Three outcomes:
//! - **intact**: every line hashes to its `hash`, links to the previous one, and the `end`
//!   line's digest is the SHA-256 of everything before it. A recording stopped by its size cap
//!   is intact: it has an explicit `truncated` entry, then `end`.
//! - **cut off**: every line present is intact but there is no `end` line (the agent or host
//!   crashed, the disk filled up, or someone removed the last lines): not valid.
//! - **tampered**: some line was changed, removed, inserted or reordered: not valid.
//!
//! The chain is not keyed: someone able to rewrite the whole file can recompute it. The
//! `session-recorded` audit event carries the final digest, so a recording can also be checked
//! against the copy of that event kept by the SIEM (`agent verify --digest HEX FILE`).

use std::{
    fmt,
    fs::File,
    io::{self, BufRead, BufReader},
    path::Path,
};

use sha2::{Digest as _, Sha256};

use super::format::{self, Body, Entry, GENESIS, VERSION};

/// Where an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Index of the entry (its `seq`; the header is 0).
    pub index: u64,
    /// 1-based line number.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} (line {}, byte offset {})",
            self.index, self.line, self.offset
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Intact,
    /// No end line: everything before `at` is intact.
    CutOff {
        at: Location,
        reason: String,
    },
    /// The first bad entry.
    Tampered {
        at: Location,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub status: Status,
    /// Entries checked and found intact (the end line included).
    pub intact_entries: u64,
    pub session: Option<String>,
    /// The end line's digest, when the recording is intact.
    pub digest: Option<String>,
    /// Where the `truncated` marker is, if the size cap was reached.
    pub truncated: Option<Location>,
    /// Entries not written after the cap (from the end line).
    pub dropped: u64,
}

impl Verification {
    pub fn is_valid(&self) -> bool {
        self.status == Status::Intact
    }

    /// The first bad entry, if any.
    pub fn first_bad(&self) -> Option<Location> {
        match &self.status {
            Status::Intact => None,
            Status::CutOff { at, .. } | Status::Tampered { at, .. } => Some(*at),
        }
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let session = self.session.as_deref().unwrap_or("?");
        match &self.status {
            Status::Intact => {
                write!(
                    f,
                    "OK: session {session}, {} entries, digest {}",
                    self.intact_entries,
                    self.digest.as_deref().unwrap_or("?")
                )?;
                if let Some(at) = &self.truncated {
                    write!(
                        f,
                        "\ntruncated by the size cap at {at}: {} entries not recorded",
                        self.dropped
                    )?;
                }
                Ok(())
            }
            Status::CutOff { at, reason } => write!(
                f,
                "INCOMPLETE: session {session}: {reason}; first bad: {at}; the {} entries before it are intact",
                self.intact_entries
            ),
            Status::Tampered { at, reason } => write!(
                f,
                "TAMPERED: session {session}: first bad {at}: {reason}; the {} entries before it are intact",
                self.intact_entries
            ),
        }
    }
}

pub fn verify_file(path: &Path) -> io::Result<Verification> {
    verify(BufReader::new(File::open(path)?))
}

/// Checks a recording read from `input`; only I/O errors are errors.
pub fn verify(mut input: impl BufRead) -> io::Result<Verification> {
    let mut v = Verification {
        status: Status::Intact,
        intact_entries: 0,
        session: None,
        digest: None,
        truncated: None,
        dropped: 0,
    };
    let mut prev = GENESIS.as_bytes().to_vec();
    let mut digest = Sha256::new();
    let mut offset = 0u64;
    let mut ended = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let at = Location {
            index: v.intact_entries,
            line: v.intact_entries + 1,
            offset,
        };
        let tampered = |reason: &str| Status::Tampered {
            at,
            reason: reason.to_string(),
        };
        if ended {
            v.status = tampered("data after the end line");
            return Ok(v);
        }
        if buf.last() != Some(&b'\n') {
            v.status = Status::CutOff {
                at,
                reason: "the file stops in the middle of a line".into(),
            };
            return Ok(v);
        }
        let line = &buf[..n - 1];
        let Some((covered, claimed)) = format::split_hash(line) else {
            v.status = tampered("the line does not end with its hash");
            return Ok(v);
        };
        if format::sha256_hex(&covered).as_bytes() != claimed {
            v.status = tampered("its hash does not match its content: the entry was changed");
            return Ok(v);
        }
        let entry: Entry = match serde_json::from_slice(line) {
            Ok(entry) => entry,
            Err(err) => {
                v.status = tampered(&format!("not a valid entry: {err}"));
                return Ok(v);
            }
        };
        if entry.seq != at.index {
            v.status = tampered(&format!(
                "its seq is {}: entries were removed, inserted or reordered",
                entry.seq
            ));
            return Ok(v);
        }
        if entry.prev.as_bytes() != prev.as_slice() {
            v.status = tampered(
                "its prev is not the previous entry's hash: entries were removed, inserted or reordered",
            );
            return Ok(v);
        }
        match (&entry.body, at.index) {
            (Body::Header(header), 0) => {
                if header.version != VERSION {
                    v.status = tampered(&format!("unsupported version {}", header.version));
                    return Ok(v);
                }
                v.session = Some(header.session.clone());
            }
            (_, 0) => {
                v.status = tampered("the first entry is not a header");
                return Ok(v);
            }
            (Body::Header(_), _) => {
                v.status = tampered("a second header");
                return Ok(v);
            }
            (Body::End(end), _) => {
                let expected = format::to_hex(&digest.clone().finalize());
                if end.digest != expected {
                    v.status = tampered("the end digest does not match the entries before it");
                    return Ok(v);
                }
                if end.entries != at.index || end.bytes != offset {
                    v.status = tampered("the end line's entry or byte count is wrong");
                    return Ok(v);
                }
                v.digest = Some(end.digest.clone());
                v.dropped = end.dropped;
                ended = true;
            }
            (_, _) if v.truncated.is_some() => {
                v.status = tampered("an entry after the truncation marker");
                return Ok(v);
            }
            (Body::Truncated(_), _) => v.truncated = Some(at),
            _ => {}
        }
        digest.update(&buf);
        prev = claimed.to_vec();
        v.intact_entries += 1;
        offset += n as u64;
    }
    if !ended {
        let at = Location {
            index: v.intact_entries,
            line: v.intact_entries + 1,
            offset,
        };
        let reason = if v.intact_entries == 0 {
            "the file is empty"
        } else {
            "there is no end line with the final digest (the session was cut off, or its last lines were removed)"
        };
        v.status = Status::CutOff {
            at,
            reason: reason.into(),
        };
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::record::{
        format::StatementEntry,
        writer::{
            FsyncPolicy, Limits, OnError, Recorder,
            tests::{decision, header, write_sample},
        },
    };

    fn sample() -> Vec<u8> {
        static SAMPLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SAMPLE
            .get_or_init(|| {
                let dir = tempfile::tempdir().unwrap();
                let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
                std::fs::read(done.path).unwrap()
            })
            .clone()
    }

    fn line_starts(bytes: &[u8]) -> Vec<usize> {
        let mut starts = vec![0];
        starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(i, b)| **b == b'\n' && i + 1 < bytes.len())
                .map(|(i, _)| i + 1),
        );
        starts
    }

    #[test]
    fn an_untouched_recording_is_intact() {
        let v = verify(&sample()[..]).unwrap();
        assert!(v.is_valid(), "{v}");
        assert_eq!(v.session.as_deref(), Some("s1"));
        assert_eq!(v.intact_entries, 16);
        assert!(v.to_string().starts_with("OK: session s1, 16 entries"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn flipping_any_byte_is_detected_at_the_entry_holding_it(
            position in any::<prop::sample::Index>(),
            mask in 1u8..=255,
        ) {
            let mut bytes = sample();
            let pos = position.index(bytes.len());
            bytes[pos] ^= mask;
            let v = verify(&bytes[..]).unwrap();
            prop_assert!(!v.is_valid(), "flip at {pos} undetected");
            let line = bytes[..pos].iter().filter(|b| **b == b'\n').count() as u64;
            let at = v.first_bad().unwrap();
            prop_assert_eq!(at.index, line, "{}", v);
            prop_assert_eq!(at.offset as usize, line_starts(&sample())[line as usize]);
        }
    }

    #[test]
    fn every_single_byte_flip_of_a_small_recording_is_detected() {
        let original = sample();
        for pos in 0..original.len() {
            let mut bytes = original.clone();
            bytes[pos] ^= 0x01;
            let v = verify(&bytes[..]).unwrap();
            assert!(!v.is_valid(), "flip at {pos} undetected");
            let line = original[..pos].iter().filter(|b| **b == b'\n').count() as u64;
            assert_eq!(v.first_bad().unwrap().index, line, "flip at {pos}: {v}");
        }
    }

    #[test]
    fn a_removed_end_line_is_reported_as_cut_off() {
        let bytes = sample();
        let starts = line_starts(&bytes);
        let last = *starts.last().unwrap();
        let v = verify(&bytes[..last]).unwrap();
        assert!(!v.is_valid());
        let Status::CutOff { at, reason } = &v.status else {
            panic!("{v}")
        };
        assert_eq!(at.index, 15);
        assert_eq!(at.offset, last as u64);
        assert!(reason.contains("no end line"), "{reason}");
        assert!(v.to_string().starts_with("INCOMPLETE"), "{v}");
    }

    #[test]
    fn a_recording_cut_in_the_middle_of_a_line_is_cut_off_there() {
        let bytes = sample();
        let starts = line_starts(&bytes);
        let v = verify(&bytes[..starts[5] + 10]).unwrap();
        let Status::CutOff { at, .. } = v.status else {
            panic!("{v}")
        };
        assert_eq!(at.index, 5);
        assert_eq!(v.intact_entries, 5);
    }

    #[test]
    fn a_removed_middle_entry_is_tampering() {
        let bytes = sample();
        let starts = line_starts(&bytes);
        let mut cut = bytes[..starts[3]].to_vec();
        cut.extend_from_slice(&bytes[starts[4]..]);
        let v = verify(&cut[..]).unwrap();
        let Status::Tampered { at, reason } = &v.status else {
            panic!("{v}")
        };
        assert_eq!(at.index, 3);
        assert!(reason.contains("removed"), "{reason}");
    }

    #[test]
    fn swapped_entries_are_tampering() {
        let bytes = sample();
        let starts = line_starts(&bytes);
        let mut swapped = bytes[..starts[3]].to_vec();
        swapped.extend_from_slice(&bytes[starts[4]..starts[5]]);
        swapped.extend_from_slice(&bytes[starts[3]..starts[4]]);
        swapped.extend_from_slice(&bytes[starts[5]..]);
        let v = verify(&swapped[..]).unwrap();
        assert_eq!(v.first_bad().unwrap().index, 3, "{v}");
        assert!(matches!(v.status, Status::Tampered { .. }));
    }

    #[test]
    fn appended_data_after_the_end_is_tampering() {
        let mut bytes = sample();
        bytes.extend_from_slice(b"{}\n");
        let v = verify(&bytes[..]).unwrap();
        assert!(matches!(v.status, Status::Tampered { .. }), "{v}");
        assert_eq!(v.first_bad().unwrap().index, 16);
    }

    #[test]
    fn a_recording_truncated_by_its_cap_is_intact_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(
            dir.path(),
            header("capped", "w"),
            Limits {
                max_bytes: 5000,
                fsync: FsyncPolicy::Never,
            },
            OnError::FailClosed,
        )
        .unwrap();
        for _ in 0..50 {
            let s = rec
                .record_statement(StatementEntry::new("Query", "select 1", false))
                .unwrap();
            rec.record_decision(decision(s, "allow")).unwrap();
        }
        let done = rec.finish("client-closed").unwrap();
        let v = verify_file(&done.path).unwrap();
        assert!(v.is_valid(), "{v}");
        let at = v.truncated.unwrap();
        assert_eq!(v.dropped, done.dropped);
        assert!(
            v.to_string()
                .contains(&format!("truncated by the size cap at entry {}", at.index))
        );

        // The same file with its end removed: cut off, not "truncated".
        let bytes = std::fs::read(&done.path).unwrap();
        let last = *line_starts(&bytes).last().unwrap();
        let v = verify(&bytes[..last]).unwrap();
        assert!(matches!(v.status, Status::CutOff { .. }), "{v}");
    }

    #[test]
    fn an_empty_file_is_cut_off() {
        let v = verify(&b""[..]).unwrap();
        assert!(matches!(v.status, Status::CutOff { .. }));
    }
}
