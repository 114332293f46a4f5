//! The PR comment poster against a scripted forge on 127.0.0.1: nothing leaves the machine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use miette::{GraphicalReportHandler, GraphicalTheme, NarratableReportHandler};
use nixflip::forge::{CommentOutcome, ForgeClient, ForgeError, ForgeKind, Secret};

/// Distinctive enough that finding it anywhere means it leaked.
const TOKEN: &str = "nfTEST-t0ken-5a1e9c7d";
const MARKER: &str = "<!-- nixflip:diff -->";

// ---------------------------------------------------------------------------------------------
// A tiny scripted HTTP/1.1 server.

#[derive(Debug, Clone)]
struct Request {
    method: String,
    /// Path and query, as sent on the request line.
    target: String,
    /// Header names lowercased, in the order received.
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

impl Reply {
    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

type Handler = Box<dyn Fn(&Request) -> Reply + Send>;

struct MockForge {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MockForge {
    fn start(handler: impl Fn(&Request) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Handler = Box::new(handler);
        let thread = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                // Bounded: a test makes a handful of requests; Drop ends the loop early.
                for stream in listener.incoming().take(500) {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve(stream, &handler, &requests);
                }
            })
        };
        MockForge {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Request::line).collect()
    }
}

impl Drop for MockForge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request from the connection, records it and writes the scripted reply.
fn serve(stream: TcpStream, handler: &Handler, requests: &Mutex<Vec<Request>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return; // the wake-up connection from Drop, or a client that went away
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                return;
            };
            let mut chunk = vec![0; size + 2];
            if reader.read_exact(&mut chunk).is_err() {
                return;
            }
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let request = Request {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let answer = handler(&request);
    if let Ok(mut log) = requests.lock() {
        log.push(request);
    }
    let mut out = format!("HTTP/1.1 {} Scripted\r\n", answer.status);
    for (name, value) in &answer.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Content-Type: application/json\r\n");
    out.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
    out.push_str("Connection: close\r\n\r\n");
    out.push_str(&answer.body);
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn github_client(server: &MockForge) -> ForgeClient {
    ForgeClient::from_env_and_args(
        ForgeKind::GitHub,
        None,
        None,
        env_of(&[
            ("GITHUB_TOKEN", TOKEN),
            ("GITHUB_REPOSITORY", "acme/infra"),
            ("GITHUB_API_URL", &server.url()),
        ]),
    )
    .expect("client")
}

fn gitea_client(server: &MockForge) -> ForgeClient {
    // Forgejo/Gitea runners set GITHUB_SERVER_URL to the forge's web root.
    ForgeClient::from_env_and_args(
        ForgeKind::Gitea,
        None,
        None,
        env_of(&[
            ("GITEA_TOKEN", TOKEN),
            ("GITHUB_REPOSITORY", "acme/infra"),
            ("GITHUB_SERVER_URL", &server.url()),
        ]),
    )
    .expect("client")
}

fn comment_json(id: u64, body: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "body": body,
        "html_url": format!("https://forge.test/acme/infra/pull/7#issuecomment-{id}"),
        "user": { "login": "someone" },
    })
}

fn page_of(ids: std::ops::Range<u64>) -> Vec<serde_json::Value> {
    ids.map(|id| comment_json(id, &format!("LGTM #{id}")))
        .collect()
}

fn echo_created(request: &Request, id: u64) -> Reply {
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap_or_default();
    let text = body["body"].as_str().unwrap_or_default();
    reply(201, comment_json(id, text).to_string())
}

fn sent_body(request: &Request) -> String {
    let value: serde_json::Value = serde_json::from_str(&request.body).expect("JSON body");
    value["body"].as_str().expect("body string").to_owned()
}

/// What an operator sees: exit code, then miette's report without colours.
fn render(error: &ForgeError) -> String {
    let mut out = format!("exit code: {}\n", error.exit_code());
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(1000)
        .with_links(false)
        .render_report(&mut out, error)
        .expect("render");
    out
}

/// Every way an error can be turned into text.
fn all_renderings(error: &ForgeError) -> String {
    let mut out = format!("{error}\n{error:?}\n{}\n", render(error));
    let _ = NarratableReportHandler::new().render_report(&mut out, error);
    out
}

fn upsert_error(server: &MockForge) -> ForgeError {
    match github_client(server).upsert_comment(7, "## nixflip", MARKER) {
        Ok(outcome) => panic!("expected an error, got {outcome:?}"),
        Err(e) => e,
    }
}

fn assert_snapshot_of(name: &str, error: &ForgeError) {
    insta::with_settings!({ filters => vec![(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]")] }, {
        insta::assert_snapshot!(name, render(error));
    });
}

// ---------------------------------------------------------------------------------------------
// GitHub.

#[test]
fn github_creates_comment_when_none_has_marker() {
    let server = MockForge::start(|r| match r.method.as_str() {
        "GET" => reply(
            200,
            serde_json::json!([
                comment_json(1, "nice"),
                comment_json(2, "<!-- other-bot -->")
            ])
            .to_string(),
        ),
        "POST" => echo_created(r, 42),
        _ => reply(405, r#"{"message":"unexpected"}"#),
    });
    let body = format!("{MARKER}\n## nixflip role diff\n");
    let outcome = github_client(&server)
        .upsert_comment(7, &body, MARKER)
        .expect("upsert");
    assert_eq!(
        outcome,
        CommentOutcome::Created {
            id: 42,
            url: "https://forge.test/acme/infra/pull/7#issuecomment-42".to_owned()
        }
    );
    assert_eq!(
        server.lines(),
        [
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=1",
            "POST /repos/acme/infra/issues/7/comments",
        ]
    );
    let requests = server.requests();
    for r in &requests {
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(r.header("authorization"), Some(bearer.as_str()));
        assert_eq!(r.header("accept"), Some("application/vnd.github+json"));
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
        let agent = format!("nixflip/{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(r.header("user-agent"), Some(agent.as_str()));
    }
    assert_eq!(requests[1].header("content-type"), Some("application/json"));
    assert_eq!(sent_body(&requests[1]), body);
}

#[test]
fn github_updates_marked_comment_found_on_second_page() {
    let server = MockForge::start(|r| {
        match (r.method.as_str(), r.target.as_str()) {
        ("GET", "/repos/acme/infra/issues/7/comments?per_page=100&page=1") => {
            reply(200, serde_json::Value::from(page_of(1..101)).to_string()).header(
                "Link",
                r#"<https://api.github.test/repositories/9/issues/7/comments?per_page=100&page=2>; rel="next", <https://api.github.test/repositories/9/issues/7/comments?per_page=100&page=2>; rel="last""#,
            )
        }
        ("GET", "/repos/acme/infra/issues/7/comments?per_page=100&page=2") => reply(
            200,
            serde_json::json!([
                comment_json(101, "ok"),
                comment_json(901, &format!("{MARKER}\nold diff")),
                comment_json(902, &format!("{MARKER}\na later duplicate")),
            ])
            .to_string(),
        ),
        ("PATCH", "/repos/acme/infra/issues/comments/901") => {
            let text = sent_body(r);
            reply(200, comment_json(901, &text).to_string())
        }
        _ => reply(404, r#"{"message":"Not Found"}"#),
    }
    });
    let body = format!("{MARKER}\nnew diff\n");
    let outcome = github_client(&server)
        .upsert_comment(7, &body, MARKER)
        .expect("upsert");
    assert_eq!(
        outcome,
        CommentOutcome::Updated {
            id: 901,
            url: "https://forge.test/acme/infra/pull/7#issuecomment-901".to_owned()
        }
    );
    assert_eq!(
        server.lines(),
        [
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=1",
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=2",
            "PATCH /repos/acme/infra/issues/comments/901",
        ]
    );
    let patch = &server.requests()[2];
    assert_eq!(sent_body(patch), body);
    // The Link target's host is never contacted: only our API base is.
    assert!(server
        .requests()
        .iter()
        .all(|r| !r.target.contains("github.test")));
}

#[test]
fn github_full_page_without_link_header_asks_for_the_next() {
    let server = MockForge::start(|r| match (r.method.as_str(), r.target.as_str()) {
        ("GET", t) if t.ends_with("page=1") => {
            reply(200, serde_json::Value::from(page_of(1..101)).to_string())
        }
        ("GET", _) => reply(200, "[]"),
        ("POST", _) => echo_created(r, 555),
        _ => reply(404, "{}"),
    });
    let outcome = github_client(&server)
        .upsert_comment(7, "body", MARKER)
        .expect("upsert");
    assert_eq!(outcome.id(), 555);
    assert_eq!(
        server.lines(),
        [
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=1",
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=2",
            "POST /repos/acme/infra/issues/7/comments",
        ]
    );
    // The marker is put first when the body lacks it, so the next run finds the comment.
    assert_eq!(sent_body(&server.requests()[2]), format!("{MARKER}\nbody"));
}

#[test]
fn a_comment_quoting_the_marker_is_not_the_bot_comment() {
    // A human replied quoting the bot (or pasted the marker mid-text) before the bot's own
    // comment: only the comment whose body starts with the marker line is edited.
    let server = MockForge::start(|r| match (r.method.as_str(), r.target.as_str()) {
        ("GET", _) => reply(
            200,
            serde_json::json!([
                comment_json(
                    10,
                    &format!("> {MARKER}\n> old diff\n\nwhy is this primary?")
                ),
                comment_json(11, &format!("see the bot: {MARKER}")),
                comment_json(12, &format!("{MARKER}\r\nold diff")),
            ])
            .to_string(),
        ),
        ("PATCH", "/repos/acme/infra/issues/comments/12") => {
            reply(200, comment_json(12, &sent_body(r)).to_string())
        }
        _ => reply(
            403,
            r#"{"message":"Must have admin rights to Repository."}"#,
        ),
    });
    let outcome = github_client(&server)
        .upsert_comment(7, &format!("{MARKER}\nnew diff\n"), MARKER)
        .expect("upsert");
    assert!(matches!(outcome, CommentOutcome::Updated { id: 12, .. }));
    assert_eq!(
        server.lines(),
        [
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=1",
            "PATCH /repos/acme/infra/issues/comments/12",
        ]
    );
}

#[test]
fn only_quoted_markers_mean_a_new_comment() {
    let server = MockForge::start(|r| match r.method.as_str() {
        "GET" => reply(
            200,
            serde_json::json!([comment_json(10, &format!("> {MARKER}\n> old diff\n\nhm"))])
                .to_string(),
        ),
        "POST" => echo_created(r, 77),
        _ => reply(403, r#"{"message":"not yours"}"#),
    });
    let outcome = github_client(&server)
        .upsert_comment(7, &format!("{MARKER}\nnew diff\n"), MARKER)
        .expect("upsert");
    assert_eq!(outcome.id(), 77);
    assert_eq!(
        server.lines(),
        [
            "GET /repos/acme/infra/issues/7/comments?per_page=100&page=1",
            "POST /repos/acme/infra/issues/7/comments",
        ]
    );
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    for api in ["http://git.example.org/api/v1", "http://10.1.2.3:3000"] {
        let error = ForgeClient::from_env_and_args(
            ForgeKind::Gitea,
            Some(api.to_owned()),
            None,
            env_of(&[("GITEA_TOKEN", TOKEN), ("GITHUB_REPOSITORY", "acme/infra")]),
        )
        .expect_err("cleartext token");
        assert_eq!(error.exit_code(), 2);
        assert!(!all_renderings(&error).contains(TOKEN));
        if api.contains("example") {
            insta::assert_snapshot!("plain_http_remote_api", render(&error));
        }
    }
}

#[test]
fn identical_body_is_not_sent_again() {
    let body = format!("{MARKER}\nsame\n");
    let listed = serde_json::json!([comment_json(3, &body)]).to_string();
    let server = MockForge::start(move |_| reply(200, listed.clone()));
    let outcome = github_client(&server)
        .upsert_comment(7, &body, MARKER)
        .expect("upsert");
    assert_eq!(
        outcome,
        CommentOutcome::Unchanged {
            id: 3,
            url: "https://forge.test/acme/infra/pull/7#issuecomment-3".to_owned()
        }
    );
    assert_eq!(server.lines().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Gitea / Forgejo.

#[test]
fn gitea_creates_with_gitea_paths_and_token_scheme() {
    let server = MockForge::start(|r| match r.method.as_str() {
        "GET" => reply(200, serde_json::json!([comment_json(1, "hi")]).to_string()),
        "POST" => echo_created(r, 77),
        _ => reply(404, "{}"),
    });
    let client = gitea_client(&server);
    assert_eq!(client.api_url(), format!("{}/api/v1", server.url()));
    let outcome = client
        .upsert_comment(12, &format!("{MARKER}\nx"), MARKER)
        .expect("upsert");
    assert_eq!(outcome.id(), 77);
    assert_eq!(
        server.lines(),
        [
            "GET /api/v1/repos/acme/infra/issues/12/comments",
            "POST /api/v1/repos/acme/infra/issues/12/comments",
        ]
    );
    for r in server.requests() {
        let auth = format!("token {TOKEN}");
        assert_eq!(r.header("authorization"), Some(auth.as_str()));
        assert_eq!(r.header("accept"), Some("application/json"));
        assert_eq!(r.header("x-github-api-version"), None);
    }
}

#[test]
fn gitea_updates_marked_comment() {
    let server = MockForge::start(|r| match (r.method.as_str(), r.target.as_str()) {
        ("GET", "/api/v1/repos/acme/infra/issues/12/comments") => reply(
            200,
            serde_json::json!([comment_json(4, "hi"), comment_json(5, MARKER)]).to_string(),
        ),
        ("PATCH", "/api/v1/repos/acme/infra/issues/comments/5") => {
            reply(200, comment_json(5, &sent_body(r)).to_string())
        }
        _ => reply(404, "{}"),
    });
    let outcome = gitea_client(&server)
        .upsert_comment(12, &format!("{MARKER}\nnew"), MARKER)
        .expect("upsert");
    assert!(matches!(outcome, CommentOutcome::Updated { id: 5, .. }));
    assert_eq!(
        server.lines(),
        [
            "GET /api/v1/repos/acme/infra/issues/12/comments",
            "PATCH /api/v1/repos/acme/infra/issues/comments/5",
        ]
    );
}

#[test]
fn gitea_api_url_prefers_gitea_api_url_and_explicit_flag() {
    let env = env_of(&[
        ("GITEA_TOKEN", TOKEN),
        ("GITHUB_REPOSITORY", "acme/infra"),
        ("GITEA_API_URL", "https://git.example.org/api/v1/"),
        ("GITHUB_SERVER_URL", "https://ignored.example.org"),
        ("GITHUB_API_URL", "https://ignored.example.org/api/v3"),
    ]);
    let client = ForgeClient::from_env_and_args(ForgeKind::Gitea, None, None, &env).expect("ok");
    assert_eq!(client.api_url(), "https://git.example.org/api/v1");
    let client = ForgeClient::from_env_and_args(
        ForgeKind::Gitea,
        Some("https://codeberg.org/api/v1".to_owned()),
        Some("me/flake".to_owned()),
        &env,
    )
    .expect("ok");
    assert_eq!(client.api_url(), "https://codeberg.org/api/v1");
    assert_eq!(client.repo(), "me/flake");
}

// ---------------------------------------------------------------------------------------------
// Configuration from the environment.

#[test]
fn github_defaults_to_public_api() {
    let client = ForgeClient::from_env_and_args(
        ForgeKind::GitHub,
        None,
        None,
        env_of(&[("GITHUB_TOKEN", TOKEN), ("GITHUB_REPOSITORY", "acme/infra")]),
    )
    .expect("ok");
    assert_eq!(client.api_url(), "https://api.github.com");
    assert_eq!(client.repo(), "acme/infra");
    assert_eq!(client.kind(), ForgeKind::GitHub);
}

#[test]
fn missing_configuration_is_bad_input() {
    let cases: Vec<(&str, ForgeError)> = vec![
        (
            "missing_token",
            ForgeClient::from_env_and_args(
                ForgeKind::GitHub,
                None,
                Some("acme/infra".to_owned()),
                env_of(&[("GITHUB_TOKEN", "  ")]),
            )
            .expect_err("empty token"),
        ),
        (
            "missing_repo",
            ForgeClient::from_env_and_args(
                ForgeKind::GitHub,
                None,
                None,
                env_of(&[("GITHUB_TOKEN", TOKEN)]),
            )
            .expect_err("no repo"),
        ),
        (
            "invalid_repo",
            ForgeClient::from_env_and_args(
                ForgeKind::GitHub,
                None,
                Some("acme/infra/../x".to_owned()),
                env_of(&[("GITHUB_TOKEN", TOKEN)]),
            )
            .expect_err("bad repo"),
        ),
        (
            "missing_gitea_api",
            ForgeClient::from_env_and_args(
                ForgeKind::Gitea,
                None,
                Some("acme/infra".to_owned()),
                env_of(&[("GITHUB_TOKEN", TOKEN)]),
            )
            .expect_err("no api"),
        ),
    ];
    for (name, error) in &cases {
        assert_eq!(error.exit_code(), 2, "{name}");
        assert_snapshot_of(&format!("config_{name}"), error);
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP errors.

#[test]
fn unauthorized_401() {
    let server = MockForge::start(|_| {
        reply(
            401,
            r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}"#,
        )
    });
    let error = upsert_error(&server);
    assert_eq!(error.exit_code(), 3);
    assert_snapshot_of("http_401", &error);
}

#[test]
fn forbidden_403() {
    let server = MockForge::start(|r| match r.method.as_str() {
        "GET" => reply(200, "[]"),
        _ => reply(
            403,
            r#"{"message":"Resource not accessible by integration"}"#,
        )
        .header("x-ratelimit-remaining", "4990"),
    });
    let error = upsert_error(&server);
    assert_eq!(error.exit_code(), 3);
    assert_snapshot_of("http_403", &error);
}

#[test]
fn rate_limited_403_says_when_it_resets() {
    let server = MockForge::start(|_| {
        reply(
            403,
            r#"{"message":"API rate limit exceeded for installation ID 1."}"#,
        )
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", "1700000000")
    });
    let error = upsert_error(&server);
    assert_eq!(error.exit_code(), 3);
    assert_snapshot_of("http_403_rate_limit", &error);
}

#[test]
fn rate_limited_429_with_retry_after() {
    let server = MockForge::start(|_| {
        reply(429, r#"{"message":"secondary rate limit"}"#).header("retry-after", "60")
    });
    let error = upsert_error(&server);
    assert_eq!(error.exit_code(), 3);
    assert_snapshot_of("http_429_rate_limit", &error);
}

#[test]
fn not_found_404() {
    let server = MockForge::start(|_| reply(404, r#"{"message":"Not Found"}"#));
    let error = upsert_error(&server);
    assert_eq!(error.exit_code(), 3);
    assert_snapshot_of("http_404", &error);
}

#[test]
fn server_error_500_shows_api_message() {
    let server = MockForge::start(|_| reply(500, r#"{"message":"Server Error"}"#));
    let error = upsert_error(&server);
    assert_eq!(error.exit_code(), 3);
    assert_snapshot_of("http_500", &error);
}

#[test]
fn invalid_json_is_a_bad_response() {
    let server = MockForge::start(|_| reply(200, "<html>login page</html>"));
    let error = upsert_error(&server);
    assert_eq!(error.exit_code(), 3);
    assert_snapshot_of("bad_json", &error);
}

#[test]
fn unreachable_forge_is_a_transport_error() {
    // A port that was just free: nothing listens there now.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let client = ForgeClient::new(
        ForgeKind::GitHub,
        format!("http://{addr}"),
        "acme/infra",
        Secret::new(TOKEN),
    )
    .expect("client");
    let error = client
        .upsert_comment(7, "x", MARKER)
        .expect_err("nothing listens");
    assert_eq!(error.exit_code(), 3);
    assert!(matches!(error, ForgeError::Transport { .. }), "{error:?}");
    assert!(error.to_string().contains("could not reach the GitHub API"));
}

// ---------------------------------------------------------------------------------------------
// The token stays secret.

#[test]
fn token_is_sent_only_in_the_authorization_header() {
    let server = MockForge::start(|r| match r.method.as_str() {
        "GET" => reply(
            200,
            serde_json::json!([comment_json(8, MARKER)]).to_string(),
        ),
        "PATCH" => reply(200, comment_json(8, &sent_body(r)).to_string()),
        _ => reply(404, "{}"),
    });
    github_client(&server)
        .upsert_comment(7, &format!("{MARKER}\nv2"), MARKER)
        .expect("upsert");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert!(!r.target.contains(TOKEN), "token in URL: {}", r.target);
        assert!(!r.body.contains(TOKEN), "token in body");
        for (name, value) in &r.headers {
            if name == "authorization" {
                assert_eq!(value, &format!("Bearer {TOKEN}"));
            } else {
                assert!(!value.contains(TOKEN), "token in header {name}");
            }
        }
    }
}

#[test]
fn token_never_appears_in_error_output() {
    // Servers that echo the token back must not get it into our messages either.
    let echo = format!(r#"{{"message":"token {TOKEN} is not valid"}}"#);
    let scripted = vec![
        reply(401, echo.clone()),
        reply(403, echo.clone()),
        reply(403, echo.clone())
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", "1"),
        reply(429, echo.clone()),
        reply(404, echo.clone()),
        reply(500, echo.clone()),
        reply(502, format!("<html>{TOKEN}</html>")),
        reply(200, format!("not json {TOKEN}")),
    ];
    let mut errors = Vec::new();
    for answer in scripted {
        let server = MockForge::start(move |_| answer.clone());
        errors.push(upsert_error(&server));
    }

    let dead = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let client = ForgeClient::new(
        ForgeKind::Gitea,
        format!("http://{dead}/api/v1"),
        "acme/infra",
        Secret::new(TOKEN),
    )
    .expect("client");
    assert!(!format!("{client:?}").contains(TOKEN));
    errors.push(client.upsert_comment(7, "x", MARKER).expect_err("dead"));

    errors.push(
        ForgeClient::new(
            ForgeKind::GitHub,
            format!("https://x:{TOKEN}@api.github.com"),
            "acme/infra",
            Secret::new(TOKEN),
        )
        .expect_err("credentials in URL"),
    );
    errors.push(
        ForgeClient::new(
            ForgeKind::GitHub,
            "https://api.github.com",
            "acme/infra",
            Secret::new(format!("{TOKEN} {TOKEN}")),
        )
        .expect_err("token with a space"),
    );

    assert_eq!(errors.len(), 11);
    for error in &errors {
        let text = all_renderings(error);
        assert!(!text.contains(TOKEN), "token leaked in:\n{text}");
    }
    // The echoed message is still shown, with the token masked.
    let shown = errors[0].to_string();
    assert!(shown.contains("token *** is not valid"), "{shown}");
}

#[test]
fn bad_arguments_are_rejected_before_any_request() {
    let server = MockForge::start(|_| reply(200, "[]"));
    let client = github_client(&server);
    let error = client.upsert_comment(0, "x", MARKER).expect_err("pr 0");
    assert_eq!(error.exit_code(), 2);
    let error = client
        .upsert_comment(7, "x", " ")
        .expect_err("empty marker");
    assert_eq!(error.exit_code(), 2);
    assert!(server.requests().is_empty());
}
