//! `get`, `set` and `unset`: the lossless editor on any `.nix` file.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use nixflip::error::{read_text, Result, EXIT_OK};
use nixflip::fsx::{self, FileWrite};
use nixflip::nixedit::{self, AttrPath, Edited, NewValue, NixFile, Value};
use nixflip::render::unified_diff;

use crate::Cli;

#[derive(Args, Debug)]
pub struct GetArgs {
    /// The .nix file to read
    pub file: PathBuf,
    /// Attribute path, e.g. hectic.generic.matrix-cluster.role (quote segments with dots: a."b.c")
    pub attrpath: String,
    /// Print {"value"|"expr", "file", "line", "column", "span"} as JSON
    #[arg(long)]
    pub json: bool,
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
}

#[derive(Args, Debug)]
pub struct UnsetArgs {
    /// The .nix file to edit
    pub file: PathBuf,
    /// Attribute path to remove
    pub attrpath: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn load(file: &Path) -> Result<NixFile> {
    let text = read_text(file)?;
    Ok(NixFile::parse(file.display().to_string(), text)?)
}

pub fn get(_cli: &Cli, args: &GetArgs) -> Result<i32> {
    let path: AttrPath = args.attrpath.parse().map_err(nixedit::EditError::from)?;
    let file = load(&args.file)?;
    let found = file.get(&path)?;
    if args.json {
        let mut json = serde_json::Map::new();
        match &found.value {
            Some(value) => json.insert("value".into(), value.to_json()),
            None => json.insert("expr".into(), found.expr.clone().into()),
        };
        json.insert("file".into(), file.name().into());
        json.insert("line".into(), found.line.into());
        json.insert("column".into(), found.column.into());
        json.insert(
            "span".into(),
            serde_json::json!([found.span.start, found.span.end]),
        );
        println!("{}", serde_json::Value::Object(json));
    } else {
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
    }
    Ok(EXIT_OK)
}

pub fn set(cli: &Cli, args: &SetArgs) -> Result<i32> {
    let path: AttrPath = args.attrpath.parse().map_err(nixedit::EditError::from)?;
    let new = if args.expr {
        NewValue::expr(&args.value)?
    } else {
        NewValue::Literal(Value::from_cli(&args.value).map_err(nixedit::EditError::from)?)
    };
    let file = load(&args.file)?;
    let edited = nixedit::set(&file, &path, &new)?;
    if !edited.changed && !cli.quiet {
        eprintln!(
            "`{path}` already has that value in {}; nothing to do",
            file.name()
        );
    }
    emit(cli, &args.file, &file, &edited, &args.output)
}

pub fn unset(cli: &Cli, args: &UnsetArgs) -> Result<i32> {
    let path: AttrPath = args.attrpath.parse().map_err(nixedit::EditError::from)?;
    let file = load(&args.file)?;
    let edited = nixedit::unset(&file, &path)?;
    if !edited.changed && !cli.quiet {
        eprintln!("`{path}` is not defined in {}; nothing to do", file.name());
    }
    emit(cli, &args.file, &file, &edited, &args.output)
}

/// Print the new file, a diff, or write in place.
fn emit(
    cli: &Cli,
    target: &Path,
    file: &NixFile,
    edited: &Edited,
    output: &OutputArgs,
) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
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
        let _ = write!(stdout, "{}", edited.text);
    }
    Ok(EXIT_OK)
}
