//! Helpers that write counters, gauges and histograms through
//! prometheus-client's encoder from values kept elsewhere (atomics, maps),
//! so that the request path never goes through prometheus-client itself.

use std::fmt;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

/// Writes one counter family: `name` without `_total` (the encoder adds it).
pub fn counters<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a counter without labels.
pub fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(metric)
}

/// Writes counters without labels, each read from its atomic:
/// `(name, help, counter)`.
pub fn atomic_counters(
    encoder: &mut DescriptorEncoder,
    counters: &[(&str, &str, &std::sync::atomic::AtomicU64)],
) -> fmt::Result {
    for (name, help, value) in counters {
        counter(
            encoder,
            name,
            help,
            value.load(std::sync::atomic::Ordering::Relaxed),
        )?;
    }
    Ok(())
}

/// Writes one gauge family.
pub fn gauges<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, i64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a gauge without labels.
pub fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

/// A collector made of a function, for the proxy's parts that keep their
/// own counters.
pub struct FnCollector<F>(&'static str, F);

impl<F> FnCollector<F>
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    /// Boxed for `Registry::register_collector`; the bound here is what lets
    /// a closure's argument take any encoder lifetime.
    pub fn boxed(name: &'static str, f: F) -> Box<Self> {
        Box::new(Self(name, f))
    }
}

impl<F> fmt::Debug for FnCollector<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FnCollector").field(&self.0).finish()
    }
}

impl<F> Collector for FnCollector<F>
where
    F: Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        (self.1)(&mut encoder)
    }
}

/// The OpenMetrics text of one encoding function (for tests of the parts).
#[cfg(test)]
pub fn text_of(
    f: impl Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static,
) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(FnCollector::boxed("test", f));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}
