//! `nixflip comment` end to end: the real binary posts the role diff of a
//! test-built git repository to a scripted forge on 127.0.0.1 started here.
//! Nothing leaves the machine.

mod common;
mod review_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use review_support::{scrub, Fixture};

/// Distinctive, so finding it anywhere means it leaked.
const TOKEN: &str = "nfCLI-secret-9f3b1e77";

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// (status, extra headers, body)
type Answer = (u16, Vec<(&'static str, String)>, String);

/// A forge that answers each request with `script` and records it.
struct Forge {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Forge {
    fn start(script: impl Fn(&Seen) -> Answer + Send + 'static) -> Forge {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        // The thread ends with the test process; it serves one connection at
        // a time, which is how the client talks (one request per connection).
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten().take(100) {
                if let Some(request) = read_request(&stream) {
                    let answer = script(&request);
                    if let Ok(mut log) = log.lock() {
                        log.push(request);
                    }
                    write_answer(stream, answer);
                }
            }
        });
        Forge { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn read_request(stream: &TcpStream) -> Option<Seen> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn write_answer(mut stream: TcpStream, (status, headers, body): Answer) {
    let mut out = format!("HTTP/1.1 {status} Scripted\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let _ = stream.write_all(out.as_bytes());
}

fn comment(id: u64, body: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "body": body,
        "html_url": format!("https://forge.test/acme/infra/pull/7#issuecomment-{id}"),
    })
}

fn json(status: u16, value: serde_json::Value) -> Answer {
    (status, Vec::new(), value.to_string())
}

/// The body the client sent, from a POST or PATCH.
fn sent(request: &Seen) -> String {
    let value: serde_json::Value = serde_json::from_str(&request.body).expect("JSON body");
    value["body"].as_str().expect("body").to_string()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(f: &Fixture, forge: &Forge, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = f.nixflip();
    cmd.env("NO_PROXY", "127.0.0.1").args([
        "comment",
        "--pr",
        "7",
        "--repo",
        "acme/infra",
        "--api",
        &forge.url,
        "--base",
        "base",
        "--head",
        "promote",
    ]);
    cmd.args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("nixflip runs");
    let address = forge.url.trim_start_matches("http://").to_string();
    let clean =
        |b: &[u8]| scrub(f, &String::from_utf8_lossy(b)).replace(&address, "127.0.0.1:PORT");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: clean(&out.stdout),
        stderr: clean(&out.stderr),
    }
}

fn markdown(f: &Fixture) -> String {
    let out = f
        .nixflip()
        .args([
            "diff", "--base", "base", "--head", "promote", "--format", "markdown",
        ])
        .output()
        .expect("runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_token(run: &Run, forge: &Forge) {
    assert!(!run.stdout.contains(TOKEN), "token in stdout");
    assert!(!run.stderr.contains(TOKEN), "token in stderr");
    for r in forge.seen() {
        assert!(!r.target.contains(TOKEN), "token in URL {}", r.target);
        assert!(!r.body.contains(TOKEN), "token in body");
        for (name, value) in &r.headers {
            if name != "authorization" {
                assert!(!value.contains(TOKEN), "token in header {name}");
            }
        }
    }
}

#[test]
fn creates_a_comment_when_none_carries_the_marker() {
    let f = Fixture::standard("");
    let forge = Forge::start(|r| match r.method.as_str() {
        "GET" => json(
            200,
            serde_json::json!([comment(1, "LGTM"), comment(2, "<!-- other-bot -->")]),
        ),
        "POST" => json(201, comment(42, &sent(r))),
        _ => json(405, serde_json::json!({"message": "unexpected"})),
    });
    let run = run(&f, &forge, &[], &[("GITHUB_TOKEN", TOKEN)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "posted a new nixflip comment on pull request #7 (comment 42): https://forge.test/acme/infra/pull/7#issuecomment-42\n"
    );
    let seen = forge.seen();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=1",
            "POST /repos/acme/infra/issues/7/comments",
        ]
    );
    for r in &seen {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    // The posted body is exactly what `diff --format markdown` prints.
    assert_eq!(sent(&seen[1]), markdown(&f));
    assert!(sent(&seen[1]).starts_with("<!-- nixflip:diff -->\n"));
    assert_no_token(&run, &forge);
}

#[test]
fn updates_the_comment_that_carries_the_marker() {
    let f = Fixture::standard("");
    let forge = Forge::start(|r| match r.method.as_str() {
        "GET" => json(
            200,
            serde_json::json!([
                comment(1, "LGTM"),
                comment(9, "<!-- nixflip:diff -->\nold diff"),
            ]),
        ),
        "PATCH" => json(200, comment(9, &sent(r))),
        _ => json(405, serde_json::json!({"message": "unexpected"})),
    });
    let run = run(&f, &forge, &[], &[("GITHUB_TOKEN", TOKEN)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run
        .stdout
        .starts_with("updated the nixflip comment on pull request #7 (comment 9)"));
    let seen = forge.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].method, "PATCH");
    assert_eq!(seen[1].target, "/repos/acme/infra/issues/comments/9");
    assert_eq!(sent(&seen[1]), markdown(&f));
    assert_no_token(&run, &forge);
}

#[test]
fn an_up_to_date_comment_is_left_alone() {
    let f = Fixture::standard("");
    let body = markdown(&f);
    let forge = Forge::start(move |_| json(200, serde_json::json!([comment(5, &body)])));
    let run = run(&f, &forge, &[], &[("GITHUB_TOKEN", TOKEN)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("left unchanged the nixflip comment"));
    assert_eq!(forge.seen().len(), 1, "only the listing");
}

#[test]
fn gitea_uses_its_token_scheme_and_env() {
    let f = Fixture::standard("");
    let forge = Forge::start(|r| match r.method.as_str() {
        "GET" => json(200, serde_json::json!([])),
        "POST" => json(201, comment(3, &sent(r))),
        _ => json(405, serde_json::json!({"message": "unexpected"})),
    });
    let mut cmd = f.nixflip();
    let out = cmd
        .env("NO_PROXY", "127.0.0.1")
        .env("GITEA_TOKEN", TOKEN)
        .env("GITHUB_REPOSITORY", "acme/infra")
        .env("GITHUB_SERVER_URL", format!("{}/", forge.url))
        .args([
            "comment", "--forge", "gitea", "--pr", "7", "--base", "base", "--head", "broken",
        ])
        .output()
        .expect("runs");
    // A broken head still gets its comment, and `comment` exits 0.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = forge.seen();
    let lines: Vec<String> = seen
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /api/v1/repos/acme/infra/issues/7/comments",
            "POST /api/v1/repos/acme/infra/issues/7/comments",
        ]
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("token {TOKEN}").as_str())
    );
    assert!(sent(&seen[1]).contains("NF001"));
}

#[test]
fn http_errors_are_clear_and_exit_3() {
    let f = Fixture::standard("");
    let cases: Vec<(&str, Answer)> = vec![
        (
            "401",
            json(
                401,
                serde_json::json!({ "message": format!("Bad credentials {TOKEN}") }),
            ),
        ),
        (
            "403",
            json(
                403,
                serde_json::json!({ "message": "Resource not accessible by integration" }),
            ),
        ),
        (
            "404",
            json(404, serde_json::json!({ "message": "Not Found" })),
        ),
        (
            "rate_limit",
            (
                403,
                vec![
                    ("x-ratelimit-remaining", "0".to_string()),
                    ("x-ratelimit-reset", "1700000000".to_string()),
                ],
                serde_json::json!({ "message": "API rate limit exceeded" }).to_string(),
            ),
        ),
        ("500", json(500, serde_json::json!({ "message": "boom" }))),
    ];
    for (name, answer) in cases {
        let forge = Forge::start(move |_| answer.clone());
        let run = run(&f, &forge, &[], &[("GITHUB_TOKEN", TOKEN)]);
        assert_eq!(run.code, 3, "{name}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{name}");
        assert_no_token(&run, &forge);
        insta::assert_snapshot!(format!("comment_error_{name}"), run.stderr);
    }
}

#[test]
fn missing_token_is_bad_input_and_sends_nothing() {
    let f = Fixture::standard("");
    let forge = Forge::start(|_| json(500, serde_json::json!({})));
    let run = run(&f, &forge, &[], &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no GitHub API token"), "{}", run.stderr);
    assert!(forge.seen().is_empty());
    // An unknown revision is bad input too, before anything is sent.
    let run = run_with_base(&f, &forge, "nope");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("unknown revision `nope`"),
        "{}",
        run.stderr
    );
    assert!(forge.seen().is_empty());
}

fn run_with_base(f: &Fixture, forge: &Forge, base: &str) -> Run {
    let out = f
        .nixflip()
        .env("NO_PROXY", "127.0.0.1")
        .env("GITHUB_TOKEN", TOKEN)
        .args([
            "comment",
            "--pr",
            "7",
            "--repo",
            "acme/infra",
            "--api",
            &forge.url,
        ])
        .args(["--base", base])
        .output()
        .expect("runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `nixflip comment` line of an example workflow, with the event values
/// filled in, as an argv.
fn workflow_command(file: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(common::repo().join("examples/ci").join(file)).expect("workflow");
    let line = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("run: nixflip comment"))
        .expect("a `run: nixflip comment` step");
    line.replace("\"$PR_NUMBER\"", "7")
        .replace("\"origin/$BASE_REF\"", "origin/main")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_example_workflows_command_lines_work() {
    let f = Fixture::standard("");
    // As after actions/checkout with fetch-depth 0: origin/main is the base,
    // the PR's head is checked out.
    review_support::git(&f.repo, &["update-ref", "refs/remotes/origin/main", "base"]);
    f.reset_to("promote");
    for (file, env) in [
        ("github-actions.yml", ["GITHUB_TOKEN", "GITHUB_API_URL"]),
        ("forgejo-actions.yml", ["GITEA_TOKEN", "GITHUB_SERVER_URL"]),
    ] {
        let forge = Forge::start(|r| match r.method.as_str() {
            "GET" => json(200, serde_json::json!([])),
            "POST" => json(201, comment(11, &sent(r))),
            _ => json(405, serde_json::json!({"message": "unexpected"})),
        });
        let args = workflow_command(file);
        let out = f
            .nixflip()
            .env("NO_PROXY", "127.0.0.1")
            .env(env[0], TOKEN)
            .env(env[1], &forge.url)
            .env("GITHUB_REPOSITORY", "acme/infra")
            .arg("comment")
            .args(&args)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{file} {args:?}: {stderr}");
        let seen = forge.seen();
        assert_eq!(seen.len(), 2, "{file}");
        assert!(seen[1]
            .target
            .ends_with("/repos/acme/infra/issues/7/comments"));
        assert!(sent(&seen[1]).contains("promotes bfs.poland.xray; hectic-lab becomes standby"));
    }
}

#[test]
fn a_head_that_does_not_parse_gets_the_diagnostic_as_its_comment() {
    let f = Fixture::standard("");
    f.replace(
        review_support::HECTIC,
        "role           = \"primary\";",
        "role           = \"primary\"",
    );
    f.commit("unparsable", "a missing semicolon");
    let forge = Forge::start(|r| match r.method.as_str() {
        "GET" => json(200, serde_json::json!([])),
        "POST" => json(201, comment(8, &sent(r))),
        _ => json(405, serde_json::json!({"message": "unexpected"})),
    });
    let out = f
        .nixflip()
        .env("NO_PROXY", "127.0.0.1")
        .env("GITHUB_TOKEN", TOKEN)
        .args([
            "comment",
            "--pr",
            "7",
            "--repo",
            "acme/infra",
            "--api",
            &forge.url,
        ])
        .args(["--base", "base", "--head", "unparsable"])
        .output()
        .expect("runs");
    // Bad input, reported on stderr, and posted for the reviewer too.
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the cluster at revision `unparsable`"),
        "{stderr}"
    );
    let seen = forge.seen();
    assert_eq!(seen.len(), 2);
    let body = sent(&seen[1]);
    insta::assert_snapshot!("comment_unparsable_head", body);
}
