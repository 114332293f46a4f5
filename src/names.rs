//! What a host name, an address, an ssh target or a flake attribute may be,
//! and how an argv is shown as shell text. Shared by configuration, discovery
//! and deployment; it never runs anything, and never builds a line for a shell
//! to execute (nixflip passes argv vectors).

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

/// A target (`user@host` or `host`) must be safe to pass as one argv element to
/// ssh: no leading '-', no whitespace or shell metacharacters.
pub fn validate_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("the target is empty".into());
    }
    if target.starts_with('-') {
        return Err(format!(
            "`{target}` starts with '-', which ssh would read as an option"
        ));
    }
    if let Some(bad) = target.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | ':' | '[' | ']'))
    }) {
        return Err(format!(
            "`{target}` contains `{bad}`; only letters, digits and @ . - _ : [ ] are allowed"
        ));
    }
    Ok(())
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
