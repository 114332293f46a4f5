//! `get`, `set` and `unset`: the lossless editor on any `.nix` file.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use nixflip::error::{Result, EXIT_OK};
use nixflip::fsx::{self, FileWrite};
use nixflip::nixedit::{self, AttrPath, Edited, Found, NewValue, NixFile, Query, Reading, Value};
use nixflip::render::{stdio, unified_diff};

use crate::Cli;

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The .nix file to read
    pub file: PathBuf,
    /// Attribute path, e.g. hectic.generic.matrix-cluster.role (quote segments with dots: a."b.c")
    pub attrpath: String,
    /// Print {"value"|"expr", "file", "line", "column", "span", "condition"} as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

#[derive(Args, Debug)]
pub struct ReadingArgs {
    /// Read ATTRPATH as a NixOS option path: a module that declares options
    /// sets its values under `config = { … }`, which this looks through (as
    /// status and promote do). Without it, paths are the file's own
    /// attribute paths (`config.x` is `config.x`)
    #[arg(long)]
    pub option: bool,
}

impl ReadingArgs {
    fn reading(&self) -> Reading {
        if self.option {
            Reading::Option
        } else {
            Reading::Attrs
        }
    }
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Write the file in place (atomically: temp file, then rename)
    #[arg(long, short = 'i', conflicts_with = "diff")]
    pub in_place: bool,
    /// Print a unified diff instead of the new file
    #[arg(long)]
    pub diff: bool,
}

#[derive(Args, Debug)]
pub struct SetArgs {
    /// The .nix file to edit
    pub file: PathBuf,
    /// Attribute path, e.g. hectic.generic.matrix-cluster.role
    pub attrpath: String,
    /// JSON value ("text", true, null, 42, ["a","b"]); with --expr, a Nix expression
    #[arg(allow_hyphen_values = true)]
    pub value: String,
    /// Take VALUE as a Nix expression, written as given (it must parse)
    #[arg(long)]
    pub expr: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

#[derive(Args, Debug)]
pub struct UnsetArgs {
    /// The .nix file to edit
    pub file: PathBuf,
    /// Attribute path to remove
    pub attrpath: String,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

fn load(file: &Path, reading: Reading) -> Result<NixFile> {
    let bytes = std::fs::read(file).map_err(|source| nixflip::Error::Read {
        path: file.to_path_buf(),
        source,
    })?;
    Ok(NixFile::from_bytes(
        file.display().to_string(),
        bytes,
        reading,
    )?)
}

/// `{"value"|"expr", "line", "column", "span", "condition"?}` of one definition.
fn found_json(found: &Found) -> serde_json::Map<String, serde_json::Value> {
    let mut json = serde_json::Map::new();
    match &found.value {
        Some(value) => json.insert("value".into(), value.to_json()),
        None => json.insert("expr".into(), found.expr.clone().into()),
    };
    json.insert("line".into(), found.line.into());
    json.insert("column".into(), found.column.into());
    json.insert(
        "span".into(),
        serde_json::json!([found.span.start, found.span.end]),
    );
    if let Some(condition) = found.condition() {
        json.insert("condition".into(), condition.into());
    }
    json
}

pub fn get(_cli: &Cli, args: &GetArgs) -> Result<i32> {
    let path: AttrPath = args.attrpath.parse().map_err(nixedit::EditError::from)?;
    let file = load(&args.file, args.reading.reading())?;
    match file.query(&path)? {
        Query::One(found) if args.json => {
            let mut json = found_json(&found);
            json.insert("file".into(), file.name().into());
            println!("{}", serde_json::Value::Object(json));
        }
        Query::One(found) => {
            match &found.value {
                Some(value) => println!("{}", value.to_json()),
                None => {
                    println!("{}", found.expr);
                    eprintln!(
                        "note: `{path}` is an expression, not a literal (at {}:{}:{})",
                        file.name(),
                        found.line,
                        found.column
                    );
                }
            }
            if let Some(condition) = found.condition() {
                eprintln!(
                    "note: `{path}` is defined only when `{condition}` holds (lib.mkIf at {}:{}:{})",
                    file.name(),
                    found.line,
                    found.column
                );
            }
        }
        Query::Set(set) if args.json => {
            let mut json = serde_json::Map::new();
            if let Some(value) = &set.value {
                json.insert("value".into(), value.clone());
            }
            json.insert("file".into(), file.name().into());
            let definitions: Vec<serde_json::Value> = set
                .definitions
                .iter()
                .map(|(p, found)| {
                    let mut d = serde_json::Map::new();
                    d.insert("path".into(), p.to_string().into());
                    d.extend(found_json(found));
                    serde_json::Value::Object(d)
                })
                .collect();
            json.insert("definitions".into(), definitions.into());
            println!("{}", serde_json::Value::Object(json));
        }
        Query::Set(set) => match &set.value {
            Some(value) => println!("{value}"),
            None => {
                let n = set.definitions.len();
                eprintln!(
                    "note: `{path}` is an attribute set spread over {n} definition{} that are not all literals:",
                    if n == 1 { "" } else { "s" }
                );
                for (p, found) in &set.definitions {
                    let condition = found
                        .condition()
                        .map(|c| format!("  (when {c})"))
                        .unwrap_or_default();
                    println!(
                        "{p} = {};  # {}:{}:{}{condition}",
                        found.expr,
                        file.name(),
                        found.line,
                        found.column
                    );
                }
            }
        },
    }
    // The process ends here: the operating system frees the syntax tree
    // faster than dropping it node by node would.
    std::mem::forget(file);
    Ok(EXIT_OK)
}

pub fn set(cli: &Cli, args: &SetArgs) -> Result<i32> {
    let path: AttrPath = args.attrpath.parse().map_err(nixedit::EditError::from)?;
    let new = if args.expr {
        NewValue::expr(&args.value)?
    } else {
        NewValue::Literal(Value::from_cli(&args.value).map_err(nixedit::EditError::from)?)
    };
    let file = load(&args.file, args.reading.reading())?;
    let edited = nixedit::set(&file, &path, &new)?;
    if !edited.changed && !cli.quiet {
        eprintln!(
            "`{path}` already has that value in {}; nothing to do",
            file.name()
        );
    }
    let code = emit(cli, &args.file, &file, &edited, &args.output)?;
    // The process ends here: the operating system frees the syntax tree
    // faster than dropping it node by node would.
    std::mem::forget(file);
    Ok(code)
}

pub fn unset(cli: &Cli, args: &UnsetArgs) -> Result<i32> {
    let path: AttrPath = args.attrpath.parse().map_err(nixedit::EditError::from)?;
    let file = load(&args.file, args.reading.reading())?;
    let edited = nixedit::unset(&file, &path)?;
    if !edited.changed && !cli.quiet {
        eprintln!("`{path}` is not defined in {}; nothing to do", file.name());
    }
    let code = emit(cli, &args.file, &file, &edited, &args.output)?;
    // The process ends here: the operating system frees the syntax tree
    // faster than dropping it node by node would.
    std::mem::forget(file);
    Ok(code)
}

/// Print the new file, a diff, or write in place.
fn emit(
    cli: &Cli,
    target: &Path,
    file: &NixFile,
    edited: &Edited,
    output: &OutputArgs,
) -> Result<i32> {
    let mut stdout = stdio::stdout();
    if output.in_place {
        if edited.changed {
            fsx::write_all(&[FileWrite {
                path: target.to_path_buf(),
                content: edited.text.clone(),
            }])?;
            if !cli.quiet {
                eprintln!("wrote {}", file.name());
            }
        }
    } else if output.diff {
        let color = cli.color.enabled_for_stdout();
        let _ = write!(
            stdout,
            "{}",
            unified_diff(file.name(), file.text(), &edited.text, color)
        );
    } else {
        let _ = stdout.write_all(edited.text.as_bytes());
    }
    Ok(EXIT_OK)
}
