//! `nixflip switchover` on the two loopback hosts of `tests/live_support` (real sshd and
//! PostgreSQL each), with the doubles of `tests/switchover_support`.

mod common;
mod live_support;
mod switchover_support;

use switchover_support::{Drill, Switch};

fn text(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn drill_loses_no_committed_row_and_the_old_primary_follows() {
    let s = Switch::start();
    let drill = Drill::start(&s.env);
    // Writes on alpha first.
    live_support::wait_until("the writer commits on alpha", || {
        s.env.alpha().sql("SELECT count(*) FROM drill") != "0"
    });
    let out = s.run(&["beta", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    live_support::wait_until("the writer commits on beta", || {
        s.env.beta().sql("SELECT count(*) FROM drill WHERE run > 1") != "0"
            && s.env.beta().sql("SELECT pg_is_in_recovery()") == "f"
    });
    let writes = drill.stop();
    s.assert_switched();
    writes.assert_all_on(s.env.beta());
    assert!(writes.count_on("alpha") > 0 && writes.count_on("beta") > 0);
    eprintln!("{}", text(&out));
    eprintln!("client gap: {:?}", writes.gap("alpha", "beta"));
    eprintln!("{:#}", s.runs()[0]);
}
