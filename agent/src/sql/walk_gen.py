#!/usr/bin/env python3
"""Generates agent/src/sql/walk.rs (a complete child visitor over libpg_query parse trees) from pg_query's prost-generated protobuf.rs.

Usage: python3 walk_gen.py PATH/TO/pg_query-X/src/protobuf.rs VERSION > walk.rs

Then run `rustfmt --edition 2024 walk.rs`.
"""
import re, sys

src = open(sys.argv[1]).read()
structs = {}
for m in re.finditer(r'^pub struct (\w+) \{\n(.*?)^\}', src, re.S | re.M):
    name, body = m.group(1), m.group(2)
    fields = []
    parts = body.split('#[prost(')[1:]
    for p in parts:
        attr, rest = p.split(")]", 1)
        rest = re.sub(r"^\s*///.*$", "", rest, flags=re.M)
        fm = re.match(r'\s*pub (r#)?(\w+):\s*(.*?),\s*$', rest, re.S)
        raw, fname, ty = fm.group(1) or '', fm.group(2), re.sub(r'\s+', '', fm.group(3)).replace(',>', '>')
        kind = attr.split(',')[0].strip()
        fields.append((raw + fname, kind, ty))
    structs[name] = fields
for m in re.finditer(r'^pub struct (\w+) \{\}', src, re.M):
    structs[m.group(1)] = []

# Node enum variants
enum_body = re.search(r'pub enum Node \{\n(.*?)^    \}', src, re.S | re.M).group(1)
pairs = re.findall(r'^        (\w+)\(\s*(?:::prost::alloc::boxed::Box<\s*)?super::(\w+)', enum_body, re.M)
variants = [v for v, _ in pairs]
vtype = dict(pairs)
types_with_variant = {t: v for v, t in pairs}
vset = set(types_with_variant)

def inner(ty):
    t = ty
    for w in ['::core::option::Option<', '::prost::alloc::vec::Vec<', '::prost::alloc::boxed::Box<']:
        t = t.replace(w, '')
    return t.rstrip('>')

out = []
w = out.append
w('//! Complete traversal of libpg_query parse trees: the children of every node kind.')
w('//!')
w('//! GENERATED from pg_query ' + sys.argv[2] + "'s `protobuf.rs` by `walk_gen.py` (in this")
w('//! directory): do not edit by hand. Every struct is destructured without `..`, so a field')
w('//! added by a new pg_query version is a compile error here until this file is regenerated')
w('//! (`python3 agent/src/sql/walk_gen.py $CARGO_HOME/registry/src/*/pg_query-*/src/protobuf.rs')
w('//! VERSION > agent/src/sql/walk.rs`), so no child can be silently skipped.')
w('')
w('use pg_query::protobuf::{self, Node};')
w('use pg_query::NodeRef;')
w('')
w('/// Calls `cb` on each direct child of `node` (in field order). Children that are not themselves')
w('/// node kinds (e.g. a `WithClause` field typed directly) are still passed as [`NodeRef`]s when')
w('/// pg_query has a variant for them; otherwise their own children are visited in their place.')
w("pub(crate) fn for_each_child<'a>(node: NodeRef<'a>, cb: &mut dyn FnMut(NodeRef<'a>)) {")
w('    match node {')
helpers = set()
def field_code(fname, kind, ty, indent):
    lines = []
    if kind != 'message':
        return lines
    it = inner(ty)
    rep = ty.startswith('::prost::alloc::vec::Vec<')
    opt = ty.startswith('::core::option::Option<')
    if it == 'Node':
        if rep:
            lines.append(f'{indent}for n in {fname} {{ emit_node(n, cb); }}')
        elif opt:
            lines.append(f'{indent}if let Some(n) = {fname} {{ emit_node(n, cb); }}')
        else:
            lines.append(f'{indent}emit_node({fname}, cb);')
    else:
        if it in vset:
            call = lambda v: f'cb(NodeRef::{types_with_variant[it]}({v}))'
        else:
            helpers.add(it)
            call = lambda v: f'walk_{snake(it)}({v}, cb)'
        if rep:
            lines.append(f'{indent}for n in {fname} {{ {call("n")}; }}')
        elif opt:
            lines.append(f'{indent}if let Some(n) = {fname} {{ {call("n")}; }}')
        else:
            lines.append(f'{indent}{call(fname)};')
    return lines

def snake(n):
    return re.sub(r'(?<!^)(?=[A-Z])', '_', n).lower()

def destructure(sname, fields, var):
    binds = []
    for fname, kind, ty in fields:
        if kind == 'message':
            binds.append(fname)
        else:
            binds.append(f'{fname}: _')
    if not fields:
        return f'let protobuf::{sname} {{}} = {var};'
    return f'let protobuf::{sname} {{ ' + ', '.join(binds) + f' }} = {var};'

for v in variants:
    t = vtype[v]
    fields = structs[t]
    body = field_code_lines = []
    for fname, kind, ty in fields:
        body += field_code(fname, kind, ty, '            ')
    if not any(k == 'message' for _, k, _ in fields):
        w(f'        NodeRef::{v}(x) => {{')
        w(f'            {destructure(t, fields, "x")}')
        w('        }')
    else:
        w(f'        NodeRef::{v}(x) => {{')
        w(f'            {destructure(t, fields, "x")}')
        out.extend(body)
        w('        }')
w('    }')
w('}')
w('')
w('/// The name of the node kind, e.g. `"SelectStmt"`.')
w("pub(crate) fn variant_name(node: NodeRef<'_>) -> &'static str {")
w('    match node {')
for v in variants:
    w(f'        NodeRef::{v}(_) => "{v}",')
w('    }')
w('}')
w('')
w("fn emit_node<'a>(n: &'a Node, cb: &mut dyn FnMut(NodeRef<'a>)) {")
w('    if let Some(n) = &n.node {')
w('        cb(n.to_ref());')
w('    }')
w('}')
# helpers for non-variant struct types (transitively)
done = set()
while helpers - done:
    h = sorted(helpers - done)[0]
    done.add(h)
    fields = structs[h]
    w('')
    w(f"fn walk_{snake(h)}<'a>(x: &'a protobuf::{h}, cb: &mut dyn FnMut(NodeRef<'a>)) {{")
    w(f'    {destructure(h, fields, "x")}')
    for fname, kind, ty in fields:
        out.extend(field_code(fname, kind, ty, '    '))
    w('}')
w('')
print('\n'.join(out))
