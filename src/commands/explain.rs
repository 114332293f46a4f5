//! `explain ID`: what a finding means, from the registry of findings.

use clap::Args;
use nixflip::error::{Error, Result, EXIT_OK};
use nixflip::findings;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// A finding id, e.g. NF003 (case does not matter)
    pub id: String,
}

pub fn explain(args: &ExplainArgs) -> Result<i32> {
    let Some(rule) = findings::lookup(&args.id) else {
        let ids: Vec<&str> = findings::RULES.iter().map(|r| r.id).collect();
        return Err(Error::usage(
            format!("no finding has the id `{}`", args.id),
            format!("known ids: {}", ids.join(", ")),
        ));
    };
    print!("{}", findings::explain(rule));
    Ok(EXIT_OK)
}
