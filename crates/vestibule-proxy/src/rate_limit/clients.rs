//! The clients one zone tracks: a bounded map from client address to limiter state, split into
//! shards behind short locks.
//!
//! **Bound.** A zone tracks at most 57,344 addresses (64 shards of 896; about 3.5 MiB when full; zones
//! only grow as far as clients arrive). When a new address lands in a full shard, the shard
//! first forgets its idle clients (nothing in progress and fully refilled, so forgetting them
//! changes nothing), and if that frees less than a quarter of it, also the least recently seen
//! clients with nothing in progress, as nginx drops the oldest state of a full zone. Clients
//! with requests in progress are never forgotten: a shard full of them refuses new addresses.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// How many independently locked parts a zone's map is split into.
const SHARDS: usize = 64;

/// How many clients one shard tracks (a hash table of 1,024 slots, at most 7/8 full).
const SHARD_CLIENTS: usize = 896;

/// How many request rates a client's state has room for: per minute and per second.
pub(super) const RATES: usize = 2;

/// What a zone remembers about one client address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Client {
    /// The theoretical arrival time for each of the zone's request rates.
    pub tats: [u64; RATES],
    /// How many of the client's requests are in progress, when connections are limited.
    pub in_flight: u32,
    /// When the client was last admitted or refused.
    pub last_seen: u64,
}

impl Client {
    /// Whether forgetting the client would change nothing: nothing in progress, every rate
    /// fully refilled.
    fn idle(&self, now: u64) -> bool {
        self.in_flight == 0 && self.tats.iter().all(|tat| *tat <= now)
    }
}

type Shard = HashMap<IpAddr, Client>;

/// The bounded, sharded map of clients.
pub(super) struct Clients {
    hasher: std::hash::RandomState,
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Clients {
    fn default() -> Self {
        Self {
            hasher: std::hash::RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Clients {
    /// Runs `update` on the state of the client at `addr`, which starts out fresh. `None` when
    /// the address is new and its shard is full of clients with requests in progress.
    pub(super) fn update<R>(
        &self,
        addr: IpAddr,
        now: u64,
        update: impl FnOnce(&mut Client) -> R,
    ) -> Option<R> {
        let mut shard = self.shard(addr);
        if !shard.contains_key(&addr) && shard.len() >= SHARD_CLIENTS && !make_room(&mut shard, now)
        {
            return None;
        }
        Some(update(shard.entry(addr).or_default()))
    }

    /// Runs `update` on the state of the client at `addr`, if it is tracked.
    pub(super) fn update_tracked(&self, addr: IpAddr, update: impl FnOnce(&mut Client)) {
        if let Some(client) = self.shard(addr).get_mut(&addr) {
            update(client);
        }
    }

    /// How many clients are tracked.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        (0..SHARDS)
            .map(|index| self.lock(index).len())
            .sum::<usize>()
    }

    fn shard(&self, addr: IpAddr) -> std::sync::MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(addr) % SHARDS as u64) as usize;
        self.lock(index)
    }

    fn lock(&self, index: usize) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Forgets idle clients, and the least recently seen ones with nothing in progress when that is
/// not enough to free a quarter of the shard. Returns whether there is room for a new client.
fn make_room(shard: &mut Shard, now: u64) -> bool {
    shard.retain(|_, client| !client.idle(now));
    let keep = SHARD_CLIENTS * 3 / 4;
    if shard.len() > keep {
        let mut seen: Vec<u64> = shard
            .values()
            .filter(|client| client.in_flight == 0)
            .map(|client| client.last_seen)
            .collect();
        let excess = (shard.len() - keep).min(seen.len());
        if excess > 0 {
            let (_, oldest_kept, _) = seen.select_nth_unstable(excess - 1);
            let threshold = *oldest_kept;
            shard.retain(|_, client| client.in_flight > 0 || client.last_seen > threshold);
        }
    }
    shard.len() < SHARD_CLIENTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const MOST_CLIENTS: usize = SHARDS * SHARD_CLIENTS;

    fn addr(n: u32) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(u128::from(n) + 1))
    }

    #[test]
    fn the_map_never_exceeds_its_bound() {
        let clients = Clients::default();
        for n in 0..(MOST_CLIENTS as u32 * 3) {
            let admitted = clients.update(addr(n), u64::from(n), |client| {
                client.last_seen = u64::from(n);
                client.tats[0] = u64::MAX;
            });
            assert!(admitted.is_some());
        }
        assert!(clients.len() <= MOST_CLIENTS);
    }

    #[test]
    fn idle_clients_go_before_active_ones() {
        let mut shard = Shard::new();
        for n in 0..SHARD_CLIENTS as u32 {
            let client = Client {
                tats: [if n == 7 { 1_000 } else { 10 }, 0],
                in_flight: u32::from(n == 9),
                last_seen: 0,
            };
            shard.insert(addr(n), client);
        }
        assert!(make_room(&mut shard, 100));
        assert_eq!(
            shard.len(),
            2,
            "only clients ahead of their rate or in progress stay"
        );
        assert!(shard.contains_key(&addr(7)) && shard.contains_key(&addr(9)));
    }

    #[test]
    fn least_recently_seen_clients_go_when_all_are_active() {
        let mut shard = Shard::new();
        for n in 0..SHARD_CLIENTS as u32 {
            let client = Client {
                tats: [u64::MAX, 0],
                in_flight: u32::from(n % 2 == 0),
                last_seen: u64::from(n),
            };
            shard.insert(addr(n), client);
        }
        assert!(make_room(&mut shard, 0));
        assert_eq!(shard.len(), SHARD_CLIENTS * 3 / 4);
        assert!(shard.values().filter(|client| client.in_flight > 0).count() == SHARD_CLIENTS / 2);
        assert!(shard.contains_key(&addr(SHARD_CLIENTS as u32 - 1)));
        assert!(!shard.contains_key(&addr(1)));
    }

    #[test]
    fn a_shard_full_of_requests_in_progress_has_no_room() {
        let mut shard = Shard::new();
        for n in 0..SHARD_CLIENTS as u32 {
            let client = Client {
                in_flight: 1,
                ..Client::default()
            };
            shard.insert(addr(n), client);
        }
        assert!(!make_room(&mut shard, 0));
        assert_eq!(shard.len(), SHARD_CLIENTS);
    }
}
