//! Reading recordings back (for `replay`, `sessions`, `report`). Lenient: it does not check
//! the hash chain ([`super::verify`] does) and stops at the first line it cannot read, so a
//! recording cut off by a crash still shows what it has.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    time::SystemTime,
};

use super::format::{Body, EndEntry, Entry, Header, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a session recording (the first line is not a header: {reason})")]
    NoHeader { path: PathBuf, reason: String },
    #[error(
        "{path}: recording format version {version} is not supported (this agent reads {VERSION})"
    )]
    Version { path: PathBuf, version: u32 },
}

/// A recording as read: every readable entry, the header first.
#[derive(Debug, Clone)]
pub struct Recording {
    pub path: PathBuf,
    pub header: Header,
    /// All entries read, the header (seq 0) included.
    pub entries: Vec<Entry>,
    /// The first line that could not be read (1-based) and why: the file was cut off or
    /// damaged there. `None` when every line was read.
    pub unreadable: Option<(usize, String)>,
}

impl Recording {
    /// The end line, if the recording has one.
    pub fn end(&self) -> Option<&EndEntry> {
        match self.entries.last().map(|e| &e.body) {
            Some(Body::End(end)) => Some(end),
            _ => None,
        }
    }

    /// When the session started (the header's time).
    pub fn started(&self) -> Option<SystemTime> {
        self.entries.first().and_then(Entry::time)
    }
}

/// Reads lines one by one: `Ok(None)` at the end, an error for a line that is not an entry.
pub struct EntryReader<R> {
    input: R,
    line: Vec<u8>,
    pub line_no: usize,
    pub offset: u64,
}

impl<R: BufRead> EntryReader<R> {
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: Vec::new(),
            line_no: 0,
            offset: 0,
        }
    }

    /// The next entry, `Ok(None)` at the end of the input, `Err(reason)` for an unreadable
    /// line (an I/O error included).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, String> {
        self.line.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        self.offset += n as u64;
        if self.line.last() != Some(&b'\n') {
            return Err("the line is incomplete (no newline)".into());
        }
        serde_json::from_slice(&self.line[..self.line.len() - 1])
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// Reads a whole recording.
pub fn read_file(path: &Path) -> Result<Recording, ReadError> {
    let file = File::open(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read(path, BufReader::new(file))
}

pub fn read(path: &Path, input: impl BufRead) -> Result<Recording, ReadError> {
    let mut reader = EntryReader::new(input);
    let header = read_header(path, &mut reader)?;
    let mut recording = Recording {
        path: path.to_path_buf(),
        header: header.1,
        entries: vec![header.0],
        unreadable: None,
    };
    loop {
        match reader.next_entry() {
            Ok(Some(entry)) => recording.entries.push(entry),
            Ok(None) => break,
            Err(reason) => {
                recording.unreadable = Some((reader.line_no, reason));
                break;
            }
        }
    }
    Ok(recording)
}

fn read_header<R: BufRead>(
    path: &Path,
    reader: &mut EntryReader<R>,
) -> Result<(Entry, Header), ReadError> {
    let no_header = |reason: String| ReadError::NoHeader {
        path: path.to_path_buf(),
        reason,
    };
    let entry = reader
        .next_entry()
        .map_err(no_header)?
        .ok_or_else(|| no_header("the file is empty".into()))?;
    match &entry.body {
        Body::Header(header) if header.version == VERSION => {
            let header = Header::clone(header);
            Ok((entry, header))
        }
        Body::Header(header) => Err(ReadError::Version {
            path: path.to_path_buf(),
            version: header.version,
        }),
        other => Err(no_header(format!("it is a {} entry", other.kind()))),
    }
}

/// The header and, when the file ends with a readable `end` line, that line, without reading
/// what is between (for listing many sessions).
pub fn read_header_and_end(path: &Path) -> Result<(Entry, Header, Option<Entry>), ReadError> {
    let io_error = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_error)?;
    let (entry, header) = {
        let mut reader = EntryReader::new(BufReader::new(&mut file));
        read_header(path, &mut reader)?
    };
    let len = file.metadata().map_err(io_error)?.len();
    // The end line is shorter than the space the writer reserves for it.
    let tail_len = len.min(super::writer::RESERVED_BYTES + 1024);
    file.seek(SeekFrom::Start(len - tail_len))
        .map_err(io_error)?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.read_to_end(&mut tail).map_err(io_error)?;
    let end = tail
        .strip_suffix(b"\n")
        .map(|t| t.rsplit(|b| *b == b'\n').next().unwrap_or(t))
        .and_then(|last| serde_json::from_slice::<Entry>(last).ok())
        .filter(|e| matches!(e.body, Body::End(_)));
    Ok((entry, header, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::writer::tests::write_sample;

    #[test]
    fn every_entry_reads_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
        let rec = read_file(&done.path).unwrap();
        assert!(rec.unreadable.is_none());
        for (i, e) in rec.entries.iter().enumerate() {
            assert_eq!(e.seq, i as u64);
        }
        let kinds: Vec<&str> = rec.entries.iter().map(|e| e.body.kind()).collect();
        assert_eq!(
            kinds,
            [
                "header",
                "statement",
                "decision",
                "result",
                "rows",
                "statement",
                "decision",
                "result",
                "rows",
                "statement",
                "decision",
                "result",
                "statement",
                "decision",
                "approval",
                "end"
            ]
        );
        assert_eq!(
            rec.started(),
            Some(humantime::parse_rfc3339("2026-01-01T12:00:00Z").unwrap())
        );
    }

    #[test]
    fn a_cut_off_recording_reads_up_to_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
        let bytes = std::fs::read(&done.path).unwrap();
        let cut = &bytes[..bytes.len() / 2];
        let rec = read(&done.path, cut).unwrap();
        assert!(rec.end().is_none());
        assert!(rec.unreadable.is_some());
        assert!(rec.entries.len() > 1);
    }

    #[test]
    fn the_end_line_is_found_from_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let done = write_sample(dir.path(), "s1", "w", "2026-01-01T12:00:00Z");
        let (_, header, end) = read_header_and_end(&done.path).unwrap();
        assert_eq!(header.workload, "w");
        let end = end.unwrap();
        let Body::End(end) = end.body else { panic!() };
        assert_eq!(end.digest, done.digest);
    }

    #[test]
    fn a_file_that_is_not_a_recording_is_refused() {
        let err = read(Path::new("x"), &b"{\"hello\":1}\n"[..]).unwrap_err();
        assert!(matches!(err, ReadError::NoHeader { .. }), "{err}");
        let err = read(Path::new("x"), &b""[..]).unwrap_err();
        assert!(matches!(err, ReadError::NoHeader { .. }), "{err}");
    }
}
