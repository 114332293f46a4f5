//! `status --live` (and `--watch`): settings, one transport, the library's status, rendered.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nixflip::cluster::Cluster;
use nixflip::error::{Error, Result};
use nixflip::live::{self, LiveStatus, Settings, Transport};
use nixflip::render;

use super::cluster::{print_findings, StatusArgs};
use crate::Cli;

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: i32 = 130;

pub fn status(cli: &Cli, args: &StatusArgs, root: &Path, cluster: &Cluster) -> Result<i32> {
    if cluster.members.is_empty() {
        println!(
            "no cluster members found under `{}` in {}",
            cluster.option,
            root.display()
        );
        return Ok(nixflip::error::EXIT_OK);
    }
    let mut settings = Settings::resolve(cluster)?;
    if let Some(every) = args.watch {
        if every == 0 {
            return Err(Error::usage(
                "--watch 0 would redraw without pause",
                "give the seconds between refreshes, e.g. --watch 5",
            ));
        }
        if !std::io::stdout().is_terminal() {
            return Err(Error::usage(
                "--watch redraws the screen, and stdout is not a terminal",
                "run it in a terminal, or run `nixflip status --live` (or --json) once per check",
            ));
        }
        // The connections stay open between refreshes.
        settings.ssh.persist = settings.ssh.persist.max(every.saturating_mul(3));
    }
    // Ctrl-C stops nixflip's own loop, so that the connections are closed
    // and their socket directory removed (ssh clients still get the signal).
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted)).map_err(|e| {
            Error::external(
                format!("cannot handle signals: {e}"),
                "this is a bug; please report it",
            )
        })?;
    }
    let transport = Transport::new(settings.ssh.clone())?;
    match args.watch {
        None => {
            let status = live::status(cluster, &settings, &transport);
            if interrupted.load(Ordering::SeqCst) {
                return Ok(EXIT_INTERRUPTED);
            }
            if args.json {
                let json = serde_json::json!({
                    "flake": root,
                    "members": status.members,
                    "findings": status.findings,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            } else {
                print_once(cli, cluster, &status);
            }
            Ok(status.exit_code())
        }
        Some(every) => {
            let last = live::watch(
                cluster,
                &settings,
                &transport,
                Duration::from_secs(every),
                &interrupted,
                |status| {
                    // Home and clear, then the whole screen at once.
                    let screen = format!(
                        "\x1b[H\x1b[2Jnixflip status --live: every {every} s, {} UTC (Ctrl-C stops)\n\n{}\n{}",
                        clock(),
                        render::live::table(status),
                        render::live::findings_lines(status)
                    );
                    let mut out = std::io::stdout().lock();
                    out.write_all(screen.as_bytes())
                        .and_then(|()| out.flush())
                        .is_ok()
                },
            );
            Ok(last.map_or(nixflip::error::EXIT_OK, |s| s.exit_code()))
        }
    }
}

fn print_once(cli: &Cli, cluster: &Cluster, status: &LiveStatus) {
    print!("{}", render::live::table(status));
    if status.findings.is_empty() {
        println!("\nno findings");
    } else {
        println!();
        print_findings(cli, cluster, &status.findings);
    }
}

/// The time of day, UTC, for the watch header.
fn clock() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}
