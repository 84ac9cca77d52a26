//! A cheap, single-pass normalisation of SQL text: the decision cache's key.
//!
//! Two texts get the same [`Fingerprint`] when they have the same tokens up to literal values:
//! comments are dropped, whitespace collapsed, unquoted identifiers and keywords lower-cased,
//! and every literal (string, `E'...'`, `U&'...'`, `B'...'`, `X'...'`, `N'...'`, dollar-quoted,
//! number) replaced by one placeholder. Quoted identifiers, parameters (`$1`) and operators
//! are kept as written.
//!
//! Soundness rests on reading literal boundaries exactly as PostgreSQL's lexer does
//! (`src/backend/parser/scan.l`, PostgreSQL 16+, with `standard_conforming_strings = on`):
//! a `'` inside a dollar-quoted body or a `--` inside a string must not be taken for code,
//! and code must never be hidden in a "literal". Whenever the text holds something this
//! scanner does not handle exactly (an unterminated literal or comment, a malformed number,
//! `UESCAPE`, a character that is not valid SQL outside literals, a very long text), there is
//! no fingerprint and the caller parses without caching.

use std::fmt;

/// Texts longer than this (in bytes) are not fingerprinted (nor cached).
pub const MAX_FINGERPRINT_INPUT: usize = 16 * 1024;

/// What replaces a literal in a fingerprint. Not valid SQL outside a literal, so it cannot
/// be confused with anything the text itself contains.
const PLACEHOLDER: char = '\u{1}';

/// A normalised statement text (see the module documentation). Displayed with `?` for the
/// literals.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(Box<str>);

impl Fingerprint {
    /// The normalised text (literals are `\u{1}`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in self.0.split(PLACEHOLDER).enumerate() {
            if part.0 > 0 {
                f.write_str("?")?;
            }
            f.write_str(part.1)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The fingerprint of `sql`, or `None` if the text cannot be normalised with certainty.
pub fn fingerprint(sql: &str) -> Option<Fingerprint> {
    if sql.len() > MAX_FINGERPRINT_INPUT {
        return None;
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut space = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        // Whitespace and comments separate tokens, nothing more.
        if is_space(c) {
            space = true;
            i += 1;
            continue;
        }
        if c == b'-' && next == Some(b'-') {
            i = line_comment_end(b, i);
            space = true;
            continue;
        }
        if c == b'/' && next == Some(b'*') {
            i = block_comment_end(b, i)?;
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;

        let start = i;
        i = match c {
            b'\'' => {
                out.push(PLACEHOLDER);
                quoted_end(b, i + 1, Quote::Standard)?
            }
            b'"' => {
                let end = identifier_end(b, i + 1)?;
                out.push_str(&sql[start..end]);
                end
            }
            b'$' => match next {
                Some(d) if d.is_ascii_digit() => {
                    // A parameter: `$` and digits (no underscores), not followed by an
                    // identifier character (`$1abc` is an error in PostgreSQL).
                    let mut end = i + 1;
                    while b.get(end).is_some_and(u8::is_ascii_digit) {
                        end += 1;
                    }
                    if b.get(end).is_some_and(|&c| is_ident_cont(c)) {
                        return None;
                    }
                    out.push_str(&sql[start..end]);
                    end
                }
                _ => {
                    out.push(PLACEHOLDER);
                    dollar_quoted_end(b, i)?
                }
            },
            c if c.is_ascii_digit() || (c == b'.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                out.push(PLACEHOLDER);
                number_end(b, i)?
            }
            c if is_ident_start(c) => {
                let mut end = i + 1;
                while end < b.len() && is_ident_cont(b[end]) {
                    end += 1;
                }
                let after = b.get(end).copied();
                let after2 = b.get(end + 1).copied();
                let single = end == i + 1;
                match (single, c.to_ascii_lowercase(), after, after2) {
                    (true, b'e', Some(b'\''), _) => {
                        out.push(PLACEHOLDER);
                        quoted_end(b, end + 1, Quote::Extended)?
                    }
                    (true, b'b' | b'x', Some(b'\''), _) => {
                        out.push(PLACEHOLDER);
                        quoted_end(b, end + 1, Quote::Bits)?
                    }
                    (true, b'n', Some(b'\''), _) => {
                        out.push(PLACEHOLDER);
                        quoted_end(b, end + 1, Quote::Standard)?
                    }
                    (true, b'u', Some(b'&'), Some(b'\'')) => {
                        out.push(PLACEHOLDER);
                        quoted_end(b, end + 2, Quote::Standard)?
                    }
                    (true, b'u', Some(b'&'), Some(b'"')) => {
                        let end = identifier_end(b, end + 2)?;
                        out.push_str(&sql[start..end]);
                        end
                    }
                    _ => {
                        let word = &sql[start..end];
                        if word.eq_ignore_ascii_case("uescape") {
                            // The escape character is a literal that changes what the
                            // preceding U&"..." / U&'...' means.
                            return None;
                        }
                        let at = out.len();
                        out.push_str(word);
                        out.as_mut_str()[at..].make_ascii_lowercase();
                        end
                    }
                }
            }
            b',' | b'(' | b')' | b'[' | b']' | b';' | b':' | b'.' | b'+' | b'-' | b'*' | b'/'
            | b'%' | b'^' | b'<' | b'>' | b'=' | b'~' | b'!' | b'@' | b'#' | b'&' | b'|' | b'`'
            | b'?' => {
                out.push(char::from(c));
                i + 1
            }
            // Anything else (control characters, `\`, `{`, ...) is not valid SQL outside a
            // literal: let the parser say so.
            _ => return None,
        };
    }
    Some(Fingerprint(out.into_boxed_str()))
}

/// PostgreSQL's `space`: `[ \t\n\r\f\v]`.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x0b)
}

/// `ident_start`: `[A-Za-z\200-\377_]`.
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// `ident_cont`: `[A-Za-z\200-\377_0-9\$]`.
fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// The end of a `--` comment starting at `i`: the next newline (not consumed) or the end.
fn line_comment_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 2;
    while j < b.len() && b[j] != b'\n' && b[j] != b'\r' {
        j += 1;
    }
    j
}

/// The end of a (nested) `/* ... */` comment starting at `i`; `None` if unterminated.
fn block_comment_end(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 1usize;
    let mut j = i + 2;
    while depth > 0 {
        match (b.get(j)?, b.get(j + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                j += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                j += 2;
            }
            _ => j += 1,
        }
    }
    Some(j)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    /// `'...'`, `N'...'`, `U&'...'`: `''` is a quote, backslashes are plain characters.
    Standard,
    /// `E'...'`: `''` and `\'` are quotes, a backslash escapes the next character.
    Extended,
    /// `B'...'`, `X'...'`: ends at the first quote.
    Bits,
}

/// The end of a quoted literal whose body starts at `i`, including the continuation of the
/// literal after a newline (`'a'\n'b'` is one literal, in the same mode); `None` if
/// unterminated.
fn quoted_end(b: &[u8], mut i: usize, quote: Quote) -> Option<usize> {
    loop {
        // Find the closing quote.
        loop {
            match *b.get(i)? {
                b'\\' if quote == Quote::Extended => {
                    b.get(i + 1)?;
                    i += 2;
                }
                b'\'' if quote != Quote::Bits && b.get(i + 1) == Some(&b'\'') => i += 2,
                b'\'' => break,
                _ => i += 1,
            }
        }
        let after = i + 1;
        match continuation(b, after) {
            Some(resume) => i = resume,
            None => return Some(after),
        }
    }
}

/// If a literal that ended just before `i` continues (whitespace including a newline, with
/// only `--` comments, then `'`), where its body resumes.
fn continuation(b: &[u8], mut i: usize) -> Option<usize> {
    // Horizontal whitespace and `--` comments, then a newline.
    loop {
        match *b.get(i)? {
            b' ' | b'\t' | 0x0c | 0x0b => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = line_comment_end(b, i),
            b'\n' | b'\r' => {
                i += 1;
                break;
            }
            _ => return None,
        }
    }
    // Any whitespace, and `--` comments that end with a newline, then the quote.
    loop {
        match *b.get(i)? {
            c if is_space(c) => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = line_comment_end(b, i);
                b.get(i)?; // a comment at the very end is not followed by a newline
                i += 1;
            }
            b'\'' => return Some(i + 1),
            _ => return None,
        }
    }
}

/// The end of a double-quoted identifier whose body starts at `i` (`""` is a quote).
fn identifier_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match *b.get(i)? {
            b'"' if b.get(i + 1) == Some(&b'"') => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of a dollar-quoted string starting with the `$` at `i` (`$$...$$`,
/// `$tag$...$tag$`); `None` if the delimiter is malformed or never closed.
fn dollar_quoted_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    // The tag: `[A-Za-z\200-\377_][A-Za-z\200-\377_0-9]*` (no `$`).
    if b.get(j).is_some_and(|&c| is_ident_start(c)) {
        j += 1;
        while b
            .get(j)
            .is_some_and(|&c| is_ident_start(c) || c.is_ascii_digit())
        {
            j += 1;
        }
    }
    if b.get(j) != Some(&b'$') {
        return None;
    }
    let delimiter = &b[i..=j];
    let body = j + 1;
    let found = b[body..]
        .windows(delimiter.len())
        .position(|w| w == delimiter)?;
    Some(body + found + delimiter.len())
}

/// The end of the number starting at `i`, which must be exactly one of PostgreSQL's number
/// tokens, not followed by an identifier character or another `.`; `None` otherwise.
fn number_end(b: &[u8], i: usize) -> Option<usize> {
    let digits = |mut j: usize, ok: fn(u8) -> bool| -> Option<usize> {
        // `(_?digit)+` after a first digit (or a radix prefix): returns the end.
        if !b.get(j).is_some_and(|&c| ok(c)) {
            return None;
        }
        j += 1;
        loop {
            match b.get(j) {
                Some(&c) if ok(c) => j += 1,
                Some(b'_') if b.get(j + 1).is_some_and(|&c| ok(c)) => j += 2,
                _ => return Some(j),
            }
        }
    };
    let dec = |c: u8| c.is_ascii_digit();
    let end = match (b[i], b.get(i + 1).map(u8::to_ascii_lowercase)) {
        (b'0', Some(b'x')) => {
            let radix = if b.get(i + 2) == Some(&b'_') {
                i + 3
            } else {
                i + 2
            };
            digits(radix, |c| c.is_ascii_hexdigit())?
        }
        (b'0', Some(b'o')) => {
            let radix = if b.get(i + 2) == Some(&b'_') {
                i + 3
            } else {
                i + 2
            };
            digits(radix, |c| (b'0'..=b'7').contains(&c))?
        }
        (b'0', Some(b'b')) => {
            let radix = if b.get(i + 2) == Some(&b'_') {
                i + 3
            } else {
                i + 2
            };
            digits(radix, |c| c == b'0' || c == b'1')?
        }
        _ => {
            let mut j = if b[i] == b'.' { i } else { digits(i, dec)? };
            if b.get(j) == Some(&b'.') {
                if b.get(j + 1) == Some(&b'.') {
                    return None; // `1..2`
                }
                j += 1;
                if b.get(j).is_some_and(|&c| dec(c)) {
                    j = digits(j, dec)?;
                }
            }
            if matches!(b.get(j), Some(b'e' | b'E')) {
                let mut k = j + 1;
                if matches!(b.get(k), Some(b'+' | b'-')) {
                    k += 1;
                }
                j = digits(k, dec)?;
            }
            j
        }
    };
    match b.get(end) {
        Some(&c) if is_ident_cont(c) || c == b'.' => None,
        _ => Some(end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(sql: &str) -> String {
        fingerprint(sql)
            .unwrap_or_else(|| panic!("no fingerprint for {sql:?}"))
            .to_string()
    }

    #[track_caller]
    fn same(a: &str, b: &str) {
        assert_eq!(fingerprint(a), fingerprint(b), "{a:?} vs {b:?}");
        assert!(fingerprint(a).is_some());
    }

    #[track_caller]
    fn different(a: &str, b: &str) {
        assert_ne!(fp(a), fp(b), "{a:?} vs {b:?}");
    }

    #[test]
    fn literals_become_placeholders_and_words_lower_case() {
        assert_eq!(
            fp("SELECT * FROM Orders WHERE id = 42 AND name = 'x'"),
            "select * from orders where id = ? and name = ?"
        );
        assert_eq!(fp("select $1::int, $2"), "select $1::int, $2");
        assert_eq!(fp("  select\t1  ;  "), "select ? ;");
    }

    #[test]
    fn comments_and_whitespace_do_not_matter() {
        same("DROP/**/TABLE t", "drop table t");
        same(
            "DROP /* a /* nested */ comment */ TABLE t",
            "drop\n\ttable t",
        );
        same("SELECT 1 -- WHERE id = 1\n", "select 2");
        same("select\r\n1", "SELECT 7");
        // A comment separates tokens: it is not nothing.
        different("select a/**/b", "select ab");
    }

    #[test]
    fn quoted_identifiers_are_kept_case_sensitive() {
        assert_eq!(
            fp("select * from \"Staging\".\"Events\""),
            "select * from \"Staging\".\"Events\""
        );
        different(
            "select * from \"Staging\".events",
            "select * from staging.events",
        );
        different("select * from \"a\"\"b\"", "select * from \"a\"");
        assert_eq!(fp("select U&\"d\\0061ta\""), "select U&\"d\\0061ta\"");
    }

    #[test]
    fn every_literal_kind_is_one_placeholder() {
        for literal in [
            "'it''s'",
            "E'it\\'s'",
            "e'\\\\'",
            "B'0101'",
            "X'ff'",
            "N'n'",
            "U&'\\0041'",
            "$$ a ' b $$",
            "$tag$ a $$ b $tag$",
            "42",
            "4.2",
            ".5",
            "1e10",
            "1.5E-3",
            "0x1F",
            "0o17",
            "0b101",
            "1_000_000",
            "'a'\n'b'",
            "'a' -- comment\n  'b'",
            "E'a'\n'\\''",
        ] {
            assert_eq!(fp(&format!("select {literal}")), "select ?", "{literal}");
        }
    }

    #[test]
    fn code_is_never_hidden_in_a_literal() {
        // A `;DROP` inside a dollar-quoted string stays inside it.
        assert_eq!(fp("select $$;DROP TABLE x;$$"), "select ?");
        // A quote inside a dollar-quoted body does not start a string.
        assert_eq!(fp("select $a$ ' $a$, 'x'"), "select ?, ?");
        // `--` inside a string is not a comment.
        assert_eq!(fp("select '--', 1"), "select ?, ?");
        // With standard_conforming_strings, a backslash does not escape a quote.
        assert_eq!(fp("select 'a\\', 'b'"), "select ?, ?");
        // In an E'' string it does.
        assert_eq!(fp("select E'a\\', b'"), "select ?");
        assert_eq!(fingerprint("select 'a\\', b'"), None);
        // Without a newline, two strings are two literals.
        assert_eq!(fp("select 'a' 'b'"), "select ? ?");
        // A continued E'' string keeps its escapes: this is one literal.
        assert_eq!(fp("select E'x'\n'\\' ; drop table t; --'"), "select ?");
        // `xe` is an identifier, then a standard string.
        assert_eq!(fp("select xe'a\\'"), "select xe?");
        // A dollar sign inside an identifier is not a dollar quote.
        assert_eq!(fp("select a$$b, c"), "select a$$b, c");
        different("select 1 secret", "select 1 from secret");
    }

    #[test]
    fn what_cannot_be_read_exactly_has_no_fingerprint() {
        for sql in [
            "select 'unterminated",
            "select E'unterminated\\'",
            "select \"unterminated",
            "select $$unterminated",
            "select $a$ never closed $b$",
            "select /* unterminated",
            "select /* /* */",
            "select 1.FROM secret",
            "select 1abc",
            "select 0x",
            "select 1_",
            "select 1..2",
            "select 1.2.3",
            "select 1e",
            "select $1abc",
            "select $abc",
            "select U&'\\0041' UESCAPE '!'",
            "select 'a' \\ 'b'",
            "select {1}",
            "select \u{0}",
        ] {
            assert_eq!(fingerprint(sql), None, "{sql:?}");
        }
        assert!(fingerprint(&"x".repeat(MAX_FINGERPRINT_INPUT + 1)).is_none());
    }

    #[test]
    fn non_ascii_identifiers_are_kept() {
        assert_eq!(
            fp("SELECT Prénom FROM Clients"),
            "select prénom from clients"
        );
        assert_eq!(fp("select 'é', \"Ä\""), "select ?, \"Ä\"");
    }

    #[test]
    fn multi_statement_texts_are_fingerprinted_whole() {
        assert_eq!(
            fp("SELECT 1; DELETE FROM t WHERE id = 3"),
            "select ?; delete from t where id = ?"
        );
        different("select 1", "select 1; delete from t");
    }
}
