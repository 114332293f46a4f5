//! ssh targets as `nixflip.toml` writes them: `host`, `user@host`, or
//! `ssh://[user@]host[:port]`. Never accepts a value ssh could read as an option or a shell could expand.

use std::fmt;

/// A parsed ssh target: who to log in as, where, and on which port.
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
