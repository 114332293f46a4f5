//! `diff` and `comment`: the role diff between two git revisions, printed or
//! posted on a pull request.

use clap::{Args, ValueEnum};
use nixflip::error::{Result, EXIT_FINDINGS, EXIT_OK};
use nixflip::forge::{CommentOutcome, ForgeClient, ForgeKind};
use nixflip::render::review as render;
use nixflip::review::{self, Review, MARKER};

use super::cluster::flake_root;
use crate::Cli;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

/// The revisions to compare (shared by `diff` and `comment`).
#[derive(Args, Debug)]
pub struct RevArgs {
    /// The base revision (a branch, tag or commit, e.g. origin/main)
    #[arg(long, value_name = "REV")]
    pub base: String,
    /// The head revision (default: the work tree, files read from disk)
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 the head has no error findings, 1 it has, 2 bad input (an unknown \
revision, a revision whose cluster cannot be read), 3 git failed."
)]
pub struct DiffArgs {
    #[command(flatten)]
    pub revs: RevArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

#[derive(Args, Debug)]
#[command(
    after_help = "The token comes from the environment only (GITHUB_TOKEN; Gitea: GITEA_TOKEN or \
GITHUB_TOKEN) and is never printed.\n\nExit codes: 0 posted, updated or already current (whatever \
the findings), 2 bad input (no token or repository, an unknown revision), 3 the forge refused or \
could not be reached."
)]
pub struct CommentArgs {
    #[command(flatten)]
    pub revs: RevArgs,
    /// The pull request's number
    #[arg(long, value_name = "N")]
    pub pr: u64,
    /// The repository (default: $GITHUB_REPOSITORY)
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// The API base URL (default: $GITHUB_API_URL or https://api.github.com; Gitea:
    /// $GITEA_API_URL or $GITHUB_SERVER_URL/api/v1)
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// The forge's API: github, or gitea (also for Forgejo)
    #[arg(long, value_name = "KIND", default_value = "github", value_parser = parse_forge)]
    pub forge: ForgeKind,
}

fn parse_forge(s: &str) -> std::result::Result<ForgeKind, String> {
    s.parse()
        .map_err(|e: nixflip::forge::ForgeError| e.to_string())
}

fn build_review(cli: &Cli, revs: &RevArgs) -> Result<Review> {
    let root = flake_root(cli, None)?;
    review::review(&review::Request {
        root: &root,
        base: &revs.base,
        head: revs.head.as_deref(),
        config: cli.config.as_deref(),
    })
}

/// Exit 0 when the head has no error findings, 1 when it has (CI fails on a
/// broken flip), 2 on bad input such as an unknown revision.
pub fn diff(cli: &Cli, args: &DiffArgs) -> Result<i32> {
    let review = build_review(cli, &args.revs)?;
    match args.format {
        DiffFormat::Text => print!(
            "{}",
            render::text(
                &review,
                cli.color.enabled_for_stdout(),
                nixflip::render::stdout_width()
            )
        ),
        DiffFormat::Markdown => print!("{}", render::markdown(&review)),
        DiffFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::json(&review)).unwrap_or_default()
        ),
    }
    Ok(if review.errors > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

/// Post the Markdown of `diff --format markdown`, or update the comment that
/// carries the marker. Exit 0 when posted (findings are `diff`'s and
/// `check`'s business, so a broken PR still gets its comment and the job
/// decides), 2 on bad input (when a revision's cluster cannot be read, after
/// posting nixflip's diagnostic as the comment), 3 when the forge refuses or
/// cannot be reached.
pub fn comment(cli: &Cli, args: &CommentArgs) -> Result<i32> {
    // Configure the client first: a missing token should not wait for git.
    let client = ForgeClient::from_process_env(args.forge, args.api.clone(), args.repo.clone())?;
    // A PR that breaks a host file still gets a comment: the diagnostic,
    // in place of the diff; the exit code stays that of the failure.
    let (body, code) = match build_review(cli, &args.revs) {
        Ok(review) => (render::markdown(&review), EXIT_OK),
        Err(error) => match review::unreadable(&error) {
            Some(place) => {
                let body = render::markdown_unreadable(place, &plain_report(&error));
                let code = error.exit_code();
                eprintln!("{:?}", miette::Report::new(error));
                (body, code)
            }
            None => return Err(error),
        },
    };
    match client.upsert_comment(args.pr, &body, MARKER) {
        Ok(outcome) => {
            if !cli.quiet {
                let (what, id) = match &outcome {
                    CommentOutcome::Created { id, .. } => ("posted a new", id),
                    CommentOutcome::Updated { id, .. } => ("updated the", id),
                    CommentOutcome::Unchanged { id, .. } => ("left unchanged the", id),
                };
                let url = outcome.url();
                let at = if url.is_empty() {
                    String::new()
                } else {
                    format!(": {url}")
                };
                println!(
                    "{what} nixflip comment on pull request #{} (comment {id}){at}",
                    args.pr
                );
            }
            Ok(code)
        }
        Err(e) => Err(e.into()),
    }
}

/// A diagnostic as text without colour, for a comment.
fn plain_report(error: &nixflip::Error) -> String {
    let mut out = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .with_links(false);
    if handler.render_report(&mut out, error).is_err() {
        return error.to_string();
    }
    out
}
