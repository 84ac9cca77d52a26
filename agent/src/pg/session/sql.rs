//! Which prepared statements and cursors a simple-query string's `DEALLOCATE`, `PREPARE`,
//! `CLOSE` and `DECLARE` statements name.
//!
//! A CommandComplete tag says *that* a `DEALLOCATE name` ran, not which name: the tracker
//! reads the names here, in statement order, and consumes one per tag of that kind. This is a
//! lexer, not a parser: it splits statements at top-level semicolons (skipping strings,
//! quoted identifiers, dollar quotes, nested comments and parentheses) and reads the first
//! tokens of each statement. Whatever it cannot read with certainty is reported as
//! [`Target::Unknown`], or the whole string as unreliable (SQL-standard function bodies,
//! `BEGIN ATOMIC ... END`, contain top-level semicolons), and the tracker then falls back to
//! forgetting every statement (or portal): masking fails closed rather than trusting a stale
//! description.

use super::tables::Name;

/// Which kind of statement an effect comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EffectKind {
    /// `DEALLOCATE [PREPARE] {name | ALL}`: tags `DEALLOCATE`, `DEALLOCATE ALL`.
    Deallocate,
    /// `PREPARE name ... AS ...`: tag `PREPARE`.
    Prepare,
    /// `CLOSE {name | ALL}`: tags `CLOSE CURSOR`, `CLOSE CURSOR ALL`.
    Close,
    /// `DECLARE name ... CURSOR ... FOR ...`: tag `DECLARE CURSOR`.
    Declare,
}

/// What a statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Named(Name),
    All,
    /// Could not be read with certainty.
    Unknown,
}

/// The effects of one query string, in statement order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    items: Vec<(EffectKind, Target)>,
    unreliable: bool,
}

impl Effects {
    /// Nothing can be read: every [`Self::take`] answers [`Target::Unknown`].
    pub(crate) fn unknown() -> Self {
        Self {
            items: Vec::new(),
            unreliable: true,
        }
    }

    /// Consumes the next effect of `kind` (one per CommandComplete of that kind).
    pub(crate) fn take(&mut self, kind: EffectKind) -> Target {
        if self.unreliable {
            return Target::Unknown;
        }
        match self.items.iter().position(|(k, _)| *k == kind) {
            Some(i) => self.items.remove(i).1,
            None => Target::Unknown,
        }
    }
}

/// Scans `sql`. `standard_strings` is the session's `standard_conforming_strings` (when off,
/// backslashes escape in `'...'` literals).
pub(crate) fn scan(sql: &str, standard_strings: bool) -> Effects {
    let mut lx = Lexer {
        s: sql.as_bytes(),
        i: 0,
        standard_strings,
        depth: 0,
        after_begin: false,
        unreliable: false,
    };
    let mut effects = Effects::default();
    while let Some(first) = lx.next() {
        let kind = match first {
            Tok::Semi => continue,
            Tok::Word(w) => keyword(w),
            _ => None,
        };
        let mut at_end = false;
        if let Some(kind) = kind {
            let (target, ended) = statement_target(&mut lx, kind);
            at_end = ended;
            if let Some(target) = target {
                effects.items.push((kind, target));
            }
        }
        if !at_end {
            // Skip to the end of the statement.
            while let Some(tok) = lx.next() {
                if tok == Tok::Semi {
                    break;
                }
            }
        }
    }
    effects.unreliable = lx.unreliable;
    effects
}

fn keyword(word: &[u8]) -> Option<EffectKind> {
    [
        ("deallocate", EffectKind::Deallocate),
        ("prepare", EffectKind::Prepare),
        ("close", EffectKind::Close),
        ("declare", EffectKind::Declare),
    ]
    .into_iter()
    .find(|(k, _)| word.eq_ignore_ascii_case(k.as_bytes()))
    .map(|(_, kind)| kind)
}

/// Reads what the statement after its first keyword names. Returns `None` when the statement
/// is not one with an effect after all (`PREPARE TRANSACTION`), and whether its terminating
/// semicolon (or the end) was consumed.
fn statement_target(lx: &mut Lexer<'_>, kind: EffectKind) -> (Option<Target>, bool) {
    let mut tok = lx.next();
    match kind {
        EffectKind::Deallocate | EffectKind::Close => {
            if kind == EffectKind::Deallocate
                && let Some(Tok::Word(w)) = tok
                && w.eq_ignore_ascii_case(b"prepare")
            {
                let next = lx.next();
                if matches!(next, None | Some(Tok::Semi)) {
                    // `DEALLOCATE prepare`: a statement named "prepare".
                    return (Some(Target::Named(Name::identifier("prepare"))), true);
                }
                tok = next;
            }
            let target = match tok {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case(b"all") => Target::All,
                Some(tok) => name_of(tok),
                None => Target::Unknown,
            };
            // Nothing may follow the name.
            match lx.next() {
                None | Some(Tok::Semi) => (Some(target), true),
                Some(_) => (Some(Target::Unknown), false),
            }
        }
        EffectKind::Prepare => {
            let Some(tok) = tok else {
                return (Some(Target::Unknown), true);
            };
            if let Tok::Word(w) = tok
                && w.eq_ignore_ascii_case(b"transaction")
            {
                // `PREPARE TRANSACTION 'gid'` (two-phase commit) unless followed by `AS` or a
                // parameter type list: then it prepares a statement named "transaction".
                let next = lx.next();
                let statement = match next {
                    Some(Tok::Word(w)) => w.eq_ignore_ascii_case(b"as"),
                    Some(Tok::Punct(b'(')) => true,
                    _ => false,
                };
                let ended = matches!(next, None | Some(Tok::Semi));
                if !statement {
                    return (None, ended);
                }
                return (Some(Target::Named(Name::identifier("transaction"))), ended);
            }
            let ended = tok == Tok::Semi;
            (Some(name_of(tok)), ended)
        }
        EffectKind::Declare => match tok {
            None => (Some(Target::Unknown), true),
            Some(tok) => {
                let ended = tok == Tok::Semi;
                (Some(name_of(tok)), ended)
            }
        },
    }
}

fn name_of(tok: Tok<'_>) -> Target {
    match tok {
        Tok::Word(w) => match std::str::from_utf8(w) {
            Ok(w) => Target::Named(Name::identifier(&w.to_ascii_lowercase())),
            Err(_) => Target::Unknown,
        },
        Tok::Quoted(q) if !q.is_empty() => match String::from_utf8(q) {
            Ok(q) => Target::Named(Name::identifier(&q)),
            Err(_) => Target::Unknown,
        },
        _ => Target::Unknown,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Tok<'a> {
    /// A bare identifier or keyword.
    Word(&'a [u8]),
    /// A double-quoted identifier, unescaped.
    Quoted(Vec<u8>),
    /// A top-level `;`.
    Semi,
    /// A one-byte operator or punctuation (parentheses included).
    Punct(u8),
    /// A literal (string, number, parameter) or a `U&"..."` identifier.
    Other,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    standard_strings: bool,
    /// Parenthesis depth: a `;` inside parentheses (rule actions) ends nothing.
    depth: usize,
    /// The previous token was the word BEGIN.
    after_begin: bool,
    unreliable: bool,
}

impl<'a> Lexer<'a> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.i + ahead).copied()
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let tok = self.token()?;
        let is_begin = matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(b"begin"));
        if self.after_begin && matches!(tok, Tok::Word(w) if w.eq_ignore_ascii_case(b"atomic")) {
            self.unreliable = true;
        }
        self.after_begin = is_begin;
        Some(tok)
    }

    fn token(&mut self) -> Option<Tok<'a>> {
        self.skip_whitespace_and_comments();
        let c = self.peek(0)?;
        let tok = match c {
            b';' => {
                self.i += 1;
                if self.depth > 0 {
                    Tok::Punct(b';')
                } else {
                    Tok::Semi
                }
            }
            b'(' => {
                self.i += 1;
                self.depth += 1;
                Tok::Punct(c)
            }
            b')' => {
                self.i += 1;
                self.depth = self.depth.saturating_sub(1);
                Tok::Punct(c)
            }
            b'\'' => {
                self.skip_string(!self.standard_strings);
                Tok::Other
            }
            b'"' => Tok::Quoted(self.quoted_identifier()),
            b'$' => self.dollar(),
            b'E' | b'e' if self.peek(1) == Some(b'\'') => {
                self.i += 1;
                self.skip_string(true);
                Tok::Other
            }
            b'U' | b'u' if self.peek(1) == Some(b'&') && self.peek(2) == Some(b'"') => {
                self.i += 2;
                self.quoted_identifier();
                Tok::Other
            }
            b'U' | b'u' if self.peek(1) == Some(b'&') && self.peek(2) == Some(b'\'') => {
                self.i += 2;
                self.skip_string(false);
                Tok::Other
            }
            b'B' | b'b' | b'X' | b'x' | b'N' | b'n' if self.peek(1) == Some(b'\'') => {
                self.i += 1;
                self.skip_string(!self.standard_strings);
                Tok::Other
            }
            c if is_ident_start(c) => {
                let start = self.i;
                while self.peek(0).is_some_and(is_ident_char) {
                    self.i += 1;
                }
                Tok::Word(&self.s[start..self.i])
            }
            c if c.is_ascii_digit()
                || c == b'.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()) =>
            {
                while self
                    .peek(0)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || d == b'_' || d == b'.')
                {
                    self.i += 1;
                }
                Tok::Other
            }
            c => {
                self.i += 1;
                Tok::Punct(c)
            }
        };
        Some(tok)
    }

    fn skip_whitespace_and_comments(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_ascii_whitespace() || c == 0x0b => self.i += 1,
                (Some(b'-'), Some(b'-')) => {
                    while self.peek(0).is_some_and(|c| c != b'\n' && c != b'\r') {
                        self.i += 1;
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    self.i += 2;
                    let mut depth = 1usize;
                    while depth > 0 {
                        match (self.peek(0), self.peek(1)) {
                            (None, _) => return,
                            (Some(b'/'), Some(b'*')) => {
                                depth += 1;
                                self.i += 2;
                            }
                            (Some(b'*'), Some(b'/')) => {
                                depth -= 1;
                                self.i += 2;
                            }
                            _ => self.i += 1,
                        }
                    }
                }
                _ => return,
            }
        }
    }

    /// At an opening `'`: skips the literal. `''` is a quote; with `backslash`, `\` escapes
    /// the next byte.
    fn skip_string(&mut self, backslash: bool) {
        self.i += 1;
        while let Some(c) = self.peek(0) {
            self.i += 1;
            match c {
                b'\\' if backslash => self.i += 1,
                b'\'' if self.peek(0) == Some(b'\'') => self.i += 1,
                b'\'' => return,
                _ => {}
            }
        }
        self.i = self.i.min(self.s.len());
    }

    /// At an opening `"`: the identifier's bytes, `""` unescaped.
    fn quoted_identifier(&mut self) -> Vec<u8> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek(0) {
            self.i += 1;
            if c == b'"' {
                if self.peek(0) == Some(b'"') {
                    self.i += 1;
                } else {
                    return out;
                }
            }
            out.push(c);
        }
        out
    }

    /// At a `$`: a parameter (`$1`), a dollar-quoted string (`$tag$...$tag$`), or an operator
    /// character.
    fn dollar(&mut self) -> Tok<'a> {
        let start = self.i;
        self.i += 1;
        if self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            while self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            return Tok::Other;
        }
        if self.peek(0).is_some_and(is_ident_start) {
            while self.peek(0).is_some_and(|c| is_ident_char(c) && c != b'$') {
                self.i += 1;
            }
        }
        if self.peek(0) != Some(b'$') {
            self.i = start + 1;
            return Tok::Punct(b'$');
        }
        self.i += 1;
        let delimiter = &self.s[start..self.i];
        match find(&self.s[self.i..], delimiter) {
            Some(at) => self.i += at + delimiter.len(),
            None => self.i = self.s.len(),
        }
        Tok::Other
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(s: &str) -> Target {
        Target::Named(Name::identifier(s))
    }

    fn all(sql: &str) -> Vec<(EffectKind, Target)> {
        scan(sql, true).items
    }

    #[test]
    fn plain_queries_have_no_effects() {
        assert_eq!(
            scan("select 1; insert into t values (2)", true),
            Effects::default()
        );
        assert_eq!(scan("", true), Effects::default());
    }

    #[test]
    fn deallocate_forms() {
        use EffectKind::Deallocate as D;
        assert_eq!(all("DEALLOCATE s1"), [(D, named("s1"))]);
        assert_eq!(all("deallocate prepare S1;"), [(D, named("s1"))]);
        assert_eq!(all(r#"DEALLOCATE "S 1""#), [(D, named("S 1"))]);
        assert_eq!(all(r#"DEALLOCATE "a""b""#), [(D, named("a\"b"))]);
        assert_eq!(all("DEALLOCATE ALL"), [(D, Target::All)]);
        assert_eq!(all("DEALLOCATE PREPARE ALL"), [(D, Target::All)]);
        assert_eq!(all("DEALLOCATE prepare"), [(D, named("prepare"))]);
        assert_eq!(
            all("/* c */ DEALLOCATE -- x\n s1 /* y */ ;"),
            [(D, named("s1"))]
        );
        assert_eq!(all(r#"DEALLOCATE U&"\0073""#), [(D, Target::Unknown)]);
        assert_eq!(all("DEALLOCATE s1 s2"), [(D, Target::Unknown)]);
    }

    #[test]
    fn statements_are_split_outside_literals_and_comments() {
        use EffectKind::Deallocate as D;
        let sql = "select 'x; deallocate a', $$ ; deallocate b $$, $q$;deallocate c$q$, \
                   \"; deallocate d\", E'\\'; deallocate e' /* ; deallocate f /* ; */ */; \
                   -- ; deallocate g\n deallocate h";
        assert_eq!(all(sql), [(D, named("h"))]);
        // Parentheses (rule actions) do not end statements.
        assert_eq!(all("select (1; deallocate x)"), []);
    }

    #[test]
    fn backslashes_escape_only_when_strings_are_not_standard() {
        let sql = r"select 'a\'; deallocate x; select 'b'";
        assert_eq!(
            scan(sql, true).items,
            [(EffectKind::Deallocate, named("x"))]
        );
        assert_eq!(scan(sql, false).items, []);
    }

    #[test]
    fn prepare_close_declare() {
        assert_eq!(
            all(
                "PREPARE q1 (int) AS SELECT $1; CLOSE c1; CLOSE ALL; DECLARE C2 CURSOR FOR SELECT 1"
            ),
            [
                (EffectKind::Prepare, named("q1")),
                (EffectKind::Close, named("c1")),
                (EffectKind::Close, Target::All),
                (EffectKind::Declare, named("c2")),
            ]
        );
        assert_eq!(all("PREPARE TRANSACTION 'gid'"), []);
        assert_eq!(
            all("PREPARE transaction AS SELECT 1"),
            [(EffectKind::Prepare, named("transaction"))]
        );
    }

    #[test]
    fn effects_are_consumed_in_order() {
        let mut e = scan("DEALLOCATE a; CLOSE c; DEALLOCATE b", true);
        assert_eq!(e.take(EffectKind::Deallocate), named("a"));
        assert_eq!(e.take(EffectKind::Deallocate), named("b"));
        assert_eq!(e.take(EffectKind::Deallocate), Target::Unknown);
        assert_eq!(e.take(EffectKind::Close), named("c"));
    }

    #[test]
    fn begin_atomic_bodies_make_the_scan_unreliable() {
        let mut e = scan(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; DEALLOCATE a; END; DEALLOCATE b",
            true,
        );
        assert_eq!(e.take(EffectKind::Deallocate), Target::Unknown);
    }

    #[test]
    fn long_identifiers_are_cut_at_a_character_boundary() {
        let long = format!("{}é", "a".repeat(62));
        let e = all(&format!("DEALLOCATE \"{long}\""));
        let [(_, Target::Named(name))] = &e[..] else {
            panic!("{e:?}");
        };
        assert_eq!(name.as_bytes(), "a".repeat(62).as_bytes());
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for sql in [
            "DEALLOCATE \"x",
            "select 'x",
            "select $a$ x",
            "/* x",
            "DEALLOCATE",
            "DECLARE",
            "PREPARE",
            "$",
            "E'\\",
            "U&",
            "u&'",
            ".5",
        ] {
            let _ = scan(sql, true);
            let _ = scan(sql, false);
        }
    }
}
