//! Property tests for the lossless editor over generated modules: after `set`,
//! the output parses, `get` reads the new value, every byte outside the edited
//! range is unchanged, and repeating the same `set` changes nothing. And the
//! local validation of an edit (`verify::local`) always agrees with a full
//! re-parse and duplicate check (`verify::full`).

use nixflip::nixedit::verify;
use nixflip::nixedit::{self, AttrPath, NewValue, NixFile, Reading, TextEdit, Value};
use proptest::prelude::*;
use rnix::SyntaxKind;

/// A generated attribute tree: leaves are literals.
#[derive(Clone, Debug)]
enum Tree {
    Leaf(Value),
    Set(Vec<(String, Tree)>),
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "role", "peer-host", "x.y", "enable", "_z"])
        .prop_map(str::to_string)
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-50i64..5000).prop_map(Value::Int),
        "[a-z0-9 ./:\"\\\\$]{0,12}".prop_map(Value::String),
        Just(Value::Null),
        prop::collection::vec("[a-z0-9./]{1,10}".prop_map(Value::String), 0..3)
            .prop_map(Value::List),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = literal().prop_map(Tree::Leaf);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec((key(), inner), 1..4).prop_map(|entries| {
            // Unique keys per set, as Nix requires.
            let mut seen = std::collections::BTreeSet::new();
            Tree::Set(
                entries
                    .into_iter()
                    .filter(|(k, _)| seen.insert(k.clone()))
                    .collect(),
            )
        })
    })
}

/// Render `tree` as bindings, nesting or dotting by the `dotted` bits.
fn render(
    prefix: &[String],
    tree: &Tree,
    dotted: &mut impl Iterator<Item = bool>,
    indent: usize,
    out: &mut String,
) {
    let Tree::Set(entries) = tree else { return };
    for (k, child) in entries {
        let mut path = prefix.to_vec();
        path.push(k.clone());
        let pad = " ".repeat(indent);
        let key_text = path
            .iter()
            .map(|k| nixedit::path::render_key(k))
            .collect::<Vec<_>>()
            .join(".");
        match child {
            Tree::Leaf(v) => out.push_str(&format!("{pad}{key_text} = {};\n", v.render_inline())),
            Tree::Set(_) if dotted.next().unwrap_or(false) => {
                render(&path, child, dotted, indent, out)
            }
            Tree::Set(_) => {
                out.push_str(&format!("{pad}{key_text} = {{\n"));
                render(&[], child, dotted, indent + 2, out);
                out.push_str(&format!("{pad}}};\n"));
            }
        }
    }
}

/// A module body: always a set with at least one entry.
fn module() -> impl Strategy<Value = Tree> {
    tree().prop_flat_map(|t| match t {
        Tree::Set(entries) => Just(Tree::Set(entries)).boxed(),
        leaf => key()
            .prop_map(move |k| Tree::Set(vec![(k, leaf.clone())]))
            .boxed(),
    })
}

fn leaf_paths(prefix: &[String], tree: &Tree, out: &mut Vec<Vec<String>>) {
    match tree {
        Tree::Leaf(_) => out.push(prefix.to_vec()),
        Tree::Set(entries) => {
            for (k, child) in entries {
                let mut p = prefix.to_vec();
                p.push(k.clone());
                leaf_paths(&p, child, out);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn set_is_lossless_readable_and_idempotent(
        tree in module(),
        styles in prop::collection::vec(any::<bool>(), 16),
        pick in any::<prop::sample::Index>(),
        new_key in key(),
        value in literal(),
        insert in any::<bool>(),
    ) {
                let mut body = String::new();
        render(&[], &tree, &mut styles.into_iter(), 2, &mut body);
        let text = format!("{{ lib, ... }}:\n{{\n{body}}}\n");
        let file = NixFile::parse("gen.nix", text.clone()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;

        let mut leaves = Vec::new();
        leaf_paths(&[], &tree, &mut leaves);
        let mut target = leaves[pick.index(leaves.len())].clone();
        if insert {
            // A fresh key under the leaf's parent: exercises insertion.
            target.pop();
            target.push(format!("{new_key}-new"));
        }
        let path = AttrPath::new(target);
        let new = NewValue::Literal(value.clone());

        let edit = file.plan_set(&path, &new).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let edited = nixedit::set(&file, &path, &new).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let out = &edited.text;

        // Bytes outside the edited range are unchanged.
        if let Some(edit) = &edit {
            prop_assert_eq!(&out[..edit.range.start], &text[..edit.range.start]);
            let tail = text.len() - edit.range.end;
            prop_assert_eq!(&out[out.len() - tail..], &text[edit.range.end..]);
            if !insert {
                let old = file.get(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(edit.range.clone(), old.span, "a replacement touches only the old value");
            } else {
                prop_assert!(edit.range.is_empty() || text[edit.range.clone()].trim().is_empty());
            }
        } else {
            prop_assert_eq!(out, &text);
        }

        // The result parses and reads back the new value.
        let reparsed = NixFile::parse("gen.nix", out.clone()).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
        let found = reparsed.get(&path).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
        prop_assert_eq!(found.value, Some(value));

        // A second identical set is a no-op.
        let again = nixedit::set(&reparsed, &path, &new).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!again.changed);
        prop_assert_eq!(&again.text, out);
    }

    #[test]
    fn unset_then_reparse_removes_only_that_binding(tree in module(), styles in prop::collection::vec(any::<bool>(), 16), pick in any::<prop::sample::Index>()) {
                let mut body = String::new();
        render(&[], &tree, &mut styles.into_iter(), 2, &mut body);
        let text = format!("{{ ... }}:\n{{\n{body}}}\n");
        let file = NixFile::parse("gen.nix", text.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut leaves = Vec::new();
        leaf_paths(&[], &tree, &mut leaves);
        let path = AttrPath::new(leaves[pick.index(leaves.len())].clone());
        let edited = nixedit::unset(&file, &path).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let reparsed = NixFile::parse("gen.nix", edited.text.clone()).map_err(|e| TestCaseError::fail(format!("{e}\n{}", edited.text)))?;
        prop_assert!(reparsed.lookup(&path).map_err(|e| TestCaseError::fail(e.to_string()))?.is_none());
        for other in leaves.iter().filter(|l| **l != *path.keys()) {
            let p = AttrPath::new(other.clone());
            prop_assert_eq!(reparsed.get(&p).ok().and_then(|f| f.value), file.get(&p).ok().and_then(|f| f.value));
        }
    }
}

/// Generated module text in many shapes: nested, dotted and quoted keys (few
/// distinct names, so duplicates happen), `rec`, `inherit`, the module-system
/// wrappers, opaque calls, `let`, parentheses, lists of sets, strings with
/// braces and interpolations, comments, explicit `config`/`options` modules.
fn body(depth: u32) -> BoxedStrategy<String> {
    let key = prop::sample::select(vec![
        "a", "b", "c", "\"a\"", "${\"b\"}", "a.b", "b.c", "config",
    ]);
    let leaf = prop::sample::select(vec![
        "1",
        "\"x\"",
        "\"}{\"",
        "\"${toString 1}\"",
        "[ 1 2 ]",
        "null",
        "lib.mkForce 2",
        "lib.mkDefault \"d\"",
        "x",
        "{ }",
        "''\n    ind }\n  ''",
    ])
    .prop_map(str::to_string);
    let entry = if depth == 0 {
        (key, leaf).prop_map(|(k, v)| format!("{k} = {v};")).boxed()
    } else {
        let inner = body(depth - 1);
        let value = (
            prop::sample::select(vec![
                "{ # open\n#\n}",
                "rec {#\n}",
                "lib.mkIf true {#\n}",
                "lib.mkMerge [ {#\n} { b = 1; } ]",
                "lib.mkForce {#\n}",
                "({#\n})",
                "f {#\n}",
                "let y = {#\n}; in y",
                "[ {#\n} ]",
                "\"${toString {#\n}}\"",
            ]),
            inner,
        )
            .prop_map(|(shape, inner)| shape.replacen("#\n", &format!("\n{inner}\n"), 1));
        prop_oneof![
            2 => (key.clone(), leaf).prop_map(|(k, v)| format!("{k} = {v};")),
            3 => (key.clone(), value).prop_map(|(k, v)| format!("{k} = {v};")),
            1 => prop::sample::select(vec!["inherit a;", "inherit b c;", "inherit (x) c;"])
                .prop_map(str::to_string),
            1 => Just("/* note */".to_string()),
        ]
        .boxed()
    };
    prop::collection::vec(entry, 0..5)
        .prop_map(|entries| entries.join("\n"))
        .boxed()
}

fn rich_module() -> impl Strategy<Value = String> {
    (
        body(3),
        prop::sample::select(vec![
            "{ lib, ... }:\n{\n#\n}\n",
            "{ lib, ... }: let x = 1; in {\n#\n}\n",
            "{ config, ... }: {\n  config = {\n#\n};\n  options = { };\n}\n",
            "{ ... }: lib.mkMerge [ {\n#\n} { a = 1; } ]\n",
            "{\n#\n}",
        ]),
    )
        .prop_map(|(body, shape)| shape.replacen("#\n", &format!("{body}\n"), 1))
}

/// Text to put somewhere: bindings (fresh, colliding, nested), wrappers, and
/// fragments that break the syntax on their own.
fn snippet() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "",
        " ",
        "a = 1;",
        "b.c = 2;",
        "\"a\" = 3;",
        "a = { x = 1; };",
        "a = { b = 1; };",
        "b = lib.mkForce { c = 1; };",
        "c = lib.mkMerge [ { a = 1; } { a = 2; } ];",
        "inherit a;",
        "inherit (x) b;",
        "a = 1; a = 2;",
        "config = { };",
        "options.a = 1;",
        "z = { };",
        "}",
        "{",
        "} ; z = {",
        "${",
        "\"",
        "''",
        ";",
        "=",
        "# c\n",
        "/*",
        "*/",
        "a = x: { };",
        "}: {",
        "a",
    ])
    .prop_map(str::to_string)
}

/// Places to edit in each attribute set: the byte range between its braces,
/// the boundaries between its entries, and the entries themselves.
struct SetPlaces {
    interior: std::ops::Range<usize>,
    boundaries: Vec<usize>,
    entries: Vec<std::ops::Range<usize>>,
}

fn set_places(text: &str) -> Vec<SetPlaces> {
    let root = rnix::Root::parse(text).syntax();
    let range = |n: &rnix::SyntaxNode| {
        usize::from(n.text_range().start())..usize::from(n.text_range().end())
    };
    root.descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_ATTR_SET)
        .filter_map(|set| {
            let open = set
                .children_with_tokens()
                .find(|t| t.kind() == SyntaxKind::TOKEN_L_BRACE)?;
            let close = set.last_token()?;
            let interior =
                usize::from(open.text_range().end())..usize::from(close.text_range().start());
            let entries: Vec<_> = set
                .children()
                .filter(|c| {
                    matches!(
                        c.kind(),
                        SyntaxKind::NODE_ATTRPATH_VALUE | SyntaxKind::NODE_INHERIT
                    )
                })
                .map(|c| range(&c))
                .collect();
            let boundaries = std::iter::once(interior.start)
                .chain(entries.iter().map(|e| e.end))
                .collect();
            Some(SetPlaces {
                interior,
                boundaries,
                entries,
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        // About half of the generated modules define an attribute twice.
        max_global_rejects: 20_000,
        ..ProptestConfig::default()
    })]

    /// Wherever the local check gives a verdict, the full check gives the
    /// same one. Edits go inside a random attribute set (where the local check
    /// applies) or anywhere at all.
    #[test]
    fn local_validation_agrees_with_full_reparse(
        text in rich_module(),
        kind in 0..4u8,
        pick in any::<prop::sample::Index>(),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        replacement in snippet(),
        nested in prop::bool::weighted(0.8),
    ) {
        // Generated modules may define an attribute twice: Nix (and so
        // nixflip) refuses those, and there is nothing to edit.
        let file = NixFile::parse("gen.nix", text.clone());
        prop_assume!(file.is_ok());
        let file = file.map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let sets = set_places(&text);
        // Mostly a set below the module body (the body is rarely local).
        let set = match sets.len() {
            n if nested && n > 1 => &sets[1 + pick.index(n - 1)],
            n => &sets[pick.index(n)],
        };
        let random_in = |span: std::ops::Range<usize>| {
            let len = span.end - span.start;
            let (x, y) = (a.index(len + 1), b.index(len + 1));
            span.start + x.min(y)..span.start + x.max(y)
        };
        let range = match kind {
            // Anywhere in the file, or anywhere inside a set's braces.
            0 => random_in(0..text.len()),
            1 => random_in(set.interior.clone()),
            // A new entry between two others, or one entry replaced.
            2 => {
                let at = set.boundaries[a.index(set.boundaries.len())];
                at..at
            }
            _ if set.entries.is_empty() => set.interior.clone(),
            _ => set.entries[a.index(set.entries.len())].clone(),
        };
        let edit = TextEdit { range, replacement };
        let new_text = nixedit::apply_edits(&text, std::slice::from_ref(&edit));
        let full = verify::full(&new_text).is_none();
        if let Some(local) = verify::local(&file, &edit) {
            prop_assert_eq!(local, full, "edit {:?}\n--- before\n{}\n--- after\n{}", edit, text, new_text);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        max_global_rejects: 20_000,
        ..ProptestConfig::default()
    })]

    /// Looking a path up through a walk focused on it (a fresh file) finds
    /// what a lookup through the walk of every binding finds, and plans the
    /// same edits.
    #[test]
    fn focused_lookup_agrees_with_full_walk(
        text in rich_module(),
        keys in prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "x", "config"]), 1..4),
        value in literal(),
    ) {
        let fresh = NixFile::parse("gen.nix", text.clone());
        prop_assume!(fresh.is_ok());
        let fresh = fresh.map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let walked = NixFile::parse("gen.nix", text.clone())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        // Walk every binding of this one first: its lookups then use that walk.
        prop_assert!(walked.bindings().len() < text.len());
        let path = AttrPath::new(keys.into_iter().map(str::to_string).collect());
        let show = |file: &NixFile| -> String {
            let found = match file.lookup(&path) {
                Ok(Some(b)) => format!("{:?} {} {}", b.node.text_range(), b.priority, b.conditional),
                Ok(None) => "none".to_string(),
                Err(e) => format!("{e:?}"),
            };
            let new = NewValue::Literal(value.clone());
            format!("{found}\n{:?}\n{:?}", file.plan_set(&path, &new), file.plan_unset(&path))
        };
        prop_assert_eq!(show(&fresh), show(&walked), "{}", text);
    }
}

/// A binding or container as the walk reports it, with scopes renumbered by
/// first appearance (a focused walk numbers them differently).
fn walk_summary(walk: &nixedit::walk::Walk, keep: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut scopes: Vec<usize> = Vec::new();
    let mut scope = |s: usize| match scopes.iter().position(|&x| x == s) {
        Some(i) => i,
        None => {
            scopes.push(s);
            scopes.len() - 1
        }
    };
    let mut out: Vec<String> = walk
        .bindings
        .iter()
        .filter(|b| keep(&b.path))
        .map(|b| {
            format!(
                "binding {:?} {:?} prefix={} prio={} cond={} desc={} inh={} decl={} scope={}",
                b.path,
                b.node.text_range(),
                b.prefix_len,
                b.priority,
                b.conditional,
                b.descended,
                b.inherited,
                b.declaration,
                scope(b.scope)
            )
        })
        .collect();
    out.extend(walk.containers.iter().filter(|c| keep(&c.path)).map(|c| {
        format!(
            "set {:?} {:?} prio={} cond={} top={} expl={}",
            c.path,
            c.node.text_range(),
            c.priority,
            c.conditional,
            c.top,
            c.explicit
        )
    }));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A walk focused on a path reports exactly the bindings and sets of the
    /// full walk whose paths lead to it or lie under it, in the same order
    /// and grouped into the same scopes.
    #[test]
    fn focused_walk_is_the_full_walk_filtered(
        text in rich_module(),
        keys in prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "x", "config"]), 0..4),
    ) {
        let root = rnix::Root::parse(&text).syntax();
        let target: Vec<String> = keys.into_iter().map(str::to_string).collect();
        let comparable = |p: &[String]| p.starts_with(&target) || target.starts_with(p);
        let full = nixedit::walk::walk(&root, Reading::Option);
        let focused = nixedit::walk::walk_focused(&root, Reading::Option, nixedit::walk::Focus::Path(target.clone()));
        prop_assert_eq!(walk_summary(&focused, |_| true), walk_summary(&full, comparable), "{}", text);
    }
}

/// The local check does apply where it should: edits inside nested sets.
#[test]
fn local_validation_covers_nested_edits() {
    let text = "{ lib, ... }:\n{\n  a = {\n    b = { c = 1; d = 2; };\n  };\n  a.b.e = 3;\n}\n";
    let file = NixFile::parse("t.nix", text).expect("parses");
    let at = |needle: &str| text.find(needle).expect("needle");
    let replace = |needle: &str, with: &str| TextEdit {
        range: at(needle)..at(needle) + needle.len(),
        replacement: with.to_string(),
    };
    // A value, a new sibling, and a sibling that collides with `a.b.e`.
    assert_eq!(verify::local(&file, &replace("1", "5")), Some(true));
    assert_eq!(
        verify::local(&file, &replace("d = 2;", "d = 2; f = 4;")),
        Some(true)
    );
    assert_eq!(
        verify::local(&file, &replace("d = 2;", "d = 2; e = 4;")),
        Some(false)
    );
    // Unbalanced on its own: the local check cannot tell, the full one can.
    assert_eq!(verify::local(&file, &replace("d = 2;", "d = 2; }")), None);
    // Entries of the module body are replaced locally too.
    assert_eq!(
        verify::local(&file, &replace("a.b.e = 3;", "z = 1;")),
        Some(true)
    );
    assert_eq!(
        verify::local(&file, &replace("a.b.e = 3;", "a.b.c = 3;")),
        Some(false)
    );
    // Through the editor: a nested set is checked locally and reads back.
    let path: AttrPath = "a.b.c".parse().expect("path");
    let edit = file
        .plan_set(&path, &NewValue::Literal(Value::Int(7)))
        .expect("plan")
        .expect("an edit");
    assert_eq!(verify::local(&file, &edit), Some(true));
}

/// An insertion into a set that a second definition of its key merges
/// with, below the file's top-level set: the local check follows the path
/// down through keys defined once.
#[test]
fn local_validation_sees_a_merge_below_the_top() {
    for text in [
        "{ c = {\nb = { };\n${\"b\"} = ({\na.b = 1;\n});\n}; }",
        "{ c = {\nb = { };\nb = {\na.b = 1;\n};\n}; }",
        "{ c.d = {\nb = { };\nb = {\na.b = 1;\n};\n}; }",
    ] {
        let file = NixFile::parse("t.nix", text).expect("parses");
        let at = text.find("b = {").expect("needle") + "b = {".len();
        let insert = |replacement: &str| TextEdit {
            range: at..at,
            replacement: replacement.to_string(),
        };
        assert_eq!(
            verify::local(&file, &insert("a = 1;")),
            Some(false),
            "{text}"
        );
        assert_eq!(
            verify::local(&file, &insert("z = 1;")),
            Some(true),
            "{text}"
        );
    }
}
