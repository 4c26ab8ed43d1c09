//! Where Weft keeps files on a host, shared by the control plane (which
//! writes them) and the CLI (which reads them).

use std::path::PathBuf;

/// File name of the API admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// `$WEFT_HOME/admin-token`, else `$XDG_CONFIG_HOME/weft/admin-token`,
/// else `$HOME/.config/weft/admin-token` (`./weft/admin-token` without HOME).
pub fn default_admin_token_path() -> PathBuf {
    admin_token_path_from(|name| std::env::var_os(name))
}

fn admin_token_path_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    // An empty variable counts as unset, as the XDG spec asks.
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("WEFT_HOME") {
        return home.join(ADMIN_TOKEN_FILE);
    }
    var("XDG_CONFIG_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("weft")
        .join(ADMIN_TOKEN_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_weft_home_then_xdg_then_home() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.into())
            }
        };
        assert_eq!(
            admin_token_path_from(env(&[("WEFT_HOME", "/w"), ("HOME", "/h")])),
            PathBuf::from("/w/admin-token")
        );
        assert_eq!(
            admin_token_path_from(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/weft/admin-token")
        );
        assert_eq!(
            admin_token_path_from(env(&[("WEFT_HOME", ""), ("HOME", "/h")])),
            PathBuf::from("/h/.config/weft/admin-token")
        );
    }
}
