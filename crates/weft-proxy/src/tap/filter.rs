//! Which requests a tap shows: a path prefix and a method, each optional.

use http::Method;

/// A tap's filter; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapFilter {
    pub path_prefix: Option<String>,
    pub method: Option<Method>,
}

impl TapFilter {
    /// From a `TapStart`'s fields (empty: any); errors name the bad one.
    pub fn parse(path_prefix: &str, method: &str) -> Result<Self, String> {
        let method = match method {
            "" => None,
            m => Some(
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("method {m:?} is not an HTTP method"))?,
            ),
        };
        Ok(Self {
            path_prefix: (!path_prefix.is_empty()).then(|| path_prefix.to_owned()),
            method,
        })
    }

    pub fn matches(&self, method: &Method, path: &str) -> bool {
        self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|prefix| path.starts_with(prefix))
    }
}
