//! The cluster model: members discovered from the flake's host files, their
//! cluster options as written, and their addresses.

pub mod addresses;
pub mod admission;
pub mod carry;
pub mod discover;
pub mod evaluated;
pub mod flake;
pub mod plan;
pub mod rules;
pub mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::config::Loaded;
use crate::error::{Error, Result};
use crate::nixedit::{value::resolve_literal, AttrPath, Value};
pub use discover::Sources;
pub use flake::FlakeModel;
pub use rules::{Finding, Severity};

/// One definition of a cluster option in a file.
#[derive(Clone, Debug)]
pub struct Def {
    pub file: PathBuf,
    /// Byte range of the value (wrappers peeled).
    pub span: Range<usize>,
    pub line: usize,
    pub column: usize,
    /// The literal value, when it is one (or a `let`-bound literal).
    pub value: Option<Value>,
    /// The value's source text.
    pub expr: String,
    pub priority: u32,
    pub conditional: bool,
}

/// A cluster member: one host.
#[derive(Clone, Debug)]
pub struct Member {
    pub name: String,
    /// The host's own file.
    pub file: PathBuf,
    /// The host file and the files it imports that define cluster options.
    pub files: Vec<PathBuf>,
    /// Option path (relative to the cluster option, e.g. `replication.peerHost`)
    /// → its definitions, strongest first.
    pub defs: BTreeMap<String, Vec<Def>>,
    pub address: Option<String>,
    /// How the address was found ("nixflip.toml", "publicIp", "peerHost of X").
    pub address_source: Option<String>,
    /// Its `nixosConfigurations` attribute: `[hosts.X] attr`, else the entry
    /// of the flake model that builds its file (or is named after it).
    pub attr: Option<String>,
    pub target: Option<String>,
}

/// A member's declared role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby,
    /// Not a literal, or not one of the allowed values.
    Invalid(String),
    Missing,
}

pub const ROLE: &str = "role";
pub const OVERRIDE_SYNAPSE: &str = "overrideEnableSynapse";
pub const SECRETS_FILE: &str = "secretsFile";
pub const PEER_HOST: &str = "replication.peerHost";
pub const ALLOWED_IPS: &str = "replication.allowedSourceIPs";
pub const PUBLIC_IP: &str = "publicIp";
pub const ENABLE: &str = "enable";

impl Member {
    /// The winning definition of `key`.
    pub fn def(&self, key: &str) -> Option<&Def> {
        self.defs.get(key).and_then(|defs| defs.first())
    }

    pub fn literal(&self, key: &str) -> Option<&Value> {
        self.def(key).and_then(|d| d.value.as_ref())
    }

    pub fn role(&self) -> Role {
        match self.def(ROLE) {
            None => Role::Missing,
            Some(def) => match def.value.as_ref().and_then(Value::as_str) {
                Some("primary") => Role::Primary,
                Some("standby") => Role::Standby,
                _ => Role::Invalid(def.expr.clone()),
            },
        }
    }

    pub fn is_primary(&self) -> bool {
        self.role() == Role::Primary
    }

    /// Synapse runs: the override when set, else `role == "primary"`.
    /// `None` when that cannot be read statically.
    pub fn effective_synapse(&self) -> Option<bool> {
        match self.def(OVERRIDE_SYNAPSE) {
            Some(def) => match &def.value {
                Some(Value::Bool(b)) => Some(*b),
                Some(Value::Null) => self.synapse_by_role(),
                _ => None,
            },
            None => self.synapse_by_role(),
        }
    }

    fn synapse_by_role(&self) -> Option<bool> {
        match self.role() {
            Role::Primary => Some(true),
            Role::Standby => Some(false),
            _ => None,
        }
    }

    /// Whether `secretsFile` is set to something other than null.
    pub fn has_secrets_file(&self) -> bool {
        self.def(SECRETS_FILE)
            .is_some_and(|d| d.value != Some(Value::Null))
    }

    pub fn peer_host(&self) -> Option<&str> {
        self.literal(PEER_HOST).and_then(Value::as_str)
    }

    pub fn allowed_ips(&self) -> Option<Vec<String>> {
        self.literal(ALLOWED_IPS).and_then(Value::as_string_list)
    }

    pub fn ip(&self) -> Option<IpAddr> {
        self.address.as_deref().and_then(|a| a.parse().ok())
    }
}

/// A flake's cluster.
pub struct Cluster {
    pub root: PathBuf,
    pub option: AttrPath,
    pub members: Vec<Member>,
    pub sources: Sources,
    /// What `flake.nix` says: entries, modules, names of the flake root.
    pub flake: FlakeModel,
    pub config: Loaded,
    /// What discovery noticed (unknown addresses, options defined twice).
    pub notes: Vec<Finding>,
    /// Files that set cluster options but are no host: imported by no member,
    /// no `role` in their import closure, not pinned in nixflip.toml (e.g. a
    /// `modules/common.nix` that flake.nix adds to every host). They are not
    /// part of the per-member model; commands mention them.
    pub shared_modules: Vec<PathBuf>,
}

impl Cluster {
    /// Discover the cluster of the flake at `root`.
    pub fn load(root: &Path, config: Loaded) -> Result<Cluster> {
        let option = Self::option_path(&config)?;
        let hint = option.keys().last().cloned().unwrap_or_default();
        let sources = Sources::load(root, &config.config.cluster.exclude, &hint)?;
        Self::from_sources(sources, option, config)
    }

    /// Discover the cluster in file texts given by path relative to `root`
    /// (a git revision): only the `.nix` files discovery would scan are used.
    pub fn from_texts(
        root: &Path,
        texts: impl IntoIterator<Item = (PathBuf, String)>,
        config: Loaded,
    ) -> Result<Cluster> {
        let option = Self::option_path(&config)?;
        let hint = option.keys().last().cloned().unwrap_or_default();
        let exclude = config.config.cluster.exclude.clone();
        let texts: Vec<(PathBuf, String)> = texts.into_iter().collect();
        let nested = discover::nested_flakes(texts.iter().map(|(p, _)| p));
        let scanned = texts.into_iter().filter(|(rel, _)| {
            discover::is_scanned(rel, &exclude) && !discover::in_nested_flake(rel, &nested)
        });
        let sources = Sources::from_texts(root, scanned, &hint)?;
        Self::from_sources(sources, option, config)
    }

    fn option_path(config: &Loaded) -> Result<AttrPath> {
        config.config.cluster.option.get_ref().parse().map_err(|e| {
            Error::usage(
                format!("cluster.option: {e}"),
                "for example hectic.generic.matrix-cluster",
            )
        })
    }

    /// The cluster after some files' texts change (a planned rewrite), rooted
    /// at `root` (the scratch copy holding it): unchanged files keep their
    /// parse, only the rewritten (or new) ones are parsed.
    pub fn with_rewrites(
        &self,
        root: &Path,
        rewrites: impl IntoIterator<Item = (PathBuf, String)>,
        config: Loaded,
    ) -> Result<Cluster> {
        let exclude = &config.config.cluster.exclude;
        // A new file is seen only where discovery would look for it: not
        // excluded, and not inside another flake.
        let rewrites: Vec<(PathBuf, String)> = rewrites.into_iter().collect();
        let mut nested = discover::nested_flakes(rewrites.iter().map(|(p, _)| p));
        nested.extend(rewrites.iter().flat_map(|(rel, _)| {
            rel.ancestors()
                .skip(1)
                .filter(|d| !d.as_os_str().is_empty() && root.join(d).join("flake.nix").is_file())
                .map(Path::to_path_buf)
                .collect::<Vec<_>>()
        }));
        let sources = self.sources.with_texts(
            root,
            rewrites.into_iter().filter(|(rel, _)| {
                discover::is_scanned(rel, exclude) && !discover::in_nested_flake(rel, &nested)
            }),
        )?;
        Cluster::from_sources(sources, self.option.clone(), config)
    }

    /// Build the model from already-parsed sources (also used for git revisions).
    pub fn from_sources(mut sources: Sources, option: AttrPath, config: Loaded) -> Result<Cluster> {
        let flake = FlakeModel::read(&sources, &config.config);
        sources.set_modules(
            flake
                .modules
                .iter()
                .filter_map(|(name, m)| m.file.clone().map(|f| (name.clone(), f)))
                .collect(),
        );
        let mut cluster = Cluster {
            root: sources.root.clone(),
            option,
            members: Vec::new(),
            sources,
            flake,
            config,
            notes: Vec::new(),
            shared_modules: Vec::new(),
        };
        (cluster.members, cluster.shared_modules) = cluster.find_members()?;
        cluster.assign_entries();
        cluster.note_unresolved_modules();
        cluster.resolve_addresses();
        cluster.note_multiple_definitions();
        Ok(cluster)
    }

    /// Each member's `nixosConfigurations` attribute, from the flake model
    /// unless nixflip.toml pins it; NF109 when flake.nix lists entries and
    /// none builds the member.
    fn assign_entries(&mut self) {
        let mut notes = Vec::new();
        for m in &mut self.members {
            if m.attr.is_some() {
                continue;
            }
            match self.flake.entry_for(&m.name, &m.file) {
                flake::EntryMatch::One(entry) => m.attr = Some(entry.attr.clone()),
                flake::EntryMatch::Several(entries) if self.flake.has_configurations() => {
                    let names: Vec<&str> = entries.iter().map(|e| e.attr.as_str()).collect();
                    notes.push(rules::finding_at(
                        "NF109",
                        Severity::Warning,
                        m,
                        m.def(ROLE),
                        format!(
                            "{}: several nixosConfigurations entries build {} ({}), so nixflip cannot tell which to evaluate and rebuild",
                            m.name,
                            m.file.display(),
                            names.join(", ")
                        ),
                        format!("pin one in nixflip.toml: [hosts.\"{}\"] attr = \"…\"", m.name),
                    ));
                }
                flake::EntryMatch::None if self.flake.has_configurations() => {
                    let unfollowed: Vec<String> = self
                        .flake
                        .unfollowed()
                        .iter()
                        .map(|e| format!("`{}` (flake.nix:{})", e.attr, e.place.line))
                        .collect();
                    let why = if unfollowed.is_empty() {
                        String::new()
                    } else {
                        format!("; nixflip cannot follow {}", unfollowed.join(", "))
                    };
                    notes.push(rules::finding_at(
                        "NF109",
                        Severity::Warning,
                        m,
                        m.def(ROLE),
                        format!(
                            "{}: no nixosConfigurations entry of flake.nix builds {} or is named `{}` or `{}|SYSTEM`{why}",
                            m.name,
                            m.file.display(),
                            m.name,
                            m.name
                        ),
                        format!("pin its entry in nixflip.toml: [hosts.\"{}\"] attr = \"…\"", m.name),
                    ));
                }
                _ => {}
            }
        }
        self.notes.extend(notes);
    }

    /// The error for a member without a `nixosConfigurations` attribute: it
    /// points at the entries nixflip could not follow and names the key
    /// that settles it.
    pub fn no_entry_error(&self, m: &Member) -> Error {
        let several = match self.flake.entry_for(&m.name, &m.file) {
            flake::EntryMatch::Several(list) => list,
            _ => Vec::new(),
        };
        Error::caused(
            crate::error::EXIT_BAD_INPUT,
            self.flake
                .no_entry_error(&self.sources, &m.name, &m.file, &several),
        )
    }

    /// NF108: members import `self.nixosModules.X` and nixflip cannot tell
    /// which file that is (so the module's cluster options are not read).
    /// One finding per module, at its first import, naming every importer.
    fn note_unresolved_modules(&mut self) {
        // Module name → (its first import: file and span; who imports it).
        type Place = (PathBuf, Range<usize>);
        let mut found: BTreeMap<String, (Place, BTreeSet<String>)> = BTreeMap::new();
        for m in &self.members {
            for file in self.sources.closure(&m.file) {
                for import in self.sources.module_imports(&file) {
                    if import.file.is_some() {
                        continue;
                    }
                    let entry = found
                        .entry(import.name.clone())
                        .or_insert_with(|| ((file.clone(), import.span.clone()), BTreeSet::new()));
                    if (&file, import.span.start) < (&entry.0 .0, entry.0 .1.start) {
                        entry.0 = (file.clone(), import.span.clone());
                    }
                    entry.1.insert(m.name.clone());
                }
            }
        }
        for (name, ((file, span), importers)) in found {
            let why = match self.flake.modules.get(&name) {
                Some(module) => module
                    .why
                    .clone()
                    .unwrap_or_else(|| "its file is not part of the flake".into()),
                None if self.flake.opaque.iter().any(|o| o.output == "nixosModules") => {
                    "flake.nix computes nixosModules in a way nixflip does not evaluate".into()
                }
                None => "flake.nix defines no such module".into(),
            };
            let text = self.sources.text(&file).unwrap_or_default();
            let (line, column) = crate::nixedit::line_col(text, span.start);
            let names: Vec<&str> = importers.iter().map(String::as_str).collect();
            let verb = if names.len() == 1 {
                "imports"
            } else {
                "import"
            };
            self.notes.push(Finding {
                id: "NF108",
                severity: Severity::Warning,
                host: names.first().map(|n| n.to_string()),
                file,
                line,
                column,
                span: Some((span.start, span.end)),
                message: format!(
                    "{} {verb} self.nixosModules.{name}, and nixflip cannot tell which file that is ({why}), so the cluster options it sets are not read",
                    names.join(", ")
                ),
                help: format!(
                    "name its file in nixflip.toml: [modules] {} = \"path/to/module.nix\"",
                    crate::nixedit::path::render_key(&name)
                ),
            });
        }
    }

    /// Every file a member's configuration reads that nixflip can follow:
    /// its host file's imports, and the files (and modules) its
    /// `nixosConfigurations` entry adds.
    pub fn files_used_by(&self, m: &Member) -> BTreeSet<PathBuf> {
        let mut starts = vec![m.file.clone()];
        if let Some(entry) = m.attr.as_deref().and_then(|a| self.flake.entry(a)) {
            starts.extend(entry.files.iter().cloned());
            starts.extend(
                entry
                    .modules
                    .iter()
                    .filter_map(|name| self.flake.module_file(name).map(Path::to_path_buf)),
            );
        }
        let mut out = BTreeSet::new();
        for start in starts {
            if !out.contains(&start) {
                out.extend(self.sources.closure(&start));
            }
        }
        out
    }

    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn primaries(&self) -> Vec<&Member> {
        self.members.iter().filter(|m| m.is_primary()).collect()
    }

    /// The single primary, if there is exactly one.
    pub fn primary(&self) -> Option<&Member> {
        match self.primaries().as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Files that define options under the cluster option (not declare them).
    fn defining_files(&self) -> BTreeSet<PathBuf> {
        let keys = self.option.keys();
        self.sources
            .mentioning()
            .filter(|(_, f)| {
                f.walk_under(keys).bindings.iter().any(|b| {
                    !b.declaration && b.path.len() > keys.len() && b.path.starts_with(keys)
                })
            })
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// The members, and the shared modules (see [`Cluster::shared_modules`]).
    fn find_members(&self) -> Result<(Vec<Member>, Vec<PathBuf>)> {
        let defining = self.defining_files();
        let mut pinned: BTreeMap<PathBuf, String> = BTreeMap::new();
        for (name, host) in &self.config.config.hosts {
            if let Some(file) = &host.file {
                pinned.insert(discover::normalize(Path::new(file.get_ref())), name.clone());
            }
        }
        // Roots: pinned files, plus defining files no other defining file imports.
        let imported: BTreeSet<PathBuf> = defining
            .iter()
            .flat_map(|f| self.sources.closure(f).into_iter().filter(move |g| g != f))
            .collect();
        let mut roots: Vec<PathBuf> = pinned.keys().cloned().collect();
        roots.extend(
            defining
                .iter()
                .filter(|f| !imported.contains(*f) && !pinned.contains_key(*f))
                .cloned(),
        );
        let mut members = Vec::new();
        let mut shared = Vec::new();
        for root in roots {
            let is_pinned = pinned.contains_key(&root);
            let name = pinned
                .get(&root)
                .cloned()
                .unwrap_or_else(|| discover::host_name(&root));
            let files: Vec<PathBuf> = self
                .sources
                .closure(&root)
                .into_iter()
                .filter(|f| defining.contains(f) || *f == root)
                .collect();
            let member = self.build_member(name, root, files);
            if !is_pinned && member.def(ROLE).is_none() {
                // Options without a role, imported by no host file: a module
                // shared by hosts (through flake.nix), never a host itself.
                shared.push(member.file);
                continue;
            }
            if member.literal(ENABLE) == Some(&Value::Bool(false)) {
                continue; // declared but not a member
            }
            members.push(member);
        }
        self.check_unique_names(&members)?;
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((members, shared))
    }

    fn check_unique_names(&self, members: &[Member]) -> Result<()> {
        let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
        for m in members {
            if let Some(other) = seen.insert(&m.name, &m.file) {
                return Err(Error::usage(
                    format!(
                        "two host files give the host name `{}`: {} and {}",
                        m.name,
                        other.display(),
                        m.file.display()
                    ),
                    format!(
                        "name them in nixflip.toml: [hosts.\"<name>\"] file = \"{}\"",
                        m.file.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn build_member(&self, name: String, root: PathBuf, files: Vec<PathBuf>) -> Member {
        let keys = self.option.keys();
        let mut defs: BTreeMap<String, Vec<Def>> = BTreeMap::new();
        for rel in &files {
            let Some(file) = self.sources.get(rel) else {
                continue;
            };
            for b in
                file.walk_under(keys).bindings.iter().filter(|b| {
                    !b.declaration && b.path.len() > keys.len() && b.path.starts_with(keys)
                })
            {
                let key = AttrPath::new(b.path[keys.len()..].to_vec()).to_string();
                let found = file.found(b);
                defs.entry(key).or_default().push(Def {
                    file: rel.clone(),
                    span: found.span.clone(),
                    line: found.line,
                    column: found.column,
                    value: if b.inherited || found.value.is_none() {
                        resolve_literal(&b.inner)
                    } else {
                        found.value
                    },
                    expr: found.expr,
                    priority: b.priority,
                    conditional: b.conditional,
                });
            }
        }
        for list in defs.values_mut() {
            list.sort_by_key(|d| d.priority);
        }
        let host = self.config.config.hosts.get(&name);
        Member {
            attr: host
                .and_then(|h| h.attr.as_ref())
                .map(|a| a.get_ref().clone()),
            target: host
                .and_then(|h| h.target.as_ref())
                .map(|t| t.get_ref().clone()),
            address: host
                .and_then(|h| h.address.as_ref())
                .map(|a| a.get_ref().clone()),
            address_source: host
                .and_then(|h| h.address.as_ref())
                .map(|_| "nixflip.toml".to_string()),
            name,
            file: root,
            files,
            defs,
        }
    }

    /// Addresses: nixflip.toml, else `publicIp`, else inferred from peers'
    /// `peerHost`. Unknown addresses become NF008 notes.
    fn resolve_addresses(&mut self) {
        for m in &mut self.members {
            if m.address.is_none() {
                if let Some(ip) = m.literal(PUBLIC_IP).and_then(Value::as_str) {
                    m.address = Some(ip.to_string());
                    m.address_source = Some("publicIp".into());
                }
            } else if let (Some(configured), Some(public)) = (
                m.address.clone(),
                m.literal(PUBLIC_IP).and_then(Value::as_str),
            ) {
                if configured != public {
                    let def = m.def(PUBLIC_IP).cloned();
                    self.notes.push(rules::finding_at(
                        "NF008",
                        Severity::Error,
                        m,
                        def.as_ref(),
                        format!("{}: nixflip.toml says the address is {configured}, but publicIp is {public}", m.name),
                        format!("make hosts.\"{}\".address and publicIp agree", m.name),
                    ));
                }
            }
        }
        let inferred = self.infer_from_peers();
        for m in &mut self.members {
            if m.address.is_none() {
                if let Some((address, from)) = inferred.get(&m.name) {
                    m.address = Some(address.clone());
                    m.address_source = Some(format!("peerHost of {from}"));
                }
            }
        }
        for m in &self.members {
            if m.address.is_none() {
                self.notes.push(rules::finding_at(
                    "NF008",
                    Severity::Error,
                    m,
                    m.def(ROLE),
                    format!("the address of {} cannot be inferred", m.name),
                    format!("set publicIp in its file, or pin it in nixflip.toml: [hosts.\"{}\"] address = \"…\"", m.name),
                ));
            }
        }
    }

    /// A standby's peerHost is the primary's address; with exactly two members
    /// each one's peerHost names the other.
    fn infer_from_peers(&self) -> BTreeMap<String, (String, String)> {
        let mut out = BTreeMap::new();
        if let [a, b] = self.members.as_slice() {
            for (this, other) in [(a, b), (b, a)] {
                if let Some(peer) = other.peer_host() {
                    out.insert(this.name.clone(), (peer.to_string(), other.name.clone()));
                }
            }
            return out;
        }
        if let Some(primary) = self.primary() {
            let peers: BTreeSet<(&str, &str)> = self
                .members
                .iter()
                .filter(|m| m.role() == Role::Standby)
                .filter_map(|m| m.peer_host().map(|p| (p, m.name.as_str())))
                .collect();
            let hosts: BTreeSet<&str> = peers.iter().map(|(p, _)| *p).collect();
            if let (1, Some((peer, from))) = (hosts.len(), peers.iter().next()) {
                out.insert(primary.name.clone(), (peer.to_string(), from.to_string()));
            }
        }
        out
    }

    /// The same option defined in several places: say which one wins.
    fn note_multiple_definitions(&mut self) {
        for m in &self.members {
            for (key, defs) in &m.defs {
                let [winner, others @ ..] = defs.as_slice() else {
                    continue;
                };
                if others.is_empty()
                    || key.is_empty()
                    || others
                        .iter()
                        .all(|d| d.file == winner.file && d.span == winner.span)
                {
                    continue;
                }
                let places: Vec<String> = defs
                    .iter()
                    .map(|d| format!("{}:{}", d.file.display(), d.line))
                    .collect();
                let tie = others.iter().any(|d| d.priority == winner.priority);
                self.notes.push(rules::finding_at(
                    "NF104",
                    Severity::Warning,
                    m,
                    Some(winner),
                    format!(
                        "{}: `{key}` is defined in {} places ({}); {}",
                        m.name,
                        defs.len(),
                        places.join(", "),
                        if tie { "they have the same priority".to_string() } else { format!("the one at {}:{} wins", winner.file.display(), winner.line) }
                    ),
                    "keep one definition; nixflip edits the winning one and `nix eval` proves the result".to_string(),
                ));
            }
        }
    }
}
