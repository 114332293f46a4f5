//! Proof that the new primary serves: Synapse's `/_matrix/client/versions` asked by the public
//! name but connected to the new primary's address (as `curl --resolve` does: the right Host
//! header and TLS name, whatever DNS still says), and optionally a federation tester's report.
//! It must never send plain http to another machine.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Each request's own time limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Every name resolves to one address (the port comes from the URL).
#[derive(Debug)]
struct Pinned(IpAddr);

impl Resolver for Pinned {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
            .ok_or(ureq::Error::HostNotFound)?;
        let mut out = self.empty();
        out.push(SocketAddr::new(self.0, port));
        Ok(out)
    }
}

/// What `/_matrix/client/versions` answered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Versions {
    pub url: String,
    pub address: String,
    pub versions: Vec<String>,
}

/// Ask `base`/_matrix/client/versions of the server at `address` until it
/// answers 200 with a `versions` list or `timeout` has passed (Synapse
/// takes a while to start). The last problem when it never does.
pub fn versions(base: &str, address: IpAddr, timeout: Duration) -> Result<Versions, String> {
    let url = format!("{}/_matrix/client/versions", base.trim_end_matches('/'));
    let parsed = url::Url::parse(&url).map_err(|e| format!("{url}: {e}"))?;
    if parsed.scheme() == "http" && !address.is_loopback() {
        return Err(format!(
            "{url} is plain http and {address} is another machine: use https:// in [smoke] url"
        ));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(crate::forge::USER_AGENT)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .max_redirects(0)
        .build();
    let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), Pinned(address));
    let deadline = Instant::now() + timeout;
    loop {
        let problem = match agent.get(&url).call() {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(1024 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                let versions = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("versions").cloned())
                    .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
                match (status, versions) {
                    (200, Some(versions)) => {
                        return Ok(Versions {
                            url,
                            address: address.to_string(),
                            versions,
                        })
                    }
                    (200, None) => "the answer has no `versions` list".to_string(),
                    (status, _) => format!("HTTP status {status}"),
                }
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("{url} (at {address}): {problem}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Ask a federation tester about `server_name`: its report must say
/// `"FederationOK": true`.
pub fn federation(tester: &str, server_name: &str) -> Result<(), String> {
    let url = tester.replace("{server_name}", server_name);
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(crate::forge::USER_AGENT)
        .timeout_global(Some(Duration::from_secs(60)))
        .build();
    let agent: ureq::Agent = config.into();
    let mut response = agent.get(&url).call().map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(8 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: HTTP status {status}"));
    }
    let report: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{url}: not a JSON report ({e})"))?;
    match report
        .get("FederationOK")
        .and_then(serde_json::Value::as_bool)
    {
        Some(true) => Ok(()),
        Some(false) => Err(format!(
            "the federation tester reports {server_name} not OK ({url})"
        )),
        None => Err(format!("{url}: the report has no FederationOK")),
    }
}
