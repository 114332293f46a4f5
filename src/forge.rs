//! Pull-request comment poster for GitHub and Gitea/Forgejo.
//!
//! `nixflip comment` renders the role diff and hands it to [`ForgeClient::upsert_comment`],
//! which keeps exactly one bot comment per pull request: it looks for an existing comment whose
//! body starts with a hidden marker line (e.g. `<!-- nixflip:diff -->`) and edits it in place, or
//! creates a new one when there is none. A plain `http://` API URL is accepted only for a server
//! on this machine, so the token never crosses the network in cleartext.
//!
//! # Configuration
//!
//! [`ForgeClient::from_env_and_args`] fills in whatever the command line left out from the
//! environment that GitHub Actions and Forgejo/Gitea Actions provide. An empty variable counts as
//! unset (an Actions expression naming a missing secret expands to the empty string).
//!
//! | setting | flag | GitHub | Gitea / Forgejo |
//! | --- | --- | --- | --- |
//! | API base URL | `--api` | `GITHUB_API_URL`, else `https://api.github.com` | `GITEA_API_URL`, else `GITHUB_SERVER_URL` + `/api/v1` |
//! | repository | `--repo` | `GITHUB_REPOSITORY` | `GITHUB_REPOSITORY` |
//! | token | — | `GITHUB_TOKEN` | `GITEA_TOKEN`, else `GITHUB_TOKEN` |
//!
//! For Gitea we deliberately do not read `GITHUB_API_URL`: runners derived from `act` have set it
//! to GitHub's own API or to a GitHub-Enterprise-style `/api/v3` path, neither of which is the
//! Gitea API. `GITHUB_SERVER_URL`, on the other hand, is the forge's web root on both Gitea and
//! Forgejo runners, and the Gitea API always lives under `/api/v1` there.
//!
//! # Secrets
//!
//! The token is held in a [`Secret`], whose `Debug` prints `***` and which has no `Display`. It is
//! sent only in the `Authorization` header (`Bearer TOKEN` for GitHub, `token TOKEN` for Gitea),
//! never in a URL, and it is kept on a redirect only to the same host over https. Any text that
//! comes back from the server or the HTTP stack is scrubbed of the token before it is put into a
//! [`ForgeError`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use miette::Diagnostic;
use serde::Deserialize;
use thiserror::Error;

/// The `User-Agent` sent with every request.
pub const USER_AGENT: &str = concat!("nixflip/", env!("CARGO_PKG_VERSION"));

/// GitHub's public API, the default when `GITHUB_API_URL` is not set.
pub const DEFAULT_GITHUB_API: &str = "https://api.github.com";

/// The REST API version nixflip is written against (`X-GitHub-Api-Version`).
pub const GITHUB_API_VERSION: &str = "2022-11-28";

/// Comments asked for per page when listing on GitHub (the API's maximum).
const PER_PAGE: usize = 100;

/// Listing stops after this many pages (10 000 comments on GitHub); a marked comment further
/// down than that is not found, and a new one is created instead.
const MAX_PAGES: u32 = 100;

/// Connect, send and receive timeouts, each.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Upper bound for the whole of one request, including reading the body.
const TIMEOUT_TOTAL: Duration = Duration::from_secs(120);

/// Largest response body read (a page of 100 comments of at most 64 KiB each fits).
const MAX_BODY: u64 = 32 * 1024 * 1024;

/// Longest server-supplied message quoted in an error.
const MAX_MESSAGE: usize = 500;

/// Which forge's API to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForgeKind {
    /// github.com or GitHub Enterprise Server.
    GitHub,
    /// Gitea, and Forgejo (which keeps Gitea's API).
    Gitea,
}

impl ForgeKind {
    /// The forge's name as shown to people.
    pub fn display_name(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "GitHub",
            ForgeKind::Gitea => "Gitea",
        }
    }

    /// Environment variables consulted for the token, in order of precedence.
    pub fn token_vars(self) -> &'static [&'static str] {
        match self {
            ForgeKind::GitHub => &["GITHUB_TOKEN"],
            ForgeKind::Gitea => &["GITEA_TOKEN", "GITHUB_TOKEN"],
        }
    }

    fn auth_scheme(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "Bearer",
            ForgeKind::Gitea => "token",
        }
    }

    fn accept(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "application/vnd.github+json",
            ForgeKind::Gitea => "application/json",
        }
    }
}

impl fmt::Display for ForgeKind {
    /// The value accepted by `--forge`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForgeKind::GitHub => "github",
            ForgeKind::Gitea => "gitea",
        })
    }
}

impl FromStr for ForgeKind {
    type Err = ForgeError;

    /// Accepts `github`, `gitea` and `forgejo`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "github" => Ok(ForgeKind::GitHub),
            "gitea" | "forgejo" => Ok(ForgeKind::Gitea),
            _ => Err(ForgeError::UnknownForge {
                given: s.to_owned(),
            }),
        }
    }
}

/// An API token. Its `Debug` output is `***`; it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a token. Surrounding whitespace (a trailing newline from a secrets file) is dropped.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        Secret(value.trim().to_owned())
    }

    /// Whether the token is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the token in `text` by `***`.
    fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What [`ForgeClient::upsert_comment`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommentOutcome {
    /// No comment carried the marker; a new one was posted.
    Created { id: u64, url: String },
    /// The comment carrying the marker was edited to the new body.
    Updated { id: u64, url: String },
    /// The comment carrying the marker already had exactly this body; nothing was sent, so the
    /// comment is not marked as edited and nobody is notified.
    Unchanged { id: u64, url: String },
}

impl CommentOutcome {
    /// The comment's id.
    pub fn id(&self) -> u64 {
        match self {
            CommentOutcome::Created { id, .. }
            | CommentOutcome::Updated { id, .. }
            | CommentOutcome::Unchanged { id, .. } => *id,
        }
    }

    /// The comment's web address (may be empty if the forge did not say).
    pub fn url(&self) -> &str {
        match self {
            CommentOutcome::Created { url, .. }
            | CommentOutcome::Updated { url, .. }
            | CommentOutcome::Unchanged { url, .. } => url,
        }
    }
}

/// Everything that can go wrong while configuring the client or talking to the forge.
///
/// [`ForgeError::exit_code`] maps configuration problems to 2 (bad input) and everything that
/// happened on the wire to 3 (an external service failed). No variant ever holds the token.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum ForgeError {
    #[error("unknown forge `{given}`: expected `github`, `gitea` or `forgejo`")]
    #[diagnostic(
        code(nixflip::forge::unknown_forge),
        help("use `--forge github` for GitHub, or `--forge gitea` for Gitea and Forgejo")
    )]
    UnknownForge { given: String },

    #[error("no {forge} API token: {vars} is unset or empty")]
    #[diagnostic(code(nixflip::forge::missing_token))]
    MissingToken {
        forge: &'static str,
        vars: String,
        #[help]
        help: String,
    },

    #[error("the API token contains whitespace or control characters")]
    #[diagnostic(
        code(nixflip::forge::invalid_token),
        help("check how the token variable is set: it must hold the token alone, on one line")
    )]
    InvalidToken,

    #[error("no repository given: pass --repo OWNER/NAME or set GITHUB_REPOSITORY")]
    #[diagnostic(
        code(nixflip::forge::missing_repo),
        help("GitHub, Gitea and Forgejo Actions set GITHUB_REPOSITORY for you; elsewhere pass --repo")
    )]
    MissingRepo,

    #[error("`{repo}` is not a repository of the form OWNER/NAME")]
    #[diagnostic(
        code(nixflip::forge::invalid_repo),
        help(
            "owner and name may hold letters, digits, `-`, `_` and `.`, e.g. `--repo acme/infra`"
        )
    )]
    InvalidRepo { repo: String },

    #[error("no {forge} API URL: pass --api URL or set {vars}")]
    #[diagnostic(
        code(nixflip::forge::missing_api_url),
        help("for Gitea and Forgejo the API is under /api/v1, e.g. `--api https://codeberg.org/api/v1`")
    )]
    MissingApiUrl { forge: &'static str, vars: String },

    #[error("invalid API URL{shown}: {reason}")]
    #[diagnostic(
        code(nixflip::forge::invalid_api_url),
        help("give the API base as https://HOST[/PATH], e.g. `https://api.github.com` or `https://git.example.org/api/v1`; plain http:// only for a server on this machine (127.0.0.1, ::1, localhost)")
    )]
    InvalidApiUrl { shown: String, reason: &'static str },

    #[error("pull request number 0 is not valid")]
    #[diagnostic(
        code(nixflip::forge::invalid_pr),
        help("pass the pull request's number, e.g. `--pr ${{{{ github.event.pull_request.number }}}}`")
    )]
    InvalidPr,

    #[error("the comment marker is empty")]
    #[diagnostic(
        code(nixflip::forge::empty_marker),
        help("an empty marker would match any comment; use a hidden line such as `<!-- nixflip:diff -->`")
    )]
    EmptyMarker,

    #[error("{forge} rejected the API token (401 Unauthorized) while {operation}{detail}")]
    #[diagnostic(code(nixflip::forge::unauthorized))]
    Unauthorized {
        forge: &'static str,
        operation: String,
        detail: String,
        #[help]
        help: String,
    },

    #[error("{forge} refused permission (403 Forbidden) while {operation}{detail}")]
    #[diagnostic(code(nixflip::forge::forbidden))]
    Forbidden {
        forge: &'static str,
        operation: String,
        detail: String,
        #[help]
        help: String,
    },

    #[error("{forge} API rate limit exceeded ({status}) while {operation}{when}")]
    #[diagnostic(
        code(nixflip::forge::rate_limited),
        help("wait until the limit resets, then re-run the job; jobs that share one token share its limit")
    )]
    RateLimited {
        forge: &'static str,
        status: u16,
        operation: String,
        when: String,
    },

    #[error("{forge} answered 404 Not Found while {operation} ({request})")]
    #[diagnostic(code(nixflip::forge::not_found))]
    NotFound {
        forge: &'static str,
        operation: String,
        request: String,
        #[help]
        help: String,
    },

    #[error("{forge} answered {status} while {operation} ({request}){detail}")]
    #[diagnostic(
        code(nixflip::forge::http_status),
        help("a 5xx status is usually a passing problem on the forge's side: re-run the job; otherwise the message above says what the API disliked")
    )]
    Status {
        forge: &'static str,
        status: String,
        operation: String,
        request: String,
        detail: String,
    },

    #[error("could not reach the {forge} API at {host} while {operation}: {detail}")]
    #[diagnostic(
        code(nixflip::forge::transport),
        help("check the API URL (--api), the network and any HTTPS_PROXY/NO_PROXY settings; connect and read time out after 30 s")
    )]
    Transport {
        forge: &'static str,
        host: String,
        operation: String,
        detail: String,
    },

    #[error("unexpected response from {forge} while {operation} ({request}): {detail}")]
    #[diagnostic(
        code(nixflip::forge::bad_response),
        help(
            "the API URL may not point at a {forge} API (for Gitea and Forgejo it ends in /api/v1)"
        )
    )]
    BadResponse {
        forge: &'static str,
        operation: String,
        request: String,
        detail: String,
    },
}

/// A forge error is an ordinary nixflip error with the forge's exit code.
impl From<ForgeError> for crate::Error {
    fn from(e: ForgeError) -> Self {
        crate::Error::caused(e.exit_code(), e)
    }
}

impl ForgeError {
    /// The process exit code for this error: 2 for bad input (missing or malformed
    /// configuration), 3 for a failure of the forge or of the connection to it.
    pub fn exit_code(&self) -> i32 {
        match self {
            ForgeError::UnknownForge { .. }
            | ForgeError::MissingToken { .. }
            | ForgeError::InvalidToken
            | ForgeError::MissingRepo
            | ForgeError::InvalidRepo { .. }
            | ForgeError::MissingApiUrl { .. }
            | ForgeError::InvalidApiUrl { .. }
            | ForgeError::InvalidPr
            | ForgeError::EmptyMarker => 2,
            ForgeError::Unauthorized { .. }
            | ForgeError::Forbidden { .. }
            | ForgeError::RateLimited { .. }
            | ForgeError::NotFound { .. }
            | ForgeError::Status { .. }
            | ForgeError::Transport { .. }
            | ForgeError::BadResponse { .. } => 3,
        }
    }
}

/// A client for one repository on one forge.
pub struct ForgeClient {
    kind: ForgeKind,
    api_url: String,
    repo: String,
    token: Secret,
    agent: ureq::Agent,
}

impl fmt::Debug for ForgeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForgeClient")
            .field("kind", &self.kind)
            .field("api_url", &self.api_url)
            .field("repo", &self.repo)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl ForgeClient {
    /// A client for `repo` (`OWNER/NAME`) behind the API at `api_url`.
    ///
    /// A trailing `/` on `api_url` is dropped. Fails (exit code 2) when the URL is not an
    /// http(s) URL without credentials, query or fragment, when `repo` is not `OWNER/NAME`, or
    /// when the token is empty or holds whitespace or control characters.
    pub fn new(
        kind: ForgeKind,
        api_url: impl Into<String>,
        repo: impl Into<String>,
        token: Secret,
    ) -> Result<Self, ForgeError> {
        let api_url = normalize_api_url(&api_url.into())?;
        let repo = repo.into().trim().to_owned();
        validate_repo(&repo)?;
        if token.is_empty() {
            return Err(missing_token(kind));
        }
        if token
            .expose()
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ForgeError::InvalidToken);
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(USER_AGENT)
            .accept(kind.accept())
            .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
            .timeout_connect(Some(TIMEOUT))
            .timeout_send_request(Some(TIMEOUT))
            .timeout_send_body(Some(TIMEOUT))
            .timeout_recv_response(Some(TIMEOUT))
            .timeout_recv_body(Some(TIMEOUT))
            .timeout_global(Some(TIMEOUT_TOTAL))
            .build();
        Ok(ForgeClient {
            kind,
            api_url,
            repo,
            token,
            agent: config.into(),
        })
    }

    /// A client configured from command-line values, falling back to the CI environment for
    /// whatever they leave out (see the [module documentation](self) for the variables).
    ///
    /// `env` looks a variable up (`|name| std::env::var(name).ok()` in the binary; a map in
    /// tests). Empty values count as unset.
    pub fn from_env_and_args<F>(
        kind: ForgeKind,
        api: Option<String>,
        repo: Option<String>,
        env: F,
    ) -> Result<Self, ForgeError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let lookup = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let non_empty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());

        let token = kind
            .token_vars()
            .iter()
            .find_map(|name| lookup(name))
            .map(Secret::new)
            .ok_or_else(|| missing_token(kind))?;

        let repo = non_empty(repo)
            .or_else(|| lookup("GITHUB_REPOSITORY"))
            .ok_or(ForgeError::MissingRepo)?;

        let api = match non_empty(api) {
            Some(api) => api,
            None => match kind {
                ForgeKind::GitHub => {
                    lookup("GITHUB_API_URL").unwrap_or_else(|| DEFAULT_GITHUB_API.to_owned())
                }
                ForgeKind::Gitea => lookup("GITEA_API_URL")
                    .or_else(|| {
                        lookup("GITHUB_SERVER_URL")
                            .map(|server| format!("{}/api/v1", server.trim().trim_end_matches('/')))
                    })
                    .ok_or(ForgeError::MissingApiUrl {
                        forge: kind.display_name(),
                        vars: "GITEA_API_URL or GITHUB_SERVER_URL".to_owned(),
                    })?,
            },
        };

        ForgeClient::new(kind, api, repo, token)
    }

    /// [`ForgeClient::from_env_and_args`] reading the process environment.
    pub fn from_process_env(
        kind: ForgeKind,
        api: Option<String>,
        repo: Option<String>,
    ) -> Result<Self, ForgeError> {
        ForgeClient::from_env_and_args(kind, api, repo, |name| std::env::var(name).ok())
    }

    /// Which forge this client talks to.
    pub fn kind(&self) -> ForgeKind {
        self.kind
    }

    /// The API base URL, without a trailing `/`.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The repository, `OWNER/NAME`.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// Creates or updates this bot's comment on pull request `pr`.
    ///
    /// The first comment (oldest first) whose body starts with the `marker` line is edited to
    /// `body`; when there is none, a new comment is posted. A comment that merely contains the
    /// marker further down (a human quoting the bot) is never touched. If `body` does not itself
    /// start with `marker`, the marker is put on a first line of its own so that the next run
    /// finds the comment again. When the marked comment already has exactly this body, nothing
    /// is sent.
    pub fn upsert_comment(
        &self,
        pr: u64,
        body: &str,
        marker: &str,
    ) -> Result<CommentOutcome, ForgeError> {
        if pr == 0 {
            return Err(ForgeError::InvalidPr);
        }
        if marker.trim().is_empty() {
            return Err(ForgeError::EmptyMarker);
        }
        let body = if starts_with_marker(body, marker) {
            body.to_owned()
        } else {
            format!("{marker}\n{body}")
        };
        let payload = serde_json::json!({ "body": body }).to_string();

        match self.find_marked(pr, marker)? {
            Some(existing) if existing.body.as_deref() == Some(body.as_str()) => {
                Ok(CommentOutcome::Unchanged {
                    id: existing.id,
                    url: existing.html_url.unwrap_or_default(),
                })
            }
            Some(existing) => {
                let operation = format!("updating comment {} on pull request #{pr}", existing.id);
                let path = format!("{}/issues/comments/{}", self.repo_path(), existing.id);
                let response = self.send(Method::Patch, &path, Some(&payload), pr, &operation)?;
                let comment: ApiComment =
                    self.parse(&response, &path, Method::Patch, &operation)?;
                Ok(CommentOutcome::Updated {
                    id: comment.id,
                    url: comment.html_url.unwrap_or_default(),
                })
            }
            None => {
                let operation = format!("creating a comment on pull request #{pr}");
                let path = format!("{}/issues/{pr}/comments", self.repo_path());
                let response = self.send(Method::Post, &path, Some(&payload), pr, &operation)?;
                let comment: ApiComment = self.parse(&response, &path, Method::Post, &operation)?;
                Ok(CommentOutcome::Created {
                    id: comment.id,
                    url: comment.html_url.unwrap_or_default(),
                })
            }
        }
    }

    fn repo_path(&self) -> String {
        format!("/repos/{}", self.repo)
    }

    /// Walks the pull request's comments page by page, oldest first, and returns the first one
    /// whose body starts with the `marker` line.
    fn find_marked(&self, pr: u64, marker: &str) -> Result<Option<ApiComment>, ForgeError> {
        let operation = format!("listing the comments of pull request #{pr}");
        let base = format!("{}/issues/{pr}/comments", self.repo_path());
        for page in 1..=MAX_PAGES {
            let path = match (self.kind, page) {
                (ForgeKind::GitHub, _) => format!("{base}?per_page={PER_PAGE}&page={page}"),
                (ForgeKind::Gitea, 1) => base.clone(),
                (ForgeKind::Gitea, _) => format!("{base}?page={page}"),
            };
            let response = self.send(Method::Get, &path, None, pr, &operation)?;
            let comments: Vec<ApiComment> =
                self.parse(&response, &path, Method::Get, &operation)?;
            let count = comments.len();
            if let Some(found) = comments.into_iter().find(|c| {
                c.body
                    .as_deref()
                    .is_some_and(|b| starts_with_marker(b, marker))
            }) {
                return Ok(Some(found));
            }
            // Follow `Link: rel="next"` when the server sends one. Without a Link header, GitHub
            // may still have more when the page was full; Gitea's endpoint is not paginated.
            let more = match &response.link {
                Some(link) => link_has_next(link),
                None => self.kind == ForgeKind::GitHub && count >= PER_PAGE,
            };
            if count == 0 || !more {
                break;
            }
        }
        Ok(None)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        pr: u64,
        operation: &str,
    ) -> Result<ApiResponse, ForgeError> {
        let url = format!("{}{}", self.api_url, path);
        let auth = format!("{} {}", self.kind.auth_scheme(), self.token.expose());
        let result = match method {
            Method::Get => self.with_headers(self.agent.get(&url), &auth).call(),
            Method::Post => self
                .with_headers(self.agent.post(&url), &auth)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_default()),
            Method::Patch => self
                .with_headers(self.agent.patch(&url), &auth)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or_default()),
        };
        let mut response = result.map_err(|e| self.transport(operation, &e))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
        };
        let status = response.status().as_u16();
        let link = header("link");
        let ratelimit_remaining = header("x-ratelimit-remaining");
        let ratelimit_reset = header("x-ratelimit-reset");
        let retry_after = header("retry-after");
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(|e| self.transport(operation, &e))?;
        let api = ApiResponse {
            status,
            link,
            ratelimit_remaining,
            ratelimit_reset,
            retry_after,
            body: text,
        };
        if (200..300).contains(&status) {
            Ok(api)
        } else {
            Err(self.status_error(&api, method, path, pr, operation))
        }
    }

    fn with_headers<B>(
        &self,
        request: ureq::RequestBuilder<B>,
        auth: &str,
    ) -> ureq::RequestBuilder<B> {
        let request = request
            .header("Authorization", auth)
            .header("Accept", self.kind.accept())
            .header("User-Agent", USER_AGENT);
        match self.kind {
            ForgeKind::GitHub => request.header("X-GitHub-Api-Version", GITHUB_API_VERSION),
            ForgeKind::Gitea => request,
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(
        &self,
        response: &ApiResponse,
        path: &str,
        method: Method,
        operation: &str,
    ) -> Result<T, ForgeError> {
        serde_json::from_str(&response.body).map_err(|e| ForgeError::BadResponse {
            forge: self.kind.display_name(),
            operation: operation.to_owned(),
            request: format!("{} {path}", method.as_str()),
            detail: self.clean(&format!("invalid JSON: {e}")),
        })
    }

    fn transport(&self, operation: &str, error: &ureq::Error) -> ForgeError {
        ForgeError::Transport {
            forge: self.kind.display_name(),
            host: self.clean(&host_of(&self.api_url)),
            operation: operation.to_owned(),
            detail: self.clean(&error.to_string()),
        }
    }

    fn status_error(
        &self,
        response: &ApiResponse,
        method: Method,
        path: &str,
        pr: u64,
        operation: &str,
    ) -> ForgeError {
        let forge = self.kind.display_name();
        let operation = operation.to_owned();
        let request = format!("{} {path}", method.as_str());
        let message = api_message(&response.body).map(|m| self.clean(&m));
        let detail = message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let status = response.status;

        let exhausted = response.ratelimit_remaining.as_deref() == Some("0");
        let says_rate_limit = message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"));
        if status == 429 || (status == 403 && (exhausted || says_rate_limit)) {
            let when = if let Some(reset) = response
                .ratelimit_reset
                .as_deref()
                .and_then(|r| r.parse::<u64>().ok())
            {
                format!("; it resets at {}", format_utc(reset))
            } else if let Some(secs) = response
                .retry_after
                .as_deref()
                .and_then(|r| r.parse::<u64>().ok())
            {
                format!("; retry after {secs} s")
            } else {
                String::new()
            };
            return ForgeError::RateLimited {
                forge,
                status,
                operation,
                when,
            };
        }

        match status {
            401 => ForgeError::Unauthorized {
                forge,
                operation,
                detail,
                help: match self.kind {
                    ForgeKind::GitHub => "set GITHUB_TOKEN to a valid token: in GitHub Actions add `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` to the step and give the workflow `permissions: pull-requests: write`".to_owned(),
                    ForgeKind::Gitea => "set GITEA_TOKEN (or GITHUB_TOKEN) to a valid access token: in Forgejo/Gitea Actions add `env: GITEA_TOKEN: ${{ secrets.GITHUB_TOKEN }}`, or a personal token with write access to issues".to_owned(),
                },
            },
            403 => ForgeError::Forbidden {
                forge,
                operation,
                detail,
                help: match self.kind {
                    ForgeKind::GitHub => "the token may read but not write pull-request comments: give the workflow `permissions: pull-requests: write`; for pull requests from forks GITHUB_TOKEN is read-only, so the comment cannot be posted from such runs".to_owned(),
                    ForgeKind::Gitea => "the token lacks write access to this repository's issues and pull requests: use a token with the `write:issue` scope, or one of a user with write access".to_owned(),
                },
            },
            404 => ForgeError::NotFound {
                forge,
                operation,
                request,
                help: format!(
                    "check that the repository `{}` and pull request #{pr} exist and that the API URL `{}` is right; a token that cannot see a private repository gets 404, not 403",
                    self.repo,
                    self.clean(&self.api_url)
                ),
            },
            _ => ForgeError::Status {
                forge,
                status: status_text(status),
                operation,
                request,
                detail,
            },
        }
    }

    /// Scrubs the token out of text that came from outside, keeps it on one line and bounds
    /// its length.
    fn clean(&self, text: &str) -> String {
        let redacted = self.token.redact(text);
        let one_line: String = redacted
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let trimmed = one_line.trim();
        if trimmed.chars().count() > MAX_MESSAGE {
            let cut: String = trimmed.chars().take(MAX_MESSAGE).collect();
            format!("{cut}…")
        } else {
            trimmed.to_owned()
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }
}

struct ApiResponse {
    status: u16,
    link: Option<String>,
    ratelimit_remaining: Option<String>,
    ratelimit_reset: Option<String>,
    retry_after: Option<String>,
    body: String,
}

/// The fields of an issue comment that nixflip uses (same names on GitHub and Gitea).
#[derive(Debug, Deserialize)]
struct ApiComment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

fn missing_token(kind: ForgeKind) -> ForgeError {
    let vars = kind.token_vars().join(" or ");
    let help = match kind {
        ForgeKind::GitHub => "in GitHub Actions add `env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}` to the step and `permissions: pull-requests: write` to the workflow".to_owned(),
        ForgeKind::Gitea => "in Forgejo/Gitea Actions add `env: GITEA_TOKEN: ${{ secrets.GITHUB_TOKEN }}` to the step, or a secret holding a personal access token".to_owned(),
    };
    ForgeError::MissingToken {
        forge: kind.display_name(),
        vars,
        help,
    }
}

/// Whether `body`'s first line is `marker` (leading blank space aside): the bot's own comments
/// start with it, while a reply quoting it has `> ` or other text first.
fn starts_with_marker(body: &str, marker: &str) -> bool {
    body.trim_start()
        .strip_prefix(marker.trim())
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['\n', '\r']))
}

/// Whether a URL's host is this machine's loopback interface: the only place
/// a token may travel over plain http.
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Check an API base URL (parsed by the `url` crate) and return it without
/// its trailing slash, as given otherwise.
fn normalize_api_url(raw: &str) -> Result<String, ForgeError> {
    let text = raw.trim().trim_end_matches('/');
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid_url(text, "it contains whitespace"));
    }
    let parsed = match url::Url::parse(text) {
        Ok(parsed) => parsed,
        Err(url::ParseError::EmptyHost) => return Err(invalid_url(text, "it has no host")),
        Err(_) if !text.contains("://") => {
            return Err(invalid_url(text, "it must start with https://"))
        }
        Err(_) => return Err(invalid_url(text, "it is not a valid URL")),
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Do not echo it: the part before '@' may be a password or token.
        return Err(ForgeError::InvalidApiUrl {
            shown: String::new(),
            reason:
                "it contains credentials (user:password@); the token belongs in the token variable",
        });
    }
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_host(&parsed) => {}
        "http" => {
            return Err(invalid_url(
                text,
                "plain http:// would send the token in cleartext to another machine",
            ))
        }
        _ => return Err(invalid_url(text, "it must start with https://")),
    }
    if parsed.host().is_none() {
        return Err(invalid_url(text, "it has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid_url(text, "it must not contain a query or fragment"));
    }
    Ok(text.to_owned())
}

fn invalid_url(url: &str, reason: &'static str) -> ForgeError {
    let shown: String = url
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    ForgeError::InvalidApiUrl {
        shown: format!(" `{shown}`"),
        reason,
    }
}

fn validate_repo(repo: &str) -> Result<(), ForgeError> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(()),
        _ => Err(ForgeError::InvalidRepo {
            repo: repo.chars().take(200).collect(),
        }),
    }
}

/// `HOST[:PORT]` of an API URL already checked by [`normalize_api_url`].
fn host_of(api_url: &str) -> String {
    match url::Url::parse(api_url) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => api_url.to_owned(),
        },
        Err(_) => api_url.to_owned(),
    }
}

/// Whether a `Link` header has a `rel="next"` entry.
fn link_has_next(link: &str) -> bool {
    link.split(',').any(|entry| {
        entry.split(';').skip(1).any(|param| {
            let param = param.trim();
            param
                .strip_prefix("rel=")
                .map(|v| v.trim_matches('"'))
                .is_some_and(|v| v.split_whitespace().any(|r| r.eq_ignore_ascii_case("next")))
        })
    })
}

/// The `message` field of a JSON error body, if there is one.
fn api_message(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let message = value.get("message")?.as_str()?.trim();
    (!message.is_empty()).then(|| message.to_owned())
}

fn status_text(status: u16) -> String {
    match ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC`.
fn format_utc(epoch: u64) -> String {
    i64::try_from(epoch)
        .ok()
        .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
        .map_or_else(
            || format!("{epoch} seconds after 1970"),
            |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_utc(4_107_542_399), "2100-02-28 23:59:59 UTC");
    }

    #[test]
    fn link_header_next_is_detected() {
        let link = r#"<https://api.github.com/repositories/1/issues/7/comments?page=2>; rel="next", <https://api.github.com/repositories/1/issues/7/comments?page=3>; rel="last""#;
        assert!(link_has_next(link));
        let last = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=1>; rel="first""#;
        assert!(!link_has_next(last));
        assert!(!link_has_next(""));
    }

    #[test]
    fn repos_are_validated() {
        assert!(validate_repo("acme/infra").is_ok());
        assert!(validate_repo("a-b.c/d_e.f").is_ok());
        for bad in [
            "acme", "acme/", "/infra", "a/b/c", "../x", "a/..", "a b/c", "a/c?x=1",
        ] {
            assert!(validate_repo(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn api_urls_are_normalized() {
        assert_eq!(
            normalize_api_url(" https://api.github.com/ ")
                .ok()
                .as_deref(),
            Some("https://api.github.com")
        );
        assert!(normalize_api_url("ftp://x").is_err());
        assert!(normalize_api_url("https://").is_err());
        assert!(normalize_api_url("https://h/api?x").is_err());
        // The token must not cross the network in cleartext.
        for remote in [
            "http://api.github.com",
            "http://10.0.0.2:3000/api/v1",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example/api",
            "http://[::2]:8080",
        ] {
            let error = normalize_api_url(remote).err().map(|e| e.to_string());
            assert!(
                error.as_deref().is_some_and(|e| e.contains("cleartext")),
                "{remote}: {error:?}"
            );
        }
        for local in [
            "http://127.0.0.1:8080",
            "http://[::1]:3000/api/v1",
            "http://localhost/api/v1",
            "HTTP://LOCALHOST:1",
        ] {
            assert!(normalize_api_url(local).is_ok(), "{local}");
        }
        match normalize_api_url("https://user:hunter2@h/api") {
            Err(e) => assert!(!e.to_string().contains("hunter2")),
            Ok(_) => panic!("credentials accepted"),
        }
    }

    #[test]
    fn forge_kinds_parse() {
        assert_eq!("GitHub".parse::<ForgeKind>().ok(), Some(ForgeKind::GitHub));
        assert_eq!("forgejo".parse::<ForgeKind>().ok(), Some(ForgeKind::Gitea));
        assert_eq!("gitea".parse::<ForgeKind>().ok(), Some(ForgeKind::Gitea));
        let err = "gitlab".parse::<ForgeKind>().err();
        assert_eq!(err.map(|e| e.exit_code()), Some(2));
    }

    #[test]
    fn secret_debug_is_masked() {
        let secret = Secret::new("ghp_sup3rs3cret\n");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "ghp_sup3rs3cret");
        assert_eq!(secret.redact("a ghp_sup3rs3cret b"), "a *** b");
    }
}
