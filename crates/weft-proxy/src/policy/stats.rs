//! What the policies did, per destination service, for `/metrics`:
//! `weft_policy_events_total{service, event}`. Counted only when something
//! happens (a retry, a timeout, an ejection…), never per plain request.

use std::{collections::BTreeMap, fmt, sync::Mutex};

use prometheus_client::encoding::DescriptorEncoder;

use crate::metrics::encode;

/// Something a policy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Retry,
    RetryBudgetExhausted,
    TryTimeout,
    RequestTimeout,
    Overloaded,
    Ejected,
    Unhealthy,
    FaultAborted,
    FaultDelayed,
    RateLimited,
}

impl Event {
    const ALL: [Event; 10] = [
        Event::Retry,
        Event::RetryBudgetExhausted,
        Event::TryTimeout,
        Event::RequestTimeout,
        Event::Overloaded,
        Event::Ejected,
        Event::Unhealthy,
        Event::FaultAborted,
        Event::FaultDelayed,
        Event::RateLimited,
    ];

    fn label(self) -> &'static str {
        match self {
            Event::Retry => "retry",
            Event::RetryBudgetExhausted => "retry_budget_exhausted",
            Event::TryTimeout => "try_timeout",
            Event::RequestTimeout => "request_timeout",
            Event::Overloaded => "overloaded",
            Event::Ejected => "ejected",
            Event::Unhealthy => "unhealthy",
            Event::FaultAborted => "fault_aborted",
            Event::FaultDelayed => "fault_delayed",
            Event::RateLimited => "rate_limited",
        }
    }
}

/// Counters per service; one per proxy, shared by its stacks.
#[derive(Debug, Default)]
pub struct PolicyStats {
    by_service: Mutex<BTreeMap<String, [u64; Event::ALL.len()]>>,
}

impl PolicyStats {
    pub fn count(&self, service: &str, event: Event) {
        // Poisoned only by a panic mid-increment; the counts are fine.
        let mut by_service = self.by_service.lock().unwrap_or_else(|p| p.into_inner());
        let index = event as usize;
        match by_service.get_mut(service) {
            Some(counts) => counts[index] += 1,
            None => {
                let mut counts = [0; Event::ALL.len()];
                counts[index] = 1;
                by_service.insert(service.to_owned(), counts);
            }
        }
    }

    /// Writes the counters to `/metrics` (only events that happened).
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let by_service = self.by_service.lock().unwrap_or_else(|p| p.into_inner());
        let series = by_service.iter().flat_map(|(service, counts)| {
            Event::ALL.into_iter().filter_map(move |event| {
                let n = counts[event as usize];
                (n > 0).then(|| ([("service", service.as_str()), ("event", event.label())], n))
            })
        });
        encode::counters(
            encoder,
            "weft_policy_events",
            "What traffic policies did, per destination service.",
            series,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_happened() {
        let stats = std::sync::Arc::new(PolicyStats::default());
        stats.count("backend", Event::Retry);
        stats.count("backend", Event::Retry);
        stats.count("store", Event::RateLimited);
        let shown = stats.clone();
        let text = encode::text_of(move |e| shown.encode(e));
        assert!(
            text.contains("weft_policy_events_total{service=\"backend\",event=\"retry\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("{service=\"store\",event=\"rate_limited\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("timeout\""), "{text}");
    }
}
