//! How a route chooses among its backend's endpoints: the algorithm, consistent hashing on a
//! request value, and cookie session affinity (`load-balance`, `upstream-hash-by`, `affinity`).

use std::fmt;

use crate::policy::RequestValue;

/// How a route's requests are spread over its backend's endpoints. Cookie affinity, when set,
/// decides first; then a hash key, when set; then the algorithm.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Balancing {
    /// The algorithm for requests that neither affinity nor a hash key places (`load-balance`).
    pub algorithm: Algorithm,
    /// Requests with the same key go to the same endpoint (`upstream-hash-by`).
    pub hash_by: Option<HashKey>,
    /// Sessions stick to an endpoint named by a cookie (`affinity: cookie`).
    pub affinity: Option<SessionCookie>,
}

/// A load-balancing algorithm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// Each endpoint in turn (`round_robin`).
    #[default]
    RoundRobin,
    /// The better of two random endpoints by their decaying peak average response time
    /// (`ewma`).
    Ewma,
}

/// A request value to hash, such as `$host$request_uri`: its parts are concatenated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashKey(pub Vec<KeyPart>);

/// One piece of a [`HashKey`], named as nginx names request variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// Text copied as is.
    Text(String),
    /// `$request_uri`, `$uri`, `$host` or `$scheme`.
    Value(RequestValue),
    /// `$remote_addr`: the client's address.
    RemoteAddr,
    /// `$args` or `$query_string`: the query, without `?`.
    Args,
    /// `$http_NAME`: a request header, named in lowercase with `-` for nginx's `_`.
    Header(String),
    /// `$cookie_NAME`: a request cookie's value.
    Cookie(String),
    /// `$arg_NAME`: a query argument's value.
    Arg(String),
}

impl fmt::Display for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.0 {
            match part {
                KeyPart::Text(text) => f.write_str(text)?,
                KeyPart::Value(value) => write!(f, "${}", value.name())?,
                KeyPart::RemoteAddr => f.write_str("$remote_addr")?,
                KeyPart::Args => f.write_str("$args")?,
                KeyPart::Header(name) => write!(f, "$http_{}", name.replace('-', "_"))?,
                KeyPart::Cookie(name) => write!(f, "$cookie_{name}")?,
                KeyPart::Arg(name) => write!(f, "$arg_{name}")?,
            }
        }
        Ok(())
    }
}

/// The cookie that names a session's endpoint, with ingress-nginx's attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCookie {
    /// The cookie's name (`session-cookie-name`, default `INGRESSCOOKIE`).
    pub name: String,
    /// `Path`; `None` uses the path of the rule that matched (`session-cookie-path`).
    pub path: Option<String>,
    /// `Max-Age` in seconds (`session-cookie-max-age`).
    pub max_age: Option<u64>,
    /// `Expires`, this many seconds after the response (`session-cookie-expires`).
    pub expires: Option<u64>,
    /// `SameSite` (`session-cookie-samesite`).
    pub same_site: Option<SameSite>,
    /// `Secure` on plain HTTP too; it is always set on HTTPS (`session-cookie-secure`).
    pub secure: bool,
    /// `affinity-mode`.
    pub mode: AffinityMode,
    /// After the session's endpoint failed and another one answered, the cookie moves the
    /// session there (`session-cookie-change-on-failure`).
    pub change_on_failure: bool,
}

impl Default for SessionCookie {
    fn default() -> Self {
        Self {
            name: "INGRESSCOOKIE".to_owned(),
            path: None,
            max_age: None,
            expires: None,
            same_site: None,
            secure: false,
            mode: AffinityMode::Balanced,
            change_on_failure: false,
        }
    }
}

/// The cookie's `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=None`.
    None,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

impl SameSite {
    /// The attribute's value as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Lax => "Lax",
            Self::Strict => "Strict",
        }
    }
}

/// How new sessions are placed (`affinity-mode`). In both modes a session stays on its
/// endpoint while that endpoint is ready and not ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffinityMode {
    /// On an endpoint chosen uniformly at random, as ingress-nginx's consistent hash of a fresh
    /// random key does (`balanced`, the default).
    Balanced,
    /// By the route's algorithm (`persistent`).
    Persistent,
}
