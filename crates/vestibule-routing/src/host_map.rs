//! Values keyed by host pattern and looked up by request host.

use std::sync::Arc;

use foldhash::HashMap;

use crate::host::{HostMatch, normalize_request_host, wildcard_suffix};

/// A map from host patterns to values, looked up the way the Ingress spec selects a host:
/// exact name first, then a one-label wildcard, then the entry without a host.
///
/// Hashed with foldhash rather than std's SipHash, as every request looks its host up here; the
/// seed is random per map, as std's is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostMap<T> {
    exact: HashMap<Arc<str>, T>,
    wildcard: HashMap<Arc<str>, T>,
    any: Option<T>,
}

impl<T> Default for HostMap<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::default(),
            wildcard: HashMap::default(),
            any: None,
        }
    }
}

impl<T> HostMap<T> {
    /// The value for a request host (`Host`, `:authority` or SNI; case and port ignored).
    pub fn get(&self, host: &str) -> Option<&T> {
        self.get_normalized(&normalize_request_host(host))
    }

    /// [`HostMap::get`] for a name already in the form host patterns hold: lower case, without
    /// a port or a trailing dot (as the name of a [`HostMatch::Exact`]).
    pub fn get_normalized(&self, name: &str) -> Option<&T> {
        self.exact
            .get(name)
            .or_else(|| wildcard_suffix(name).and_then(|suffix| self.wildcard.get(suffix)))
            .or(self.any.as_ref())
    }

    /// The value stored for exactly this pattern.
    pub fn get_pattern(&self, host: &HostMatch) -> Option<&T> {
        match host {
            HostMatch::Exact(name) => self.exact.get(name),
            HostMatch::Wildcard(suffix) => self.wildcard.get(suffix),
            HostMatch::Any => self.any.as_ref(),
        }
    }

    /// Sets the value for a pattern, returning the one it replaces.
    pub fn insert(&mut self, host: HostMatch, value: T) -> Option<T> {
        match host {
            HostMatch::Exact(name) => self.exact.insert(name, value),
            HostMatch::Wildcard(suffix) => self.wildcard.insert(suffix, value),
            HostMatch::Any => self.any.replace(value),
        }
    }

    /// Removes the value for a pattern, returning it.
    pub fn remove(&mut self, host: &HostMatch) -> Option<T> {
        match host {
            HostMatch::Exact(name) => self.exact.remove(name),
            HostMatch::Wildcard(suffix) => self.wildcard.remove(suffix),
            HostMatch::Any => self.any.take(),
        }
    }

    /// The value for this pattern, inserted by `make` when absent.
    pub fn get_or_insert_with(&mut self, host: HostMatch, make: impl FnOnce() -> T) -> &mut T {
        match host {
            HostMatch::Exact(name) => self.exact.entry(name).or_insert_with(make),
            HostMatch::Wildcard(suffix) => self.wildcard.entry(suffix).or_insert_with(make),
            HostMatch::Any => self.any.get_or_insert_with(make),
        }
    }

    /// Every pattern and its value, in precedence order.
    pub fn iter(&self) -> Vec<(HostMatch, &T)> {
        let mut all: Vec<(HostMatch, &T)> = self
            .exact
            .iter()
            .map(|(name, value)| (HostMatch::Exact(name.clone()), value))
            .chain(
                self.wildcard
                    .iter()
                    .map(|(suffix, value)| (HostMatch::Wildcard(suffix.clone()), value)),
            )
            .chain(self.any.iter().map(|value| (HostMatch::Any, value)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.any.is_none()
    }

    /// How many patterns have a value.
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len() + usize::from(self.any.is_some())
    }

    /// `previous` made to hold exactly this map's patterns: a value of `previous` stays where
    /// `keep` accepts it for this map's value, and every other value is converted from this
    /// map's. Also returns whether any value was converted or dropped. A change to a few
    /// patterns costs no new hashing of the others.
    pub fn map_onto<U: Clone>(
        &self,
        previous: &HostMap<U>,
        mut keep: impl FnMut(&T, &U) -> bool,
        mut convert: impl FnMut(&T) -> U,
    ) -> (HostMap<U>, bool) {
        let mut map = previous.clone();
        let mut changed = map_entries_onto(&self.exact, &mut map.exact, &mut keep, &mut convert);
        changed |= map_entries_onto(&self.wildcard, &mut map.wildcard, &mut keep, &mut convert);
        match (&self.any, &mut map.any) {
            (Some(value), Some(old)) if keep(value, old) => {}
            (Some(value), slot) => {
                *slot = Some(convert(value));
                changed = true;
            }
            (None, slot @ Some(_)) => {
                *slot = None;
                changed = true;
            }
            (None, None) => {}
        }
        (map, changed)
    }

    /// The same map with every value converted.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> HostMap<U> {
        HostMap {
            exact: self.exact.iter().map(|(k, v)| (k.clone(), f(v))).collect(),
            wildcard: self
                .wildcard
                .iter()
                .map(|(k, v)| (k.clone(), f(v)))
                .collect(),
            any: self.any.as_ref().map(f),
        }
    }
}

/// [`HostMap::map_onto`] for one of the maps by name; returns whether it changed anything.
fn map_entries_onto<T, U>(
    source: &HashMap<Arc<str>, T>,
    onto: &mut HashMap<Arc<str>, U>,
    keep: &mut impl FnMut(&T, &U) -> bool,
    convert: &mut impl FnMut(&T) -> U,
) -> bool {
    let mut changed = false;
    for (key, value) in source {
        match onto.get_mut(key) {
            Some(old) if keep(value, old) => {}
            Some(old) => {
                *old = convert(value);
                changed = true;
            }
            None => {
                onto.insert(Arc::clone(key), convert(value));
                changed = true;
            }
        }
    }
    if onto.len() > source.len() {
        onto.retain(|key, _| source.contains_key(key));
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(host: &str) -> HostMatch {
        HostMatch::parse(host).expect("valid host")
    }

    /// A map of these patterns, "*" standing for every host.
    fn map_of(entries: &[(&str, u32)]) -> HostMap<u32> {
        let mut map = HostMap::default();
        for &(host, value) in entries {
            let host = if host == "*" {
                HostMatch::Any
            } else {
                pattern(host)
            };
            map.insert(host, value);
        }
        map
    }

    #[test]
    fn mapping_onto_a_previous_map_keeps_what_is_accepted() {
        let previous = map_of(&[("a.com", 10), ("b.com", 20), ("*.c.com", 30), ("*", 40)]);
        // Values kept where the previous one is ten times this one.
        let keep = |value: &u32, old: &u32| *old == value * 10;
        let convert = |value: &u32| value * 100;
        let same = map_of(&[("a.com", 1), ("b.com", 2), ("*.c.com", 3), ("*", 4)]);
        assert_eq!(
            same.map_onto(&previous, keep, convert),
            (previous.clone(), false)
        );
        let next = map_of(&[("a.com", 1), ("b.com", 5), ("d.com", 6)]);
        let (mapped, changed) = next.map_onto(&previous, keep, convert);
        assert!(changed);
        assert_eq!(
            mapped,
            map_of(&[("a.com", 10), ("b.com", 500), ("d.com", 600)])
        );
    }

    #[test]
    fn exact_then_wildcard_then_any() {
        let mut map = HostMap::default();
        *map.get_or_insert_with(pattern("a.foo.com"), || 0) = 1;
        *map.get_or_insert_with(pattern("*.foo.com"), || 0) = 2;
        assert_eq!(map.get("A.foo.com:443"), Some(&1));
        assert_eq!(map.get("b.foo.com"), Some(&2));
        assert_eq!(map.get("x.b.foo.com"), None);
        *map.get_or_insert_with(HostMatch::Any, || 0) = 3;
        assert_eq!(map.get("x.b.foo.com"), Some(&3));
        assert_eq!(map.get_pattern(&pattern("*.foo.com")), Some(&2));
        let order: Vec<String> = map.iter().iter().map(|(h, _)| h.to_string()).collect();
        assert_eq!(order, ["a.foo.com", "*.foo.com", "*"]);
    }
}
