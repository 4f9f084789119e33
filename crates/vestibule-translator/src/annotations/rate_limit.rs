//! `limit-rps`, `limit-rpm`, `limit-connections`, `limit-burst-multiplier` and
//! `limit-allowlist` (or its older name `limit-whitelist`), with ingress-nginx's defaults.

use std::num::NonZeroU32;
use std::time::Duration;

use vestibule_routing::{RateLimit, RequestRate};

use super::Reader;
use super::values::{self, Invalid};

/// The burst allowance is the rate times this unless `limit-burst-multiplier` says otherwise.
const DEFAULT_BURST_MULTIPLIER: u32 = 5;

/// The largest rate or connection count accepted; `0` means no limit.
const MOST: u64 = 1_000_000;

/// The largest burst multiplier accepted.
const MOST_BURST_MULTIPLIER: u64 = 1_000;

/// Reads the limits; `None` when no rate and no connection limit is set (or all are `0`).
pub(super) fn read(reader: &mut Reader<'_>) -> Option<RateLimit> {
    let per_minute = reader.parse("limit-rpm", limit).flatten();
    let per_second = reader.parse("limit-rps", limit).flatten();
    let connections = reader.parse("limit-connections", limit).flatten();
    let multiplier = reader
        .parse("limit-burst-multiplier", |text| {
            values::number(text, 0..=MOST_BURST_MULTIPLIER)
        })
        .map_or(DEFAULT_BURST_MULTIPLIER, |multiplier| multiplier as u32);
    let allowlist = reader.parse("limit-allowlist", values::ip_ranges);
    let whitelist = reader.parse("limit-whitelist", values::ip_ranges);
    let rate = |requests: NonZeroU32, period| RequestRate {
        requests,
        period,
        burst: requests.get().saturating_mul(multiplier),
    };
    let requests: Vec<RequestRate> = [
        per_minute.map(|requests| rate(requests, Duration::from_secs(60))),
        per_second.map(|requests| rate(requests, Duration::from_secs(1))),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!requests.is_empty() || connections.is_some()).then(|| RateLimit {
        requests,
        connections,
        exempt: allowlist.or(whitelist).unwrap_or_default(),
    })
}

/// A whole number up to a million; `0` (no limit) gives `None`.
fn limit(text: &str) -> Result<Option<NonZeroU32>, Invalid> {
    values::number(text, 0..=MOST).map(|number| NonZeroU32::new(number as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_and_zero_is_none() {
        assert_eq!(limit("0"), Ok(None));
        assert_eq!(limit(" 10 "), Ok(NonZeroU32::new(10)));
        assert!(limit("-1").is_err());
        assert!(limit("1.5").is_err());
        assert!(limit("1000001").is_err());
    }
}
