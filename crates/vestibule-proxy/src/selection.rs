//! A route's choice of endpoint on top of its backend's shared endpoint set and health:
//! cookie session affinity, consistent hashing on a request value, and EWMA.
//!
//! The endpoint set, passive health and response times belong to the backend and are shared by
//! every route to it; the strategy belongs to the route. So two Ingresses can send to the same
//! Service with different balancing, each getting its own, over the same endpoints.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use http::uri::Authority;
use http::{HeaderMap, HeaderValue, header::COOKIE};
use vestibule_routing::{
    AffinityMode, Algorithm, Balancing, HashKey, KeyPart, RequestValue, SessionCookie,
};

use crate::ewma;
use crate::policy::RequestFacts;
use crate::upstream::UpstreamEndpoint;

/// How one request chooses its endpoint, from its route's [`Balancing`].
#[derive(Debug)]
pub(crate) struct Strategy<'a> {
    balancing: &'a Balancing,
    /// The request's hash key, hashed, when the route hashes.
    key: Option<u64>,
    /// The session cookie's value, when the route has affinity and the request the cookie.
    session: Option<String>,
    /// Whether the endpoint the cookie names was chosen.
    sticky: AtomicBool,
}

/// What a [`Strategy`] reads from the request.
pub(crate) struct RequestKeys<'a> {
    /// The request's host, path and scheme.
    pub facts: &'a RequestFacts<'a>,
    /// The request's headers as the client sent them.
    pub headers: &'a HeaderMap,
    /// The client's address.
    pub client: IpAddr,
}

impl<'a> Strategy<'a> {
    /// The strategy for a request to a route balanced by `balancing`.
    pub(crate) fn new(balancing: &'a Balancing, request: &RequestKeys<'_>) -> Self {
        let session = balancing
            .affinity
            .as_ref()
            .and_then(|cookie| cookie_value(request.headers, &cookie.name).map(str::to_owned));
        let key = match (&balancing.affinity, &balancing.hash_by) {
            (None, Some(key)) => Some(key_hash(key, request)),
            _ => None,
        };
        Self {
            balancing,
            key,
            session,
            sticky: AtomicBool::new(false),
        }
    }

    /// The index of the endpoint to use among those not ejected at `now_ms`, or `None` to
    /// leave the choice to the backend's round robin (which also covers every endpoint being
    /// ejected). Affinity comes first, then the hash key, then the algorithm.
    pub(crate) fn choose(&self, endpoints: &[UpstreamEndpoint], now_ms: u64) -> Option<usize> {
        let usable = |endpoint: &UpstreamEndpoint| !endpoint.ejected(now_ms);
        if let Some(cookie) = &self.balancing.affinity {
            let named = self.session.as_deref().and_then(|session| {
                endpoints
                    .iter()
                    .position(|endpoint| endpoint.session_id() == session && usable(endpoint))
            });
            if named.is_some() {
                self.sticky.store(true, Ordering::Relaxed);
                return named;
            }
            if cookie.mode == AffinityMode::Balanced {
                return random(endpoints, usable);
            }
        } else if let Some(key) = self.key {
            return rendezvous(endpoints, key, usable);
        }
        match self.balancing.algorithm {
            Algorithm::RoundRobin => None,
            Algorithm::Ewma => ewma::pick_of_two(endpoints, usable, now_ms),
        }
    }

    /// The `Set-Cookie` that (re)starts the session on `served`, the endpoint that answered:
    /// `None` without affinity, when the request's cookie already names it, or when the
    /// cookie's endpoint was tried and failed and `session-cookie-change-on-failure` is off.
    /// `rule_path` is the path of the rule that matched, the default `Path`.
    pub(crate) fn set_cookie(
        &self,
        served: &Authority,
        rule_path: &str,
        https: bool,
    ) -> Option<HeaderValue> {
        let cookie = self.balancing.affinity.as_ref()?;
        let id = session_id(served);
        if self.session.as_deref() == Some(id.as_str())
            || (self.sticky.load(Ordering::Relaxed) && !cookie.change_on_failure)
        {
            return None;
        }
        HeaderValue::try_from(cookie_text(
            cookie,
            &id,
            rule_path,
            https,
            SystemTime::now(),
        ))
        .ok()
    }
}

/// The session cookie for endpoint `id` with the route's attributes, in the order
/// ingress-nginx writes them.
fn cookie_text(
    cookie: &SessionCookie,
    id: &str,
    rule_path: &str,
    https: bool,
    now: SystemTime,
) -> String {
    let mut text = format!("{}={id}", cookie.name);
    if let Some(expires) = cookie.expires {
        let at = now + Duration::from_secs(expires);
        let _ = write!(text, "; Expires={}", httpdate::fmt_http_date(at));
    }
    if let Some(max_age) = cookie.max_age {
        let _ = write!(text, "; Max-Age={max_age}");
    }
    let safe = |c: char| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '"' | '\\');
    let path = match &cookie.path {
        Some(path) => path.as_str(),
        None if rule_path.chars().all(safe) => rule_path,
        None => "/",
    };
    let _ = write!(text, "; Path={path}");
    if https || cookie.secure {
        text.push_str("; Secure");
    }
    text.push_str("; HttpOnly");
    if let Some(same_site) = cookie.same_site {
        let _ = write!(text, "; SameSite={}", same_site.as_str());
    }
    text
}

/// The session cookie value naming an endpoint: the first 128 bits of a SHA-256 of its
/// address, in hex. It is the same in every Vestibule replica and across restarts, so
/// sessions survive both, and it does not show the pod address.
pub(crate) fn session_id(authority: &Authority) -> String {
    let mut input = b"vestibule session\0".to_vec();
    input.extend_from_slice(authority.as_str().as_bytes());
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    digest.as_ref()[..16]
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Where an endpoint stands for consistent hashing.
pub(crate) fn endpoint_hash(authority: &Authority) -> u64 {
    let mut hasher = Fnv::default();
    hasher.write(authority.as_str().as_bytes());
    hasher.finish()
}

/// Rendezvous (highest random weight) hashing: the usable endpoint that scores highest for
/// `key`. When an endpoint leaves, only its keys move; when one joins, it takes about its share.
fn rendezvous(
    endpoints: &[UpstreamEndpoint],
    key: u64,
    usable: impl Fn(&UpstreamEndpoint) -> bool,
) -> Option<usize> {
    endpoints
        .iter()
        .enumerate()
        .filter(|(_, endpoint)| usable(endpoint))
        .max_by_key(|(_, endpoint)| (mix(key ^ endpoint.hash), endpoint.hash))
        .map(|(index, _)| index)
}

/// A uniformly random usable endpoint.
fn random(
    endpoints: &[UpstreamEndpoint],
    usable: impl Fn(&UpstreamEndpoint) -> bool,
) -> Option<usize> {
    let usable: Vec<usize> = (0..endpoints.len())
        .filter(|&index| usable(&endpoints[index]))
        .collect();
    (!usable.is_empty()).then(|| usable[fastrand::usize(..usable.len())])
}

/// The value of the first cookie named `name` (compared as nginx does, ignoring case).
fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// The hash of a request's key: its parts' values, concatenated.
fn key_hash(key: &HashKey, request: &RequestKeys<'_>) -> u64 {
    let facts = request.facts;
    let query = facts
        .request_uri
        .split_once('?')
        .map_or("", |(_, query)| query);
    let mut hasher = Fnv::default();
    for part in &key.0 {
        match part {
            KeyPart::Text(text) => hasher.write(text.as_bytes()),
            KeyPart::Value(RequestValue::RequestUri) => hasher.write(facts.request_uri.as_bytes()),
            KeyPart::Value(RequestValue::Uri) => hasher.write(facts.path.as_bytes()),
            KeyPart::Value(RequestValue::Host) => hasher.write(facts.host.as_bytes()),
            KeyPart::Value(RequestValue::Scheme) => hasher.write(facts.scheme.as_str().as_bytes()),
            KeyPart::Value(value) => hasher.write(facts.value(*value).as_bytes()),
            KeyPart::RemoteAddr => {
                let _ = write!(hasher, "{}", request.client);
            }
            KeyPart::Args => hasher.write(query.as_bytes()),
            KeyPart::Header(name) => {
                for (at, value) in request.headers.get_all(name.as_str()).iter().enumerate() {
                    if at > 0 {
                        hasher.write(b", ");
                    }
                    hasher.write(value.as_bytes());
                }
            }
            KeyPart::Cookie(name) => {
                hasher.write(cookie_value(request.headers, name).unwrap_or("").as_bytes());
            }
            KeyPart::Arg(name) => {
                let value = query
                    .split('&')
                    .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map_or("", |(_, value)| value);
                hasher.write(value.as_bytes());
            }
        }
    }
    hasher.finish()
}

/// 64-bit FNV-1a, finished with a strong mix: stable across processes and releases, so every
/// replica places a key on the same endpoint.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

impl fmt::Write for Fnv {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write(text.as_bytes());
        Ok(())
    }
}

/// MurmurHash3's 64-bit finaliser: every input bit affects every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::Scheme;
    use crate::upstream::Upstream;
    use vestibule_routing::{BackendId, Endpoint, SameSite, ServicePortRef};

    fn socket(index: usize) -> Endpoint {
        Endpoint::Socket(
            format!("10.0.{}.{}:8080", index / 200, index % 200 + 1)
                .parse()
                .unwrap(),
        )
    }

    fn upstream(count: usize) -> Upstream {
        let id = BackendId {
            namespace: "default".into(),
            service: "web".into(),
            port: ServicePortRef::Number(80),
        };
        Upstream::new(id, &(0..count).map(socket).collect::<Vec<_>>())
    }

    fn endpoints(indexes: impl Iterator<Item = usize>) -> Vec<UpstreamEndpoint> {
        indexes
            .filter_map(|index| UpstreamEndpoint::new(&socket(index)))
            .collect()
    }

    fn facts(request_uri: &str) -> RequestFacts<'_> {
        RequestFacts {
            scheme: Scheme::Http,
            host: "shop.example",
            request_uri,
            path: request_uri.split('?').next().unwrap_or("/"),
            http_host: "shop.example",
        }
    }

    fn strategy<'a>(balancing: &'a Balancing, uri: &str, headers: &HeaderMap) -> Strategy<'a> {
        let facts = facts(uri);
        let keys = RequestKeys {
            facts: &facts,
            headers,
            client: "192.0.2.1".parse().unwrap(),
        };
        Strategy::new(balancing, &keys)
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let cookie = format!("theme=dark; INGRESSCOOKIE={value}");
        headers.insert(COOKIE, HeaderValue::try_from(cookie).unwrap());
        headers
    }

    fn sticky(change_on_failure: bool) -> Balancing {
        Balancing {
            affinity: Some(SessionCookie {
                change_on_failure,
                ..SessionCookie::default()
            }),
            ..Balancing::default()
        }
    }

    #[test]
    fn a_session_cookie_names_its_endpoint_while_it_is_usable() {
        let upstream = upstream(3);
        let balancing = sticky(false);
        let none = HeaderMap::new();

        let first = strategy(&balancing, "/", &none);
        let pick = upstream.pick_by(&first).expect("an endpoint");
        let cookie = first
            .set_cookie(pick.authority(), "/app", false)
            .expect("a new session gets a cookie");
        let cookie = cookie.to_str().unwrap().to_owned();
        let id = session_id(pick.authority());
        assert_eq!(cookie, format!("INGRESSCOOKIE={id}; Path=/app; HttpOnly"));
        assert!(!cookie.contains("10.0."), "the pod address is not revealed");

        for _ in 0..20 {
            let again = strategy(&balancing, "/", &with_cookie(&id));
            let next = upstream.pick_by(&again).expect("an endpoint");
            assert_eq!(next.authority(), pick.authority());
            assert!(again.set_cookie(next.authority(), "/app", false).is_none());
        }

        for _ in 0..3 {
            pick.failed();
        }
        let after = strategy(&balancing, "/", &with_cookie(&id));
        let moved = upstream.pick_by(&after).expect("an endpoint");
        assert_ne!(
            moved.authority(),
            pick.authority(),
            "an ejected endpoint loses its sessions"
        );
        let reset = after.set_cookie(moved.authority(), "/app", false);
        assert!(reset.is_some_and(|cookie| {
            cookie
                .to_str()
                .unwrap()
                .contains(&session_id(moved.authority()))
        }));

        let unknown = strategy(&balancing, "/", &with_cookie("0123"));
        let placed = upstream.pick_by(&unknown).expect("an endpoint");
        assert!(unknown.set_cookie(placed.authority(), "/", false).is_some());
    }

    #[test]
    fn a_failed_session_endpoint_keeps_the_cookie_unless_change_on_failure() {
        let upstream = upstream(2);
        let served = upstream.pick().expect("an endpoint");
        let other = upstream.pick_other(&served).expect("another endpoint");
        let id = session_id(served.authority());
        for change_on_failure in [false, true] {
            let balancing = sticky(change_on_failure);
            let retried = strategy(&balancing, "/", &with_cookie(&id));
            let first = upstream.pick_by(&retried).expect("an endpoint");
            assert_eq!(first.authority(), served.authority());
            let cookie = retried.set_cookie(other.authority(), "/", false);
            assert_eq!(cookie.is_some(), change_on_failure);
        }
    }

    #[test]
    fn cookies_carry_the_configured_attributes() {
        let cookie = SessionCookie {
            name: "route".into(),
            max_age: Some(60),
            expires: Some(3600),
            same_site: Some(SameSite::Strict),
            ..SessionCookie::default()
        };
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            cookie_text(&cookie, "ab", "/shop", true, now),
            "route=ab; Expires=Thu, 01 Jan 1970 01:00:00 GMT; Max-Age=60; Path=/shop; Secure; HttpOnly; SameSite=Strict"
        );
        let fixed = SessionCookie {
            path: Some("/".into()),
            secure: true,
            ..SessionCookie::default()
        };
        assert_eq!(
            cookie_text(&fixed, "ab", "/shop", false, now),
            "INGRESSCOOKIE=ab; Path=/; Secure; HttpOnly"
        );
        assert!(
            cookie_text(&SessionCookie::default(), "ab", "/a;b", false, now).contains("Path=/;")
        );
    }

    #[test]
    fn hashed_keys_mostly_stay_put_when_endpoints_come_and_go() {
        let keys: Vec<u64> = (0..2000)
            .map(|key| {
                let mut hasher = Fnv::default();
                let _ = write!(hasher, "/item/{key}");
                hasher.finish()
            })
            .collect();
        let placed = |endpoints: &[UpstreamEndpoint]| -> Vec<Authority> {
            keys.iter()
                .map(|&key| {
                    let index = rendezvous(endpoints, key, |_| true).expect("an endpoint");
                    endpoints[index].authority.clone()
                })
                .collect()
        };
        let ten = placed(&endpoints(0..10));
        for index in 0..10 {
            let share = ten
                .iter()
                .filter(|a| **a == endpoints(index..index + 1)[0].authority)
                .count();
            assert!(share > 100, "endpoint {index} gets {share} of 2000 keys");
        }
        let removed = endpoints(1..2).remove(0).authority;
        let nine = placed(&endpoints((0..10).filter(|&index| index != 1)));
        for (before, after) in ten.iter().zip(&nine) {
            if *before != removed {
                assert_eq!(before, after, "only the removed endpoint's keys move");
            }
        }
        let eleven = placed(&endpoints(0..11));
        let moved = ten.iter().zip(&eleven).filter(|(a, b)| a != b).count();
        assert!(
            moved > 0 && moved < 2000 * 2 / 11,
            "{moved} of 2000 keys moved to a new endpoint"
        );
    }

    #[test]
    fn hash_keys_read_request_values() {
        let upstream = upstream(8);
        let by = |key: Vec<KeyPart>| Balancing {
            hash_by: Some(HashKey(key)),
            ..Balancing::default()
        };
        let uri = by(vec![KeyPart::Value(RequestValue::RequestUri)]);
        let none = HeaderMap::new();
        let chosen = |balancing: &Balancing, uri: &str, headers: &HeaderMap| {
            let strategy = strategy(balancing, uri, headers);
            upstream
                .pick_by(&strategy)
                .expect("an endpoint")
                .authority()
                .clone()
        };
        let first = chosen(&uri, "/a?x=1", &none);
        for _ in 0..10 {
            assert_eq!(chosen(&uri, "/a?x=1", &none), first);
        }
        let spread: std::collections::HashSet<_> = (0..40)
            .map(|n| chosen(&uri, &format!("/p/{n}"), &none))
            .collect();
        assert!(spread.len() > 3, "different URIs spread: {}", spread.len());

        let user = by(vec![
            KeyPart::Header("x-user".into()),
            KeyPart::Arg("id".into()),
        ]);
        let mut alice = HeaderMap::new();
        alice.insert("x-user", HeaderValue::from_static("alice"));
        let placed = chosen(&user, "/one?ID=7", &alice);
        assert_eq!(
            chosen(&user, "/two?id=7&z=1", &alice),
            placed,
            "other values do not count"
        );
        assert_eq!(
            key_hash_of(&user, "/x?id=7", &alice),
            key_hash_of(&user, "/y?a=b&id=7", &alice)
        );
        assert_ne!(
            key_hash_of(&user, "/x?id=7", &alice),
            key_hash_of(&user, "/x?id=8", &alice)
        );
    }

    fn key_hash_of(balancing: &Balancing, uri: &str, headers: &HeaderMap) -> Option<u64> {
        strategy(balancing, uri, headers).key
    }

    #[test]
    fn ewma_prefers_the_fast_endpoints() {
        let endpoints = endpoints(0..3);
        endpoints[0]
            .latency
            .observe(Duration::from_millis(400), 1_000);
        endpoints[1]
            .latency
            .observe(Duration::from_millis(5), 1_000);
        endpoints[2]
            .latency
            .observe(Duration::from_millis(9), 1_000);
        let mut counts = [0; 3];
        for _ in 0..300 {
            let index = ewma::pick_of_two(&endpoints, |_| true, 1_500).expect("an endpoint");
            counts[index] += 1;
        }
        assert_eq!(counts[0], 0, "the slow endpoint always loses: {counts:?}");
        assert!(counts[1] > 0 && counts[2] > 0, "{counts:?}");
        let only_slow =
            ewma::pick_of_two(&endpoints, |e| e.authority == endpoints[0].authority, 1_500);
        assert_eq!(
            only_slow,
            Some(0),
            "a slow endpoint still serves when it is the only one"
        );
        assert_eq!(ewma::pick_of_two(&endpoints, |_| false, 1_500), None);
    }
}
