//! Property tests for the lossless editor over generated modules: after `set`,
//! the output parses, `get` reads the new value, every byte outside the edited
//! range is unchanged, and repeating the same `set` changes nothing.

use nixflip::nixedit::{self, AttrPath, NewValue, NixFile, Value};
use proptest::prelude::*;

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
