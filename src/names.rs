//! What a host name, an address, an ssh target or a flake attribute may be,
//! and how an argv is shown as shell text. Shared by configuration, discovery
//! and deployment; it never runs anything, and never builds a line for a shell
//! to execute (nixflip passes argv vectors).

use std::fmt;
use std::net::IpAddr;

/// Host names become file names and Nix attribute names.
pub fn is_valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A name Nix accepts as a variable: a letter or `_`, then letters, digits,
/// `_`, `'` and `-`.
pub fn is_nix_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
}

/// An IP address or a DNS name (RFC 1123 labels).
pub fn is_valid_address(text: &str) -> bool {
    if text.parse::<IpAddr>().is_ok() {
        return true;
    }
    let labels_ok = text.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    // An all-numeric dotted name is a malformed IP, not a host name.
    let numeric = text.chars().all(|c| c.is_ascii_digit() || c == '.');
    labels_ok && !numeric && text.len() <= 253
}

/// A target (`user@host`, `host` or `ssh://[user@]host[:port]`) must be safe
/// to pass as one argv element to ssh: no leading '-', no whitespace or shell
/// metacharacters (see [`Target::parse`]).
pub fn validate_target(target: &str) -> Result<(), String> {
    Target::parse(target).map(|_| ())
}

/// A flake attribute must be usable after `#` in a flake reference.
pub fn validate_attr(attr: &str) -> Result<(), String> {
    if attr.is_empty() {
        return Err("the attribute is empty".into());
    }
    if let Some(bad) = attr
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '#' | '?' | '"' | '\''))
    {
        return Err(format!("`{attr}` contains {bad:?}"));
    }
    Ok(())
}

/// Whether a URL's host is this machine (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An `https://` URL (or `http://` to this machine only, so that nothing
/// crosses the network in cleartext) without credentials or fragment; the
/// reason when it is not one.
pub fn check_service_url(text: &str) -> Result<url::Url, &'static str> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains whitespace");
    }
    let parsed = url::Url::parse(text).map_err(|_| "it is not a valid http(s) URL")?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("it contains credentials (user:password@)");
    }
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback_url(&parsed) => {}
        "http" => {
            return Err(
                "plain http:// is accepted only for this machine (127.0.0.1, ::1, localhost)",
            )
        }
        _ => return Err("it must start with https://"),
    }
    if parsed.host().is_none() {
        return Err("it has no host");
    }
    if parsed.fragment().is_some() {
        return Err("it must not contain a fragment");
    }
    Ok(parsed)
}

/// One argument as POSIX shell text, for display (a resume command, `-v`).
pub fn shell_quote(arg: &str) -> String {
    match shlex::try_quote(arg) {
        Ok(quoted) => quoted.into_owned(),
        // An argv element cannot hold NUL; show it visibly rather than fail.
        Err(_) => shell_quote(&arg.replace('\0', "\\0")),
    }
}

/// An argv as one line of shell text, for display.
pub fn display_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A parsed ssh target (`host`, `user@host`, `ssh://[user@]host[:port]`): who to log in as, where, and on which port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub user: Option<String>,
    /// A host name or an IP address (an IPv6 address without brackets).
    pub host: String,
    pub port: Option<u16>,
}

impl Target {
    /// Parse `host`, `user@host` or `ssh://[user@]host[:port]` (an IPv6 host
    /// in brackets when a port follows: `ssh://root@[2001:db8::1]:2222`).
    pub fn parse(text: &str) -> Result<Target, String> {
        if text.is_empty() {
            return Err("the target is empty".into());
        }
        if text.starts_with('-') {
            return Err(format!(
                "`{text}` starts with '-', which ssh would read as an option"
            ));
        }
        match text.strip_prefix("ssh://") {
            Some(rest) => Self::parse_uri(text, rest.strip_suffix('/').unwrap_or(rest)),
            None => Self::parse_plain(text),
        }
    }

    /// `user@host` or `host`: the form nixos-rebuild's `--target-host`
    /// takes. `:` belongs to the host here (an IPv6 address), never a port.
    fn parse_plain(text: &str) -> Result<Target, String> {
        check_chars(text, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | ':' | '[' | ']')
        })?;
        let (user, host) = split_user(text)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        check_host(text, host)?;
        Ok(Target {
            user,
            host: host.to_string(),
            port: None,
        })
    }

    fn parse_uri(text: &str, rest: &str) -> Result<Target, String> {
        check_chars(rest, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | ':' | '[' | ']')
        })
        .map_err(|e| format!("{e} (in `{text}`)"))?;
        let (user, hostport) = split_user(rest)?;
        let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(format!("`{text}`: an unclosed '[' around the host"));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(format!("`{text}`: expected `:PORT` after `]`")),
                },
            }
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        check_host(text, host)?;
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("`{text}`: `{p}` is not a port (1-65535)"))?,
            ),
        };
        Ok(Target {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// `user@host` (or `host`), without the port: for tools that take the
    /// port elsewhere.
    pub fn user_host(&self) -> String {
        match &self.user {
            Some(user) => format!("{user}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

impl fmt::Display for Target {
    /// The plain form when there is no port, else the `ssh://` form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(port) = self.port else {
            return f.write_str(&self.user_host());
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.user {
            Some(user) => write!(f, "ssh://{user}@{host}:{port}"),
            None => write!(f, "ssh://{host}:{port}"),
        }
    }
}

fn check_chars(text: &str, ok: impl Fn(char) -> bool) -> Result<(), String> {
    match text.chars().find(|&c| !ok(c)) {
        Some(bad) => Err(format!(
            "`{text}` contains `{bad}`; only letters, digits and @ . - _ : [ ] are allowed"
        )),
        None => Ok(()),
    }
}

fn split_user(text: &str) -> Result<(Option<String>, &str), String> {
    match text.rsplit_once('@') {
        None => Ok((None, text)),
        Some((user, host)) => {
            let usable = !user.is_empty()
                && !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if usable {
                Ok((Some(user.to_string()), host))
            } else {
                Err(format!("`{text}`: `{user}` is not a usable user name"))
            }
        }
    }
}

fn check_host(text: &str, host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err(format!("`{text}` names no host"));
    }
    if host.starts_with('-') {
        return Err(format!(
            "`{text}`: the host starts with '-', which ssh would read as an option"
        ));
    }
    if host.contains(['[', ']', '@']) {
        return Err(format!("`{text}`: `{host}` is not a host name or address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names() {
        assert!(is_valid_address("128.140.75.58"));
        assert!(is_valid_address("2001:db8::1"));
        assert!(is_valid_address("db.example.org"));
        assert!(!is_valid_address("1.2.3"));
        assert!(!is_valid_address("-bad.example"));
        assert!(is_valid_host_name("bfs.poland.xray"));
        assert!(!is_valid_host_name("-x"));
        assert!(!is_valid_host_name("a/b"));
    }

    #[test]
    fn quoting_round_trips_through_a_shell_lexer() {
        for arg in [
            "root@1.2.3.4",
            "/f#a|b",
            "it's",
            "",
            "x y",
            "$(rm -rf /)",
            "é",
        ] {
            let quoted = shell_quote(arg);
            assert_eq!(
                shlex::split(&quoted),
                Some(vec![arg.to_string()]),
                "{quoted}"
            );
        }
        assert_eq!(shell_quote("root@1.2.3.4"), "root@1.2.3.4");
    }

    #[test]
    fn targets_refuse_options_and_metacharacters() {
        assert!(validate_target("root@128.140.75.58").is_ok());
        assert!(validate_target("-oProxyCommand=x").is_err());
        assert!(validate_target("root@h;reboot").is_err());
        assert!(validate_attr("hectic-lab|x86_64-linux").is_ok());
        assert!(validate_attr("a#b").is_err());
    }
}

#[cfg(test)]
mod target_tests {
    use super::*;

    fn t(user: Option<&str>, host: &str, port: Option<u16>) -> Target {
        Target {
            user: user.map(str::to_string),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn plain_and_uri_forms() {
        assert_eq!(
            Target::parse("root@128.140.75.58"),
            Ok(t(Some("root"), "128.140.75.58", None))
        );
        assert_eq!(
            Target::parse("db.example.org"),
            Ok(t(None, "db.example.org", None))
        );
        assert_eq!(
            Target::parse("root@[2001:db8::1]"),
            Ok(t(Some("root"), "2001:db8::1", None))
        );
        assert_eq!(
            Target::parse("ssh://root@127.0.0.2:2222"),
            Ok(t(Some("root"), "127.0.0.2", Some(2222)))
        );
        assert_eq!(
            Target::parse("ssh://[2001:db8::1]:22"),
            Ok(t(None, "2001:db8::1", Some(22)))
        );
        assert_eq!(
            Target::parse("ssh://admin@host/"),
            Ok(t(Some("admin"), "host", None))
        );
    }

    #[test]
    fn displays_round_trip() {
        for text in [
            "root@128.140.75.58",
            "host",
            "ssh://root@127.0.0.2:2222",
            "ssh://root@[2001:db8::1]:22",
        ] {
            assert_eq!(
                Target::parse(text).map(|t| t.to_string()),
                Ok(text.to_string())
            );
        }
    }

    #[test]
    fn refuses_options_and_metacharacters() {
        for bad in [
            "",
            "-oProxyCommand=x",
            "root@a;b",
            "ssh://-oProxyCommand=x",
            "ssh://root@-x:22",
            "ssh://root@host:0",
            "ssh://root@host:99999",
            "ssh://root@host:22;x",
            "ssh://@host",
            "ssh://root@[::1",
            "ssh://root@host:22/x",
            "a b",
            "$(x)@host",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
