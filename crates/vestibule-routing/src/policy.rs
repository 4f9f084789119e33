//! Per-route settings that annotations ask for, as typed values the data plane applies.
//!
//! Nothing here is text to interpret: every value was parsed and validated by the translator.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use vestibule_htpasswd::Credentials;

use crate::rate_limit::RateLimit;
use crate::rewrite::RewriteTarget;

/// What an Ingress's annotations change about how its routes are served. The default changes
/// nothing: the listener's settings apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutePolicy {
    /// Answer every request with this redirect instead of proxying
    /// (`permanent-redirect`, `temporal-redirect`).
    pub redirect: Option<Redirect>,
    /// Redirect requests for `/` to this path (`app-root`).
    pub app_root: Option<String>,
    /// Who may use the route, by client address (`allowlist-source-range`,
    /// `denylist-source-range`).
    pub source: Option<SourceFilter>,
    /// Cross-origin resource sharing answered at the edge (`enable-cors`).
    pub cors: Option<Cors>,
    /// Users must log in with HTTP basic authentication (`auth-type: basic`).
    pub basic_auth: Option<BasicAuth>,
    /// Requests must be admitted by an authentication service first (`auth-url`).
    pub external_auth: Option<crate::ExternalAuth>,
    /// The route is configured in a way that cannot be served safely (such as authentication
    /// whose Secret is missing): every request is refused with 503, and this says why.
    pub denied: Option<String>,
    /// Limits and timeouts that replace the listener's defaults.
    pub limits: Limits,
    /// The `Host` sent to the backend instead of the client's (`upstream-vhost`).
    pub upstream_host: Option<String>,
    /// The `X-Forwarded-Prefix` sent to the backend (`x-forwarded-prefix`).
    pub forwarded_prefix: Option<String>,
    /// The path requests are sent upstream with (`rewrite-target`).
    pub rewrite: Option<RewriteTarget>,
    /// How requests are carried to the backend (`backend-protocol`).
    pub protocol: BackendProtocol,
    /// How requests are spread over the backend's endpoints.
    pub balancing: crate::Balancing,
    /// Per-client request and connection limits (`limit-rps`, `limit-rpm`, `limit-connections`).
    pub rate_limit: Option<RateLimit>,
}

/// How requests are carried to a backend's endpoints (`backend-protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackendProtocol {
    /// HTTP/1.1 in clear (`HTTP`, the default).
    #[default]
    Http,
    /// HTTP/1.1 over TLS (`HTTPS`).
    Https,
    /// HTTP/1.1, over TLS when the client's request came over TLS (`AUTO_HTTP`).
    AutoHttp,
    /// HTTP/2 in clear, with prior knowledge (`GRPC`).
    Grpc,
    /// HTTP/2 over TLS (`GRPCS`).
    Grpcs,
}

impl BackendProtocol {
    /// The protocol a request arriving over TLS (`client_tls`) or not is carried with:
    /// [`Self::AutoHttp`] becomes [`Self::Https`] or [`Self::Http`], the others stay.
    pub fn for_request(self, client_tls: bool) -> Self {
        match self {
            Self::AutoHttp if client_tls => Self::Https,
            Self::AutoHttp => Self::Http,
            other => other,
        }
    }

    /// Whether connections to endpoints use TLS; [`Self::AutoHttp`] does only per request.
    pub fn is_tls(self) -> bool {
        matches!(self, Self::Https | Self::Grpcs)
    }

    /// Whether requests go to endpoints over HTTP/2 (the gRPC protocols).
    pub fn is_grpc(self) -> bool {
        matches!(self, Self::Grpc | Self::Grpcs)
    }
}

/// HTTP basic authentication for a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuth {
    /// The realm named in `WWW-Authenticate` (`auth-realm`).
    pub realm: String,
    /// Who may log in (`auth-secret`).
    pub credentials: Arc<Credentials>,
}

/// Overrides of the listener's limits and timeouts; `None` keeps the listener's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body (`proxy-body-size`).
    pub max_body: Option<BodyLimit>,
    /// How long connecting to an endpoint may take (`proxy-connect-timeout`).
    pub connect_timeout: Option<Duration>,
    /// How long an endpoint may take to start answering (`proxy-read-timeout`).
    pub read_timeout: Option<Duration>,
    /// How long writing the request to an endpoint may stall (`proxy-send-timeout`).
    pub send_timeout: Option<Duration>,
    /// How many endpoints a request may be tried on, the first included
    /// (`proxy-next-upstream-tries`).
    pub upstream_tries: Option<u32>,
}

/// A request body size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLimit {
    /// Bodies of any size are accepted (`proxy-body-size: "0"`).
    Unlimited,
    /// Bodies larger than this many bytes are refused with 413.
    Bytes(u64),
}

impl BodyLimit {
    /// The limit as the data plane checks it: `None` for no limit.
    pub fn bytes(self) -> Option<u64> {
        match self {
            Self::Unlimited => None,
            Self::Bytes(bytes) => Some(bytes),
        }
    }
}

/// A redirect answered at the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The status: 301, 302, 303, 307 or 308.
    pub status: u16,
    /// The `Location`, with request values filled in per request.
    pub location: Template,
}

/// A URL with request values in it, such as `https://example.com$request_uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template(pub Vec<TemplatePart>);

/// One piece of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as is.
    Text(String),
    /// A value of the request being answered.
    Value(RequestValue),
}

/// The request values a [`Template`] may use, named as nginx names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestValue {
    /// `$request_uri`: the path and query as the client sent them.
    RequestUri,
    /// `$uri`: the normalised path, without query.
    Uri,
    /// `$host`: the request's host name, without port.
    Host,
    /// `$scheme`: `http` or `https`.
    Scheme,
    /// `$http_host`: the host the client asked for, with its port if it sent one.
    HttpHost,
    /// `$escaped_request_uri`: `$request_uri` escaped to fit in a query parameter.
    EscapedRequestUri,
}

impl RequestValue {
    /// Every request value.
    pub const ALL: [Self; 6] = [
        Self::RequestUri,
        Self::Uri,
        Self::Host,
        Self::Scheme,
        Self::HttpHost,
        Self::EscapedRequestUri,
    ];

    /// The value's name without the `$`.
    pub fn name(self) -> &'static str {
        match self {
            Self::RequestUri => "request_uri",
            Self::Uri => "uri",
            Self::Host => "host",
            Self::Scheme => "scheme",
            Self::HttpHost => "http_host",
            Self::EscapedRequestUri => "escaped_request_uri",
        }
    }

    /// The value named `name` (without the `$`), if there is one.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|value| value.name() == name)
    }
}

impl Template {
    /// The text with each request value taken from `value`.
    pub fn render(&self, mut value: impl FnMut(RequestValue) -> String) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::Value(name) => out.push_str(&value(*name)),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.0 {
            match part {
                TemplatePart::Text(text) => f.write_str(text)?,
                TemplatePart::Value(value) => write!(f, "${}", value.name())?,
            }
        }
        Ok(())
    }
}

/// An address range in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    /// The network address.
    pub network: IpAddr,
    /// How many leading bits must match.
    pub prefix_len: u8,
}

impl IpRange {
    /// Whether `addr` is in the range; IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(network), IpAddr::V4(addr)) => {
                leading_bits_equal(&network.octets(), &addr.octets(), self.prefix_len)
            }
            (IpAddr::V6(network), IpAddr::V6(addr)) => {
                leading_bits_equal(&network.octets(), &addr.octets(), self.prefix_len)
            }
            _ => false,
        }
    }
}

fn leading_bits_equal(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let whole = bits / 8;
    if a.get(..whole) != b.get(..whole) {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(whole), b.get(whole)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Which client addresses may use a route: a denied address is refused, and when an allow list
/// is set, so is every address outside it. Refused requests get 403.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceFilter {
    /// Only these ranges may connect; empty allows everyone not denied.
    pub allow: Vec<IpRange>,
    /// These ranges are refused.
    pub deny: Vec<IpRange>,
}

impl SourceFilter {
    /// Whether a client at `addr` may use the route.
    pub fn permits(&self, addr: IpAddr) -> bool {
        if self.deny.iter().any(|range| range.contains(addr)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|range| range.contains(addr))
    }
}

/// Cross-origin resource sharing for a route, with ingress-nginx's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cors {
    /// The origins allowed; `None` allows any (`*`).
    pub allow_origins: Option<Vec<OriginPattern>>,
    /// `Access-Control-Allow-Methods`.
    pub allow_methods: String,
    /// `Access-Control-Allow-Headers`.
    pub allow_headers: String,
    /// `Access-Control-Expose-Headers`; empty sends none.
    pub expose_headers: String,
    /// Whether `Access-Control-Allow-Credentials: true` is sent.
    pub allow_credentials: bool,
    /// `Access-Control-Max-Age` in seconds, for preflight answers.
    pub max_age: u64,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            allow_origins: None,
            allow_methods: "GET, PUT, POST, DELETE, PATCH, OPTIONS".to_owned(),
            allow_headers: "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization".to_owned(),
            expose_headers: String::new(),
            allow_credentials: true,
            max_age: 1_728_000,
        }
    }
}

impl Cors {
    /// The `Access-Control-Allow-Origin` to answer a request from `origin` with, or `None` when
    /// that origin is not allowed.
    pub fn allowed_origin<'a>(&self, origin: Option<&'a str>) -> Option<&'a str> {
        match &self.allow_origins {
            None => Some("*"),
            Some(patterns) => {
                let origin = origin?;
                patterns
                    .iter()
                    .any(|pattern| pattern.matches(origin))
                    .then_some(origin)
            }
        }
    }
}

/// An allowed origin: `https://app.example.com`, or `https://*.example.com` for any one or more
/// labels in front of the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    /// `scheme://`.
    pub scheme: String,
    /// Whether any subdomain of `host` matches instead of `host` itself.
    pub any_subdomain: bool,
    /// The host, lowercase, with the port if one was given.
    pub host: String,
}

impl OriginPattern {
    /// Whether a request's `Origin` value matches.
    pub fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin.strip_prefix(self.scheme.as_str()) else {
            return false;
        };
        let rest = rest.to_ascii_lowercase();
        if self.any_subdomain {
            rest.strip_suffix(self.host.as_str())
                .and_then(|labels| labels.strip_suffix('.'))
                .is_some_and(|labels| !labels.is_empty())
        } else {
            rest == self.host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> IpRange {
        let (network, prefix_len) = text.split_once('/').expect("CIDR");
        IpRange {
            network: network.parse().expect("address"),
            prefix_len: prefix_len.parse().expect("prefix length"),
        }
    }

    #[test]
    fn ranges_match_leading_bits() {
        let net = range("10.1.0.0/16");
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(range("192.168.1.128/25").contains("192.168.1.200".parse().unwrap()));
        assert!(!range("192.168.1.128/25").contains("192.168.1.127".parse().unwrap()));
        assert!(range("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(range("127.0.0.1/32").contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(range("fd00::/8").contains("fd12::1".parse().unwrap()));
        assert!(!range("fd00::/8").contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn deny_wins_over_allow() {
        let filter = SourceFilter {
            allow: vec![range("10.0.0.0/8")],
            deny: vec![range("10.0.0.5/32")],
        };
        assert!(filter.permits("10.0.0.4".parse().unwrap()));
        assert!(!filter.permits("10.0.0.5".parse().unwrap()));
        assert!(!filter.permits("11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn origins_match_exactly_or_by_subdomain() {
        let exact = OriginPattern {
            scheme: "https://".into(),
            any_subdomain: false,
            host: "app.example.com".into(),
        };
        let wildcard = OriginPattern {
            any_subdomain: true,
            host: "example.com".into(),
            ..exact.clone()
        };
        assert!(exact.matches("https://APP.example.com"));
        assert!(!exact.matches("http://app.example.com"));
        assert!(wildcard.matches("https://a.b.example.com"));
        assert!(!wildcard.matches("https://example.com"));
        assert!(!wildcard.matches("https://evilexample.com"));
    }

    #[test]
    fn templates_fill_in_request_values() {
        let template = Template(vec![
            TemplatePart::Text("https://".into()),
            TemplatePart::Value(RequestValue::Host),
            TemplatePart::Value(RequestValue::RequestUri),
        ]);
        let rendered = template.render(|value| match value {
            RequestValue::Host => "example.com".into(),
            RequestValue::RequestUri => "/a?b".into(),
            _ => String::new(),
        });
        assert_eq!(rendered, "https://example.com/a?b");
        assert_eq!(template.to_string(), "https://$host$request_uri");
    }
}
