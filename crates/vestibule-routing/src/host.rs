//! Host matching as the Kubernetes Ingress spec defines it.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// Which request hosts a virtual host answers.
///
/// The order is precedence: an exact name beats a wildcard, and a wildcard beats a rule without
/// a host.
///
/// Names are shared, so the many tables and maps keyed by host copy them for nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostMatch {
    /// Exactly this name (lower case, no port).
    Exact(Arc<str>),
    /// One DNS label followed by this suffix: `*.foo.com` is stored as `foo.com`.
    Wildcard(Arc<str>),
    /// Every host: an Ingress rule without `host`.
    Any,
}

/// Why an Ingress `host` is not a valid host pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidHost {
    /// The host as written in the Ingress.
    pub host: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for InvalidHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid host {:?}: {}", self.host, self.reason)
    }
}

impl std::error::Error for InvalidHost {}

impl HostMatch {
    /// Parses an Ingress rule's `host`; an empty host matches every request.
    ///
    /// Follows the API server's validation: a DNS-1123 subdomain, optionally with a leading
    /// `*.` label, and never an IP address.
    pub fn parse(host: &str) -> Result<Self, InvalidHost> {
        let invalid = |reason| InvalidHost {
            host: host.to_owned(),
            reason,
        };
        if host.is_empty() {
            return Ok(Self::Any);
        }
        let lower = host.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        if name.len() > 253 {
            return Err(invalid("longer than 253 characters"));
        }
        if name.parse::<std::net::IpAddr>().is_ok() {
            return Err(invalid("must be a DNS name, not an IP address"));
        }
        for label in name.split('.') {
            if !is_dns_label(label) {
                return Err(invalid(
                    "each label must be 1 to 63 letters, digits or '-', starting and ending with a letter or digit (a wildcard is allowed only as the whole first label)",
                ));
            }
        }
        Ok(if wildcard {
            Self::Wildcard(name.into())
        } else {
            Self::Exact(name.into())
        })
    }

    /// Whether a request host, already normalised by [`normalize_request_host`], matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => **name == *host,
            Self::Wildcard(suffix) => wildcard_suffix(host) == Some(&**suffix),
            Self::Any => true,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Self::Exact(_) => 0,
            Self::Wildcard(_) => 1,
            Self::Any => 2,
        }
    }
}

impl Ord for HostMatch {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank()
            .cmp(&other.rank())
            .then_with(|| match (self, other) {
                (Self::Exact(a), Self::Exact(b)) | (Self::Wildcard(a), Self::Wildcard(b)) => {
                    a.cmp(b)
                }
                _ => Ordering::Equal,
            })
    }
}

impl PartialOrd for HostMatch {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for HostMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Wildcard(suffix) => write!(f, "*.{suffix}"),
            Self::Any => f.write_str("*"),
        }
    }
}

/// The suffix a wildcard host would need to match `host`: everything after its first label.
pub(crate) fn wildcard_suffix(host: &str) -> Option<&str> {
    let (first, rest) = host.split_once('.')?;
    (!first.is_empty() && !rest.is_empty()).then_some(rest)
}

/// Reduces a request's `Host` (or `:authority`) to the form host rules match: lower case,
/// without port, without a trailing dot.
pub fn normalize_request_host(host: &str) -> Cow<'_, str> {
    let without_port = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    let trimmed = without_port.strip_suffix('.').unwrap_or(without_port);
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_wildcard_and_empty_hosts() {
        assert_eq!(HostMatch::parse(""), Ok(HostMatch::Any));
        assert_eq!(
            HostMatch::parse("Foo.Bar.com"),
            Ok(HostMatch::Exact("foo.bar.com".into()))
        );
        assert_eq!(
            HostMatch::parse("*.foo.com"),
            Ok(HostMatch::Wildcard("foo.com".into()))
        );
    }

    #[test]
    fn rejects_what_the_api_server_rejects() {
        for bad in [
            "10.0.0.1",
            "foo.*.com",
            "*",
            "*.",
            "-foo.com",
            "foo-.com",
            "foo..com",
            "foo.com:80",
            "foo_bar.com",
        ] {
            assert!(HostMatch::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    /// The host table of the Kubernetes Ingress documentation.
    #[test]
    fn wildcard_matches_exactly_one_label() {
        let cases = [
            ("*.foo.com", "bar.foo.com", true),
            ("*.foo.com", "baz.bar.foo.com", false),
            ("*.foo.com", "foo.com", false),
            ("foo.bar.com", "foo.bar.com", true),
            ("foo.bar.com", "bar.foo.com", false),
            ("", "anything.example", true),
        ];
        for (rule, request, expected) in cases {
            let host = HostMatch::parse(rule).expect("valid host");
            let request = normalize_request_host(request);
            assert_eq!(host.matches(&request), expected, "{rule} vs {request}");
        }
    }

    #[test]
    fn request_hosts_lose_case_port_and_trailing_dot() {
        assert_eq!(normalize_request_host("Foo.COM:8080"), "foo.com");
        assert_eq!(normalize_request_host("foo.com."), "foo.com");
        assert_eq!(normalize_request_host("[::1]:443"), "[::1]");
        assert_eq!(normalize_request_host("foo.com"), "foo.com");
    }

    #[test]
    fn exact_beats_wildcard_beats_any() {
        let mut hosts = vec![
            HostMatch::Any,
            HostMatch::Wildcard("foo.com".into()),
            HostMatch::Exact("bar.foo.com".into()),
        ];
        hosts.sort();
        assert_eq!(
            hosts,
            vec![
                HostMatch::Exact("bar.foo.com".into()),
                HostMatch::Wildcard("foo.com".into()),
                HostMatch::Any,
            ]
        );
    }
}
