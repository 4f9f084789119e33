//! Per-client rate and connection limits (`limit-rps`, `limit-rpm`, `limit-connections`), local
//! to this replica as in ingress-nginx.
//!
//! Each Ingress with limits has its own [`Zone`], keyed by client address (the TCP peer). A
//! zone survives configuration changes as long as its Ingress's limits stay the same
//! ([`Zones`]). Admitting a request takes one short lock on one shard of the zone; a refused
//! request consumes nothing.

mod clients;
mod gcra;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use vestibule_routing::{IngressRef, RateLimit, RequestRate, Route};

use crate::plane::RouteTarget;
use clients::{Clients, RATES};
use gcra::Gcra;

/// Which limit refused a request. Refused requests are answered with 503, as ingress-nginx's
/// `limit-req-status-code` and `limit-conn-status-code` default to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    /// The client sent requests faster than `limit-rps` or `limit-rpm` allows.
    Requests,
    /// The client has `limit-connections` requests in progress already.
    Connections,
    /// The zone tracks as many clients with requests in progress as it can hold.
    Clients,
}

impl Limited {
    /// A short name, for metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Connections => "connections",
            Self::Clients => "clients",
        }
    }
}

impl fmt::Display for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requests => "the client exceeded the route's request rate",
            Self::Connections => "the client has too many requests in progress on the route",
            Self::Clients => "the route's rate limiter tracks too many clients",
        })
    }
}

/// The limiter state of one Ingress: every client's request rates and requests in progress.
pub(crate) struct Zone {
    epoch: Instant,
    rates: Vec<Gcra>,
    connections: Option<NonZeroU32>,
    clients: Clients,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zone")
            .field("rates", &self.rates)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

impl Zone {
    /// An empty zone for `requests` rates (the first two; the translator sets at most two) and
    /// at most `connections` requests in progress per client.
    fn new(requests: &[RequestRate], connections: Option<NonZeroU32>) -> Self {
        Self {
            epoch: Instant::now(),
            rates: requests.iter().take(RATES).map(Gcra::new).collect(),
            connections,
            clients: Clients::default(),
        }
    }

    /// Admits a request from `addr` now.
    fn admit(self: &Arc<Self>, addr: IpAddr) -> Result<Option<Permit>, Limited> {
        self.admit_at(addr, gcra::nanos(self.epoch.elapsed()))
    }

    /// Admits a request from `addr` at `now` (nanoseconds since the zone was created): checks
    /// every limit and, only when all allow it, accounts for it in each. The permit, when
    /// connections are limited, keeps the request counted as in progress until dropped.
    fn admit_at(self: &Arc<Self>, addr: IpAddr, now: u64) -> Result<Option<Permit>, Limited> {
        let addr = addr.to_canonical();
        let admitted = self.clients.update(addr, now, |client| {
            client.last_seen = now;
            if let Some(most) = self.connections
                && client.in_flight >= most.get()
            {
                return Err(Limited::Connections);
            }
            let mut tats = client.tats;
            for (rate, tat) in self.rates.iter().zip(tats.iter_mut()) {
                *tat = rate.admit(*tat, now).ok_or(Limited::Requests)?;
            }
            client.tats = tats;
            if self.connections.is_some() {
                client.in_flight = client.in_flight.saturating_add(1);
            }
            Ok(())
        });
        admitted.ok_or(Limited::Clients)??;
        Ok(self.connections.is_some().then(|| Permit {
            zone: self.clone(),
            addr,
        }))
    }
}

/// Keeps one admitted request counted as in progress by its zone until dropped.
#[derive(Debug)]
pub(crate) struct Permit {
    zone: Arc<Zone>,
    addr: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.zone.clients.update_tracked(self.addr, |client| {
            client.in_flight = client.in_flight.saturating_sub(1);
        });
    }
}

/// Admits a request from `peer` to `target` under its Ingress's limits. `Ok(None)` when
/// nothing needs to be held: no connection limit, no limits at all, or an exempt client.
pub(crate) fn admit(target: &RouteTarget, peer: IpAddr) -> Result<Option<Permit>, Limited> {
    let (Some(zone), Some(limit)) = (&target.limiter, &target.route.policy.rate_limit) else {
        return Ok(None);
    };
    if limit.exempts(peer) {
        return Ok(None);
    }
    zone.admit(peer)
}

/// What identifies a zone: its Ingress and the limits (not the exempt ranges, which are read
/// per request).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ZoneKey {
    ingress: IngressRef,
    requests: Vec<RequestRate>,
    connections: Option<NonZeroU32>,
}

impl ZoneKey {
    fn of(ingress: &IngressRef, limit: &RateLimit) -> Self {
        Self {
            ingress: ingress.clone(),
            requests: limit.requests.clone(),
            connections: limit.connections,
        }
    }
}

/// The zones of the live routing table, kept across tables for Ingresses whose limits did not
/// change.
#[derive(Debug, Default)]
pub(crate) struct Zones {
    live: HashMap<ZoneKey, Arc<Zone>>,
    next: HashMap<ZoneKey, Arc<Zone>>,
}

impl Zones {
    /// The zone for `route` in the table being built: the live one of its Ingress when the
    /// limits are the same, else a new one. Call [`finish`](Self::finish) once the table is
    /// built.
    pub(crate) fn zone_for(&mut self, route: &Route) -> Option<Arc<Zone>> {
        let limit = route.policy.rate_limit.as_ref()?;
        let key = ZoneKey::of(&route.ingress, limit);
        if let Some(zone) = self.next.get(&key) {
            return Some(zone.clone());
        }
        let zone = self
            .live
            .remove(&key)
            .unwrap_or_else(|| Arc::new(Zone::new(&limit.requests, limit.connections)));
        self.next.insert(key, zone.clone());
        Some(zone)
    }

    /// Whether no zone is live: no route of the live table has limits.
    pub(crate) fn none_live(&self) -> bool {
        self.live.is_empty()
    }

    /// Makes the zones handed out since the last call the live ones, and forgets the rest.
    pub(crate) fn finish(&mut self) {
        self.live = std::mem::take(&mut self.next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECOND: u64 = 1_000_000_000;

    fn rate(requests: u32, burst: u32) -> RequestRate {
        RequestRate {
            requests: NonZeroU32::new(requests).expect("non-zero"),
            period: Duration::from_secs(1),
            burst,
        }
    }

    fn zone(requests: &[RequestRate], connections: u32) -> Arc<Zone> {
        Arc::new(Zone::new(requests, NonZeroU32::new(connections)))
    }

    fn addr(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn clients_are_limited_separately() {
        let zone = zone(&[rate(1, 2)], 0);
        let admitted = |peer: &str| {
            (0..10)
                .filter(|_| zone.admit_at(addr(peer), SECOND).is_ok())
                .count()
        };
        assert_eq!(admitted("10.0.0.1"), 3);
        assert_eq!(admitted("10.0.0.2"), 3);
        assert_eq!(
            admitted("::ffff:10.0.0.1"),
            0,
            "mapped addresses are the same client"
        );
        assert!(zone.admit_at(addr("10.0.0.1"), 2 * SECOND).is_ok());
    }

    #[test]
    fn every_rate_must_allow_a_request() {
        let per_minute = RequestRate {
            requests: NonZeroU32::new(2).expect("non-zero"),
            period: Duration::from_secs(60),
            burst: 0,
        };
        let zone = zone(&[per_minute, rate(10, 50)], 0);
        let peer = addr("10.0.0.1");
        assert!(zone.admit_at(peer, 0).is_ok());
        assert_eq!(zone.admit_at(peer, SECOND).err(), Some(Limited::Requests));
        assert!(zone.admit_at(peer, 30 * SECOND).is_ok());
    }

    #[test]
    fn connections_are_held_until_the_permit_is_dropped() {
        let zone = zone(&[], 2);
        let peer = addr("10.0.0.1");
        let first = zone.admit_at(peer, 0).expect("admitted").expect("a permit");
        let second = zone.admit_at(peer, 0).expect("admitted");
        assert_eq!(zone.admit_at(peer, 0).err(), Some(Limited::Connections));
        assert!(zone.admit_at(addr("10.0.0.2"), 0).is_ok());
        drop(first);
        let third = zone.admit_at(peer, 0).expect("admitted after a release");
        drop((second, third));
        assert_eq!(zone.clients.len(), 2);
    }

    #[test]
    fn a_connection_refusal_consumes_no_rate() {
        let zone = zone(&[rate(1, 0)], 1);
        let peer = addr("10.0.0.1");
        let held = zone.admit_at(peer, 0).expect("admitted");
        assert_eq!(
            zone.admit_at(peer, SECOND).err(),
            Some(Limited::Connections)
        );
        drop(held);
        assert!(zone.admit_at(peer, SECOND).is_ok());
    }

    fn route(ingress: &str, limit: Option<RateLimit>) -> Route {
        Route {
            backend: vestibule_routing::BackendId {
                namespace: "default".into(),
                service: "web".into(),
                port: vestibule_routing::ServicePortRef::Number(80),
            },
            ingress: IngressRef {
                namespace: "default".into(),
                name: ingress.into(),
            },
            tls: false,
            https_redirect: false,
            canary: None,
            policy: Arc::new(vestibule_routing::RoutePolicy {
                rate_limit: limit,
                ..Default::default()
            }),
        }
    }

    fn limit(requests: u32, exempt: &str) -> RateLimit {
        RateLimit {
            requests: vec![rate(requests, 0)],
            connections: None,
            exempt: vec![vestibule_routing::IpRange {
                network: addr(exempt),
                prefix_len: 32,
            }],
        }
    }

    #[test]
    fn zones_survive_tables_while_their_limits_stay_the_same() {
        let mut zones = Zones::default();
        let a = route("a", Some(limit(1, "10.9.9.9")));
        assert!(zones.zone_for(&route("plain", None)).is_none());
        let first = zones.zone_for(&a).expect("a zone");
        let same_table = zones.zone_for(&a).expect("a zone");
        let other = zones
            .zone_for(&route("b", Some(limit(1, "10.9.9.9"))))
            .expect("a zone");
        zones.finish();
        assert!(Arc::ptr_eq(&first, &same_table));
        assert!(
            !Arc::ptr_eq(&first, &other),
            "each Ingress has its own zone"
        );

        let exempt_changed = route("a", Some(limit(1, "10.8.8.8")));
        let kept = zones.zone_for(&exempt_changed).expect("a zone");
        zones.finish();
        assert!(Arc::ptr_eq(&first, &kept));

        let rate_changed = route("a", Some(limit(2, "10.8.8.8")));
        let fresh = zones.zone_for(&rate_changed).expect("a zone");
        zones.finish();
        assert!(!Arc::ptr_eq(&first, &fresh));
        assert_eq!(zones.live.len(), 1, "unused zones are dropped");
    }
}
