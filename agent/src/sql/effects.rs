//! What a statement does: the classification vocabulary, as plain data.

use std::fmt;

pub use crate::policy::Operation;

/// A possibly schema-qualified name, as written in the statement (after the server's own
/// normalisation: unquoted identifiers lower-cased, quoted ones kept, Unicode escapes decoded,
/// names truncated to 63 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QualifiedName {
    /// `None`: unqualified (resolved against the access table's `search_path`).
    pub schema: Option<String>,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: Option<&str>, name: &str) -> Self {
        Self {
            schema: schema.map(str::to_string),
            name: name.to_string(),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write_ident(f, schema)?;
            f.write_str(".")?;
        }
        write_ident(f, &self.name)
    }
}

/// Writes an identifier as SQL would need it: bare when it is a plain lower-case name,
/// double-quoted otherwise.
pub(crate) fn write_ident(f: &mut fmt::Formatter<'_>, ident: &str) -> fmt::Result {
    let plain = ident
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        f.write_str(ident)
    } else {
        write!(f, "\"{}\"", ident.replace('"', "\"\""))
    }
}

/// The kind of a schema object an effect concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// Table, view, materialized view, sequence, foreign table, index (and, for rules,
    /// triggers, policies and columns, the table they belong to).
    Relation,
    /// Function, procedure, aggregate, operator.
    Routine,
    /// Type, domain, collation, conversion, statistics, text search object, operator class ...
    Other,
}

/// What an effect concerns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Object {
    /// Nothing in particular (the whole session or database): SET ROLE, DO, VACUUM without
    /// a table ... Only rules without `tables` match it.
    None,
    /// A schema object: `tables` patterns apply to it.
    Named(ObjectKind, QualifiedName),
    /// Something outside any schema (a schema itself, a database, a role, an extension, a
    /// channel, a setting ...), with its kind (`"schema"`, `"setting"` ...). Only rules
    /// without `tables` match it.
    Global { kind: &'static str, name: String },
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::None => f.write_str("-"),
            Object::Named(ObjectKind::Routine, name) => write!(f, "{name}()"),
            Object::Named(_, name) => write!(f, "{name}"),
            Object::Global { kind, name } => write!(f, "{kind} {name}"),
        }
    }
}

/// One thing a statement does: an operation on an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Effect {
    pub operation: Operation,
    pub object: Object,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.operation, self.object)
    }
}

/// A reason to deny a statement whatever the policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forbidden {
    /// COPY to or from a program on the database server.
    CopyProgram,
    /// COPY to or from a file on the database server.
    CopyFile,
    /// Changing a setting that changes how the server reads SQL text
    /// (`standard_conforming_strings`, `backslash_quote`, `client_encoding`): the agent's
    /// reading of later statements would no longer be the server's.
    LexerSetting,
    /// A statement kind that cannot be judged (PL/pgSQL-only statements).
    Unsupported,
}

impl Forbidden {
    /// The rule name, e.g. `builtin:copy-program`.
    pub fn rule_name(self) -> &'static str {
        match self {
            Forbidden::CopyProgram => "builtin:copy-program",
            Forbidden::CopyFile => "builtin:copy-file",
            Forbidden::LexerSetting => "builtin:lexer-setting",
            Forbidden::Unsupported => "builtin:unsupported-statement",
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Forbidden::CopyProgram => {
                "COPY ... PROGRAM runs a shell command on the database server"
            }
            Forbidden::CopyFile => {
                "COPY to or from a file reads or writes the database server's files"
            }
            Forbidden::LexerSetting => {
                "changing standard_conforming_strings, backslash_quote or client_encoding changes \
                 how the server reads SQL text, so the agent could no longer judge statements"
            }
            Forbidden::Unsupported => "this kind of statement cannot be judged",
        }
    }

    pub(crate) fn hint(self) -> &'static str {
        match self {
            Forbidden::CopyProgram | Forbidden::CopyFile => {
                "use COPY ... TO STDOUT or COPY ... FROM STDIN: the data then goes through the \
                 connection (and the copy_out / copy_in operations)"
            }
            Forbidden::LexerSetting => {
                "leave these settings at their defaults (standard_conforming_strings = on, \
                 client_encoding = UTF8)"
            }
            Forbidden::Unsupported => "send plain SQL statements",
        }
    }
}

/// How a statement relates to the session's prepared statements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Prepared {
    #[default]
    None,
    /// `PREPARE name AS ...`: the statement's effects are those of the prepared statement;
    /// the caller remembers the decision under `name` for later EXECUTEs.
    Prepare(String),
    /// `EXECUTE name (...)`: decided with the remembered decision of `name`.
    Execute(String),
    /// `DEALLOCATE name` (`Some`), or `DEALLOCATE ALL` / `DISCARD ALL` (`None`): the caller
    /// forgets the decision(s).
    Deallocate(Option<String>),
}

/// What one statement does, from its parse tree. Depends only on the statement's structure
/// (never on literal values), so two statements with the same [`super::Fingerprint`] always
/// have the same classification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Classification {
    /// The statement kind, like PostgreSQL's command tags: `SELECT`, `DELETE`,
    /// `CREATE TABLE`, `DROP FUNCTION`, `SET`, `EXPLAIN` ...
    pub kind: String,
    /// Every (operation, object) the statement performs, without duplicates, in order of
    /// appearance.
    pub effects: Vec<Effect>,
    /// Every function called anywhere in the statement (and CALLed procedures, trigger
    /// functions), without duplicates.
    pub functions: Vec<QualifiedName>,
    /// Reasons to deny the statement whatever the policy says.
    pub forbidden: Vec<Forbidden>,
    /// Whether some write may change every row of a table (see [`Operation::BulkWrite`]).
    pub bulk: bool,
    /// A statement with nothing to judge: transaction control, SHOW, harmless SET/RESET,
    /// DISCARD, DEALLOCATE, CLOSE/FETCH/MOVE, UNLISTEN, an empty statement ... It is allowed
    /// without any rule (unless it calls a denied function).
    pub harmless: bool,
    pub prepared: Prepared,
}

impl Classification {
    /// The operations of the effects, without duplicates, in order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut ops: Vec<Operation> = Vec::new();
        for e in &self.effects {
            if !ops.contains(&e.operation) {
                ops.push(e.operation);
            }
        }
        ops
    }
}

impl fmt::Display for Classification {
    /// A few aligned lines, e.g.
    ///
    /// ```text
    /// kind       DELETE
    /// effects    write staging.events, bulk_write staging.events
    /// functions  now()
    /// flags      bulk
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kind       {}", self.kind)?;
        if self.effects.is_empty() {
            writeln!(f, "effects    (none)")?;
        } else {
            let effects: Vec<String> = self.effects.iter().map(Effect::to_string).collect();
            writeln!(f, "effects    {}", effects.join(", "))?;
        }
        if !self.functions.is_empty() {
            let functions: Vec<String> = self.functions.iter().map(|n| format!("{n}()")).collect();
            writeln!(f, "functions  {}", functions.join(", "))?;
        }
        let mut flags: Vec<String> = Vec::new();
        if self.bulk {
            flags.push("bulk".into());
        }
        if self.harmless {
            flags.push("harmless".into());
        }
        for forbidden in &self.forbidden {
            flags.push(forbidden.rule_name().into());
        }
        match &self.prepared {
            Prepared::None => {}
            Prepared::Prepare(name) => flags.push(format!("prepares {name}")),
            Prepared::Execute(name) => flags.push(format!("executes {name}")),
            Prepared::Deallocate(Some(name)) => flags.push(format!("deallocates {name}")),
            Prepared::Deallocate(None) => flags.push("deallocates all".into()),
        }
        if !flags.is_empty() {
            writeln!(f, "flags      {}", flags.join(", "))?;
        }
        Ok(())
    }
}
