//! Complete traversal of libpg_query parse trees: the children of every node kind.
//!
//! GENERATED from pg_query 18.1.0's `protobuf.rs` by `walk_gen.py` (in this
//! directory): do not edit by hand. Every struct is destructured without `..`, so a field
//! added by a new pg_query version is a compile error here until this file is regenerated
//! (`python3 agent/src/sql/walk_gen.py $CARGO_HOME/registry/src/*/pg_query-*/src/protobuf.rs
//! VERSION > agent/src/sql/walk.rs`), so no child can be silently skipped.

use pg_query::NodeRef;
use pg_query::protobuf::{self, Node};

/// Calls `cb` on each direct child of `node` (in field order). Children that are not themselves
/// node kinds (e.g. a `WithClause` field typed directly) are still passed as [`NodeRef`]s when
/// pg_query has a variant for them; otherwise their own children are visited in their place.
pub(crate) fn for_each_child<'a>(node: NodeRef<'a>, cb: &mut dyn FnMut(NodeRef<'a>)) {
    match node {
        NodeRef::Alias(x) => {
            let protobuf::Alias {
                aliasname: _,
                colnames,
            } = x;
            for n in colnames {
                emit_node(n, cb);
            }
        }
        NodeRef::RangeVar(x) => {
            let protobuf::RangeVar {
                catalogname: _,
                schemaname: _,
                relname: _,
                inh: _,
                relpersistence: _,
                alias,
                location: _,
            } = x;
            if let Some(n) = alias {
                cb(NodeRef::Alias(n));
            }
        }
        NodeRef::TableFunc(x) => {
            let protobuf::TableFunc {
                functype: _,
                ns_uris,
                ns_names,
                docexpr,
                rowexpr,
                colnames,
                coltypes,
                coltypmods,
                colcollations,
                colexprs,
                coldefexprs,
                colvalexprs,
                passingvalexprs,
                notnulls: _,
                plan,
                ordinalitycol: _,
                location: _,
            } = x;
            for n in ns_uris {
                emit_node(n, cb);
            }
            for n in ns_names {
                emit_node(n, cb);
            }
            if let Some(n) = docexpr {
                emit_node(n, cb);
            }
            if let Some(n) = rowexpr {
                emit_node(n, cb);
            }
            for n in colnames {
                emit_node(n, cb);
            }
            for n in coltypes {
                emit_node(n, cb);
            }
            for n in coltypmods {
                emit_node(n, cb);
            }
            for n in colcollations {
                emit_node(n, cb);
            }
            for n in colexprs {
                emit_node(n, cb);
            }
            for n in coldefexprs {
                emit_node(n, cb);
            }
            for n in colvalexprs {
                emit_node(n, cb);
            }
            for n in passingvalexprs {
                emit_node(n, cb);
            }
            if let Some(n) = plan {
                emit_node(n, cb);
            }
        }
        NodeRef::IntoClause(x) => {
            let protobuf::IntoClause {
                rel,
                col_names,
                access_method: _,
                options,
                on_commit: _,
                table_space_name: _,
                view_query,
                skip_data: _,
            } = x;
            if let Some(n) = rel {
                cb(NodeRef::RangeVar(n));
            }
            for n in col_names {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
            if let Some(n) = view_query {
                cb(NodeRef::Query(n));
            }
        }
        NodeRef::Var(x) => {
            let protobuf::Var {
                xpr,
                varno: _,
                varattno: _,
                vartype: _,
                vartypmod: _,
                varcollid: _,
                varnullingrels: _,
                varlevelsup: _,
                varreturningtype: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::Param(x) => {
            let protobuf::Param {
                xpr,
                paramkind: _,
                paramid: _,
                paramtype: _,
                paramtypmod: _,
                paramcollid: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::Aggref(x) => {
            let protobuf::Aggref {
                xpr,
                aggfnoid: _,
                aggtype: _,
                aggcollid: _,
                inputcollid: _,
                aggargtypes,
                aggdirectargs,
                args,
                aggorder,
                aggdistinct,
                aggfilter,
                aggstar: _,
                aggvariadic: _,
                aggkind: _,
                agglevelsup: _,
                aggsplit: _,
                aggno: _,
                aggtransno: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in aggargtypes {
                emit_node(n, cb);
            }
            for n in aggdirectargs {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            for n in aggorder {
                emit_node(n, cb);
            }
            for n in aggdistinct {
                emit_node(n, cb);
            }
            if let Some(n) = aggfilter {
                emit_node(n, cb);
            }
        }
        NodeRef::GroupingFunc(x) => {
            let protobuf::GroupingFunc {
                xpr,
                args,
                refs,
                agglevelsup: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            for n in refs {
                emit_node(n, cb);
            }
        }
        NodeRef::WindowFunc(x) => {
            let protobuf::WindowFunc {
                xpr,
                winfnoid: _,
                wintype: _,
                wincollid: _,
                inputcollid: _,
                args,
                aggfilter,
                run_condition,
                winref: _,
                winstar: _,
                winagg: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            if let Some(n) = aggfilter {
                emit_node(n, cb);
            }
            for n in run_condition {
                emit_node(n, cb);
            }
        }
        NodeRef::WindowFuncRunCondition(x) => {
            let protobuf::WindowFuncRunCondition {
                xpr,
                opno: _,
                inputcollid: _,
                wfunc_left: _,
                arg,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::MergeSupportFunc(x) => {
            let protobuf::MergeSupportFunc {
                xpr,
                msftype: _,
                msfcollid: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::SubscriptingRef(x) => {
            let protobuf::SubscriptingRef {
                xpr,
                refcontainertype: _,
                refelemtype: _,
                refrestype: _,
                reftypmod: _,
                refcollid: _,
                refupperindexpr,
                reflowerindexpr,
                refexpr,
                refassgnexpr,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in refupperindexpr {
                emit_node(n, cb);
            }
            for n in reflowerindexpr {
                emit_node(n, cb);
            }
            if let Some(n) = refexpr {
                emit_node(n, cb);
            }
            if let Some(n) = refassgnexpr {
                emit_node(n, cb);
            }
        }
        NodeRef::FuncExpr(x) => {
            let protobuf::FuncExpr {
                xpr,
                funcid: _,
                funcresulttype: _,
                funcretset: _,
                funcvariadic: _,
                funcformat: _,
                funccollid: _,
                inputcollid: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::NamedArgExpr(x) => {
            let protobuf::NamedArgExpr {
                xpr,
                arg,
                name: _,
                argnumber: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::OpExpr(x) => {
            let protobuf::OpExpr {
                xpr,
                opno: _,
                opresulttype: _,
                opretset: _,
                opcollid: _,
                inputcollid: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::DistinctExpr(x) => {
            let protobuf::DistinctExpr {
                xpr,
                opno: _,
                opresulttype: _,
                opretset: _,
                opcollid: _,
                inputcollid: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::NullIfExpr(x) => {
            let protobuf::NullIfExpr {
                xpr,
                opno: _,
                opresulttype: _,
                opretset: _,
                opcollid: _,
                inputcollid: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::ScalarArrayOpExpr(x) => {
            let protobuf::ScalarArrayOpExpr {
                xpr,
                opno: _,
                use_or: _,
                inputcollid: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::BoolExpr(x) => {
            let protobuf::BoolExpr {
                xpr,
                boolop: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::SubLink(x) => {
            let protobuf::SubLink {
                xpr,
                sub_link_type: _,
                sub_link_id: _,
                testexpr,
                oper_name,
                subselect,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = testexpr {
                emit_node(n, cb);
            }
            for n in oper_name {
                emit_node(n, cb);
            }
            if let Some(n) = subselect {
                emit_node(n, cb);
            }
        }
        NodeRef::SubPlan(x) => {
            let protobuf::SubPlan {
                xpr,
                sub_link_type: _,
                testexpr,
                param_ids,
                plan_id: _,
                plan_name: _,
                first_col_type: _,
                first_col_typmod: _,
                first_col_collation: _,
                use_hash_table: _,
                unknown_eq_false: _,
                parallel_safe: _,
                set_param,
                par_param,
                args,
                startup_cost: _,
                per_call_cost: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = testexpr {
                emit_node(n, cb);
            }
            for n in param_ids {
                emit_node(n, cb);
            }
            for n in set_param {
                emit_node(n, cb);
            }
            for n in par_param {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::AlternativeSubPlan(x) => {
            let protobuf::AlternativeSubPlan { xpr, subplans } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in subplans {
                emit_node(n, cb);
            }
        }
        NodeRef::FieldSelect(x) => {
            let protobuf::FieldSelect {
                xpr,
                arg,
                fieldnum: _,
                resulttype: _,
                resulttypmod: _,
                resultcollid: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::FieldStore(x) => {
            let protobuf::FieldStore {
                xpr,
                arg,
                newvals,
                fieldnums,
                resulttype: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
            for n in newvals {
                emit_node(n, cb);
            }
            for n in fieldnums {
                emit_node(n, cb);
            }
        }
        NodeRef::RelabelType(x) => {
            let protobuf::RelabelType {
                xpr,
                arg,
                resulttype: _,
                resulttypmod: _,
                resultcollid: _,
                relabelformat: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::CoerceViaIo(x) => {
            let protobuf::CoerceViaIo {
                xpr,
                arg,
                resulttype: _,
                resultcollid: _,
                coerceformat: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::ArrayCoerceExpr(x) => {
            let protobuf::ArrayCoerceExpr {
                xpr,
                arg,
                elemexpr,
                resulttype: _,
                resulttypmod: _,
                resultcollid: _,
                coerceformat: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
            if let Some(n) = elemexpr {
                emit_node(n, cb);
            }
        }
        NodeRef::ConvertRowtypeExpr(x) => {
            let protobuf::ConvertRowtypeExpr {
                xpr,
                arg,
                resulttype: _,
                convertformat: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::CollateExpr(x) => {
            let protobuf::CollateExpr {
                xpr,
                arg,
                coll_oid: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::CaseExpr(x) => {
            let protobuf::CaseExpr {
                xpr,
                casetype: _,
                casecollid: _,
                arg,
                args,
                defresult,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            if let Some(n) = defresult {
                emit_node(n, cb);
            }
        }
        NodeRef::CaseWhen(x) => {
            let protobuf::CaseWhen {
                xpr,
                expr,
                result,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = expr {
                emit_node(n, cb);
            }
            if let Some(n) = result {
                emit_node(n, cb);
            }
        }
        NodeRef::CaseTestExpr(x) => {
            let protobuf::CaseTestExpr {
                xpr,
                type_id: _,
                type_mod: _,
                collation: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::ArrayExpr(x) => {
            let protobuf::ArrayExpr {
                xpr,
                array_typeid: _,
                array_collid: _,
                element_typeid: _,
                elements,
                multidims: _,
                list_start: _,
                list_end: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in elements {
                emit_node(n, cb);
            }
        }
        NodeRef::RowExpr(x) => {
            let protobuf::RowExpr {
                xpr,
                args,
                row_typeid: _,
                row_format: _,
                colnames,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            for n in colnames {
                emit_node(n, cb);
            }
        }
        NodeRef::RowCompareExpr(x) => {
            let protobuf::RowCompareExpr {
                xpr,
                cmptype: _,
                opnos,
                opfamilies,
                inputcollids,
                largs,
                rargs,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in opnos {
                emit_node(n, cb);
            }
            for n in opfamilies {
                emit_node(n, cb);
            }
            for n in inputcollids {
                emit_node(n, cb);
            }
            for n in largs {
                emit_node(n, cb);
            }
            for n in rargs {
                emit_node(n, cb);
            }
        }
        NodeRef::CoalesceExpr(x) => {
            let protobuf::CoalesceExpr {
                xpr,
                coalescetype: _,
                coalescecollid: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::MinMaxExpr(x) => {
            let protobuf::MinMaxExpr {
                xpr,
                minmaxtype: _,
                minmaxcollid: _,
                inputcollid: _,
                op: _,
                args,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::SqlvalueFunction(x) => {
            let protobuf::SqlValueFunction {
                xpr,
                op: _,
                r#type: _,
                typmod: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::XmlExpr(x) => {
            let protobuf::XmlExpr {
                xpr,
                op: _,
                name: _,
                named_args,
                arg_names,
                args,
                xmloption: _,
                indent: _,
                r#type: _,
                typmod: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in named_args {
                emit_node(n, cb);
            }
            for n in arg_names {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::JsonFormat(x) => {
            let protobuf::JsonFormat {
                format_type: _,
                encoding: _,
                location: _,
            } = x;
        }
        NodeRef::JsonReturning(x) => {
            let protobuf::JsonReturning {
                format,
                typid: _,
                typmod: _,
            } = x;
            if let Some(n) = format {
                cb(NodeRef::JsonFormat(n));
            }
        }
        NodeRef::JsonValueExpr(x) => {
            let protobuf::JsonValueExpr {
                raw_expr,
                formatted_expr,
                format,
            } = x;
            if let Some(n) = raw_expr {
                emit_node(n, cb);
            }
            if let Some(n) = formatted_expr {
                emit_node(n, cb);
            }
            if let Some(n) = format {
                cb(NodeRef::JsonFormat(n));
            }
        }
        NodeRef::JsonConstructorExpr(x) => {
            let protobuf::JsonConstructorExpr {
                xpr,
                r#type: _,
                args,
                func,
                coercion,
                returning,
                absent_on_null: _,
                unique: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            if let Some(n) = func {
                emit_node(n, cb);
            }
            if let Some(n) = coercion {
                emit_node(n, cb);
            }
            if let Some(n) = returning {
                cb(NodeRef::JsonReturning(n));
            }
        }
        NodeRef::JsonIsPredicate(x) => {
            let protobuf::JsonIsPredicate {
                expr,
                format,
                item_type: _,
                unique_keys: _,
                location: _,
            } = x;
            if let Some(n) = expr {
                emit_node(n, cb);
            }
            if let Some(n) = format {
                cb(NodeRef::JsonFormat(n));
            }
        }
        NodeRef::JsonBehavior(x) => {
            let protobuf::JsonBehavior {
                btype: _,
                expr,
                coerce: _,
                location: _,
            } = x;
            if let Some(n) = expr {
                emit_node(n, cb);
            }
        }
        NodeRef::JsonExpr(x) => {
            let protobuf::JsonExpr {
                xpr,
                op: _,
                column_name: _,
                formatted_expr,
                format,
                path_spec,
                returning,
                passing_names,
                passing_values,
                on_empty,
                on_error,
                use_io_coercion: _,
                use_json_coercion: _,
                wrapper: _,
                omit_quotes: _,
                collation: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = formatted_expr {
                emit_node(n, cb);
            }
            if let Some(n) = format {
                cb(NodeRef::JsonFormat(n));
            }
            if let Some(n) = path_spec {
                emit_node(n, cb);
            }
            if let Some(n) = returning {
                cb(NodeRef::JsonReturning(n));
            }
            for n in passing_names {
                emit_node(n, cb);
            }
            for n in passing_values {
                emit_node(n, cb);
            }
            if let Some(n) = on_empty {
                cb(NodeRef::JsonBehavior(n));
            }
            if let Some(n) = on_error {
                cb(NodeRef::JsonBehavior(n));
            }
        }
        NodeRef::JsonTablePath(x) => {
            let protobuf::JsonTablePath { name: _ } = x;
        }
        NodeRef::JsonTablePathScan(x) => {
            let protobuf::JsonTablePathScan {
                plan,
                path,
                error_on_error: _,
                child,
                col_min: _,
                col_max: _,
            } = x;
            if let Some(n) = plan {
                emit_node(n, cb);
            }
            if let Some(n) = path {
                cb(NodeRef::JsonTablePath(n));
            }
            if let Some(n) = child {
                emit_node(n, cb);
            }
        }
        NodeRef::JsonTableSiblingJoin(x) => {
            let protobuf::JsonTableSiblingJoin { plan, lplan, rplan } = x;
            if let Some(n) = plan {
                emit_node(n, cb);
            }
            if let Some(n) = lplan {
                emit_node(n, cb);
            }
            if let Some(n) = rplan {
                emit_node(n, cb);
            }
        }
        NodeRef::NullTest(x) => {
            let protobuf::NullTest {
                xpr,
                arg,
                nulltesttype: _,
                argisrow: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::BooleanTest(x) => {
            let protobuf::BooleanTest {
                xpr,
                arg,
                booltesttype: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::MergeAction(x) => {
            let protobuf::MergeAction {
                match_kind: _,
                command_type: _,
                r#override: _,
                qual,
                target_list,
                update_colnos,
            } = x;
            if let Some(n) = qual {
                emit_node(n, cb);
            }
            for n in target_list {
                emit_node(n, cb);
            }
            for n in update_colnos {
                emit_node(n, cb);
            }
        }
        NodeRef::CoerceToDomain(x) => {
            let protobuf::CoerceToDomain {
                xpr,
                arg,
                resulttype: _,
                resulttypmod: _,
                resultcollid: _,
                coercionformat: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::CoerceToDomainValue(x) => {
            let protobuf::CoerceToDomainValue {
                xpr,
                type_id: _,
                type_mod: _,
                collation: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::SetToDefault(x) => {
            let protobuf::SetToDefault {
                xpr,
                type_id: _,
                type_mod: _,
                collation: _,
                location: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::CurrentOfExpr(x) => {
            let protobuf::CurrentOfExpr {
                xpr,
                cvarno: _,
                cursor_name: _,
                cursor_param: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::NextValueExpr(x) => {
            let protobuf::NextValueExpr {
                xpr,
                seqid: _,
                type_id: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
        }
        NodeRef::InferenceElem(x) => {
            let protobuf::InferenceElem {
                xpr,
                expr,
                infercollid: _,
                inferopclass: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = expr {
                emit_node(n, cb);
            }
        }
        NodeRef::ReturningExpr(x) => {
            let protobuf::ReturningExpr {
                xpr,
                retlevelsup: _,
                retold: _,
                retexpr,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = retexpr {
                emit_node(n, cb);
            }
        }
        NodeRef::TargetEntry(x) => {
            let protobuf::TargetEntry {
                xpr,
                expr,
                resno: _,
                resname: _,
                ressortgroupref: _,
                resorigtbl: _,
                resorigcol: _,
                resjunk: _,
            } = x;
            if let Some(n) = xpr {
                emit_node(n, cb);
            }
            if let Some(n) = expr {
                emit_node(n, cb);
            }
        }
        NodeRef::RangeTblRef(x) => {
            let protobuf::RangeTblRef { rtindex: _ } = x;
        }
        NodeRef::JoinExpr(x) => {
            let protobuf::JoinExpr {
                jointype: _,
                is_natural: _,
                larg,
                rarg,
                using_clause,
                join_using_alias,
                quals,
                alias,
                rtindex: _,
            } = x;
            if let Some(n) = larg {
                emit_node(n, cb);
            }
            if let Some(n) = rarg {
                emit_node(n, cb);
            }
            for n in using_clause {
                emit_node(n, cb);
            }
            if let Some(n) = join_using_alias {
                cb(NodeRef::Alias(n));
            }
            if let Some(n) = quals {
                emit_node(n, cb);
            }
            if let Some(n) = alias {
                cb(NodeRef::Alias(n));
            }
        }
        NodeRef::FromExpr(x) => {
            let protobuf::FromExpr { fromlist, quals } = x;
            for n in fromlist {
                emit_node(n, cb);
            }
            if let Some(n) = quals {
                emit_node(n, cb);
            }
        }
        NodeRef::OnConflictExpr(x) => {
            let protobuf::OnConflictExpr {
                action: _,
                arbiter_elems,
                arbiter_where,
                constraint: _,
                on_conflict_set,
                on_conflict_where,
                excl_rel_index: _,
                excl_rel_tlist,
            } = x;
            for n in arbiter_elems {
                emit_node(n, cb);
            }
            if let Some(n) = arbiter_where {
                emit_node(n, cb);
            }
            for n in on_conflict_set {
                emit_node(n, cb);
            }
            if let Some(n) = on_conflict_where {
                emit_node(n, cb);
            }
            for n in excl_rel_tlist {
                emit_node(n, cb);
            }
        }
        NodeRef::Query(x) => {
            let protobuf::Query {
                command_type: _,
                query_source: _,
                can_set_tag: _,
                utility_stmt,
                result_relation: _,
                has_aggs: _,
                has_window_funcs: _,
                has_target_srfs: _,
                has_sub_links: _,
                has_distinct_on: _,
                has_recursive: _,
                has_modifying_cte: _,
                has_for_update: _,
                has_row_security: _,
                has_group_rte: _,
                is_return: _,
                cte_list,
                rtable,
                rteperminfos,
                jointree,
                merge_action_list,
                merge_target_relation: _,
                merge_join_condition,
                target_list,
                r#override: _,
                on_conflict,
                returning_old_alias: _,
                returning_new_alias: _,
                returning_list,
                group_clause,
                group_distinct: _,
                grouping_sets,
                having_qual,
                window_clause,
                distinct_clause,
                sort_clause,
                limit_offset,
                limit_count,
                limit_option: _,
                row_marks,
                set_operations,
                constraint_deps,
                with_check_options,
                stmt_location: _,
                stmt_len: _,
            } = x;
            if let Some(n) = utility_stmt {
                emit_node(n, cb);
            }
            for n in cte_list {
                emit_node(n, cb);
            }
            for n in rtable {
                emit_node(n, cb);
            }
            for n in rteperminfos {
                emit_node(n, cb);
            }
            if let Some(n) = jointree {
                cb(NodeRef::FromExpr(n));
            }
            for n in merge_action_list {
                emit_node(n, cb);
            }
            if let Some(n) = merge_join_condition {
                emit_node(n, cb);
            }
            for n in target_list {
                emit_node(n, cb);
            }
            if let Some(n) = on_conflict {
                cb(NodeRef::OnConflictExpr(n));
            }
            for n in returning_list {
                emit_node(n, cb);
            }
            for n in group_clause {
                emit_node(n, cb);
            }
            for n in grouping_sets {
                emit_node(n, cb);
            }
            if let Some(n) = having_qual {
                emit_node(n, cb);
            }
            for n in window_clause {
                emit_node(n, cb);
            }
            for n in distinct_clause {
                emit_node(n, cb);
            }
            for n in sort_clause {
                emit_node(n, cb);
            }
            if let Some(n) = limit_offset {
                emit_node(n, cb);
            }
            if let Some(n) = limit_count {
                emit_node(n, cb);
            }
            for n in row_marks {
                emit_node(n, cb);
            }
            if let Some(n) = set_operations {
                emit_node(n, cb);
            }
            for n in constraint_deps {
                emit_node(n, cb);
            }
            for n in with_check_options {
                emit_node(n, cb);
            }
        }
        NodeRef::TypeName(x) => {
            let protobuf::TypeName {
                names,
                type_oid: _,
                setof: _,
                pct_type: _,
                typmods,
                typemod: _,
                array_bounds,
                location: _,
            } = x;
            for n in names {
                emit_node(n, cb);
            }
            for n in typmods {
                emit_node(n, cb);
            }
            for n in array_bounds {
                emit_node(n, cb);
            }
        }
        NodeRef::ColumnRef(x) => {
            let protobuf::ColumnRef {
                fields,
                location: _,
            } = x;
            for n in fields {
                emit_node(n, cb);
            }
        }
        NodeRef::ParamRef(x) => {
            let protobuf::ParamRef {
                number: _,
                location: _,
            } = x;
        }
        NodeRef::AExpr(x) => {
            let protobuf::AExpr {
                kind: _,
                name,
                lexpr,
                rexpr,
                rexpr_list_start: _,
                rexpr_list_end: _,
                location: _,
            } = x;
            for n in name {
                emit_node(n, cb);
            }
            if let Some(n) = lexpr {
                emit_node(n, cb);
            }
            if let Some(n) = rexpr {
                emit_node(n, cb);
            }
        }
        NodeRef::TypeCast(x) => {
            let protobuf::TypeCast {
                arg,
                type_name,
                location: _,
            } = x;
            if let Some(n) = arg {
                emit_node(n, cb);
            }
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
        }
        NodeRef::CollateClause(x) => {
            let protobuf::CollateClause {
                arg,
                collname,
                location: _,
            } = x;
            if let Some(n) = arg {
                emit_node(n, cb);
            }
            for n in collname {
                emit_node(n, cb);
            }
        }
        NodeRef::RoleSpec(x) => {
            let protobuf::RoleSpec {
                roletype: _,
                rolename: _,
                location: _,
            } = x;
        }
        NodeRef::FuncCall(x) => {
            let protobuf::FuncCall {
                funcname,
                args,
                agg_order,
                agg_filter,
                over,
                agg_within_group: _,
                agg_star: _,
                agg_distinct: _,
                func_variadic: _,
                funcformat: _,
                location: _,
            } = x;
            for n in funcname {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            for n in agg_order {
                emit_node(n, cb);
            }
            if let Some(n) = agg_filter {
                emit_node(n, cb);
            }
            if let Some(n) = over {
                cb(NodeRef::WindowDef(n));
            }
        }
        NodeRef::AStar(x) => {
            let protobuf::AStar {} = x;
        }
        NodeRef::AIndices(x) => {
            let protobuf::AIndices {
                is_slice: _,
                lidx,
                uidx,
            } = x;
            if let Some(n) = lidx {
                emit_node(n, cb);
            }
            if let Some(n) = uidx {
                emit_node(n, cb);
            }
        }
        NodeRef::AIndirection(x) => {
            let protobuf::AIndirection { arg, indirection } = x;
            if let Some(n) = arg {
                emit_node(n, cb);
            }
            for n in indirection {
                emit_node(n, cb);
            }
        }
        NodeRef::AArrayExpr(x) => {
            let protobuf::AArrayExpr {
                elements,
                list_start: _,
                list_end: _,
                location: _,
            } = x;
            for n in elements {
                emit_node(n, cb);
            }
        }
        NodeRef::ResTarget(x) => {
            let protobuf::ResTarget {
                name: _,
                indirection,
                val,
                location: _,
            } = x;
            for n in indirection {
                emit_node(n, cb);
            }
            if let Some(n) = val {
                emit_node(n, cb);
            }
        }
        NodeRef::MultiAssignRef(x) => {
            let protobuf::MultiAssignRef {
                source,
                colno: _,
                ncolumns: _,
            } = x;
            if let Some(n) = source {
                emit_node(n, cb);
            }
        }
        NodeRef::SortBy(x) => {
            let protobuf::SortBy {
                node,
                sortby_dir: _,
                sortby_nulls: _,
                use_op,
                location: _,
            } = x;
            if let Some(n) = node {
                emit_node(n, cb);
            }
            for n in use_op {
                emit_node(n, cb);
            }
        }
        NodeRef::WindowDef(x) => {
            let protobuf::WindowDef {
                name: _,
                refname: _,
                partition_clause,
                order_clause,
                frame_options: _,
                start_offset,
                end_offset,
                location: _,
            } = x;
            for n in partition_clause {
                emit_node(n, cb);
            }
            for n in order_clause {
                emit_node(n, cb);
            }
            if let Some(n) = start_offset {
                emit_node(n, cb);
            }
            if let Some(n) = end_offset {
                emit_node(n, cb);
            }
        }
        NodeRef::RangeSubselect(x) => {
            let protobuf::RangeSubselect {
                lateral: _,
                subquery,
                alias,
            } = x;
            if let Some(n) = subquery {
                emit_node(n, cb);
            }
            if let Some(n) = alias {
                cb(NodeRef::Alias(n));
            }
        }
        NodeRef::RangeFunction(x) => {
            let protobuf::RangeFunction {
                lateral: _,
                ordinality: _,
                is_rowsfrom: _,
                functions,
                alias,
                coldeflist,
            } = x;
            for n in functions {
                emit_node(n, cb);
            }
            if let Some(n) = alias {
                cb(NodeRef::Alias(n));
            }
            for n in coldeflist {
                emit_node(n, cb);
            }
        }
        NodeRef::RangeTableFunc(x) => {
            let protobuf::RangeTableFunc {
                lateral: _,
                docexpr,
                rowexpr,
                namespaces,
                columns,
                alias,
                location: _,
            } = x;
            if let Some(n) = docexpr {
                emit_node(n, cb);
            }
            if let Some(n) = rowexpr {
                emit_node(n, cb);
            }
            for n in namespaces {
                emit_node(n, cb);
            }
            for n in columns {
                emit_node(n, cb);
            }
            if let Some(n) = alias {
                cb(NodeRef::Alias(n));
            }
        }
        NodeRef::RangeTableFuncCol(x) => {
            let protobuf::RangeTableFuncCol {
                colname: _,
                type_name,
                for_ordinality: _,
                is_not_null: _,
                colexpr,
                coldefexpr,
                location: _,
            } = x;
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = colexpr {
                emit_node(n, cb);
            }
            if let Some(n) = coldefexpr {
                emit_node(n, cb);
            }
        }
        NodeRef::RangeTableSample(x) => {
            let protobuf::RangeTableSample {
                relation,
                method,
                args,
                repeatable,
                location: _,
            } = x;
            if let Some(n) = relation {
                emit_node(n, cb);
            }
            for n in method {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            if let Some(n) = repeatable {
                emit_node(n, cb);
            }
        }
        NodeRef::ColumnDef(x) => {
            let protobuf::ColumnDef {
                colname: _,
                type_name,
                compression: _,
                inhcount: _,
                is_local: _,
                is_not_null: _,
                is_from_type: _,
                storage: _,
                storage_name: _,
                raw_default,
                cooked_default,
                identity: _,
                identity_sequence,
                generated: _,
                coll_clause,
                coll_oid: _,
                constraints,
                fdwoptions,
                location: _,
            } = x;
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = raw_default {
                emit_node(n, cb);
            }
            if let Some(n) = cooked_default {
                emit_node(n, cb);
            }
            if let Some(n) = identity_sequence {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = coll_clause {
                cb(NodeRef::CollateClause(n));
            }
            for n in constraints {
                emit_node(n, cb);
            }
            for n in fdwoptions {
                emit_node(n, cb);
            }
        }
        NodeRef::TableLikeClause(x) => {
            let protobuf::TableLikeClause {
                relation,
                options: _,
                relation_oid: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
        }
        NodeRef::IndexElem(x) => {
            let protobuf::IndexElem {
                name: _,
                expr,
                indexcolname: _,
                collation,
                opclass,
                opclassopts,
                ordering: _,
                nulls_ordering: _,
            } = x;
            if let Some(n) = expr {
                emit_node(n, cb);
            }
            for n in collation {
                emit_node(n, cb);
            }
            for n in opclass {
                emit_node(n, cb);
            }
            for n in opclassopts {
                emit_node(n, cb);
            }
        }
        NodeRef::DefElem(x) => {
            let protobuf::DefElem {
                defnamespace: _,
                defname: _,
                arg,
                defaction: _,
                location: _,
                arg_location: _,
            } = x;
            if let Some(n) = arg {
                emit_node(n, cb);
            }
        }
        NodeRef::LockingClause(x) => {
            let protobuf::LockingClause {
                locked_rels,
                strength: _,
                wait_policy: _,
            } = x;
            for n in locked_rels {
                emit_node(n, cb);
            }
        }
        NodeRef::XmlSerialize(x) => {
            let protobuf::XmlSerialize {
                xmloption: _,
                expr,
                type_name,
                indent: _,
                location: _,
            } = x;
            if let Some(n) = expr {
                emit_node(n, cb);
            }
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
        }
        NodeRef::PartitionElem(x) => {
            let protobuf::PartitionElem {
                name: _,
                expr,
                collation,
                opclass,
                location: _,
            } = x;
            if let Some(n) = expr {
                emit_node(n, cb);
            }
            for n in collation {
                emit_node(n, cb);
            }
            for n in opclass {
                emit_node(n, cb);
            }
        }
        NodeRef::PartitionSpec(x) => {
            let protobuf::PartitionSpec {
                strategy: _,
                part_params,
                location: _,
            } = x;
            for n in part_params {
                emit_node(n, cb);
            }
        }
        NodeRef::PartitionBoundSpec(x) => {
            let protobuf::PartitionBoundSpec {
                strategy: _,
                is_default: _,
                modulus: _,
                remainder: _,
                listdatums,
                lowerdatums,
                upperdatums,
                location: _,
            } = x;
            for n in listdatums {
                emit_node(n, cb);
            }
            for n in lowerdatums {
                emit_node(n, cb);
            }
            for n in upperdatums {
                emit_node(n, cb);
            }
        }
        NodeRef::PartitionRangeDatum(x) => {
            let protobuf::PartitionRangeDatum {
                kind: _,
                value,
                location: _,
            } = x;
            if let Some(n) = value {
                emit_node(n, cb);
            }
        }
        NodeRef::PartitionCmd(x) => {
            let protobuf::PartitionCmd {
                name,
                bound,
                concurrent: _,
            } = x;
            if let Some(n) = name {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = bound {
                cb(NodeRef::PartitionBoundSpec(n));
            }
        }
        NodeRef::RangeTblEntry(x) => {
            let protobuf::RangeTblEntry {
                alias,
                eref,
                rtekind: _,
                relid: _,
                inh: _,
                relkind: _,
                rellockmode: _,
                perminfoindex: _,
                tablesample,
                subquery,
                security_barrier: _,
                jointype: _,
                joinmergedcols: _,
                joinaliasvars,
                joinleftcols,
                joinrightcols,
                join_using_alias,
                functions,
                funcordinality: _,
                tablefunc,
                values_lists,
                ctename: _,
                ctelevelsup: _,
                self_reference: _,
                coltypes,
                coltypmods,
                colcollations,
                enrname: _,
                enrtuples: _,
                groupexprs,
                lateral: _,
                in_from_cl: _,
                security_quals,
            } = x;
            if let Some(n) = alias {
                cb(NodeRef::Alias(n));
            }
            if let Some(n) = eref {
                cb(NodeRef::Alias(n));
            }
            if let Some(n) = tablesample {
                cb(NodeRef::TableSampleClause(n));
            }
            if let Some(n) = subquery {
                cb(NodeRef::Query(n));
            }
            for n in joinaliasvars {
                emit_node(n, cb);
            }
            for n in joinleftcols {
                emit_node(n, cb);
            }
            for n in joinrightcols {
                emit_node(n, cb);
            }
            if let Some(n) = join_using_alias {
                cb(NodeRef::Alias(n));
            }
            for n in functions {
                emit_node(n, cb);
            }
            if let Some(n) = tablefunc {
                cb(NodeRef::TableFunc(n));
            }
            for n in values_lists {
                emit_node(n, cb);
            }
            for n in coltypes {
                emit_node(n, cb);
            }
            for n in coltypmods {
                emit_node(n, cb);
            }
            for n in colcollations {
                emit_node(n, cb);
            }
            for n in groupexprs {
                emit_node(n, cb);
            }
            for n in security_quals {
                emit_node(n, cb);
            }
        }
        NodeRef::RtepermissionInfo(x) => {
            let protobuf::RtePermissionInfo {
                relid: _,
                inh: _,
                required_perms: _,
                check_as_user: _,
                selected_cols: _,
                inserted_cols: _,
                updated_cols: _,
            } = x;
        }
        NodeRef::RangeTblFunction(x) => {
            let protobuf::RangeTblFunction {
                funcexpr,
                funccolcount: _,
                funccolnames,
                funccoltypes,
                funccoltypmods,
                funccolcollations,
                funcparams: _,
            } = x;
            if let Some(n) = funcexpr {
                emit_node(n, cb);
            }
            for n in funccolnames {
                emit_node(n, cb);
            }
            for n in funccoltypes {
                emit_node(n, cb);
            }
            for n in funccoltypmods {
                emit_node(n, cb);
            }
            for n in funccolcollations {
                emit_node(n, cb);
            }
        }
        NodeRef::TableSampleClause(x) => {
            let protobuf::TableSampleClause {
                tsmhandler: _,
                args,
                repeatable,
            } = x;
            for n in args {
                emit_node(n, cb);
            }
            if let Some(n) = repeatable {
                emit_node(n, cb);
            }
        }
        NodeRef::WithCheckOption(x) => {
            let protobuf::WithCheckOption {
                kind: _,
                relname: _,
                polname: _,
                qual,
                cascaded: _,
            } = x;
            if let Some(n) = qual {
                emit_node(n, cb);
            }
        }
        NodeRef::SortGroupClause(x) => {
            let protobuf::SortGroupClause {
                tle_sort_group_ref: _,
                eqop: _,
                sortop: _,
                reverse_sort: _,
                nulls_first: _,
                hashable: _,
            } = x;
        }
        NodeRef::GroupingSet(x) => {
            let protobuf::GroupingSet {
                kind: _,
                content,
                location: _,
            } = x;
            for n in content {
                emit_node(n, cb);
            }
        }
        NodeRef::WindowClause(x) => {
            let protobuf::WindowClause {
                name: _,
                refname: _,
                partition_clause,
                order_clause,
                frame_options: _,
                start_offset,
                end_offset,
                start_in_range_func: _,
                end_in_range_func: _,
                in_range_coll: _,
                in_range_asc: _,
                in_range_nulls_first: _,
                winref: _,
                copied_order: _,
            } = x;
            for n in partition_clause {
                emit_node(n, cb);
            }
            for n in order_clause {
                emit_node(n, cb);
            }
            if let Some(n) = start_offset {
                emit_node(n, cb);
            }
            if let Some(n) = end_offset {
                emit_node(n, cb);
            }
        }
        NodeRef::RowMarkClause(x) => {
            let protobuf::RowMarkClause {
                rti: _,
                strength: _,
                wait_policy: _,
                pushed_down: _,
            } = x;
        }
        NodeRef::WithClause(x) => {
            let protobuf::WithClause {
                ctes,
                recursive: _,
                location: _,
            } = x;
            for n in ctes {
                emit_node(n, cb);
            }
        }
        NodeRef::InferClause(x) => {
            let protobuf::InferClause {
                index_elems,
                where_clause,
                conname: _,
                location: _,
            } = x;
            for n in index_elems {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
        }
        NodeRef::OnConflictClause(x) => {
            let protobuf::OnConflictClause {
                action: _,
                infer,
                target_list,
                where_clause,
                location: _,
            } = x;
            if let Some(n) = infer {
                cb(NodeRef::InferClause(n));
            }
            for n in target_list {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
        }
        NodeRef::CtesearchClause(x) => {
            let protobuf::CteSearchClause {
                search_col_list,
                search_breadth_first: _,
                search_seq_column: _,
                location: _,
            } = x;
            for n in search_col_list {
                emit_node(n, cb);
            }
        }
        NodeRef::CtecycleClause(x) => {
            let protobuf::CteCycleClause {
                cycle_col_list,
                cycle_mark_column: _,
                cycle_mark_value,
                cycle_mark_default,
                cycle_path_column: _,
                location: _,
                cycle_mark_type: _,
                cycle_mark_typmod: _,
                cycle_mark_collation: _,
                cycle_mark_neop: _,
            } = x;
            for n in cycle_col_list {
                emit_node(n, cb);
            }
            if let Some(n) = cycle_mark_value {
                emit_node(n, cb);
            }
            if let Some(n) = cycle_mark_default {
                emit_node(n, cb);
            }
        }
        NodeRef::CommonTableExpr(x) => {
            let protobuf::CommonTableExpr {
                ctename: _,
                aliascolnames,
                ctematerialized: _,
                ctequery,
                search_clause,
                cycle_clause,
                location: _,
                cterecursive: _,
                cterefcount: _,
                ctecolnames,
                ctecoltypes,
                ctecoltypmods,
                ctecolcollations,
            } = x;
            for n in aliascolnames {
                emit_node(n, cb);
            }
            if let Some(n) = ctequery {
                emit_node(n, cb);
            }
            if let Some(n) = search_clause {
                cb(NodeRef::CtesearchClause(n));
            }
            if let Some(n) = cycle_clause {
                cb(NodeRef::CtecycleClause(n));
            }
            for n in ctecolnames {
                emit_node(n, cb);
            }
            for n in ctecoltypes {
                emit_node(n, cb);
            }
            for n in ctecoltypmods {
                emit_node(n, cb);
            }
            for n in ctecolcollations {
                emit_node(n, cb);
            }
        }
        NodeRef::MergeWhenClause(x) => {
            let protobuf::MergeWhenClause {
                match_kind: _,
                command_type: _,
                r#override: _,
                condition,
                target_list,
                values,
            } = x;
            if let Some(n) = condition {
                emit_node(n, cb);
            }
            for n in target_list {
                emit_node(n, cb);
            }
            for n in values {
                emit_node(n, cb);
            }
        }
        NodeRef::ReturningOption(x) => {
            let protobuf::ReturningOption {
                option: _,
                value: _,
                location: _,
            } = x;
        }
        NodeRef::ReturningClause(x) => {
            let protobuf::ReturningClause { options, exprs } = x;
            for n in options {
                emit_node(n, cb);
            }
            for n in exprs {
                emit_node(n, cb);
            }
        }
        NodeRef::TriggerTransition(x) => {
            let protobuf::TriggerTransition {
                name: _,
                is_new: _,
                is_table: _,
            } = x;
        }
        NodeRef::JsonOutput(x) => {
            let protobuf::JsonOutput {
                type_name,
                returning,
            } = x;
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = returning {
                cb(NodeRef::JsonReturning(n));
            }
        }
        NodeRef::JsonArgument(x) => {
            let protobuf::JsonArgument { val, name: _ } = x;
            if let Some(n) = val {
                cb(NodeRef::JsonValueExpr(n));
            }
        }
        NodeRef::JsonFuncExpr(x) => {
            let protobuf::JsonFuncExpr {
                op: _,
                column_name: _,
                context_item,
                pathspec,
                passing,
                output,
                on_empty,
                on_error,
                wrapper: _,
                quotes: _,
                location: _,
            } = x;
            if let Some(n) = context_item {
                cb(NodeRef::JsonValueExpr(n));
            }
            if let Some(n) = pathspec {
                emit_node(n, cb);
            }
            for n in passing {
                emit_node(n, cb);
            }
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
            if let Some(n) = on_empty {
                cb(NodeRef::JsonBehavior(n));
            }
            if let Some(n) = on_error {
                cb(NodeRef::JsonBehavior(n));
            }
        }
        NodeRef::JsonTablePathSpec(x) => {
            let protobuf::JsonTablePathSpec {
                string,
                name: _,
                name_location: _,
                location: _,
            } = x;
            if let Some(n) = string {
                emit_node(n, cb);
            }
        }
        NodeRef::JsonTable(x) => {
            let protobuf::JsonTable {
                context_item,
                pathspec,
                passing,
                columns,
                on_error,
                alias,
                lateral: _,
                location: _,
            } = x;
            if let Some(n) = context_item {
                cb(NodeRef::JsonValueExpr(n));
            }
            if let Some(n) = pathspec {
                cb(NodeRef::JsonTablePathSpec(n));
            }
            for n in passing {
                emit_node(n, cb);
            }
            for n in columns {
                emit_node(n, cb);
            }
            if let Some(n) = on_error {
                cb(NodeRef::JsonBehavior(n));
            }
            if let Some(n) = alias {
                cb(NodeRef::Alias(n));
            }
        }
        NodeRef::JsonTableColumn(x) => {
            let protobuf::JsonTableColumn {
                coltype: _,
                name: _,
                type_name,
                pathspec,
                format,
                wrapper: _,
                quotes: _,
                columns,
                on_empty,
                on_error,
                location: _,
            } = x;
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = pathspec {
                cb(NodeRef::JsonTablePathSpec(n));
            }
            if let Some(n) = format {
                cb(NodeRef::JsonFormat(n));
            }
            for n in columns {
                emit_node(n, cb);
            }
            if let Some(n) = on_empty {
                cb(NodeRef::JsonBehavior(n));
            }
            if let Some(n) = on_error {
                cb(NodeRef::JsonBehavior(n));
            }
        }
        NodeRef::JsonKeyValue(x) => {
            let protobuf::JsonKeyValue { key, value } = x;
            if let Some(n) = key {
                emit_node(n, cb);
            }
            if let Some(n) = value {
                cb(NodeRef::JsonValueExpr(n));
            }
        }
        NodeRef::JsonParseExpr(x) => {
            let protobuf::JsonParseExpr {
                expr,
                output,
                unique_keys: _,
                location: _,
            } = x;
            if let Some(n) = expr {
                cb(NodeRef::JsonValueExpr(n));
            }
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
        }
        NodeRef::JsonScalarExpr(x) => {
            let protobuf::JsonScalarExpr {
                expr,
                output,
                location: _,
            } = x;
            if let Some(n) = expr {
                emit_node(n, cb);
            }
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
        }
        NodeRef::JsonSerializeExpr(x) => {
            let protobuf::JsonSerializeExpr {
                expr,
                output,
                location: _,
            } = x;
            if let Some(n) = expr {
                cb(NodeRef::JsonValueExpr(n));
            }
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
        }
        NodeRef::JsonObjectConstructor(x) => {
            let protobuf::JsonObjectConstructor {
                exprs,
                output,
                absent_on_null: _,
                unique: _,
                location: _,
            } = x;
            for n in exprs {
                emit_node(n, cb);
            }
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
        }
        NodeRef::JsonArrayConstructor(x) => {
            let protobuf::JsonArrayConstructor {
                exprs,
                output,
                absent_on_null: _,
                location: _,
            } = x;
            for n in exprs {
                emit_node(n, cb);
            }
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
        }
        NodeRef::JsonArrayQueryConstructor(x) => {
            let protobuf::JsonArrayQueryConstructor {
                query,
                output,
                format,
                absent_on_null: _,
                location: _,
            } = x;
            if let Some(n) = query {
                emit_node(n, cb);
            }
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
            if let Some(n) = format {
                cb(NodeRef::JsonFormat(n));
            }
        }
        NodeRef::JsonAggConstructor(x) => {
            let protobuf::JsonAggConstructor {
                output,
                agg_filter,
                agg_order,
                over,
                location: _,
            } = x;
            if let Some(n) = output {
                cb(NodeRef::JsonOutput(n));
            }
            if let Some(n) = agg_filter {
                emit_node(n, cb);
            }
            for n in agg_order {
                emit_node(n, cb);
            }
            if let Some(n) = over {
                cb(NodeRef::WindowDef(n));
            }
        }
        NodeRef::JsonObjectAgg(x) => {
            let protobuf::JsonObjectAgg {
                constructor,
                arg,
                absent_on_null: _,
                unique: _,
            } = x;
            if let Some(n) = constructor {
                cb(NodeRef::JsonAggConstructor(n));
            }
            if let Some(n) = arg {
                cb(NodeRef::JsonKeyValue(n));
            }
        }
        NodeRef::JsonArrayAgg(x) => {
            let protobuf::JsonArrayAgg {
                constructor,
                arg,
                absent_on_null: _,
            } = x;
            if let Some(n) = constructor {
                cb(NodeRef::JsonAggConstructor(n));
            }
            if let Some(n) = arg {
                cb(NodeRef::JsonValueExpr(n));
            }
        }
        NodeRef::RawStmt(x) => {
            let protobuf::RawStmt {
                stmt,
                stmt_location: _,
                stmt_len: _,
            } = x;
            if let Some(n) = stmt {
                emit_node(n, cb);
            }
        }
        NodeRef::InsertStmt(x) => {
            let protobuf::InsertStmt {
                relation,
                cols,
                select_stmt,
                on_conflict_clause,
                returning_clause,
                with_clause,
                r#override: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in cols {
                emit_node(n, cb);
            }
            if let Some(n) = select_stmt {
                emit_node(n, cb);
            }
            if let Some(n) = on_conflict_clause {
                cb(NodeRef::OnConflictClause(n));
            }
            if let Some(n) = returning_clause {
                cb(NodeRef::ReturningClause(n));
            }
            if let Some(n) = with_clause {
                cb(NodeRef::WithClause(n));
            }
        }
        NodeRef::DeleteStmt(x) => {
            let protobuf::DeleteStmt {
                relation,
                using_clause,
                where_clause,
                returning_clause,
                with_clause,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in using_clause {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
            if let Some(n) = returning_clause {
                cb(NodeRef::ReturningClause(n));
            }
            if let Some(n) = with_clause {
                cb(NodeRef::WithClause(n));
            }
        }
        NodeRef::UpdateStmt(x) => {
            let protobuf::UpdateStmt {
                relation,
                target_list,
                where_clause,
                from_clause,
                returning_clause,
                with_clause,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in target_list {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
            for n in from_clause {
                emit_node(n, cb);
            }
            if let Some(n) = returning_clause {
                cb(NodeRef::ReturningClause(n));
            }
            if let Some(n) = with_clause {
                cb(NodeRef::WithClause(n));
            }
        }
        NodeRef::MergeStmt(x) => {
            let protobuf::MergeStmt {
                relation,
                source_relation,
                join_condition,
                merge_when_clauses,
                returning_clause,
                with_clause,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = source_relation {
                emit_node(n, cb);
            }
            if let Some(n) = join_condition {
                emit_node(n, cb);
            }
            for n in merge_when_clauses {
                emit_node(n, cb);
            }
            if let Some(n) = returning_clause {
                cb(NodeRef::ReturningClause(n));
            }
            if let Some(n) = with_clause {
                cb(NodeRef::WithClause(n));
            }
        }
        NodeRef::SelectStmt(x) => {
            let protobuf::SelectStmt {
                distinct_clause,
                into_clause,
                target_list,
                from_clause,
                where_clause,
                group_clause,
                group_distinct: _,
                having_clause,
                window_clause,
                values_lists,
                sort_clause,
                limit_offset,
                limit_count,
                limit_option: _,
                locking_clause,
                with_clause,
                op: _,
                all: _,
                larg,
                rarg,
            } = x;
            for n in distinct_clause {
                emit_node(n, cb);
            }
            if let Some(n) = into_clause {
                cb(NodeRef::IntoClause(n));
            }
            for n in target_list {
                emit_node(n, cb);
            }
            for n in from_clause {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
            for n in group_clause {
                emit_node(n, cb);
            }
            if let Some(n) = having_clause {
                emit_node(n, cb);
            }
            for n in window_clause {
                emit_node(n, cb);
            }
            for n in values_lists {
                emit_node(n, cb);
            }
            for n in sort_clause {
                emit_node(n, cb);
            }
            if let Some(n) = limit_offset {
                emit_node(n, cb);
            }
            if let Some(n) = limit_count {
                emit_node(n, cb);
            }
            for n in locking_clause {
                emit_node(n, cb);
            }
            if let Some(n) = with_clause {
                cb(NodeRef::WithClause(n));
            }
            if let Some(n) = larg {
                cb(NodeRef::SelectStmt(n));
            }
            if let Some(n) = rarg {
                cb(NodeRef::SelectStmt(n));
            }
        }
        NodeRef::SetOperationStmt(x) => {
            let protobuf::SetOperationStmt {
                op: _,
                all: _,
                larg,
                rarg,
                col_types,
                col_typmods,
                col_collations,
                group_clauses,
            } = x;
            if let Some(n) = larg {
                emit_node(n, cb);
            }
            if let Some(n) = rarg {
                emit_node(n, cb);
            }
            for n in col_types {
                emit_node(n, cb);
            }
            for n in col_typmods {
                emit_node(n, cb);
            }
            for n in col_collations {
                emit_node(n, cb);
            }
            for n in group_clauses {
                emit_node(n, cb);
            }
        }
        NodeRef::ReturnStmt(x) => {
            let protobuf::ReturnStmt { returnval } = x;
            if let Some(n) = returnval {
                emit_node(n, cb);
            }
        }
        NodeRef::PlassignStmt(x) => {
            let protobuf::PlAssignStmt {
                name: _,
                indirection,
                nnames: _,
                val,
                location: _,
            } = x;
            for n in indirection {
                emit_node(n, cb);
            }
            if let Some(n) = val {
                cb(NodeRef::SelectStmt(n));
            }
        }
        NodeRef::CreateSchemaStmt(x) => {
            let protobuf::CreateSchemaStmt {
                schemaname: _,
                authrole,
                schema_elts,
                if_not_exists: _,
            } = x;
            if let Some(n) = authrole {
                cb(NodeRef::RoleSpec(n));
            }
            for n in schema_elts {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterTableStmt(x) => {
            let protobuf::AlterTableStmt {
                relation,
                cmds,
                objtype: _,
                missing_ok: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in cmds {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterTableCmd(x) => {
            let protobuf::AlterTableCmd {
                subtype: _,
                name: _,
                num: _,
                newowner,
                def,
                behavior: _,
                missing_ok: _,
                recurse: _,
            } = x;
            if let Some(n) = newowner {
                cb(NodeRef::RoleSpec(n));
            }
            if let Some(n) = def {
                emit_node(n, cb);
            }
        }
        NodeRef::AtalterConstraint(x) => {
            let protobuf::AtAlterConstraint {
                conname: _,
                alter_enforceability: _,
                is_enforced: _,
                alter_deferrability: _,
                deferrable: _,
                initdeferred: _,
                alter_inheritability: _,
                noinherit: _,
            } = x;
        }
        NodeRef::ReplicaIdentityStmt(x) => {
            let protobuf::ReplicaIdentityStmt {
                identity_type: _,
                name: _,
            } = x;
        }
        NodeRef::AlterCollationStmt(x) => {
            let protobuf::AlterCollationStmt { collname } = x;
            for n in collname {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterDomainStmt(x) => {
            let protobuf::AlterDomainStmt {
                subtype: _,
                type_name,
                name: _,
                def,
                behavior: _,
                missing_ok: _,
            } = x;
            for n in type_name {
                emit_node(n, cb);
            }
            if let Some(n) = def {
                emit_node(n, cb);
            }
        }
        NodeRef::GrantStmt(x) => {
            let protobuf::GrantStmt {
                is_grant: _,
                targtype: _,
                objtype: _,
                objects,
                privileges,
                grantees,
                grant_option: _,
                grantor,
                behavior: _,
            } = x;
            for n in objects {
                emit_node(n, cb);
            }
            for n in privileges {
                emit_node(n, cb);
            }
            for n in grantees {
                emit_node(n, cb);
            }
            if let Some(n) = grantor {
                cb(NodeRef::RoleSpec(n));
            }
        }
        NodeRef::ObjectWithArgs(x) => {
            let protobuf::ObjectWithArgs {
                objname,
                objargs,
                objfuncargs,
                args_unspecified: _,
            } = x;
            for n in objname {
                emit_node(n, cb);
            }
            for n in objargs {
                emit_node(n, cb);
            }
            for n in objfuncargs {
                emit_node(n, cb);
            }
        }
        NodeRef::AccessPriv(x) => {
            let protobuf::AccessPriv { priv_name: _, cols } = x;
            for n in cols {
                emit_node(n, cb);
            }
        }
        NodeRef::GrantRoleStmt(x) => {
            let protobuf::GrantRoleStmt {
                granted_roles,
                grantee_roles,
                is_grant: _,
                opt,
                grantor,
                behavior: _,
            } = x;
            for n in granted_roles {
                emit_node(n, cb);
            }
            for n in grantee_roles {
                emit_node(n, cb);
            }
            for n in opt {
                emit_node(n, cb);
            }
            if let Some(n) = grantor {
                cb(NodeRef::RoleSpec(n));
            }
        }
        NodeRef::AlterDefaultPrivilegesStmt(x) => {
            let protobuf::AlterDefaultPrivilegesStmt { options, action } = x;
            for n in options {
                emit_node(n, cb);
            }
            if let Some(n) = action {
                cb(NodeRef::GrantStmt(n));
            }
        }
        NodeRef::CopyStmt(x) => {
            let protobuf::CopyStmt {
                relation,
                query,
                attlist,
                is_from: _,
                is_program: _,
                filename: _,
                options,
                where_clause,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = query {
                emit_node(n, cb);
            }
            for n in attlist {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
        }
        NodeRef::VariableSetStmt(x) => {
            let protobuf::VariableSetStmt {
                kind: _,
                name: _,
                args,
                jumble_args: _,
                is_local: _,
                location: _,
            } = x;
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::VariableShowStmt(x) => {
            let protobuf::VariableShowStmt { name: _ } = x;
        }
        NodeRef::CreateStmt(x) => {
            let protobuf::CreateStmt {
                relation,
                table_elts,
                inh_relations,
                partbound,
                partspec,
                of_typename,
                constraints,
                nnconstraints,
                options,
                oncommit: _,
                tablespacename: _,
                access_method: _,
                if_not_exists: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in table_elts {
                emit_node(n, cb);
            }
            for n in inh_relations {
                emit_node(n, cb);
            }
            if let Some(n) = partbound {
                cb(NodeRef::PartitionBoundSpec(n));
            }
            if let Some(n) = partspec {
                cb(NodeRef::PartitionSpec(n));
            }
            if let Some(n) = of_typename {
                cb(NodeRef::TypeName(n));
            }
            for n in constraints {
                emit_node(n, cb);
            }
            for n in nnconstraints {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::Constraint(x) => {
            let protobuf::Constraint {
                contype: _,
                conname: _,
                deferrable: _,
                initdeferred: _,
                is_enforced: _,
                skip_validation: _,
                initially_valid: _,
                is_no_inherit: _,
                raw_expr,
                cooked_expr: _,
                generated_when: _,
                generated_kind: _,
                nulls_not_distinct: _,
                keys,
                without_overlaps: _,
                including,
                exclusions,
                options,
                indexname: _,
                indexspace: _,
                reset_default_tblspc: _,
                access_method: _,
                where_clause,
                pktable,
                fk_attrs,
                pk_attrs,
                fk_with_period: _,
                pk_with_period: _,
                fk_matchtype: _,
                fk_upd_action: _,
                fk_del_action: _,
                fk_del_set_cols,
                old_conpfeqop,
                old_pktable_oid: _,
                location: _,
            } = x;
            if let Some(n) = raw_expr {
                emit_node(n, cb);
            }
            for n in keys {
                emit_node(n, cb);
            }
            for n in including {
                emit_node(n, cb);
            }
            for n in exclusions {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
            if let Some(n) = pktable {
                cb(NodeRef::RangeVar(n));
            }
            for n in fk_attrs {
                emit_node(n, cb);
            }
            for n in pk_attrs {
                emit_node(n, cb);
            }
            for n in fk_del_set_cols {
                emit_node(n, cb);
            }
            for n in old_conpfeqop {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateTableSpaceStmt(x) => {
            let protobuf::CreateTableSpaceStmt {
                tablespacename: _,
                owner,
                location: _,
                options,
            } = x;
            if let Some(n) = owner {
                cb(NodeRef::RoleSpec(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::DropTableSpaceStmt(x) => {
            let protobuf::DropTableSpaceStmt {
                tablespacename: _,
                missing_ok: _,
            } = x;
        }
        NodeRef::AlterTableSpaceOptionsStmt(x) => {
            let protobuf::AlterTableSpaceOptionsStmt {
                tablespacename: _,
                options,
                is_reset: _,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterTableMoveAllStmt(x) => {
            let protobuf::AlterTableMoveAllStmt {
                orig_tablespacename: _,
                objtype: _,
                roles,
                new_tablespacename: _,
                nowait: _,
            } = x;
            for n in roles {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateExtensionStmt(x) => {
            let protobuf::CreateExtensionStmt {
                extname: _,
                if_not_exists: _,
                options,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterExtensionStmt(x) => {
            let protobuf::AlterExtensionStmt {
                extname: _,
                options,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterExtensionContentsStmt(x) => {
            let protobuf::AlterExtensionContentsStmt {
                extname: _,
                action: _,
                objtype: _,
                object,
            } = x;
            if let Some(n) = object {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateFdwStmt(x) => {
            let protobuf::CreateFdwStmt {
                fdwname: _,
                func_options,
                options,
            } = x;
            for n in func_options {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterFdwStmt(x) => {
            let protobuf::AlterFdwStmt {
                fdwname: _,
                func_options,
                options,
            } = x;
            for n in func_options {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateForeignServerStmt(x) => {
            let protobuf::CreateForeignServerStmt {
                servername: _,
                servertype: _,
                version: _,
                fdwname: _,
                if_not_exists: _,
                options,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterForeignServerStmt(x) => {
            let protobuf::AlterForeignServerStmt {
                servername: _,
                version: _,
                options,
                has_version: _,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateForeignTableStmt(x) => {
            let protobuf::CreateForeignTableStmt {
                base_stmt,
                servername: _,
                options,
            } = x;
            if let Some(n) = base_stmt {
                cb(NodeRef::CreateStmt(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateUserMappingStmt(x) => {
            let protobuf::CreateUserMappingStmt {
                user,
                servername: _,
                if_not_exists: _,
                options,
            } = x;
            if let Some(n) = user {
                cb(NodeRef::RoleSpec(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterUserMappingStmt(x) => {
            let protobuf::AlterUserMappingStmt {
                user,
                servername: _,
                options,
            } = x;
            if let Some(n) = user {
                cb(NodeRef::RoleSpec(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::DropUserMappingStmt(x) => {
            let protobuf::DropUserMappingStmt {
                user,
                servername: _,
                missing_ok: _,
            } = x;
            if let Some(n) = user {
                cb(NodeRef::RoleSpec(n));
            }
        }
        NodeRef::ImportForeignSchemaStmt(x) => {
            let protobuf::ImportForeignSchemaStmt {
                server_name: _,
                remote_schema: _,
                local_schema: _,
                list_type: _,
                table_list,
                options,
            } = x;
            for n in table_list {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::CreatePolicyStmt(x) => {
            let protobuf::CreatePolicyStmt {
                policy_name: _,
                table,
                cmd_name: _,
                permissive: _,
                roles,
                qual,
                with_check,
            } = x;
            if let Some(n) = table {
                cb(NodeRef::RangeVar(n));
            }
            for n in roles {
                emit_node(n, cb);
            }
            if let Some(n) = qual {
                emit_node(n, cb);
            }
            if let Some(n) = with_check {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterPolicyStmt(x) => {
            let protobuf::AlterPolicyStmt {
                policy_name: _,
                table,
                roles,
                qual,
                with_check,
            } = x;
            if let Some(n) = table {
                cb(NodeRef::RangeVar(n));
            }
            for n in roles {
                emit_node(n, cb);
            }
            if let Some(n) = qual {
                emit_node(n, cb);
            }
            if let Some(n) = with_check {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateAmStmt(x) => {
            let protobuf::CreateAmStmt {
                amname: _,
                handler_name,
                amtype: _,
            } = x;
            for n in handler_name {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateTrigStmt(x) => {
            let protobuf::CreateTrigStmt {
                replace: _,
                isconstraint: _,
                trigname: _,
                relation,
                funcname,
                args,
                row: _,
                timing: _,
                events: _,
                columns,
                when_clause,
                transition_rels,
                deferrable: _,
                initdeferred: _,
                constrrel,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in funcname {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            for n in columns {
                emit_node(n, cb);
            }
            if let Some(n) = when_clause {
                emit_node(n, cb);
            }
            for n in transition_rels {
                emit_node(n, cb);
            }
            if let Some(n) = constrrel {
                cb(NodeRef::RangeVar(n));
            }
        }
        NodeRef::CreateEventTrigStmt(x) => {
            let protobuf::CreateEventTrigStmt {
                trigname: _,
                eventname: _,
                whenclause,
                funcname,
            } = x;
            for n in whenclause {
                emit_node(n, cb);
            }
            for n in funcname {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterEventTrigStmt(x) => {
            let protobuf::AlterEventTrigStmt {
                trigname: _,
                tgenabled: _,
            } = x;
        }
        NodeRef::CreatePlangStmt(x) => {
            let protobuf::CreatePLangStmt {
                replace: _,
                plname: _,
                plhandler,
                plinline,
                plvalidator,
                pltrusted: _,
            } = x;
            for n in plhandler {
                emit_node(n, cb);
            }
            for n in plinline {
                emit_node(n, cb);
            }
            for n in plvalidator {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateRoleStmt(x) => {
            let protobuf::CreateRoleStmt {
                stmt_type: _,
                role: _,
                options,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterRoleStmt(x) => {
            let protobuf::AlterRoleStmt {
                role,
                options,
                action: _,
            } = x;
            if let Some(n) = role {
                cb(NodeRef::RoleSpec(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterRoleSetStmt(x) => {
            let protobuf::AlterRoleSetStmt {
                role,
                database: _,
                setstmt,
            } = x;
            if let Some(n) = role {
                cb(NodeRef::RoleSpec(n));
            }
            if let Some(n) = setstmt {
                cb(NodeRef::VariableSetStmt(n));
            }
        }
        NodeRef::DropRoleStmt(x) => {
            let protobuf::DropRoleStmt {
                roles,
                missing_ok: _,
            } = x;
            for n in roles {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateSeqStmt(x) => {
            let protobuf::CreateSeqStmt {
                sequence,
                options,
                owner_id: _,
                for_identity: _,
                if_not_exists: _,
            } = x;
            if let Some(n) = sequence {
                cb(NodeRef::RangeVar(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterSeqStmt(x) => {
            let protobuf::AlterSeqStmt {
                sequence,
                options,
                for_identity: _,
                missing_ok: _,
            } = x;
            if let Some(n) = sequence {
                cb(NodeRef::RangeVar(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::DefineStmt(x) => {
            let protobuf::DefineStmt {
                kind: _,
                oldstyle: _,
                defnames,
                args,
                definition,
                if_not_exists: _,
                replace: _,
            } = x;
            for n in defnames {
                emit_node(n, cb);
            }
            for n in args {
                emit_node(n, cb);
            }
            for n in definition {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateDomainStmt(x) => {
            let protobuf::CreateDomainStmt {
                domainname,
                type_name,
                coll_clause,
                constraints,
            } = x;
            for n in domainname {
                emit_node(n, cb);
            }
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = coll_clause {
                cb(NodeRef::CollateClause(n));
            }
            for n in constraints {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateOpClassStmt(x) => {
            let protobuf::CreateOpClassStmt {
                opclassname,
                opfamilyname,
                amname: _,
                datatype,
                items,
                is_default: _,
            } = x;
            for n in opclassname {
                emit_node(n, cb);
            }
            for n in opfamilyname {
                emit_node(n, cb);
            }
            if let Some(n) = datatype {
                cb(NodeRef::TypeName(n));
            }
            for n in items {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateOpClassItem(x) => {
            let protobuf::CreateOpClassItem {
                itemtype: _,
                name,
                number: _,
                order_family,
                class_args,
                storedtype,
            } = x;
            if let Some(n) = name {
                cb(NodeRef::ObjectWithArgs(n));
            }
            for n in order_family {
                emit_node(n, cb);
            }
            for n in class_args {
                emit_node(n, cb);
            }
            if let Some(n) = storedtype {
                cb(NodeRef::TypeName(n));
            }
        }
        NodeRef::CreateOpFamilyStmt(x) => {
            let protobuf::CreateOpFamilyStmt {
                opfamilyname,
                amname: _,
            } = x;
            for n in opfamilyname {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterOpFamilyStmt(x) => {
            let protobuf::AlterOpFamilyStmt {
                opfamilyname,
                amname: _,
                is_drop: _,
                items,
            } = x;
            for n in opfamilyname {
                emit_node(n, cb);
            }
            for n in items {
                emit_node(n, cb);
            }
        }
        NodeRef::DropStmt(x) => {
            let protobuf::DropStmt {
                objects,
                remove_type: _,
                behavior: _,
                missing_ok: _,
                concurrent: _,
            } = x;
            for n in objects {
                emit_node(n, cb);
            }
        }
        NodeRef::TruncateStmt(x) => {
            let protobuf::TruncateStmt {
                relations,
                restart_seqs: _,
                behavior: _,
            } = x;
            for n in relations {
                emit_node(n, cb);
            }
        }
        NodeRef::CommentStmt(x) => {
            let protobuf::CommentStmt {
                objtype: _,
                object,
                comment: _,
            } = x;
            if let Some(n) = object {
                emit_node(n, cb);
            }
        }
        NodeRef::SecLabelStmt(x) => {
            let protobuf::SecLabelStmt {
                objtype: _,
                object,
                provider: _,
                label: _,
            } = x;
            if let Some(n) = object {
                emit_node(n, cb);
            }
        }
        NodeRef::DeclareCursorStmt(x) => {
            let protobuf::DeclareCursorStmt {
                portalname: _,
                options: _,
                query,
            } = x;
            if let Some(n) = query {
                emit_node(n, cb);
            }
        }
        NodeRef::ClosePortalStmt(x) => {
            let protobuf::ClosePortalStmt { portalname: _ } = x;
        }
        NodeRef::FetchStmt(x) => {
            let protobuf::FetchStmt {
                direction: _,
                how_many: _,
                portalname: _,
                ismove: _,
            } = x;
        }
        NodeRef::IndexStmt(x) => {
            let protobuf::IndexStmt {
                idxname: _,
                relation,
                access_method: _,
                table_space: _,
                index_params,
                index_including_params,
                options,
                where_clause,
                exclude_op_names,
                idxcomment: _,
                index_oid: _,
                old_number: _,
                old_create_subid: _,
                old_first_relfilelocator_subid: _,
                unique: _,
                nulls_not_distinct: _,
                primary: _,
                isconstraint: _,
                iswithoutoverlaps: _,
                deferrable: _,
                initdeferred: _,
                transformed: _,
                concurrent: _,
                if_not_exists: _,
                reset_default_tblspc: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in index_params {
                emit_node(n, cb);
            }
            for n in index_including_params {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
            for n in exclude_op_names {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateStatsStmt(x) => {
            let protobuf::CreateStatsStmt {
                defnames,
                stat_types,
                exprs,
                relations,
                stxcomment: _,
                transformed: _,
                if_not_exists: _,
            } = x;
            for n in defnames {
                emit_node(n, cb);
            }
            for n in stat_types {
                emit_node(n, cb);
            }
            for n in exprs {
                emit_node(n, cb);
            }
            for n in relations {
                emit_node(n, cb);
            }
        }
        NodeRef::StatsElem(x) => {
            let protobuf::StatsElem { name: _, expr } = x;
            if let Some(n) = expr {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterStatsStmt(x) => {
            let protobuf::AlterStatsStmt {
                defnames,
                stxstattarget,
                missing_ok: _,
            } = x;
            for n in defnames {
                emit_node(n, cb);
            }
            if let Some(n) = stxstattarget {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateFunctionStmt(x) => {
            let protobuf::CreateFunctionStmt {
                is_procedure: _,
                replace: _,
                funcname,
                parameters,
                return_type,
                options,
                sql_body,
            } = x;
            for n in funcname {
                emit_node(n, cb);
            }
            for n in parameters {
                emit_node(n, cb);
            }
            if let Some(n) = return_type {
                cb(NodeRef::TypeName(n));
            }
            for n in options {
                emit_node(n, cb);
            }
            if let Some(n) = sql_body {
                emit_node(n, cb);
            }
        }
        NodeRef::FunctionParameter(x) => {
            let protobuf::FunctionParameter {
                name: _,
                arg_type,
                mode: _,
                defexpr,
                location: _,
            } = x;
            if let Some(n) = arg_type {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = defexpr {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterFunctionStmt(x) => {
            let protobuf::AlterFunctionStmt {
                objtype: _,
                func,
                actions,
            } = x;
            if let Some(n) = func {
                cb(NodeRef::ObjectWithArgs(n));
            }
            for n in actions {
                emit_node(n, cb);
            }
        }
        NodeRef::DoStmt(x) => {
            let protobuf::DoStmt { args } = x;
            for n in args {
                emit_node(n, cb);
            }
        }
        NodeRef::InlineCodeBlock(x) => {
            let protobuf::InlineCodeBlock {
                source_text: _,
                lang_oid: _,
                lang_is_trusted: _,
                atomic: _,
            } = x;
        }
        NodeRef::CallStmt(x) => {
            let protobuf::CallStmt {
                funccall,
                funcexpr,
                outargs,
            } = x;
            if let Some(n) = funccall {
                cb(NodeRef::FuncCall(n));
            }
            if let Some(n) = funcexpr {
                cb(NodeRef::FuncExpr(n));
            }
            for n in outargs {
                emit_node(n, cb);
            }
        }
        NodeRef::CallContext(x) => {
            let protobuf::CallContext { atomic: _ } = x;
        }
        NodeRef::RenameStmt(x) => {
            let protobuf::RenameStmt {
                rename_type: _,
                relation_type: _,
                relation,
                object,
                subname: _,
                newname: _,
                behavior: _,
                missing_ok: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = object {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterObjectDependsStmt(x) => {
            let protobuf::AlterObjectDependsStmt {
                object_type: _,
                relation,
                object,
                extname,
                remove: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = object {
                emit_node(n, cb);
            }
            if let Some(n) = extname {
                cb(NodeRef::String(n));
            }
        }
        NodeRef::AlterObjectSchemaStmt(x) => {
            let protobuf::AlterObjectSchemaStmt {
                object_type: _,
                relation,
                object,
                newschema: _,
                missing_ok: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = object {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterOwnerStmt(x) => {
            let protobuf::AlterOwnerStmt {
                object_type: _,
                relation,
                object,
                newowner,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = object {
                emit_node(n, cb);
            }
            if let Some(n) = newowner {
                cb(NodeRef::RoleSpec(n));
            }
        }
        NodeRef::AlterOperatorStmt(x) => {
            let protobuf::AlterOperatorStmt { opername, options } = x;
            if let Some(n) = opername {
                cb(NodeRef::ObjectWithArgs(n));
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterTypeStmt(x) => {
            let protobuf::AlterTypeStmt { type_name, options } = x;
            for n in type_name {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::RuleStmt(x) => {
            let protobuf::RuleStmt {
                relation,
                rulename: _,
                where_clause,
                event: _,
                instead: _,
                actions,
                replace: _,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
            for n in actions {
                emit_node(n, cb);
            }
        }
        NodeRef::NotifyStmt(x) => {
            let protobuf::NotifyStmt {
                conditionname: _,
                payload: _,
                payload_location: _,
            } = x;
        }
        NodeRef::ListenStmt(x) => {
            let protobuf::ListenStmt { conditionname: _ } = x;
        }
        NodeRef::UnlistenStmt(x) => {
            let protobuf::UnlistenStmt { conditionname: _ } = x;
        }
        NodeRef::TransactionStmt(x) => {
            let protobuf::TransactionStmt {
                kind: _,
                options,
                savepoint_name: _,
                gid: _,
                chain: _,
                location: _,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::CompositeTypeStmt(x) => {
            let protobuf::CompositeTypeStmt {
                typevar,
                coldeflist,
            } = x;
            if let Some(n) = typevar {
                cb(NodeRef::RangeVar(n));
            }
            for n in coldeflist {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateEnumStmt(x) => {
            let protobuf::CreateEnumStmt { type_name, vals } = x;
            for n in type_name {
                emit_node(n, cb);
            }
            for n in vals {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateRangeStmt(x) => {
            let protobuf::CreateRangeStmt { type_name, params } = x;
            for n in type_name {
                emit_node(n, cb);
            }
            for n in params {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterEnumStmt(x) => {
            let protobuf::AlterEnumStmt {
                type_name,
                old_val: _,
                new_val: _,
                new_val_neighbor: _,
                new_val_is_after: _,
                skip_if_new_val_exists: _,
            } = x;
            for n in type_name {
                emit_node(n, cb);
            }
        }
        NodeRef::ViewStmt(x) => {
            let protobuf::ViewStmt {
                view,
                aliases,
                query,
                replace: _,
                options,
                with_check_option: _,
            } = x;
            if let Some(n) = view {
                cb(NodeRef::RangeVar(n));
            }
            for n in aliases {
                emit_node(n, cb);
            }
            if let Some(n) = query {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::LoadStmt(x) => {
            let protobuf::LoadStmt { filename: _ } = x;
        }
        NodeRef::CreatedbStmt(x) => {
            let protobuf::CreatedbStmt { dbname: _, options } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterDatabaseStmt(x) => {
            let protobuf::AlterDatabaseStmt { dbname: _, options } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterDatabaseRefreshCollStmt(x) => {
            let protobuf::AlterDatabaseRefreshCollStmt { dbname: _ } = x;
        }
        NodeRef::AlterDatabaseSetStmt(x) => {
            let protobuf::AlterDatabaseSetStmt { dbname: _, setstmt } = x;
            if let Some(n) = setstmt {
                cb(NodeRef::VariableSetStmt(n));
            }
        }
        NodeRef::DropdbStmt(x) => {
            let protobuf::DropdbStmt {
                dbname: _,
                missing_ok: _,
                options,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterSystemStmt(x) => {
            let protobuf::AlterSystemStmt { setstmt } = x;
            if let Some(n) = setstmt {
                cb(NodeRef::VariableSetStmt(n));
            }
        }
        NodeRef::ClusterStmt(x) => {
            let protobuf::ClusterStmt {
                relation,
                indexname: _,
                params,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in params {
                emit_node(n, cb);
            }
        }
        NodeRef::VacuumStmt(x) => {
            let protobuf::VacuumStmt {
                options,
                rels,
                is_vacuumcmd: _,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
            for n in rels {
                emit_node(n, cb);
            }
        }
        NodeRef::VacuumRelation(x) => {
            let protobuf::VacuumRelation {
                relation,
                oid: _,
                va_cols,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in va_cols {
                emit_node(n, cb);
            }
        }
        NodeRef::ExplainStmt(x) => {
            let protobuf::ExplainStmt { query, options } = x;
            if let Some(n) = query {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateTableAsStmt(x) => {
            let protobuf::CreateTableAsStmt {
                query,
                into,
                objtype: _,
                is_select_into: _,
                if_not_exists: _,
            } = x;
            if let Some(n) = query {
                emit_node(n, cb);
            }
            if let Some(n) = into {
                cb(NodeRef::IntoClause(n));
            }
        }
        NodeRef::RefreshMatViewStmt(x) => {
            let protobuf::RefreshMatViewStmt {
                concurrent: _,
                skip_data: _,
                relation,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
        }
        NodeRef::CheckPointStmt(x) => {
            let protobuf::CheckPointStmt {} = x;
        }
        NodeRef::DiscardStmt(x) => {
            let protobuf::DiscardStmt { target: _ } = x;
        }
        NodeRef::LockStmt(x) => {
            let protobuf::LockStmt {
                relations,
                mode: _,
                nowait: _,
            } = x;
            for n in relations {
                emit_node(n, cb);
            }
        }
        NodeRef::ConstraintsSetStmt(x) => {
            let protobuf::ConstraintsSetStmt {
                constraints,
                deferred: _,
            } = x;
            for n in constraints {
                emit_node(n, cb);
            }
        }
        NodeRef::ReindexStmt(x) => {
            let protobuf::ReindexStmt {
                kind: _,
                relation,
                name: _,
                params,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            for n in params {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateConversionStmt(x) => {
            let protobuf::CreateConversionStmt {
                conversion_name,
                for_encoding_name: _,
                to_encoding_name: _,
                func_name,
                def: _,
            } = x;
            for n in conversion_name {
                emit_node(n, cb);
            }
            for n in func_name {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateCastStmt(x) => {
            let protobuf::CreateCastStmt {
                sourcetype,
                targettype,
                func,
                context: _,
                inout: _,
            } = x;
            if let Some(n) = sourcetype {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = targettype {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = func {
                cb(NodeRef::ObjectWithArgs(n));
            }
        }
        NodeRef::CreateTransformStmt(x) => {
            let protobuf::CreateTransformStmt {
                replace: _,
                type_name,
                lang: _,
                fromsql,
                tosql,
            } = x;
            if let Some(n) = type_name {
                cb(NodeRef::TypeName(n));
            }
            if let Some(n) = fromsql {
                cb(NodeRef::ObjectWithArgs(n));
            }
            if let Some(n) = tosql {
                cb(NodeRef::ObjectWithArgs(n));
            }
        }
        NodeRef::PrepareStmt(x) => {
            let protobuf::PrepareStmt {
                name: _,
                argtypes,
                query,
            } = x;
            for n in argtypes {
                emit_node(n, cb);
            }
            if let Some(n) = query {
                emit_node(n, cb);
            }
        }
        NodeRef::ExecuteStmt(x) => {
            let protobuf::ExecuteStmt { name: _, params } = x;
            for n in params {
                emit_node(n, cb);
            }
        }
        NodeRef::DeallocateStmt(x) => {
            let protobuf::DeallocateStmt {
                name: _,
                isall: _,
                location: _,
            } = x;
        }
        NodeRef::DropOwnedStmt(x) => {
            let protobuf::DropOwnedStmt { roles, behavior: _ } = x;
            for n in roles {
                emit_node(n, cb);
            }
        }
        NodeRef::ReassignOwnedStmt(x) => {
            let protobuf::ReassignOwnedStmt { roles, newrole } = x;
            for n in roles {
                emit_node(n, cb);
            }
            if let Some(n) = newrole {
                cb(NodeRef::RoleSpec(n));
            }
        }
        NodeRef::AlterTsdictionaryStmt(x) => {
            let protobuf::AlterTsDictionaryStmt { dictname, options } = x;
            for n in dictname {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterTsconfigurationStmt(x) => {
            let protobuf::AlterTsConfigurationStmt {
                kind: _,
                cfgname,
                tokentype,
                dicts,
                r#override: _,
                replace: _,
                missing_ok: _,
            } = x;
            for n in cfgname {
                emit_node(n, cb);
            }
            for n in tokentype {
                emit_node(n, cb);
            }
            for n in dicts {
                emit_node(n, cb);
            }
        }
        NodeRef::PublicationTable(x) => {
            let protobuf::PublicationTable {
                relation,
                where_clause,
                columns,
            } = x;
            if let Some(n) = relation {
                cb(NodeRef::RangeVar(n));
            }
            if let Some(n) = where_clause {
                emit_node(n, cb);
            }
            for n in columns {
                emit_node(n, cb);
            }
        }
        NodeRef::PublicationObjSpec(x) => {
            let protobuf::PublicationObjSpec {
                pubobjtype: _,
                name: _,
                pubtable,
                location: _,
            } = x;
            if let Some(n) = pubtable {
                cb(NodeRef::PublicationTable(n));
            }
        }
        NodeRef::CreatePublicationStmt(x) => {
            let protobuf::CreatePublicationStmt {
                pubname: _,
                options,
                pubobjects,
                for_all_tables: _,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
            for n in pubobjects {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterPublicationStmt(x) => {
            let protobuf::AlterPublicationStmt {
                pubname: _,
                options,
                pubobjects,
                for_all_tables: _,
                action: _,
            } = x;
            for n in options {
                emit_node(n, cb);
            }
            for n in pubobjects {
                emit_node(n, cb);
            }
        }
        NodeRef::CreateSubscriptionStmt(x) => {
            let protobuf::CreateSubscriptionStmt {
                subname: _,
                conninfo: _,
                publication,
                options,
                conninfo_location: _,
            } = x;
            for n in publication {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::AlterSubscriptionStmt(x) => {
            let protobuf::AlterSubscriptionStmt {
                kind: _,
                subname: _,
                conninfo: _,
                publication,
                options,
                conninfo_location: _,
            } = x;
            for n in publication {
                emit_node(n, cb);
            }
            for n in options {
                emit_node(n, cb);
            }
        }
        NodeRef::DropSubscriptionStmt(x) => {
            let protobuf::DropSubscriptionStmt {
                subname: _,
                missing_ok: _,
                behavior: _,
            } = x;
        }
        NodeRef::Integer(x) => {
            let protobuf::Integer { ival: _ } = x;
        }
        NodeRef::Float(x) => {
            let protobuf::Float { fval: _ } = x;
        }
        NodeRef::Boolean(x) => {
            let protobuf::Boolean { boolval: _ } = x;
        }
        NodeRef::String(x) => {
            let protobuf::String { sval: _ } = x;
        }
        NodeRef::BitString(x) => {
            let protobuf::BitString { bsval: _ } = x;
        }
        NodeRef::List(x) => {
            let protobuf::List { items } = x;
            for n in items {
                emit_node(n, cb);
            }
        }
        NodeRef::IntList(x) => {
            let protobuf::IntList { items } = x;
            for n in items {
                emit_node(n, cb);
            }
        }
        NodeRef::OidList(x) => {
            let protobuf::OidList { items } = x;
            for n in items {
                emit_node(n, cb);
            }
        }
        NodeRef::AConst(x) => {
            let protobuf::AConst {
                isnull: _,
                location: _,
                val: _,
            } = x;
        }
    }
}

/// The name of the node kind, e.g. `"SelectStmt"`.
pub(crate) fn variant_name(node: NodeRef<'_>) -> &'static str {
    match node {
        NodeRef::Alias(_) => "Alias",
        NodeRef::RangeVar(_) => "RangeVar",
        NodeRef::TableFunc(_) => "TableFunc",
        NodeRef::IntoClause(_) => "IntoClause",
        NodeRef::Var(_) => "Var",
        NodeRef::Param(_) => "Param",
        NodeRef::Aggref(_) => "Aggref",
        NodeRef::GroupingFunc(_) => "GroupingFunc",
        NodeRef::WindowFunc(_) => "WindowFunc",
        NodeRef::WindowFuncRunCondition(_) => "WindowFuncRunCondition",
        NodeRef::MergeSupportFunc(_) => "MergeSupportFunc",
        NodeRef::SubscriptingRef(_) => "SubscriptingRef",
        NodeRef::FuncExpr(_) => "FuncExpr",
        NodeRef::NamedArgExpr(_) => "NamedArgExpr",
        NodeRef::OpExpr(_) => "OpExpr",
        NodeRef::DistinctExpr(_) => "DistinctExpr",
        NodeRef::NullIfExpr(_) => "NullIfExpr",
        NodeRef::ScalarArrayOpExpr(_) => "ScalarArrayOpExpr",
        NodeRef::BoolExpr(_) => "BoolExpr",
        NodeRef::SubLink(_) => "SubLink",
        NodeRef::SubPlan(_) => "SubPlan",
        NodeRef::AlternativeSubPlan(_) => "AlternativeSubPlan",
        NodeRef::FieldSelect(_) => "FieldSelect",
        NodeRef::FieldStore(_) => "FieldStore",
        NodeRef::RelabelType(_) => "RelabelType",
        NodeRef::CoerceViaIo(_) => "CoerceViaIo",
        NodeRef::ArrayCoerceExpr(_) => "ArrayCoerceExpr",
        NodeRef::ConvertRowtypeExpr(_) => "ConvertRowtypeExpr",
        NodeRef::CollateExpr(_) => "CollateExpr",
        NodeRef::CaseExpr(_) => "CaseExpr",
        NodeRef::CaseWhen(_) => "CaseWhen",
        NodeRef::CaseTestExpr(_) => "CaseTestExpr",
        NodeRef::ArrayExpr(_) => "ArrayExpr",
        NodeRef::RowExpr(_) => "RowExpr",
        NodeRef::RowCompareExpr(_) => "RowCompareExpr",
        NodeRef::CoalesceExpr(_) => "CoalesceExpr",
        NodeRef::MinMaxExpr(_) => "MinMaxExpr",
        NodeRef::SqlvalueFunction(_) => "SqlvalueFunction",
        NodeRef::XmlExpr(_) => "XmlExpr",
        NodeRef::JsonFormat(_) => "JsonFormat",
        NodeRef::JsonReturning(_) => "JsonReturning",
        NodeRef::JsonValueExpr(_) => "JsonValueExpr",
        NodeRef::JsonConstructorExpr(_) => "JsonConstructorExpr",
        NodeRef::JsonIsPredicate(_) => "JsonIsPredicate",
        NodeRef::JsonBehavior(_) => "JsonBehavior",
        NodeRef::JsonExpr(_) => "JsonExpr",
        NodeRef::JsonTablePath(_) => "JsonTablePath",
        NodeRef::JsonTablePathScan(_) => "JsonTablePathScan",
        NodeRef::JsonTableSiblingJoin(_) => "JsonTableSiblingJoin",
        NodeRef::NullTest(_) => "NullTest",
        NodeRef::BooleanTest(_) => "BooleanTest",
        NodeRef::MergeAction(_) => "MergeAction",
        NodeRef::CoerceToDomain(_) => "CoerceToDomain",
        NodeRef::CoerceToDomainValue(_) => "CoerceToDomainValue",
        NodeRef::SetToDefault(_) => "SetToDefault",
        NodeRef::CurrentOfExpr(_) => "CurrentOfExpr",
        NodeRef::NextValueExpr(_) => "NextValueExpr",
        NodeRef::InferenceElem(_) => "InferenceElem",
        NodeRef::ReturningExpr(_) => "ReturningExpr",
        NodeRef::TargetEntry(_) => "TargetEntry",
        NodeRef::RangeTblRef(_) => "RangeTblRef",
        NodeRef::JoinExpr(_) => "JoinExpr",
        NodeRef::FromExpr(_) => "FromExpr",
        NodeRef::OnConflictExpr(_) => "OnConflictExpr",
        NodeRef::Query(_) => "Query",
        NodeRef::TypeName(_) => "TypeName",
        NodeRef::ColumnRef(_) => "ColumnRef",
        NodeRef::ParamRef(_) => "ParamRef",
        NodeRef::AExpr(_) => "AExpr",
        NodeRef::TypeCast(_) => "TypeCast",
        NodeRef::CollateClause(_) => "CollateClause",
        NodeRef::RoleSpec(_) => "RoleSpec",
        NodeRef::FuncCall(_) => "FuncCall",
        NodeRef::AStar(_) => "AStar",
        NodeRef::AIndices(_) => "AIndices",
        NodeRef::AIndirection(_) => "AIndirection",
        NodeRef::AArrayExpr(_) => "AArrayExpr",
        NodeRef::ResTarget(_) => "ResTarget",
        NodeRef::MultiAssignRef(_) => "MultiAssignRef",
        NodeRef::SortBy(_) => "SortBy",
        NodeRef::WindowDef(_) => "WindowDef",
        NodeRef::RangeSubselect(_) => "RangeSubselect",
        NodeRef::RangeFunction(_) => "RangeFunction",
        NodeRef::RangeTableFunc(_) => "RangeTableFunc",
        NodeRef::RangeTableFuncCol(_) => "RangeTableFuncCol",
        NodeRef::RangeTableSample(_) => "RangeTableSample",
        NodeRef::ColumnDef(_) => "ColumnDef",
        NodeRef::TableLikeClause(_) => "TableLikeClause",
        NodeRef::IndexElem(_) => "IndexElem",
        NodeRef::DefElem(_) => "DefElem",
        NodeRef::LockingClause(_) => "LockingClause",
        NodeRef::XmlSerialize(_) => "XmlSerialize",
        NodeRef::PartitionElem(_) => "PartitionElem",
        NodeRef::PartitionSpec(_) => "PartitionSpec",
        NodeRef::PartitionBoundSpec(_) => "PartitionBoundSpec",
        NodeRef::PartitionRangeDatum(_) => "PartitionRangeDatum",
        NodeRef::PartitionCmd(_) => "PartitionCmd",
        NodeRef::RangeTblEntry(_) => "RangeTblEntry",
        NodeRef::RtepermissionInfo(_) => "RtepermissionInfo",
        NodeRef::RangeTblFunction(_) => "RangeTblFunction",
        NodeRef::TableSampleClause(_) => "TableSampleClause",
        NodeRef::WithCheckOption(_) => "WithCheckOption",
        NodeRef::SortGroupClause(_) => "SortGroupClause",
        NodeRef::GroupingSet(_) => "GroupingSet",
        NodeRef::WindowClause(_) => "WindowClause",
        NodeRef::RowMarkClause(_) => "RowMarkClause",
        NodeRef::WithClause(_) => "WithClause",
        NodeRef::InferClause(_) => "InferClause",
        NodeRef::OnConflictClause(_) => "OnConflictClause",
        NodeRef::CtesearchClause(_) => "CtesearchClause",
        NodeRef::CtecycleClause(_) => "CtecycleClause",
        NodeRef::CommonTableExpr(_) => "CommonTableExpr",
        NodeRef::MergeWhenClause(_) => "MergeWhenClause",
        NodeRef::ReturningOption(_) => "ReturningOption",
        NodeRef::ReturningClause(_) => "ReturningClause",
        NodeRef::TriggerTransition(_) => "TriggerTransition",
        NodeRef::JsonOutput(_) => "JsonOutput",
        NodeRef::JsonArgument(_) => "JsonArgument",
        NodeRef::JsonFuncExpr(_) => "JsonFuncExpr",
        NodeRef::JsonTablePathSpec(_) => "JsonTablePathSpec",
        NodeRef::JsonTable(_) => "JsonTable",
        NodeRef::JsonTableColumn(_) => "JsonTableColumn",
        NodeRef::JsonKeyValue(_) => "JsonKeyValue",
        NodeRef::JsonParseExpr(_) => "JsonParseExpr",
        NodeRef::JsonScalarExpr(_) => "JsonScalarExpr",
        NodeRef::JsonSerializeExpr(_) => "JsonSerializeExpr",
        NodeRef::JsonObjectConstructor(_) => "JsonObjectConstructor",
        NodeRef::JsonArrayConstructor(_) => "JsonArrayConstructor",
        NodeRef::JsonArrayQueryConstructor(_) => "JsonArrayQueryConstructor",
        NodeRef::JsonAggConstructor(_) => "JsonAggConstructor",
        NodeRef::JsonObjectAgg(_) => "JsonObjectAgg",
        NodeRef::JsonArrayAgg(_) => "JsonArrayAgg",
        NodeRef::RawStmt(_) => "RawStmt",
        NodeRef::InsertStmt(_) => "InsertStmt",
        NodeRef::DeleteStmt(_) => "DeleteStmt",
        NodeRef::UpdateStmt(_) => "UpdateStmt",
        NodeRef::MergeStmt(_) => "MergeStmt",
        NodeRef::SelectStmt(_) => "SelectStmt",
        NodeRef::SetOperationStmt(_) => "SetOperationStmt",
        NodeRef::ReturnStmt(_) => "ReturnStmt",
        NodeRef::PlassignStmt(_) => "PlassignStmt",
        NodeRef::CreateSchemaStmt(_) => "CreateSchemaStmt",
        NodeRef::AlterTableStmt(_) => "AlterTableStmt",
        NodeRef::AlterTableCmd(_) => "AlterTableCmd",
        NodeRef::AtalterConstraint(_) => "AtalterConstraint",
        NodeRef::ReplicaIdentityStmt(_) => "ReplicaIdentityStmt",
        NodeRef::AlterCollationStmt(_) => "AlterCollationStmt",
        NodeRef::AlterDomainStmt(_) => "AlterDomainStmt",
        NodeRef::GrantStmt(_) => "GrantStmt",
        NodeRef::ObjectWithArgs(_) => "ObjectWithArgs",
        NodeRef::AccessPriv(_) => "AccessPriv",
        NodeRef::GrantRoleStmt(_) => "GrantRoleStmt",
        NodeRef::AlterDefaultPrivilegesStmt(_) => "AlterDefaultPrivilegesStmt",
        NodeRef::CopyStmt(_) => "CopyStmt",
        NodeRef::VariableSetStmt(_) => "VariableSetStmt",
        NodeRef::VariableShowStmt(_) => "VariableShowStmt",
        NodeRef::CreateStmt(_) => "CreateStmt",
        NodeRef::Constraint(_) => "Constraint",
        NodeRef::CreateTableSpaceStmt(_) => "CreateTableSpaceStmt",
        NodeRef::DropTableSpaceStmt(_) => "DropTableSpaceStmt",
        NodeRef::AlterTableSpaceOptionsStmt(_) => "AlterTableSpaceOptionsStmt",
        NodeRef::AlterTableMoveAllStmt(_) => "AlterTableMoveAllStmt",
        NodeRef::CreateExtensionStmt(_) => "CreateExtensionStmt",
        NodeRef::AlterExtensionStmt(_) => "AlterExtensionStmt",
        NodeRef::AlterExtensionContentsStmt(_) => "AlterExtensionContentsStmt",
        NodeRef::CreateFdwStmt(_) => "CreateFdwStmt",
        NodeRef::AlterFdwStmt(_) => "AlterFdwStmt",
        NodeRef::CreateForeignServerStmt(_) => "CreateForeignServerStmt",
        NodeRef::AlterForeignServerStmt(_) => "AlterForeignServerStmt",
        NodeRef::CreateForeignTableStmt(_) => "CreateForeignTableStmt",
        NodeRef::CreateUserMappingStmt(_) => "CreateUserMappingStmt",
        NodeRef::AlterUserMappingStmt(_) => "AlterUserMappingStmt",
        NodeRef::DropUserMappingStmt(_) => "DropUserMappingStmt",
        NodeRef::ImportForeignSchemaStmt(_) => "ImportForeignSchemaStmt",
        NodeRef::CreatePolicyStmt(_) => "CreatePolicyStmt",
        NodeRef::AlterPolicyStmt(_) => "AlterPolicyStmt",
        NodeRef::CreateAmStmt(_) => "CreateAmStmt",
        NodeRef::CreateTrigStmt(_) => "CreateTrigStmt",
        NodeRef::CreateEventTrigStmt(_) => "CreateEventTrigStmt",
        NodeRef::AlterEventTrigStmt(_) => "AlterEventTrigStmt",
        NodeRef::CreatePlangStmt(_) => "CreatePlangStmt",
        NodeRef::CreateRoleStmt(_) => "CreateRoleStmt",
        NodeRef::AlterRoleStmt(_) => "AlterRoleStmt",
        NodeRef::AlterRoleSetStmt(_) => "AlterRoleSetStmt",
        NodeRef::DropRoleStmt(_) => "DropRoleStmt",
        NodeRef::CreateSeqStmt(_) => "CreateSeqStmt",
        NodeRef::AlterSeqStmt(_) => "AlterSeqStmt",
        NodeRef::DefineStmt(_) => "DefineStmt",
        NodeRef::CreateDomainStmt(_) => "CreateDomainStmt",
        NodeRef::CreateOpClassStmt(_) => "CreateOpClassStmt",
        NodeRef::CreateOpClassItem(_) => "CreateOpClassItem",
        NodeRef::CreateOpFamilyStmt(_) => "CreateOpFamilyStmt",
        NodeRef::AlterOpFamilyStmt(_) => "AlterOpFamilyStmt",
        NodeRef::DropStmt(_) => "DropStmt",
        NodeRef::TruncateStmt(_) => "TruncateStmt",
        NodeRef::CommentStmt(_) => "CommentStmt",
        NodeRef::SecLabelStmt(_) => "SecLabelStmt",
        NodeRef::DeclareCursorStmt(_) => "DeclareCursorStmt",
        NodeRef::ClosePortalStmt(_) => "ClosePortalStmt",
        NodeRef::FetchStmt(_) => "FetchStmt",
        NodeRef::IndexStmt(_) => "IndexStmt",
        NodeRef::CreateStatsStmt(_) => "CreateStatsStmt",
        NodeRef::StatsElem(_) => "StatsElem",
        NodeRef::AlterStatsStmt(_) => "AlterStatsStmt",
        NodeRef::CreateFunctionStmt(_) => "CreateFunctionStmt",
        NodeRef::FunctionParameter(_) => "FunctionParameter",
        NodeRef::AlterFunctionStmt(_) => "AlterFunctionStmt",
        NodeRef::DoStmt(_) => "DoStmt",
        NodeRef::InlineCodeBlock(_) => "InlineCodeBlock",
        NodeRef::CallStmt(_) => "CallStmt",
        NodeRef::CallContext(_) => "CallContext",
        NodeRef::RenameStmt(_) => "RenameStmt",
        NodeRef::AlterObjectDependsStmt(_) => "AlterObjectDependsStmt",
        NodeRef::AlterObjectSchemaStmt(_) => "AlterObjectSchemaStmt",
        NodeRef::AlterOwnerStmt(_) => "AlterOwnerStmt",
        NodeRef::AlterOperatorStmt(_) => "AlterOperatorStmt",
        NodeRef::AlterTypeStmt(_) => "AlterTypeStmt",
        NodeRef::RuleStmt(_) => "RuleStmt",
        NodeRef::NotifyStmt(_) => "NotifyStmt",
        NodeRef::ListenStmt(_) => "ListenStmt",
        NodeRef::UnlistenStmt(_) => "UnlistenStmt",
        NodeRef::TransactionStmt(_) => "TransactionStmt",
        NodeRef::CompositeTypeStmt(_) => "CompositeTypeStmt",
        NodeRef::CreateEnumStmt(_) => "CreateEnumStmt",
        NodeRef::CreateRangeStmt(_) => "CreateRangeStmt",
        NodeRef::AlterEnumStmt(_) => "AlterEnumStmt",
        NodeRef::ViewStmt(_) => "ViewStmt",
        NodeRef::LoadStmt(_) => "LoadStmt",
        NodeRef::CreatedbStmt(_) => "CreatedbStmt",
        NodeRef::AlterDatabaseStmt(_) => "AlterDatabaseStmt",
        NodeRef::AlterDatabaseRefreshCollStmt(_) => "AlterDatabaseRefreshCollStmt",
        NodeRef::AlterDatabaseSetStmt(_) => "AlterDatabaseSetStmt",
        NodeRef::DropdbStmt(_) => "DropdbStmt",
        NodeRef::AlterSystemStmt(_) => "AlterSystemStmt",
        NodeRef::ClusterStmt(_) => "ClusterStmt",
        NodeRef::VacuumStmt(_) => "VacuumStmt",
        NodeRef::VacuumRelation(_) => "VacuumRelation",
        NodeRef::ExplainStmt(_) => "ExplainStmt",
        NodeRef::CreateTableAsStmt(_) => "CreateTableAsStmt",
        NodeRef::RefreshMatViewStmt(_) => "RefreshMatViewStmt",
        NodeRef::CheckPointStmt(_) => "CheckPointStmt",
        NodeRef::DiscardStmt(_) => "DiscardStmt",
        NodeRef::LockStmt(_) => "LockStmt",
        NodeRef::ConstraintsSetStmt(_) => "ConstraintsSetStmt",
        NodeRef::ReindexStmt(_) => "ReindexStmt",
        NodeRef::CreateConversionStmt(_) => "CreateConversionStmt",
        NodeRef::CreateCastStmt(_) => "CreateCastStmt",
        NodeRef::CreateTransformStmt(_) => "CreateTransformStmt",
        NodeRef::PrepareStmt(_) => "PrepareStmt",
        NodeRef::ExecuteStmt(_) => "ExecuteStmt",
        NodeRef::DeallocateStmt(_) => "DeallocateStmt",
        NodeRef::DropOwnedStmt(_) => "DropOwnedStmt",
        NodeRef::ReassignOwnedStmt(_) => "ReassignOwnedStmt",
        NodeRef::AlterTsdictionaryStmt(_) => "AlterTsdictionaryStmt",
        NodeRef::AlterTsconfigurationStmt(_) => "AlterTsconfigurationStmt",
        NodeRef::PublicationTable(_) => "PublicationTable",
        NodeRef::PublicationObjSpec(_) => "PublicationObjSpec",
        NodeRef::CreatePublicationStmt(_) => "CreatePublicationStmt",
        NodeRef::AlterPublicationStmt(_) => "AlterPublicationStmt",
        NodeRef::CreateSubscriptionStmt(_) => "CreateSubscriptionStmt",
        NodeRef::AlterSubscriptionStmt(_) => "AlterSubscriptionStmt",
        NodeRef::DropSubscriptionStmt(_) => "DropSubscriptionStmt",
        NodeRef::Integer(_) => "Integer",
        NodeRef::Float(_) => "Float",
        NodeRef::Boolean(_) => "Boolean",
        NodeRef::String(_) => "String",
        NodeRef::BitString(_) => "BitString",
        NodeRef::List(_) => "List",
        NodeRef::IntList(_) => "IntList",
        NodeRef::OidList(_) => "OidList",
        NodeRef::AConst(_) => "AConst",
    }
}

fn emit_node<'a>(n: &'a Node, cb: &mut dyn FnMut(NodeRef<'a>)) {
    if let Some(n) = &n.node {
        cb(n.to_ref());
    }
}
