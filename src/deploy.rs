//! Running `nixos-rebuild` on cluster members in a safe order (DESIGN §9).

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
