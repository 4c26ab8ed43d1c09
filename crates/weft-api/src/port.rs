//! TCP ports in resources, validated with a message that names the range.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, de};

/// A TCP port, 1-65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Port(pub u16);

impl Port {
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

struct PortVisitor;

impl de::Visitor<'_> for PortVisitor {
    type Value = Port;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a port (1-65535)")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
        match u16::try_from(v) {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(E::custom(format!("{v} is not a port (1-65535)"))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("{v} is not a port (1-65535)"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Port, E> {
        Err(E::custom(format!("{v} is not a port (1-65535)")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
        Err(E::custom(format!("{v:?} is not a port (1-65535)")))
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PortVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<Port, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_the_range() {
        assert_eq!(parse(1.into()), Ok(Port(1)));
        assert_eq!(parse(65535.into()), Ok(Port(65535)));
    }

    #[test]
    fn names_the_range_when_out_of_it() {
        assert_eq!(
            parse(70000.into()).unwrap_err(),
            "70000 is not a port (1-65535)"
        );
        assert_eq!(parse(0.into()).unwrap_err(), "0 is not a port (1-65535)");
        assert_eq!(
            parse((-1).into()).unwrap_err(),
            "-1 is not a port (1-65535)"
        );
        assert_eq!(
            parse("http".into()).unwrap_err(),
            "\"http\" is not a port (1-65535)"
        );
    }
}
