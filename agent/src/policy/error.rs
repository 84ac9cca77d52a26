//! Policy errors, with the position (file, 1-based line and column) they refer to.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in the policy files.
///
/// `line` and `column` are 1-based. A problem that concerns a whole file or
/// directory (missing, unreadable, no policy file at all) has `line == 0` and
/// `column == 0`, and is displayed as `{file}: {message}`; every other error
/// is displayed as `{file}:{line}:{column}: {message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", DisplayError(self))]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

struct DisplayError<'a>(&'a PolicyError);

impl fmt::Display for DisplayError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        if e.line == 0 {
            write!(f, "{}: {}", e.file.display(), e.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                e.file.display(),
                e.line,
                e.column,
                e.message
            )
        }
    }
}

impl PolicyError {
    /// An error about a whole file or directory (no position: line and column 0).
    pub fn whole_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }
}

/// Every problem found while loading a policy set (never empty when returned
/// as an error). Displayed one error per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl PolicyErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, PolicyError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

impl IntoIterator for PolicyErrors {
    type Item = PolicyError;
    type IntoIter = std::vec::IntoIter<PolicyError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a PolicyErrors {
    type Item = &'a PolicyError;
    type IntoIter = std::slice::Iter<'a, PolicyError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One policy file's text, able to turn byte offsets (serde spans) into
/// 1-based line/column positions.
pub(crate) struct SourceText<'a> {
    pub(crate) path: &'a Path,
    text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl<'a> SourceText<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1, // line_starts[0] == 0, so i >= 1 here
        };
        let start = self.line_starts[line_idx];
        let column = match self.text.get(start..offset) {
            Some(s) => s.chars().count(),
            None => offset - start,
        };
        (line_idx + 1, column + 1)
    }

    /// The source text covered by a span (empty if the span is out of range).
    pub(crate) fn slice(&self, span: Range<usize>) -> &'a str {
        self.text.get(span).unwrap_or("")
    }

    /// An error located at the start of `span`.
    pub(crate) fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let (line, column) = self.position(span.start);
        PolicyError {
            file: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "a = 1\n\nnamé = \"x\"\n";
        let src = SourceText::new(Path::new("f.toml"), text);
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(4), (1, 5));
        assert_eq!(src.position(6), (2, 1));
        assert_eq!(src.position(7), (3, 1));
        let quote = text.find('"').unwrap();
        assert_eq!(src.position(quote), (3, 8));
        assert_eq!(src.position(text.len()), (4, 1));
        assert_eq!(src.position(text.len() + 10), (4, 1));
    }

    #[test]
    fn error_display_has_file_line_column() {
        let e = PolicyError {
            file: PathBuf::from("p/a.toml"),
            line: 3,
            column: 9,
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "p/a.toml:3:9: boom");
        let whole = PolicyError::whole_file("p", "no policy files in p");
        assert_eq!(whole.to_string(), "p: no policy files in p");
        let all = PolicyErrors(vec![e, whole]);
        assert_eq!(
            all.to_string(),
            "p/a.toml:3:9: boom\np: no policy files in p"
        );
    }
}
