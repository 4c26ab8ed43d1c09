//! Names of resources, services and tags.

/// Longest accepted resource or service name (a DNS name's limit).
pub const MAX_NAME_LEN: usize = 253;

/// Why `name` is not a valid resource or service name, if it is not.
///
/// Names are lowercase letters, digits, `-` and `.`, start and end with a
/// letter or digit: they appear in DNS names, SPIFFE IDs and URLs.
pub fn name_problem(name: &str) -> Option<String> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.chars().all(valid_char)
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last());
    (!ok).then(|| {
        format!(
            "{name:?} is not a valid name (lowercase letters, digits, '-' and '.', \
             starting and ending with a letter or digit, at most {MAX_NAME_LEN} characters)"
        )
    })
}

/// Why `key` is not a valid tag key, if it is not.
pub fn tag_key_problem(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key.len() <= 63
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    (!ok).then(|| format!("{key:?} is not a valid tag key (letters, digits, '-', '_', '.' and '/', at most 63 characters)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_like_names() {
        for n in ["a", "backend", "backend-1", "web.v2", "0abc"] {
            assert_eq!(name_problem(n), None, "{n}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        for n in ["", "Backend", "-a", "a-", "a_b", "a b", &"x".repeat(254)] {
            assert!(name_problem(n).is_some(), "{n}");
        }
    }
}
