//! Durations in policy specs, written as people write them (`5s`,
//! `250ms`, `1h30m`) and kept as a [`std::time::Duration`].

use std::{fmt, time::Duration};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written like `5s` or `250ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyDuration(pub Duration);

impl PolicyDuration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    pub fn get(self) -> Duration {
        self.0
    }

    /// Milliseconds, as the proxy protocol carries them.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

impl fmt::Display for PolicyDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for PolicyDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PolicyDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(PolicyDuration)
            .map_err(|_| {
                serde::de::Error::custom(format!("{text:?} is not a duration (e.g. 5s, 250ms, 1m)"))
            })
    }
}

/// A share of traffic in percent (0-100, fractions allowed), kept as parts
/// per million so specs stay comparable with `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    pub const MILLION: u32 = 1_000_000;

    /// From parts per million (at most a million).
    pub fn from_ppm(ppm: u32) -> Self {
        Self(ppm.min(Self::MILLION))
    }

    pub fn ppm(self) -> u32 {
        self.0
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(self.0) / 10_000.0)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(d)?;
        if !(0.0..=100.0).contains(&value) {
            return Err(serde::de::Error::custom(format!(
                "{value} is not a percentage (0-100)"
            )));
        }
        // In range, so the product fits in u32.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Self((value * 10_000.0).round() as u32))
    }
}

/// Reports `path` when `value` is outside `min..=max`.
pub(crate) fn check_range(
    errors: &mut crate::ValidationErrors,
    path: &str,
    value: PolicyDuration,
    min: Duration,
    max: Duration,
) {
    if !(min..=max).contains(&value.0) {
        errors.push(
            path,
            format!(
                "{value} is outside {}-{}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        );
    }
}
