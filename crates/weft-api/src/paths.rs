//! Where Weft keeps files on a host, shared by the control plane (which
//! writes them) and the CLI (which reads them).

use std::path::PathBuf;

/// File name of the API admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// File name of the control plane's generated CA certificate.
pub const CP_CA_FILE: &str = "cp-ca.pem";

/// `$WEFT_HOME/admin-token`, else `$XDG_CONFIG_HOME/weft/admin-token`,
/// else `$HOME/.config/weft/admin-token` (`./weft/admin-token` without HOME).
pub fn default_admin_token_path() -> PathBuf {
    admin_token_path_from(|name| std::env::var_os(name))
}

/// `$WEFT_HOME/cp-ca.pem`, else `$XDG_CONFIG_HOME/weft/cp-ca.pem`, else
/// `$HOME/.config/weft/cp-ca.pem`: where the control plane writes the CA
/// certificate proxies and the CLI verify it with.
pub fn default_cp_ca_path() -> PathBuf {
    config_path_from(|name| std::env::var_os(name), CP_CA_FILE)
}

fn admin_token_path_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    config_path_from(env, ADMIN_TOKEN_FILE)
}

/// `file` in Weft's configuration directory.
fn config_path_from(env: impl Fn(&str) -> Option<std::ffi::OsString>, file: &str) -> PathBuf {
    // An empty variable counts as unset, as the XDG spec asks.
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = var("WEFT_HOME") {
        return home.join(file);
    }
    var("XDG_CONFIG_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("weft")
        .join(file)
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
        assert_eq!(
            config_path_from(env(&[("XDG_CONFIG_HOME", "/x")]), CP_CA_FILE),
            PathBuf::from("/x/weft/cp-ca.pem")
        );
    }
}
