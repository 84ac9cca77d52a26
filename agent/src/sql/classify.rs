//! From SQL text to [`Classification`]s: parsed with libpg_query (PostgreSQL's own grammar),
//! then classified by effect, walking the whole parse tree.
//!
//! How the walk works: every node of the tree is visited (through the generated, complete
//! [`walk::for_each_child`]). Statements set the context their children are seen in (the
//! operation a table reference means there) and claim the tables they act on (the target of a
//! DELETE is written, not read). Every table reference met in the walk becomes an effect, every
//! function call is recorded, whatever clause it hides in (CTEs, subqueries, RETURNING,
//! default expressions, function arguments, COPY queries, rule actions, EXECUTE parameters).
//! Nothing depends on literal values.

use std::collections::HashMap;
use std::fmt;

use pg_query::NodeRef;
use pg_query::protobuf::{
    self, AlterTableType, BoolExprType, CmdType, DiscardMode, DropBehavior, MergeMatchKind, Node,
    ObjectType, TransactionStmtKind, VariableSetKind,
};

use super::effects::{
    Classification, Effect, Forbidden, Object, ObjectKind, Operation, Prepared, QualifiedName,
};
use super::walk;

/// The statement could not be parsed (or is too deeply nested to be judged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses `sql` (one or more statements, as in a simple Query message) and classifies each
/// statement. An empty string (or only comments / semicolons) gives no statement.
pub fn classify(sql: &str) -> Result<Vec<Classification>, ParseError> {
    let parsed = parse(sql)?;
    Ok(parsed
        .protobuf
        .stmts
        .iter()
        .map(
            |raw| match raw.stmt.as_deref().and_then(|n| n.node.as_ref()) {
                Some(stmt) => classify_statement(stmt.to_ref()),
                None => Classification {
                    kind: "EMPTY".into(),
                    harmless: true,
                    ..Classification::default()
                },
            },
        )
        .collect())
}

/// libpg_query's parse, with its errors (and, defensively, panics of the bindings) turned
/// into a [`ParseError`].
fn parse(sql: &str) -> Result<pg_query::ParseResult, ParseError> {
    let result =
        std::panic::catch_unwind(|| pg_query::parse(sql, pg_query::ParserOptions::DEFAULT));
    match result {
        Ok(Ok(parsed)) => Ok(parsed),
        Ok(Err(pg_query::Error::Parse(message))) => Err(ParseError(message)),
        Ok(Err(pg_query::Error::Decode(e))) if e.to_string().contains("recursion limit") => {
            Err(ParseError(
                "statement nested too deeply to be judged (more than about 45 chained \
                 operators, or about 15 nested subqueries)"
                    .into(),
            ))
        }
        Ok(Err(e)) => Err(ParseError(e.to_string())),
        Err(_) => Err(ParseError("the SQL parser failed on this statement".into())),
    }
}

/// Classifies one statement (a node of a `RawStmt`).
pub(crate) fn classify_statement(stmt: NodeRef<'_>) -> Classification {
    let mut cx = Cx {
        c: Classification {
            kind: kind_of(stmt),
            ..Classification::default()
        },
        claims: HashMap::new(),
        context: vec![READ],
        lock_rows: 0,
        explain_only: 0,
        copy_out: 0,
        ctes: Vec::new(),
    };
    cx.visit(stmt);
    cx.c
}

const READ: &[Operation] = &[Operation::Read];
const WRITE: &[Operation] = &[Operation::Write];
const BULK_WRITE: &[Operation] = &[Operation::Write, Operation::BulkWrite];
const DDL: &[Operation] = &[Operation::Ddl];
const DDL_AND_ADMIN: &[Operation] = &[Operation::Ddl, Operation::Admin];
const CREATE_WITH_DATA: &[Operation] = &[Operation::Ddl, Operation::Write];
const TRUNCATE: &[Operation] = &[Operation::Write, Operation::BulkWrite, Operation::Ddl];
const ADMIN: &[Operation] = &[Operation::Admin];
const MAINTENANCE: &[Operation] = &[Operation::Maintenance];
const LOCK: &[Operation] = &[Operation::Lock];
const COPY_IN: &[Operation] = &[Operation::CopyIn, Operation::Write];
const COPY_OUT: &[Operation] = &[Operation::CopyOut, Operation::Read];

/// The classification under construction and the walk's context.
struct Cx<'a> {
    c: Classification,
    /// Table references (by address) that a statement acts on, with what it does to them.
    claims: HashMap<usize, &'static [Operation]>,
    /// What an unclaimed table reference means here (top of the stack).
    context: Vec<&'static [Operation]>,
    /// > 0 inside a SELECT ... FOR UPDATE/SHARE: tables read are also written (row locks).
    lock_rows: usize,
    /// > 0 inside EXPLAIN without ANALYZE: nothing runs, every table effect is a read.
    explain_only: usize,
    /// > 0 inside COPY (query) TO STDOUT: every table the query touches is also copied out.
    copy_out: usize,
    /// Names of the CTEs in scope (innermost last).
    ctes: Vec<&'a str>,
}

impl<'a> Cx<'a> {
    fn effect(&mut self, operation: Operation, object: Object) {
        let operation = if self.explain_only > 0 {
            match object {
                Object::Named(..) => Operation::Read,
                _ => return,
            }
        } else {
            operation
        };
        if operation == Operation::BulkWrite {
            self.c.bulk = true;
        }
        let copied_out = self.copy_out > 0
            && operation != Operation::CopyOut
            && matches!(object, Object::Named(ObjectKind::Relation, _));
        let copy = copied_out.then(|| Effect {
            operation: Operation::CopyOut,
            object: object.clone(),
        });
        let effect = Effect { operation, object };
        if !self.c.effects.contains(&effect) {
            self.c.effects.push(effect);
        }
        if let Some(copy) = copy
            && !self.c.effects.contains(&copy)
        {
            self.c.effects.push(copy);
        }
    }

    fn function(&mut self, name: QualifiedName) {
        if !self.c.functions.contains(&name) {
            self.c.functions.push(name);
        }
    }

    fn forbid(&mut self, why: Forbidden) {
        if !self.c.forbidden.contains(&why) {
            self.c.forbidden.push(why);
        }
    }

    fn claim(&mut self, rv: Option<&protobuf::RangeVar>, ops: &'static [Operation]) {
        if let Some(rv) = rv {
            self.claims.insert(address(rv), ops);
        }
    }

    /// Visits the children of `node` in `context`, skipping `with` (already visited).
    fn children(
        &mut self,
        node: NodeRef<'a>,
        context: &'static [Operation],
        with: Option<&'a protobuf::WithClause>,
    ) {
        self.context.push(context);
        walk::for_each_child(node, &mut |child| {
            if let (NodeRef::WithClause(w), Some(with)) = (child, with)
                && std::ptr::eq(w, with)
            {
                return;
            }
            self.visit(child);
        });
        self.context.pop();
    }

    /// A statement doing `ops` on `objects` (the objects it names, e.g. the functions of a
    /// DROP FUNCTION) and on the table references in it; on nothing in particular
    /// ([`Object::None`]) if there are neither.
    fn statement(&mut self, node: NodeRef<'a>, ops: &'static [Operation], objects: Vec<Object>) {
        let before = self.c.effects.len();
        for object in objects {
            for &op in ops {
                self.effect(op, object.clone());
            }
        }
        self.children(node, ops, None);
        let found = self.c.effects[before..]
            .iter()
            .any(|e| ops.contains(&e.operation));
        if !found {
            for &op in ops {
                self.effect(op, Object::None);
            }
        }
    }

    /// Visits a WITH clause: CTE bodies in order, each seeing the CTEs before it (all of them
    /// if RECURSIVE). Leaves every CTE name in scope; returns the scope length to restore.
    fn with_clause(&mut self, with: Option<&'a protobuf::WithClause>) -> usize {
        let scope = self.ctes.len();
        let Some(with) = with else {
            return scope;
        };
        let ctes: Vec<&'a protobuf::CommonTableExpr> = with
            .ctes
            .iter()
            .filter_map(|n| match &n.node {
                Some(protobuf::node::Node::CommonTableExpr(cte)) => Some(&**cte),
                _ => None,
            })
            .collect();
        if with.recursive {
            self.ctes
                .extend(ctes.iter().map(|cte| cte.ctename.as_str()));
        }
        for cte in ctes {
            self.context.push(READ);
            self.visit(NodeRef::CommonTableExpr(cte));
            self.context.pop();
            if !with.recursive {
                self.ctes.push(cte.ctename.as_str());
            }
        }
        scope
    }

    fn visit(&mut self, node: NodeRef<'a>) {
        use NodeRef as N;
        match node {
            N::RangeVar(rv) => self.range_var(rv),
            N::FuncCall(call) => {
                let name = qualified(&strings(&call.funcname));
                if let Some(name) = name {
                    if name.name.eq_ignore_ascii_case("pg_notify") {
                        self.effect(Operation::Notify, Object::None);
                    }
                    self.function(name);
                }
                self.children(node, self.current(), None);
            }

            // Data manipulation.
            N::SelectStmt(s) => {
                let scope = self.with_clause(s.with_clause.as_ref());
                if let Some(into) = &s.into_clause {
                    self.claim(into.rel.as_ref(), CREATE_WITH_DATA);
                }
                let locks = !s.locking_clause.is_empty();
                self.lock_rows += usize::from(locks);
                self.children(node, READ, s.with_clause.as_ref());
                self.lock_rows -= usize::from(locks);
                self.ctes.truncate(scope);
            }
            N::InsertStmt(s) => {
                let scope = self.with_clause(s.with_clause.as_ref());
                self.claim(s.relation.as_ref(), WRITE);
                self.children(node, READ, s.with_clause.as_ref());
                self.ctes.truncate(scope);
            }
            N::UpdateStmt(s) => {
                let scope = self.with_clause(s.with_clause.as_ref());
                let bulk = s
                    .relation
                    .as_ref()
                    .is_some_and(|rv| !restricts_rows(s.where_clause.as_deref(), rv));
                self.claim(s.relation.as_ref(), if bulk { BULK_WRITE } else { WRITE });
                self.children(node, READ, s.with_clause.as_ref());
                self.ctes.truncate(scope);
            }
            N::DeleteStmt(s) => {
                let scope = self.with_clause(s.with_clause.as_ref());
                let bulk = s
                    .relation
                    .as_ref()
                    .is_some_and(|rv| !restricts_rows(s.where_clause.as_deref(), rv));
                self.claim(s.relation.as_ref(), if bulk { BULK_WRITE } else { WRITE });
                self.children(node, READ, s.with_clause.as_ref());
                self.ctes.truncate(scope);
            }
            N::MergeStmt(s) => {
                let scope = self.with_clause(s.with_clause.as_ref());
                let bulk = s.relation.as_ref().is_some_and(|rv| merge_is_bulk(s, rv));
                self.claim(s.relation.as_ref(), if bulk { BULK_WRITE } else { WRITE });
                self.children(node, READ, s.with_clause.as_ref());
                self.ctes.truncate(scope);
            }
            N::CopyStmt(s) => {
                if s.is_program {
                    self.forbid(Forbidden::CopyProgram);
                } else if !s.filename.is_empty() {
                    self.forbid(Forbidden::CopyFile);
                }
                if s.is_from {
                    self.claim(s.relation.as_ref(), COPY_IN);
                } else {
                    self.claim(s.relation.as_ref(), COPY_OUT);
                }
                let query = s.query.is_some() && !s.is_from;
                self.copy_out += usize::from(query);
                self.children(node, READ, None);
                self.copy_out -= usize::from(query);
            }
            N::ExplainStmt(s) => {
                // Any ANALYZE option counts, whatever its value (`ANALYZE false` included):
                // option values are literals, which must not change a decision.
                let analyze = s.options.iter().any(|o| {
                    matches!(&o.node, Some(protobuf::node::Node::DefElem(d))
                        if d.defname.eq_ignore_ascii_case("analyze"))
                });
                self.explain_only += usize::from(!analyze);
                self.children(node, READ, None);
                self.explain_only -= usize::from(!analyze);
            }
            N::CreateTableAsStmt(s) => {
                if let Some(into) = &s.into {
                    self.claim(into.rel.as_ref(), CREATE_WITH_DATA);
                }
                self.children(node, READ, None);
            }
            N::ViewStmt(s) => {
                self.claim(s.view.as_ref(), DDL);
                self.children(node, READ, None);
            }
            N::DeclareCursorStmt(_) => self.children(node, READ, None),
            N::PrepareStmt(s) => {
                self.c.prepared = Prepared::Prepare(s.name.clone());
                self.children(node, READ, None);
            }
            N::ExecuteStmt(s) => {
                self.c.prepared = Prepared::Execute(s.name.clone());
                self.children(node, READ, None);
            }
            N::CallStmt(s) => {
                if let Some(call) = &s.funccall
                    && let Some(name) = qualified(&strings(&call.funcname))
                {
                    self.effect(
                        Operation::Call,
                        Object::Named(ObjectKind::Routine, name.clone()),
                    );
                }
                self.children(node, READ, None);
            }
            N::DoStmt(_) => {
                self.effect(Operation::Do, Object::None);
                self.children(node, READ, None);
            }
            N::ListenStmt(s) => self.effect(Operation::Listen, global("channel", &s.conditionname)),
            N::NotifyStmt(s) => self.effect(Operation::Notify, global("channel", &s.conditionname)),

            // Session statements with nothing to judge.
            N::TransactionStmt(s) => match s.kind() {
                TransactionStmtKind::TransStmtPrepare
                | TransactionStmtKind::TransStmtCommitPrepared
                | TransactionStmtKind::TransStmtRollbackPrepared => {
                    self.effect(Operation::Admin, Object::None)
                }
                _ => self.c.harmless = true,
            },
            N::VariableSetStmt(s) => self.set(s),
            N::VariableShowStmt(_)
            | N::ConstraintsSetStmt(_)
            | N::ClosePortalStmt(_)
            | N::FetchStmt(_)
            | N::UnlistenStmt(_) => self.c.harmless = true,
            N::DeallocateStmt(s) => {
                self.c.harmless = true;
                self.c.prepared = Prepared::Deallocate((!s.isall).then(|| s.name.clone()));
            }
            N::DiscardStmt(s) => {
                self.c.harmless = true;
                if s.target() == DiscardMode::DiscardAll {
                    self.c.prepared = Prepared::Deallocate(None);
                }
            }

            // Maintenance and locks.
            N::LockStmt(_) => self.statement(node, LOCK, vec![]),
            N::VacuumStmt(_)
            | N::ClusterStmt(_)
            | N::RefreshMatViewStmt(_)
            | N::CheckPointStmt(_) => self.statement(node, MAINTENANCE, vec![]),
            N::ReindexStmt(s) => {
                let fallback = if s.name.is_empty() {
                    vec![]
                } else {
                    vec![global("database or schema", &s.name)]
                };
                self.statement(node, MAINTENANCE, fallback)
            }

            // DDL. Table references in a DDL statement are DDL on those tables, except
            // where a nested query or a claim says otherwise.
            N::TruncateStmt(s) => {
                if s.behavior() == DropBehavior::DropCascade {
                    for &op in TRUNCATE {
                        self.effect(op, cascade());
                    }
                }
                self.statement(node, TRUNCATE, vec![])
            }
            N::AlterTableCmd(cmd) => {
                if cmd.behavior() == DropBehavior::DropCascade {
                    self.effect(Operation::Ddl, cascade());
                }
                self.children(node, self.current(), None);
            }
            N::CreateStmt(s) => {
                self.claim(s.relation.as_ref(), DDL);
                self.statement(node, DDL, vec![])
            }
            N::TableLikeClause(s) => {
                // CREATE TABLE ... (LIKE source): reads the source's definition.
                self.claim(s.relation.as_ref(), READ);
                self.children(node, self.current(), None);
            }
            N::DropStmt(s) => {
                let objtype = s.remove_type();
                let mut objects: Vec<Object> =
                    s.objects.iter().map(|o| object_of(objtype, o)).collect();
                if s.behavior() == DropBehavior::DropCascade {
                    objects.push(cascade());
                }
                self.statement(node, DDL, objects)
            }
            N::CommentStmt(s) => {
                let object = s.object.as_deref().map(|o| object_of(s.objtype(), o));
                self.statement(node, DDL, object.into_iter().collect())
            }
            N::RenameStmt(s) => {
                let mut objects: Vec<Object> = Vec::new();
                if let Some(o) = s.object.as_deref() {
                    objects.push(object_of(s.rename_type(), o));
                }
                let renames_relation = matches!(
                    s.rename_type(),
                    ObjectType::ObjectTable
                        | ObjectType::ObjectView
                        | ObjectType::ObjectMatview
                        | ObjectType::ObjectIndex
                        | ObjectType::ObjectSequence
                        | ObjectType::ObjectForeignTable
                );
                if let (true, Some(rv)) = (renames_relation, &s.relation) {
                    // The table also appears under its new name, in the same schema.
                    let mut name = relation_name(rv);
                    name.name.clone_from(&s.newname);
                    objects.push(Object::Named(ObjectKind::Relation, name));
                }
                self.statement(node, DDL, objects)
            }
            N::AlterObjectSchemaStmt(s) => {
                let mut objects: Vec<Object> = Vec::new();
                if let Some(o) = s.object.as_deref() {
                    let object = object_of(s.object_type(), o);
                    if let Object::Named(kind, name) = &object {
                        // The object also appears in its new schema.
                        objects.push(Object::Named(
                            *kind,
                            QualifiedName::new(Some(&s.newschema), &name.name),
                        ));
                    }
                    objects.insert(0, object);
                }
                if let Some(rv) = &s.relation {
                    self.effect(
                        Operation::Ddl,
                        Object::Named(
                            ObjectKind::Relation,
                            QualifiedName::new(Some(&s.newschema), &rv.relname),
                        ),
                    );
                }
                self.statement(node, DDL, objects)
            }
            N::AlterObjectDependsStmt(s) => {
                let object = s.object.as_deref().map(|o| object_of(s.object_type(), o));
                self.statement(node, DDL, object.into_iter().collect())
            }
            N::CreateFunctionStmt(s) => {
                let name = named(ObjectKind::Routine, &s.funcname);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterFunctionStmt(s) => {
                let name = s
                    .func
                    .as_ref()
                    .and_then(|f| named(ObjectKind::Routine, &f.objname));
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterOperatorStmt(s) => {
                let name = s
                    .opername
                    .as_ref()
                    .and_then(|f| named(ObjectKind::Routine, &f.objname));
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::DefineStmt(s) => {
                let kind = match s.kind() {
                    ObjectType::ObjectAggregate | ObjectType::ObjectOperator => ObjectKind::Routine,
                    _ => ObjectKind::Other,
                };
                let name = named(kind, &s.defnames);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateDomainStmt(s) => {
                let name = named(ObjectKind::Other, &s.domainname);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateEnumStmt(s) => {
                let name = named(ObjectKind::Other, &s.type_name);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateRangeStmt(s) => {
                let name = named(ObjectKind::Other, &s.type_name);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterEnumStmt(s) => {
                let name = named(ObjectKind::Other, &s.type_name);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterTypeStmt(s) => {
                let name = named(ObjectKind::Other, &s.type_name);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterDomainStmt(s) => {
                let name = named(ObjectKind::Other, &s.type_name);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterCollationStmt(s) => {
                let name = named(ObjectKind::Other, &s.collname);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateConversionStmt(s) => {
                let name = named(ObjectKind::Other, &s.conversion_name);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateStatsStmt(s) => {
                let name = named(ObjectKind::Other, &s.defnames);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterStatsStmt(s) => {
                let name = named(ObjectKind::Other, &s.defnames);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateOpClassStmt(s) => {
                let name = named(ObjectKind::Other, &s.opclassname);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateOpFamilyStmt(s) => {
                let name = named(ObjectKind::Other, &s.opfamilyname);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::AlterOpFamilyStmt(s) => {
                let name = named(ObjectKind::Other, &s.opfamilyname);
                self.statement(node, DDL, name.into_iter().collect())
            }
            N::CreateSchemaStmt(s) => {
                self.statement(node, DDL, vec![global("schema", &s.schemaname)])
            }
            N::CreateTrigStmt(s) => {
                if let Some(name) = qualified(&strings(&s.funcname)) {
                    self.function(name);
                }
                self.statement(node, DDL, vec![])
            }
            N::AlterTableStmt(s) => {
                // ALTER TABLE ... OWNER TO changes privileges.
                let owner = s.cmds.iter().any(|c| {
                    matches!(&c.node, Some(protobuf::node::Node::AlterTableCmd(cmd))
                        if cmd.subtype() == AlterTableType::AtChangeOwner)
                });
                if owner {
                    self.claim(s.relation.as_ref(), DDL_AND_ADMIN);
                }
                self.statement(node, DDL, vec![])
            }
            N::IndexStmt(_)
            | N::RuleStmt(_)
            | N::CreatePolicyStmt(_)
            | N::AlterPolicyStmt(_)
            | N::CreateSeqStmt(_)
            | N::AlterSeqStmt(_)
            | N::CompositeTypeStmt(_)
            | N::CreateForeignTableStmt(_)
            | N::AlterTsdictionaryStmt(_)
            | N::AlterTsconfigurationStmt(_)
            | N::ReplicaIdentityStmt(_) => self.statement(node, DDL, vec![]),

            // Privileges, roles, server-wide objects.
            N::AlterOwnerStmt(s) => {
                let object = s.object.as_deref().map(|o| object_of(s.object_type(), o));
                self.statement(node, ADMIN, object.into_iter().collect())
            }
            N::CreateEventTrigStmt(s) => {
                if let Some(name) = qualified(&strings(&s.funcname)) {
                    self.function(name);
                }
                self.statement(node, ADMIN, vec![])
            }
            N::GrantStmt(_)
            | N::GrantRoleStmt(_)
            | N::AlterDefaultPrivilegesStmt(_)
            | N::CreateRoleStmt(_)
            | N::AlterRoleStmt(_)
            | N::AlterRoleSetStmt(_)
            | N::DropRoleStmt(_)
            | N::DropOwnedStmt(_)
            | N::ReassignOwnedStmt(_)
            | N::AlterSystemStmt(_)
            | N::LoadStmt(_)
            | N::CreateExtensionStmt(_)
            | N::AlterExtensionStmt(_)
            | N::AlterExtensionContentsStmt(_)
            | N::CreatedbStmt(_)
            | N::AlterDatabaseStmt(_)
            | N::AlterDatabaseRefreshCollStmt(_)
            | N::AlterDatabaseSetStmt(_)
            | N::DropdbStmt(_)
            | N::CreateTableSpaceStmt(_)
            | N::DropTableSpaceStmt(_)
            | N::AlterTableSpaceOptionsStmt(_)
            | N::AlterTableMoveAllStmt(_)
            | N::AlterEventTrigStmt(_)
            | N::CreatePlangStmt(_)
            | N::CreateFdwStmt(_)
            | N::AlterFdwStmt(_)
            | N::CreateForeignServerStmt(_)
            | N::AlterForeignServerStmt(_)
            | N::CreateUserMappingStmt(_)
            | N::AlterUserMappingStmt(_)
            | N::DropUserMappingStmt(_)
            | N::ImportForeignSchemaStmt(_)
            | N::CreateAmStmt(_)
            | N::CreateCastStmt(_)
            | N::CreateTransformStmt(_)
            | N::SecLabelStmt(_)
            | N::CreatePublicationStmt(_)
            | N::AlterPublicationStmt(_)
            | N::CreateSubscriptionStmt(_)
            | N::AlterSubscriptionStmt(_)
            | N::DropSubscriptionStmt(_) => self.statement(node, ADMIN, vec![]),

            // PL/pgSQL-only statements never come from a client.
            N::ReturnStmt(_) | N::PlassignStmt(_) => self.forbid(Forbidden::Unsupported),

            _ => self.children(node, self.current(), None),
        }
    }

    fn current(&self) -> &'static [Operation] {
        self.context.last().copied().unwrap_or(READ)
    }

    fn range_var(&mut self, rv: &'a protobuf::RangeVar) {
        let object = Object::Named(ObjectKind::Relation, relation_name(rv));
        if let Some(ops) = self.claims.remove(&address(rv)) {
            for &op in ops {
                self.effect(op, object.clone());
            }
            return;
        }
        let ops = self.current();
        if ops == READ {
            if rv.schemaname.is_empty() && self.ctes.contains(&rv.relname.as_str()) {
                return; // a CTE, not a table
            }
            self.effect(Operation::Read, object.clone());
            if self.lock_rows > 0 {
                self.effect(Operation::Write, object);
            }
            return;
        }
        for &op in ops {
            self.effect(op, object.clone());
        }
    }

    /// SET / RESET.
    fn set(&mut self, s: &protobuf::VariableSetStmt) {
        match s.kind() {
            VariableSetKind::VarSetValue => {}
            // RESET, SET ... TO DEFAULT, SET ... FROM CURRENT, RESET ALL: back to the
            // session's starting values, or no change.
            VariableSetKind::VarReset
            | VariableSetKind::VarSetDefault
            | VariableSetKind::VarSetCurrent
            | VariableSetKind::VarResetAll => {
                self.c.harmless = true;
                return;
            }
            // SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS TRANSACTION ...
            VariableSetKind::VarSetMulti => {
                self.c.harmless = true;
                return;
            }
            VariableSetKind::Undefined => {
                self.forbid(Forbidden::Unsupported);
                return;
            }
        }
        let name = s.name.to_ascii_lowercase();
        match name.as_str() {
            "role" | "session_authorization" => self.effect(Operation::SetRole, Object::None),
            "search_path" => self.effect(Operation::SearchPath, Object::None),
            "standard_conforming_strings" | "backslash_quote" | "client_encoding" => {
                self.forbid(Forbidden::LexerSetting)
            }
            _ if is_harmless_setting(&name) => self.c.harmless = true,
            _ => self.effect(Operation::Set, global("setting", &name)),
        }
    }
}

/// Settings any job may change: they only affect its own session's behaviour, performance or
/// output format. (Custom settings with a dot, like `app.tenant_id`, are not on the list:
/// row-level security policies often read them.)
fn is_harmless_setting(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "application_name",
        "array_nulls",
        "bytea_output",
        "check_function_bodies",
        "client_min_messages",
        "constraint_exclusion",
        "cpu_index_tuple_cost",
        "cpu_operator_cost",
        "cpu_tuple_cost",
        "cursor_tuple_fraction",
        "datestyle",
        "default_statistics_target",
        "default_text_search_config",
        "default_toast_compression",
        "default_transaction_deferrable",
        "default_transaction_isolation",
        "default_transaction_read_only",
        "effective_cache_size",
        "effective_io_concurrency",
        "escape_string_warning",
        "extra_float_digits",
        "from_collapse_limit",
        "gin_fuzzy_search_limit",
        "hash_mem_multiplier",
        "idle_in_transaction_session_timeout",
        "idle_session_timeout",
        "intervalstyle",
        "join_collapse_limit",
        "lc_messages",
        "lc_monetary",
        "lc_numeric",
        "lc_time",
        "lock_timeout",
        "maintenance_io_concurrency",
        "maintenance_work_mem",
        "max_parallel_maintenance_workers",
        "max_parallel_workers_per_gather",
        "min_parallel_index_scan_size",
        "min_parallel_table_scan_size",
        "parallel_leader_participation",
        "parallel_setup_cost",
        "parallel_tuple_cost",
        "plan_cache_mode",
        "quote_all_identifiers",
        "random_page_cost",
        "recursive_worktable_factor",
        "row_security",
        "seq_page_cost",
        "statement_timeout",
        "synchronous_commit",
        "temp_buffers",
        "timezone",
        "transaction_deferrable",
        "transaction_isolation",
        "transaction_read_only",
        "transaction_timeout",
        "work_mem",
        "xmlbinary",
        "xmloption",
    ];
    const PREFIXES: &[&str] = &["enable_", "geqo", "jit", "tcp_keepalives_"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// What CASCADE also drops or empties: objects the agent cannot see from the statement
/// (dependent views, referencing tables ...). Only rules without `tables` match it.
fn cascade() -> Object {
    global("CASCADE to", "dependent objects")
}

fn address<T>(x: &T) -> usize {
    std::ptr::from_ref(x) as usize
}

fn global(kind: &'static str, name: &str) -> Object {
    Object::Global {
        kind,
        name: name.to_string(),
    }
}

/// The name of a table reference; an unqualified temporary table is in `pg_temp`.
fn relation_name(rv: &protobuf::RangeVar) -> QualifiedName {
    let schema = if !rv.schemaname.is_empty() {
        Some(rv.schemaname.as_str())
    } else if rv.relpersistence == "t" {
        Some("pg_temp")
    } else {
        None
    };
    QualifiedName::new(schema, &rv.relname)
}

/// The string items of a name list (`["pg_catalog", "pg_read_file"]`).
fn strings(nodes: &[Node]) -> Vec<&str> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(protobuf::node::Node::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect()
}

/// `name`, `schema.name` or `database.schema.name` (the database is dropped).
fn qualified(names: &[&str]) -> Option<QualifiedName> {
    match names {
        [name] => Some(QualifiedName::new(None, name)),
        [schema, name] | [_, schema, name] => Some(QualifiedName::new(Some(schema), name)),
        _ => None,
    }
}

fn named(kind: ObjectKind, names: &[Node]) -> Option<Object> {
    qualified(&strings(names)).map(|name| Object::Named(kind, name))
}

/// The object a DROP / COMMENT / RENAME / ALTER ... names, from its object type and the
/// name node (a list of names, a single name, a function signature or a type name).
fn object_of(objtype: ObjectType, node: &Node) -> Object {
    use ObjectType as T;
    let names: Vec<&str> = match &node.node {
        Some(protobuf::node::Node::List(list)) => strings(&list.items),
        Some(protobuf::node::Node::String(s)) => vec![s.sval.as_str()],
        Some(protobuf::node::Node::ObjectWithArgs(o)) => strings(&o.objname),
        Some(protobuf::node::Node::TypeName(t)) => strings(&t.names),
        _ => Vec::new(),
    };
    let named = |kind: ObjectKind, names: &[&str]| match qualified(names) {
        Some(name) => Object::Named(kind, name),
        None => global(object_type_name(objtype), "?"),
    };
    match objtype {
        T::ObjectTable
        | T::ObjectView
        | T::ObjectMatview
        | T::ObjectIndex
        | T::ObjectSequence
        | T::ObjectForeignTable => named(ObjectKind::Relation, &names),
        // The last name is the column / constraint / rule / trigger / policy of the table.
        T::ObjectColumn
        | T::ObjectTabconstraint
        | T::ObjectRule
        | T::ObjectTrigger
        | T::ObjectPolicy => {
            let table = names.split_last().map_or(&[][..], |(_, rest)| rest);
            named(ObjectKind::Relation, table)
        }
        T::ObjectFunction
        | T::ObjectProcedure
        | T::ObjectRoutine
        | T::ObjectAggregate
        | T::ObjectOperator => named(ObjectKind::Routine, &names),
        T::ObjectType
        | T::ObjectDomain
        | T::ObjectCollation
        | T::ObjectConversion
        | T::ObjectStatisticExt
        | T::ObjectTsconfiguration
        | T::ObjectTsdictionary
        | T::ObjectTsparser
        | T::ObjectTstemplate => named(ObjectKind::Other, &names),
        // The first name is the access method.
        T::ObjectOpclass | T::ObjectOpfamily => {
            named(ObjectKind::Other, names.get(1..).unwrap_or(&[]))
        }
        _ => match names.as_slice() {
            [name] => global(object_type_name(objtype), name),
            _ => global(object_type_name(objtype), "?"),
        },
    }
}

/// The SQL name of an object type, e.g. `MATERIALIZED VIEW` (upper case) for command tags;
/// lower-cased for global objects.
fn object_type_sql(objtype: ObjectType) -> &'static str {
    use ObjectType as T;
    match objtype {
        T::Undefined => "OBJECT",
        T::ObjectAccessMethod => "ACCESS METHOD",
        T::ObjectAggregate => "AGGREGATE",
        T::ObjectAmop => "OPERATOR FAMILY MEMBER",
        T::ObjectAmproc => "OPERATOR FAMILY FUNCTION",
        T::ObjectAttribute => "ATTRIBUTE",
        T::ObjectCast => "CAST",
        T::ObjectColumn => "COLUMN",
        T::ObjectCollation => "COLLATION",
        T::ObjectConversion => "CONVERSION",
        T::ObjectDatabase => "DATABASE",
        T::ObjectDefault => "DEFAULT",
        T::ObjectDefacl => "DEFAULT PRIVILEGES",
        T::ObjectDomain => "DOMAIN",
        T::ObjectDomconstraint => "DOMAIN CONSTRAINT",
        T::ObjectEventTrigger => "EVENT TRIGGER",
        T::ObjectExtension => "EXTENSION",
        T::ObjectFdw => "FOREIGN DATA WRAPPER",
        T::ObjectForeignServer => "SERVER",
        T::ObjectForeignTable => "FOREIGN TABLE",
        T::ObjectFunction => "FUNCTION",
        T::ObjectIndex => "INDEX",
        T::ObjectLanguage => "LANGUAGE",
        T::ObjectLargeobject => "LARGE OBJECT",
        T::ObjectMatview => "MATERIALIZED VIEW",
        T::ObjectOpclass => "OPERATOR CLASS",
        T::ObjectOperator => "OPERATOR",
        T::ObjectOpfamily => "OPERATOR FAMILY",
        T::ObjectParameterAcl => "PARAMETER",
        T::ObjectPolicy => "POLICY",
        T::ObjectProcedure => "PROCEDURE",
        T::ObjectPublication => "PUBLICATION",
        T::ObjectPublicationNamespace => "PUBLICATION SCHEMA",
        T::ObjectPublicationRel => "PUBLICATION TABLE",
        T::ObjectRole => "ROLE",
        T::ObjectRoutine => "ROUTINE",
        T::ObjectRule => "RULE",
        T::ObjectSchema => "SCHEMA",
        T::ObjectSequence => "SEQUENCE",
        T::ObjectSubscription => "SUBSCRIPTION",
        T::ObjectStatisticExt => "STATISTICS",
        T::ObjectTabconstraint => "CONSTRAINT",
        T::ObjectTable => "TABLE",
        T::ObjectTablespace => "TABLESPACE",
        T::ObjectTransform => "TRANSFORM",
        T::ObjectTrigger => "TRIGGER",
        T::ObjectTsconfiguration => "TEXT SEARCH CONFIGURATION",
        T::ObjectTsdictionary => "TEXT SEARCH DICTIONARY",
        T::ObjectTsparser => "TEXT SEARCH PARSER",
        T::ObjectTstemplate => "TEXT SEARCH TEMPLATE",
        T::ObjectType => "TYPE",
        T::ObjectUserMapping => "USER MAPPING",
        T::ObjectView => "VIEW",
    }
}

fn object_type_name(objtype: ObjectType) -> &'static str {
    use ObjectType as T;
    match objtype {
        T::ObjectAccessMethod => "access method",
        T::ObjectCast => "cast",
        T::ObjectDatabase => "database",
        T::ObjectEventTrigger => "event trigger",
        T::ObjectExtension => "extension",
        T::ObjectFdw => "foreign data wrapper",
        T::ObjectForeignServer => "server",
        T::ObjectLanguage => "language",
        T::ObjectLargeobject => "large object",
        T::ObjectParameterAcl => "parameter",
        T::ObjectPublication => "publication",
        T::ObjectRole => "role",
        T::ObjectSchema => "schema",
        T::ObjectSubscription => "subscription",
        T::ObjectTablespace => "tablespace",
        T::ObjectTransform => "transform",
        T::ObjectUserMapping => "user mapping",
        _ => "object",
    }
}

/// Whether a WHERE clause can only be true for some rows of `target`: it has a conjunct that
/// refers to the target's columns (OR needs every branch to). `WHERE true`, `WHERE 1=1`,
/// `WHERE $1`, `WHERE id = 1 OR 1=1`, no WHERE at all: false. Structure only, never values.
fn restricts_rows(where_clause: Option<&Node>, target: &protobuf::RangeVar) -> bool {
    where_clause
        .and_then(|n| n.node.as_ref())
        .is_some_and(|n| depends_on_rows(n.to_ref(), target))
}

fn depends_on_rows(node: NodeRef<'_>, target: &protobuf::RangeVar) -> bool {
    if let NodeRef::BoolExpr(b) = node {
        let args = b.args.iter().filter_map(|a| a.node.as_ref());
        return match b.boolop() {
            BoolExprType::AndExpr => args
                .into_iter()
                .any(|a| depends_on_rows(a.to_ref(), target)),
            BoolExprType::OrExpr => {
                b.args.iter().all(|a| {
                    a.node
                        .as_ref()
                        .is_some_and(|a| depends_on_rows(a.to_ref(), target))
                }) && !b.args.is_empty()
            }
            BoolExprType::NotExpr | BoolExprType::Undefined => mentions_target(node, target, false),
        };
    }
    mentions_target(node, target, false)
}

/// Whether `node` refers to a column of `target` (or is WHERE CURRENT OF). Inside a
/// subquery, only references qualified with the target's name count.
fn mentions_target(node: NodeRef<'_>, target: &protobuf::RangeVar, in_subquery: bool) -> bool {
    match node {
        NodeRef::CurrentOfExpr(_) => true,
        NodeRef::ColumnRef(c) => {
            let names = strings(&c.fields);
            let star = matches!(
                c.fields.last().and_then(|f| f.node.as_ref()),
                Some(protobuf::node::Node::AStar(_))
            );
            let qualifier = if star {
                names.last()
            } else if names.len() >= 2 {
                names.get(names.len() - 2)
            } else {
                None
            };
            let target_name = target
                .alias
                .as_ref()
                .map_or(target.relname.as_str(), |a| a.aliasname.as_str());
            match qualifier {
                Some(q) => *q == target_name,
                // An unqualified column (or a whole-row reference by the table's name).
                None => !in_subquery || names.first() == Some(&target_name),
            }
        }
        NodeRef::SubLink(s) => {
            let test = s
                .testexpr
                .as_deref()
                .and_then(|n| n.node.as_ref())
                .is_some_and(|n| mentions_target(n.to_ref(), target, in_subquery));
            test || s
                .subselect
                .as_deref()
                .and_then(|n| n.node.as_ref())
                .is_some_and(|n| mentions_target(n.to_ref(), target, true))
        }
        _ => {
            let mut found = false;
            walk::for_each_child(node, &mut |child| {
                found = found || mentions_target(child, target, in_subquery);
            });
            found
        }
    }
}

/// Whether a MERGE may update or delete every row of its target: some WHEN MATCHED or WHEN
/// NOT MATCHED BY SOURCE clause UPDATEs or DELETEs without a condition that depends on the
/// target's rows (for WHEN MATCHED, the join condition counts).
fn merge_is_bulk(s: &protobuf::MergeStmt, target: &protobuf::RangeVar) -> bool {
    let join_restricts = restricts_rows(s.join_condition.as_deref(), target);
    s.merge_when_clauses.iter().any(|clause| {
        let Some(protobuf::node::Node::MergeWhenClause(w)) = &clause.node else {
            return false;
        };
        if !matches!(w.command_type(), CmdType::CmdUpdate | CmdType::CmdDelete) {
            return false;
        }
        let condition = restricts_rows(w.condition.as_deref(), target);
        match w.match_kind() {
            MergeMatchKind::MergeWhenMatched => !(join_restricts || condition),
            MergeMatchKind::MergeWhenNotMatchedBySource => !condition,
            _ => false,
        }
    })
}

/// The statement kind, like PostgreSQL's command tag.
fn kind_of(node: NodeRef<'_>) -> String {
    use NodeRef as N;
    let tag: &str = match node {
        N::SelectStmt(s) if s.into_clause.is_some() => "SELECT INTO",
        N::SelectStmt(_) => "SELECT",
        N::InsertStmt(_) => "INSERT",
        N::UpdateStmt(_) => "UPDATE",
        N::DeleteStmt(_) => "DELETE",
        N::MergeStmt(_) => "MERGE",
        N::CopyStmt(_) => "COPY",
        N::ExplainStmt(_) => "EXPLAIN",
        N::CreateTableAsStmt(s) if s.objtype() == ObjectType::ObjectMatview => {
            "CREATE MATERIALIZED VIEW"
        }
        N::CreateTableAsStmt(_) => "CREATE TABLE AS",
        N::ViewStmt(_) => "CREATE VIEW",
        N::DeclareCursorStmt(_) => "DECLARE CURSOR",
        N::PrepareStmt(_) => "PREPARE",
        N::ExecuteStmt(_) => "EXECUTE",
        N::DeallocateStmt(_) => "DEALLOCATE",
        N::CallStmt(_) => "CALL",
        N::DoStmt(_) => "DO",
        N::ListenStmt(_) => "LISTEN",
        N::NotifyStmt(_) => "NOTIFY",
        N::UnlistenStmt(_) => "UNLISTEN",
        N::TransactionStmt(s) => match s.kind() {
            TransactionStmtKind::TransStmtBegin => "BEGIN",
            TransactionStmtKind::TransStmtStart => "START TRANSACTION",
            TransactionStmtKind::TransStmtCommit => "COMMIT",
            TransactionStmtKind::TransStmtRollback => "ROLLBACK",
            TransactionStmtKind::TransStmtSavepoint => "SAVEPOINT",
            TransactionStmtKind::TransStmtRelease => "RELEASE",
            TransactionStmtKind::TransStmtRollbackTo => "ROLLBACK TO SAVEPOINT",
            TransactionStmtKind::TransStmtPrepare => "PREPARE TRANSACTION",
            TransactionStmtKind::TransStmtCommitPrepared => "COMMIT PREPARED",
            TransactionStmtKind::TransStmtRollbackPrepared => "ROLLBACK PREPARED",
            TransactionStmtKind::Undefined => "TRANSACTION",
        },
        N::VariableSetStmt(s) => match s.kind() {
            VariableSetKind::VarReset | VariableSetKind::VarResetAll => "RESET",
            _ => "SET",
        },
        N::VariableShowStmt(_) => "SHOW",
        N::DiscardStmt(_) => "DISCARD",
        N::ClosePortalStmt(_) => "CLOSE CURSOR",
        N::FetchStmt(s) if s.ismove => "MOVE",
        N::FetchStmt(_) => "FETCH",
        N::ConstraintsSetStmt(_) => "SET CONSTRAINTS",
        N::LockStmt(_) => "LOCK TABLE",
        N::VacuumStmt(s) if s.is_vacuumcmd => "VACUUM",
        N::VacuumStmt(_) => "ANALYZE",
        N::ClusterStmt(_) => "CLUSTER",
        N::ReindexStmt(_) => "REINDEX",
        N::RefreshMatViewStmt(_) => "REFRESH MATERIALIZED VIEW",
        N::CheckPointStmt(_) => "CHECKPOINT",
        N::TruncateStmt(_) => "TRUNCATE TABLE",
        N::CreateStmt(_) => "CREATE TABLE",
        N::CreateForeignTableStmt(_) => "CREATE FOREIGN TABLE",
        N::AlterTableStmt(s) => return format!("ALTER {}", object_type_sql(s.objtype())),
        N::IndexStmt(_) => "CREATE INDEX",
        N::DropStmt(s) => return format!("DROP {}", object_type_sql(s.remove_type())),
        N::CommentStmt(_) => "COMMENT",
        N::RenameStmt(s) => return format!("ALTER {}", object_type_sql(s.rename_type())),
        N::AlterObjectSchemaStmt(s) => {
            return format!("ALTER {}", object_type_sql(s.object_type()));
        }
        N::AlterOwnerStmt(s) => return format!("ALTER {}", object_type_sql(s.object_type())),
        N::CreateSchemaStmt(_) => "CREATE SCHEMA",
        N::CreateFunctionStmt(s) if s.is_procedure => "CREATE PROCEDURE",
        N::CreateFunctionStmt(_) => "CREATE FUNCTION",
        N::AlterFunctionStmt(s) => return format!("ALTER {}", object_type_sql(s.objtype())),
        N::DefineStmt(s) => return format!("CREATE {}", object_type_sql(s.kind())),
        N::CreateDomainStmt(_) => "CREATE DOMAIN",
        N::AlterDomainStmt(_) => "ALTER DOMAIN",
        N::CreateEnumStmt(_) | N::CreateRangeStmt(_) | N::CompositeTypeStmt(_) => "CREATE TYPE",
        N::AlterEnumStmt(_) | N::AlterTypeStmt(_) => "ALTER TYPE",
        N::CreateTrigStmt(_) => "CREATE TRIGGER",
        N::RuleStmt(_) => "CREATE RULE",
        N::CreatePolicyStmt(_) => "CREATE POLICY",
        N::AlterPolicyStmt(_) => "ALTER POLICY",
        N::CreateSeqStmt(_) => "CREATE SEQUENCE",
        N::AlterSeqStmt(_) => "ALTER SEQUENCE",
        N::CreateStatsStmt(_) => "CREATE STATISTICS",
        N::AlterStatsStmt(_) => "ALTER STATISTICS",
        N::GrantStmt(s) if s.is_grant => "GRANT",
        N::GrantStmt(_) => "REVOKE",
        N::GrantRoleStmt(s) if s.is_grant => "GRANT ROLE",
        N::GrantRoleStmt(_) => "REVOKE ROLE",
        N::AlterDefaultPrivilegesStmt(_) => "ALTER DEFAULT PRIVILEGES",
        N::CreateRoleStmt(_) => "CREATE ROLE",
        N::AlterRoleStmt(_) | N::AlterRoleSetStmt(_) => "ALTER ROLE",
        N::DropRoleStmt(_) => "DROP ROLE",
        N::DropOwnedStmt(_) => "DROP OWNED",
        N::ReassignOwnedStmt(_) => "REASSIGN OWNED",
        N::AlterSystemStmt(_) => "ALTER SYSTEM",
        N::LoadStmt(_) => "LOAD",
        N::CreateExtensionStmt(_) => "CREATE EXTENSION",
        N::AlterExtensionStmt(_) | N::AlterExtensionContentsStmt(_) => "ALTER EXTENSION",
        N::CreatedbStmt(_) => "CREATE DATABASE",
        N::AlterDatabaseStmt(_)
        | N::AlterDatabaseRefreshCollStmt(_)
        | N::AlterDatabaseSetStmt(_) => "ALTER DATABASE",
        N::DropdbStmt(_) => "DROP DATABASE",
        N::CreateTableSpaceStmt(_) => "CREATE TABLESPACE",
        N::DropTableSpaceStmt(_) => "DROP TABLESPACE",
        N::AlterTableSpaceOptionsStmt(_) | N::AlterTableMoveAllStmt(_) => "ALTER TABLESPACE",
        N::CreateEventTrigStmt(_) => "CREATE EVENT TRIGGER",
        N::AlterEventTrigStmt(_) => "ALTER EVENT TRIGGER",
        N::ImportForeignSchemaStmt(_) => "IMPORT FOREIGN SCHEMA",
        N::SecLabelStmt(_) => "SECURITY LABEL",
        N::ReturnStmt(_) => "RETURN",
        N::PlassignStmt(_) => "ASSIGN",
        other => {
            let variant = walk::variant_name(other);
            return camel_to_tag(variant.strip_suffix("Stmt").unwrap_or(variant));
        }
    };
    tag.to_string()
}

/// `CreatePublication` -> `CREATE PUBLICATION`.
fn camel_to_tag(name: &str) -> String {
    let mut tag = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            tag.push(' ');
        }
        tag.push(c.to_ascii_uppercase());
    }
    tag
}

#[cfg(test)]
mod tests;
