//! The one model of `flake.nix` that discovery, `rebuild`, `add-host`, `diff`
//! and the SOPS checks share: which `nixosConfigurations` entry builds which
//! host file (and for which system), which file each `nixosModules` name is,
//! and which names stand for the flake root (`flake = ./.;`).
//!
//! It is read statically with [`reader`] and must never guess: an entry or a
//! module it cannot follow stays unresolved, with the place it is written, so
//! a diagnostic can point there and name the `nixflip.toml` key that settles it.

pub mod reader;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use miette::{Diagnostic, LabeledSpan, NamedSource};
use rnix::{SyntaxKind, SyntaxNode};
use serde::Serialize;

use crate::config::Config;
use crate::nixedit::syntax;
use reader::{Attrs, Reader, Refs, Slot, V};

use super::discover::Sources;

/// The flake's own file, relative to its root.
pub const FLAKE_NIX: &str = "flake.nix";

/// A place in one of the flake's files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
    #[serde(skip)]
    pub span: Range<usize>,
}

/// One `nixosConfigurations` entry.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The attribute name (`hectic-lab|x86_64-linux`).
    pub attr: String,
    /// From `NAME|SYSTEM`, else a `system` string the entry passes on.
    pub system: Option<String>,
    /// The flake's `.nix` files the entry's expression refers to, following
    /// helpers and `import DIR { … }` (a host file is among them).
    pub files: Vec<PathBuf>,
    /// `self.nixosModules` names the entry refers to (besides its files).
    pub modules: Vec<String>,
    /// The binding (`"NAME" = …;`).
    pub place: Place,
}

/// How a `nixosModules` name was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ModuleSource {
    /// `[modules] NAME = "…"` in nixflip.toml.
    Config,
    /// A binding in an attribute set of modules.
    Binding,
    /// A file of a directory the set is built from (`readDir`).
    Directory,
}

/// One `nixosModules` name.
#[derive(Clone, Debug, Serialize)]
pub struct Module {
    /// Its file; `None` when it cannot be told (an inline module, two files
    /// that would give the same name).
    pub file: Option<PathBuf>,
    pub source: ModuleSource,
    /// Why `file` is `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// An output the reader cannot list (`nixosConfigurations = mapAttrs …;`).
#[derive(Clone, Debug, Serialize)]
pub struct Opaque {
    /// `nixosConfigurations` or `nixosModules`.
    pub output: &'static str,
    pub place: Place,
}

#[derive(Clone, Debug, Default)]
pub struct FlakeModel {
    pub entries: Vec<Entry>,
    pub modules: BTreeMap<String, Module>,
    /// Names that stand for the flake root in the flake's files: `self`,
    /// names `flake.nix` binds to `./.` or `self`, and `[flake] root_names`.
    pub root_names: BTreeSet<String>,
    pub opaque: Vec<Opaque>,
}

/// Which entry builds a host.
#[derive(Clone, Debug)]
pub enum EntryMatch<'a> {
    One(&'a Entry),
    None,
    Several(Vec<&'a Entry>),
}

impl FlakeModel {
    /// Read `flake.nix` (and what it imports) from `sources`; `config`
    /// adds `[modules]` and `[flake] root_names`.
    pub fn read(sources: &Sources, config: &Config) -> FlakeModel {
        let mut model = FlakeModel::default();
        model.root_names.insert("self".into());
        for name in &config.flake.root_names {
            model.root_names.insert(name.get_ref().clone());
        }
        let flake_nix = Path::new(FLAKE_NIX);
        if let Some(file) = sources.get(flake_nix) {
            model.root_names.extend(root_bindings(file.root()));
            let reader = Reader::new(sources);
            model.read_outputs(&reader, sources);
        }
        for (name, file) in &config.modules {
            model.modules.insert(
                name.clone(),
                Module {
                    file: Some(super::discover::normalize(Path::new(file.get_ref()))),
                    source: ModuleSource::Config,
                    why: None,
                },
            );
        }
        model
    }

    fn read_outputs(&mut self, reader: &Reader, sources: &Sources) {
        let flake_nix = Path::new(FLAKE_NIX);
        let Some(top) = reader.file_expr(flake_nix).map(|e| syntax::unparen(&e)) else {
            return;
        };
        if top.kind() != SyntaxKind::NODE_ATTR_SET {
            return;
        }
        let flake = reader.attrs(&top, &None, flake_nix);
        let Some(outputs_attr) = flake.map.get("outputs") else {
            return;
        };
        let inputs = Attrs {
            map: [(
                "self".to_string(),
                reader::Attr {
                    slot: Slot::Value(V::Flake),
                    binding: None,
                },
            )]
            .into_iter()
            .collect(),
            file: flake_nix.to_path_buf(),
        };
        let function = reader.force(&outputs_attr.slot);
        let outputs = reader.apply(function, Slot::Value(V::Set(Rc::new(inputs))));
        let V::Set(outputs) = outputs else {
            if let Some(b) = &outputs_attr.binding {
                for output in ["nixosConfigurations", "nixosModules"] {
                    if sources.text(flake_nix).is_some_and(|t| t.contains(output)) {
                        self.opaque.push(Opaque {
                            output,
                            place: place(sources, flake_nix, b),
                        });
                    }
                }
            }
            return;
        };
        if let Some(attr) = outputs.map.get("nixosConfigurations") {
            self.read_entries(reader, sources, attr, &outputs.file);
        }
        if let Some(attr) = outputs.map.get("nixosModules") {
            self.read_modules(reader, sources, attr, &outputs.file);
        }
    }

    fn read_entries(
        &mut self,
        reader: &Reader,
        sources: &Sources,
        attr: &reader::Attr,
        file: &Path,
    ) {
        let V::Set(set) = reader.force(&attr.slot) else {
            if let Some(b) = &attr.binding {
                self.opaque.push(Opaque {
                    output: "nixosConfigurations",
                    place: place(sources, file, b),
                });
            }
            return;
        };
        for (name, entry) in &set.map {
            reader.refuel();
            let mut refs = Refs::default();
            match &entry.slot {
                Slot::Thunk(t) => reader.refs_of(t, &mut refs),
                other => {
                    let v = reader.force(other);
                    if let V::Path(p) | V::File(p) = v {
                        refs.paths.push(p);
                    }
                }
            }
            let files: Vec<PathBuf> = refs
                .paths
                .iter()
                .filter(|p| sources.text(p).is_some())
                .cloned()
                .collect();
            let system = name
                .split_once('|')
                .map(|(_, s)| s.to_string())
                .or_else(|| refs.strings.iter().find(|s| is_system(s)).cloned());
            let binding = entry.binding.clone();
            let entry_file = match &entry.slot {
                Slot::Thunk(t) => t.file.clone(),
                _ => set.file.clone(),
            };
            let place = match &binding {
                Some(b) => place(sources, &entry_file, b),
                None => Place {
                    file: entry_file,
                    line: 1,
                    span: 0..0,
                },
            };
            self.entries.push(Entry {
                attr: name.clone(),
                system,
                files,
                modules: refs.modules,
                place,
            });
        }
    }

    fn read_modules(
        &mut self,
        reader: &Reader,
        sources: &Sources,
        attr: &reader::Attr,
        file: &Path,
    ) {
        let mut sides = Vec::new();
        match &attr.slot {
            Slot::Thunk(t) => update_sides(reader, t.clone(), &mut sides),
            other => {
                if let V::Set(set) = reader.force(other) {
                    self.modules_of_set(reader, sources, &set);
                }
                return;
            }
        }
        let mut unread = false;
        for side in sides {
            match reader.eval_thunk(&side) {
                V::Set(set) => self.modules_of_set(reader, sources, &set),
                _ => match imported_file(reader, &side) {
                    Some(imported) if lists_directory(sources, &imported) => {
                        self.modules_of_directory(sources, &imported);
                    }
                    _ => unread = true,
                },
            }
        }
        if unread {
            if let Some(b) = &attr.binding {
                self.opaque.push(Opaque {
                    output: "nixosModules",
                    place: place(sources, file, b),
                });
            }
        }
    }

    fn modules_of_set(&mut self, reader: &Reader, sources: &Sources, set: &Attrs) {
        for (name, attr) in &set.map {
            reader.refuel();
            let v = reader.force(&attr.slot);
            let file = match v {
                V::Path(p) => Some(reader.import_target(&p)),
                V::File(p) => Some(p),
                V::Lambda(c) => Some(c.file.clone()),
                V::Set(s) => Some(s.file.clone()),
                _ => None,
            };
            let (file, why) = match file {
                Some(f) if f == Path::new(FLAKE_NIX) => {
                    (None, Some("it is written inside flake.nix".to_string()))
                }
                Some(f) if sources.text(&f).is_some() => (Some(f), None),
                Some(f) => (
                    None,
                    Some(format!("{} is not a .nix file of the flake", f.display())),
                ),
                None => (
                    None,
                    Some("its value is an expression nixflip does not evaluate".to_string()),
                ),
            };
            self.modules.insert(
                name.clone(),
                Module {
                    file,
                    source: ModuleSource::Binding,
                    why,
                },
            );
        }
    }

    /// A set built from a directory (`readDir`): each module is named after
    /// its file (`generic/matrix-cluster-users.nix` → `matrix-cluster-users`),
    /// a `default.nix` after its directory. A name two files would give is
    /// left unresolved rather than picked.
    fn modules_of_directory(&mut self, sources: &Sources, builder: &Path) {
        let dir = builder.parent().unwrap_or(Path::new(""));
        let mut found: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        let files: Vec<&PathBuf> = sources
            .texts()
            .map(|(p, _)| p)
            .filter(|p| p.starts_with(dir) && p.as_path() != builder)
            .collect();
        for file in files {
            let name = if file.file_name().is_some_and(|n| n == "default.nix") {
                file.parent().and_then(Path::file_name)
            } else {
                file.file_stem()
            };
            if let Some(name) = name {
                found
                    .entry(name.to_string_lossy().into_owned())
                    .or_default()
                    .push(file.clone());
            }
        }
        for (name, files) in found {
            let module = match files.as_slice() {
                [one] => Module {
                    file: Some(one.clone()),
                    source: ModuleSource::Directory,
                    why: None,
                },
                many => Module {
                    file: None,
                    source: ModuleSource::Directory,
                    why: Some(format!(
                        "several files would give it: {}",
                        many.iter()
                            .map(|f| f.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                },
            };
            self.modules.entry(name).or_insert(module);
        }
    }

    /// The file of module `name`, when known.
    pub fn module_file(&self, name: &str) -> Option<&Path> {
        self.modules.get(name).and_then(|m| m.file.as_deref())
    }

    pub fn entry(&self, attr: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.attr == attr)
    }

    /// The entry that builds host `name` from `file`: the one entry whose
    /// files hold `file`; among several (or none), the one named `NAME` or
    /// `NAME|SYSTEM`.
    pub fn entry_for(&self, name: &str, file: &Path) -> EntryMatch<'_> {
        let named = |e: &&Entry| e.attr == name || e.attr.starts_with(&format!("{name}|"));
        let building: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.files.iter().any(|f| f == file))
            .collect();
        let pool: Vec<&Entry> = if building.is_empty() {
            self.entries.iter().filter(named).collect()
        } else if building.len() == 1 {
            building
        } else {
            let by_name: Vec<&Entry> = building.iter().copied().filter(named).collect();
            if by_name.is_empty() {
                return EntryMatch::Several(building);
            }
            by_name
        };
        match pool.as_slice() {
            [] => EntryMatch::None,
            [one] => EntryMatch::One(one),
            many => EntryMatch::Several(many.to_vec()),
        }
    }

    /// Entries whose expression nixflip could not follow to any file.
    pub fn unfollowed(&self) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.files.is_empty()).collect()
    }

    /// Whether `flake.nix` lists any entry (or computes them): only then is a
    /// member without one worth a word.
    pub fn has_configurations(&self) -> bool {
        !self.entries.is_empty()
            || self
                .opaque
                .iter()
                .any(|o| o.output == "nixosConfigurations")
    }

    /// The diagnostic for a host no entry is found for: it points at the
    /// entries nixflip could not follow (one of them may be the host's) and
    /// names the key that settles it.
    pub fn no_entry_error(
        &self,
        sources: &Sources,
        host: &str,
        host_file: &Path,
        several: &[&Entry],
    ) -> FlakeDiagnostic {
        let mut labels: Vec<(Place, String)> = Vec::new();
        let message = if several.is_empty() {
            for e in self.unfollowed() {
                labels.push((
                    e.place.clone(),
                    format!("nixflip cannot tell which host file `{}` builds", e.attr),
                ));
            }
            for o in self
                .opaque
                .iter()
                .filter(|o| o.output == "nixosConfigurations")
            {
                labels.push((
                    o.place.clone(),
                    "computed: nixflip does not evaluate this".to_string(),
                ));
            }
            format!(
                "no nixosConfigurations entry of flake.nix builds {host}'s file {} (nor is one named `{host}` or `{host}|SYSTEM`)",
                host_file.display()
            )
        } else {
            for e in several {
                labels.push((e.place.clone(), format!("`{}` builds it", e.attr)));
            }
            format!(
                "several nixosConfigurations entries build {host}'s file {}",
                host_file.display()
            )
        };
        let listed: Vec<&str> = self.entries.iter().map(|e| e.attr.as_str()).collect();
        let help = format!(
            "pin the entry in nixflip.toml: [hosts.\"{host}\"] attr = \"…\"{}",
            if listed.is_empty() {
                String::new()
            } else {
                format!(" (flake.nix defines: {})", listed.join(", "))
            }
        );
        FlakeDiagnostic::new(sources, message, labels, help)
    }
}

/// Split `a // b // c` (through parentheses and variables) into its sides.
fn update_sides(reader: &Reader, thunk: reader::Thunk, out: &mut Vec<reader::Thunk>) {
    let node = syntax::unparen(&thunk.node);
    if node.kind() == SyntaxKind::NODE_BIN_OP
        && node
            .children_with_tokens()
            .any(|e| e.kind() == SyntaxKind::TOKEN_UPDATE)
    {
        for side in node.children() {
            update_sides(reader, thunk.with_node(side), out);
        }
        return;
    }
    if node.kind() == SyntaxKind::NODE_IDENT {
        if let Some(bound) = reader.bound_thunk(&thunk, &node.text().to_string()) {
            update_sides(reader, bound, out);
            return;
        }
    }
    out.push(thunk.with_node(node));
}

/// `import PATH …`: the file it reads.
fn imported_file(reader: &Reader, thunk: &reader::Thunk) -> Option<PathBuf> {
    let (head, args) = reader::spine(&syntax::unparen(&thunk.node));
    if !(head.kind() == SyntaxKind::NODE_IDENT && head.text() == "import") {
        return None;
    }
    match reader.eval_thunk(&thunk.with_node(args.first()?.clone())) {
        V::Path(p) => Some(reader.import_target(&p)),
        _ => None,
    }
}

/// Whether `file` builds its value from a directory listing.
fn lists_directory(sources: &Sources, file: &Path) -> bool {
    sources.text(file).is_some_and(|t| {
        t.contains("readDir") || t.contains("listFilesRecursive") || t.contains("filesystem.")
    })
}

/// Names bound to the flake root in `flake.nix`: `flake = ./.;`,
/// `root = self;`, `src = self.outPath;`.
fn root_bindings(root: &SyntaxNode) -> Vec<String> {
    let mut out = Vec::new();
    for binding in root
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::NODE_ATTRPATH_VALUE)
    {
        let (Some(keys), Some(value)) = (
            syntax::binding_keys(&binding),
            syntax::binding_value(&binding),
        ) else {
            continue;
        };
        let [name] = keys.as_slice() else {
            continue;
        };
        let text = syntax::unparen(&value).text().to_string();
        let value = text.trim();
        if matches!(value, "./." | "./" | "self" | "self.outPath") && name != "self" {
            out.push(name.clone());
        }
    }
    out
}

/// `x86_64-linux`, `aarch64-darwin`, …
fn is_system(s: &str) -> bool {
    s.split_once('-').is_some_and(|(arch, os)| {
        !arch.is_empty()
            && arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && matches!(os, "linux" | "darwin")
    })
}

fn place(sources: &Sources, file: &Path, node: &SyntaxNode) -> Place {
    let range = node.text_range();
    let span = usize::from(range.start())..usize::from(range.end());
    let line = sources
        .text(file)
        .map_or(1, |t| crate::nixedit::line_col(t, span.start).0);
    Place {
        file: file.to_path_buf(),
        line,
        span,
    }
}

/// A diagnostic over one of the flake's files, with a label per place.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FlakeDiagnostic {
    pub message: String,
    src: NamedSource<String>,
    labels: Vec<LabeledSpan>,
    /// Places in other files than the one shown, as `file:line`.
    elsewhere: Vec<String>,
    help: String,
}

impl FlakeDiagnostic {
    /// Labels go on the first labelled file (`flake.nix` when none is).
    pub fn new(
        sources: &Sources,
        message: String,
        labels: Vec<(Place, String)>,
        help: String,
    ) -> FlakeDiagnostic {
        let shown = labels
            .first()
            .map_or_else(|| PathBuf::from(FLAKE_NIX), |(p, _)| p.file.clone());
        let text = sources.text(&shown).unwrap_or_default().to_string();
        let mut spans = Vec::new();
        let mut elsewhere = Vec::new();
        for (p, label) in labels {
            if p.file == shown && !p.span.is_empty() {
                spans.push(LabeledSpan::new_with_span(
                    Some(label),
                    (p.span.start, p.span.len()),
                ));
            } else {
                elsewhere.push(format!("{}:{}: {label}", p.file.display(), p.line));
            }
        }
        FlakeDiagnostic {
            message,
            src: NamedSource::new(shown.display().to_string(), text).with_language("nix"),
            labels: spans,
            elsewhere,
            help,
        }
    }
}

impl Diagnostic for FlakeDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new("nixflip::flake"))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        if self.elsewhere.is_empty() {
            return Some(Box::new(&self.help));
        }
        Some(Box::new(format!(
            "{}\nalso: {}",
            self.help,
            self.elsewhere.join("; ")
        )))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        (!self.labels.is_empty()).then_some(&self.src as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(files: &[(&str, &str)]) -> FlakeModel {
        let texts = files.iter().map(|(p, t)| (PathBuf::from(p), t.to_string()));
        let sources = Sources::from_texts(Path::new("/flake"), texts, "matrix-cluster")
            .unwrap_or_else(|e| panic!("sources: {e}"));
        FlakeModel::read(&sources, &Config::default())
    }

    fn files(model: &FlakeModel, attr: &str) -> Vec<String> {
        model
            .entry(attr)
            .map(|e| e.files.iter().map(|f| f.display().to_string()).collect())
            .unwrap_or_default()
    }

    const GENERIC: &str = r#"{ flake, self, inputs, system, ... }:
let
  name = builtins.baseNameOf ./.;
in
self.lib.nixpkgs-lib.nixosSystem {
  inherit system;
  modules = [
    self.nixosModules.sops
    (import ./${name}.nix { inherit flake self inputs; })
  ];
}
"#;

    const HOST: &str =
        "{ inputs, flake, self }: { config, ... }: { imports = [ ./containers.nix ]; }";

    #[test]
    fn directory_entries_lead_through_the_generic_default_nix() {
        let flake = r#"{
  outputs = { self, nixpkgs, ... }@inputs: let
    flake = ./.;
  in {
    nixosConfigurations = {
      "hectic-lab|x86_64-linux"      = import ./nixos/system/hectic-lab { inherit flake self inputs; system = "x86_64-linux"; };
      "bfs.poland.xray|x86_64-linux" = import ./nixos/system/bfs.poland.xray { inherit flake self inputs; system = "x86_64-linux"; };
    };
  };
}"#;
        let m = model(&[
            ("flake.nix", flake),
            ("nixos/system/hectic-lab/default.nix", GENERIC),
            ("nixos/system/hectic-lab/hectic-lab.nix", HOST),
            ("nixos/system/hectic-lab/containers.nix", "{ }"),
            ("nixos/system/bfs.poland.xray/default.nix", GENERIC),
            ("nixos/system/bfs.poland.xray/bfs.poland.xray.nix", HOST),
        ]);
        assert_eq!(
            files(&m, "hectic-lab|x86_64-linux"),
            [
                "nixos/system/hectic-lab/default.nix",
                "nixos/system/hectic-lab/hectic-lab.nix"
            ]
        );
        let entry = m.entry("bfs.poland.xray|x86_64-linux");
        assert_eq!(
            entry.map(|e| e.modules.clone()),
            Some(vec!["sops".to_string()])
        );
        assert_eq!(
            entry.and_then(|e| e.system.clone()).as_deref(),
            Some("x86_64-linux")
        );
        assert!(m.root_names.contains("flake"));
        assert!(matches!(
            m.entry_for("bfs.poland.xray", Path::new("nixos/system/bfs.poland.xray/bfs.poland.xray.nix")),
            EntryMatch::One(e) if e.attr == "bfs.poland.xray|x86_64-linux"
        ));
    }

    #[test]
    fn helpers_module_lists_and_merged_sets() {
        let flake = r#"{
  outputs = { self, nixpkgs }: let
    host = system: file: nixpkgs.lib.nixosSystem {
      inherit system;
      modules = [ self.nixosModules.matrix-cluster (import file { inherit self; }) ];
    };
    mkHost = name: { system ? "aarch64-linux", ... }: nixpkgs.lib.nixosSystem {
      inherit system;
      modules = [ ./hosts/${name}.nix ];
    };
  in {
    nixosConfigurations = {
      alpha = host "x86_64-linux" ./hosts/alpha.nix;
      beta = mkHost "beta" { };
    } // {
      gamma = nixpkgs.lib.nixosSystem { system = "x86_64-linux"; modules = [ ./machines/gamma.nix ]; };
    } // {
      delta = mkHost "delta" { system = "x86_64-linux"; };
    };
    nixosModules.matrix-cluster = import ./nix/matrix-cluster.nix;
  };
}"#;
        let m = model(&[
            ("flake.nix", flake),
            ("hosts/alpha.nix", "{ self }: { }"),
            ("hosts/beta.nix", "{ }"),
            ("hosts/delta.nix", "{ }"),
            ("machines/gamma.nix", "{ }"),
            ("nix/matrix-cluster.nix", "{ }"),
        ]);
        assert_eq!(files(&m, "alpha"), ["hosts/alpha.nix"]);
        assert_eq!(files(&m, "beta"), ["hosts/beta.nix"]);
        assert_eq!(files(&m, "gamma"), ["machines/gamma.nix"]);
        assert_eq!(files(&m, "delta"), ["hosts/delta.nix"]);
        assert_eq!(
            m.entry("beta").and_then(|e| e.system.clone()).as_deref(),
            Some("aarch64-linux")
        );
        assert_eq!(
            m.module_file("matrix-cluster"),
            Some(Path::new("nix/matrix-cluster.nix"))
        );
    }

    #[test]
    fn modules_from_a_directory_and_from_a_set() {
        let flake = r#"{
  outputs = { self, ... }@inputs: let flake = self; in {
    nixosModules = import ./nixos/module { inherit flake self inputs; } // {
      extra = ./extra.nix;
      inline = { config, ... }: { };
    };
  };
}"#;
        let builder = r#"{ flake, self, inputs }:
let
  walk = dir: builtins.concatLists (map (n: let t = (builtins.readDir dir).${n}; in
    if t == "directory" then walk (dir + "/${n}") else [ (dir + "/${n}") ]) (builtins.attrNames (builtins.readDir dir)));
in builtins.listToAttrs (map (f: { name = builtins.replaceStrings [ ".nix" ] [ "" ] (baseNameOf f); value = import f; }) (walk ./generic))
"#;
        let m = model(&[
            ("flake.nix", flake),
            ("nixos/module/default.nix", builder),
            ("nixos/module/generic/matrix-cluster.nix", "{ }"),
            ("nixos/module/generic/matrix-cluster-users.nix", "{ }"),
            ("nixos/module/generic/xray/default.nix", "{ }"),
            ("nixos/module/generic/xray/parts.nix", "{ }"),
            ("extra.nix", "{ }"),
        ]);
        assert_eq!(
            m.module_file("matrix-cluster-users"),
            Some(Path::new("nixos/module/generic/matrix-cluster-users.nix"))
        );
        assert_eq!(
            m.module_file("xray"),
            Some(Path::new("nixos/module/generic/xray/default.nix"))
        );
        assert_eq!(
            m.module_file("parts"),
            Some(Path::new("nixos/module/generic/xray/parts.nix"))
        );
        assert_eq!(m.module_file("extra"), Some(Path::new("extra.nix")));
        assert_eq!(m.module_file("inline"), None);
        assert!(m.modules.get("inline").is_some_and(|i| i.why.is_some()));
        assert!(m.root_names.contains("flake"));
        assert!(m.opaque.is_empty());
    }

    #[test]
    fn computed_outputs_are_opaque_not_guessed() {
        let flake = r#"{
  outputs = { self, nixpkgs }: {
    nixosConfigurations = builtins.mapAttrs (name: _: nixpkgs.lib.nixosSystem {
      modules = [ ./hosts/${name}.nix ];
    }) (builtins.readDir ./hosts);
  };
}"#;
        let m = model(&[("flake.nix", flake), ("hosts/a.nix", "{ }")]);
        assert!(m.entries.is_empty());
        assert_eq!(m.opaque.len(), 1);
        assert_eq!(m.opaque[0].output, "nixosConfigurations");
        assert_eq!(m.opaque[0].place.line, 3);
        assert!(m.has_configurations());
    }

    #[test]
    fn a_self_referencing_let_ends_as_unknown() {
        let flake = r#"{
  outputs = { self }: let
    loop = x: loop x;
    a = b; b = a;
  in {
    nixosConfigurations.x = loop ./hosts/x.nix;
    nixosConfigurations.y = a;
  };
}"#;
        let m = model(&[("flake.nix", flake), ("hosts/x.nix", "{ }")]);
        assert_eq!(files(&m, "x"), ["hosts/x.nix"]);
        assert!(files(&m, "y").is_empty());
    }

    #[test]
    fn every_entry_of_a_big_flake_is_followed() {
        let entries: String = (0..400)
            .map(|i| {
                format!("      \"h{i}|x86_64-linux\" = host \"x86_64-linux\" ./hosts/h{i}.nix;\n")
            })
            .collect();
        let flake = format!(
            "{{\n  outputs = {{ self, nixpkgs }}: let\n    host = system: file: nixpkgs.lib.nixosSystem {{ inherit system; modules = [ (import file {{ inherit self; }}) ]; }};\n  in {{\n    nixosConfigurations = {{\n{entries}    }};\n  }};\n}}"
        );
        let mut texts: Vec<(String, String)> = (0..400)
            .map(|i| {
                (
                    format!("hosts/h{i}.nix"),
                    "{ self }: { ... }: { }".to_string(),
                )
            })
            .collect();
        texts.push(("flake.nix".into(), flake));
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        let m = model(&refs);
        assert_eq!(m.entries.len(), 400);
        assert!(m.unfollowed().is_empty());
        assert_eq!(files(&m, "h399|x86_64-linux"), ["hosts/h399.nix"]);
    }

    #[test]
    fn a_module_name_two_files_would_give_is_left_unresolved() {
        let flake = "{ outputs = { self }: { nixosModules = import ./modules { }; }; }";
        let m = model(&[
            ("flake.nix", flake),
            (
                "modules/default.nix",
                "{ }: builtins.mapAttrs (n: _: import (./. + \"/${n}\")) (builtins.readDir ./.)",
            ),
            ("modules/a/users.nix", "{ }"),
            ("modules/b/users.nix", "{ }"),
            ("modules/cluster.nix", "{ }"),
        ]);
        assert_eq!(
            m.module_file("cluster"),
            Some(Path::new("modules/cluster.nix"))
        );
        assert_eq!(m.module_file("users"), None);
        assert!(m
            .modules
            .get("users")
            .and_then(|u| u.why.clone())
            .is_some_and(|w| w.contains("modules/a/users.nix, modules/b/users.nix")));
    }
}
