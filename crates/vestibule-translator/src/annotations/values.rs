//! Parsers for annotation values: each takes the text and returns a typed value or a sentence
//! saying what was expected.

use std::net::IpAddr;
use std::time::Duration;

use vestibule_routing::{
    BodyLimit, HostMatch, IpRange, OriginPattern, RequestValue, Template, TemplatePart,
};

/// What a parser says about a value it cannot use.
pub(crate) type Invalid = String;

/// `true` or `false`, in the spellings Go's `strconv.ParseBool` accepts.
pub(crate) fn boolean(text: &str) -> Result<bool, Invalid> {
    match text.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// A whole number of seconds greater than zero, optionally written with an `s` suffix.
pub(crate) fn seconds(text: &str) -> Result<Duration, Invalid> {
    let trimmed = text.trim();
    let digits = trimmed.strip_suffix('s').unwrap_or(trimmed);
    match digits.parse::<u64>() {
        Ok(seconds) if seconds > 0 && seconds <= 24 * 3600 => Ok(Duration::from_secs(seconds)),
        _ => Err("expected a number of seconds between 1 and 86400".to_owned()),
    }
}

/// A whole number in `range`.
pub(crate) fn number(text: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, Invalid> {
    match text.trim().parse::<u64>() {
        Ok(number) if range.contains(&number) => Ok(number),
        _ => Err(format!(
            "expected a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// An nginx size (`512`, `8k`, `1m`, `2g`, case-insensitive); `0` means no limit.
pub(crate) fn body_limit(text: &str) -> Result<BodyLimit, Invalid> {
    let trimmed = text.trim();
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((at, suffix)) if suffix.is_ascii_alphabetic() => (&trimmed[..at], Some(suffix)),
        _ => (trimmed, None),
    };
    let multiplier: u64 = match unit.map(|unit| unit.to_ascii_lowercase()) {
        None => 1,
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some(_) => return Err("expected a size such as 512, 8k, 1m or 2g".to_owned()),
    };
    let Ok(number) = digits.parse::<u64>() else {
        return Err("expected a size such as 512, 8k, 1m or 2g".to_owned());
    };
    match number.checked_mul(multiplier) {
        Some(0) => Ok(BodyLimit::Unlimited),
        Some(bytes) => Ok(BodyLimit::Bytes(bytes)),
        None => Err("the size is too large".to_owned()),
    }
}

/// A comma-separated list of addresses or CIDR ranges.
pub(crate) fn ip_ranges(text: &str) -> Result<Vec<IpRange>, Invalid> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (address, prefix) = match item.split_once('/') {
                Some((address, prefix)) => (address, Some(prefix)),
                None => (item, None),
            };
            let network: IpAddr = address
                .parse()
                .map_err(|_| format!("{item:?} is not an IP address or CIDR range"))?;
            let most = if network.is_ipv4() { 32 } else { 128 };
            let prefix_len = match prefix {
                None => most,
                Some(prefix) => prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|len| *len <= most)
                    .ok_or_else(|| format!("{item:?} has an invalid prefix length"))?,
            };
            Ok(IpRange {
                network,
                prefix_len,
            })
        })
        .collect()
}

/// An absolute `http` or `https` URL, which may use `$request_uri`, `$uri`, `$host` and
/// `$scheme`.
pub(crate) fn redirect_url(text: &str) -> Result<Template, Invalid> {
    let text = text.trim();
    let host = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or("expected an absolute http:// or https:// URL")?;
    if host.is_empty() || host.starts_with('/') {
        return Err("the URL names no host".to_owned());
    }
    template(text)
}

/// Text with `$name` request values, where every other character is printable ASCII other
/// than a space, quote or backslash.
fn template(text: &str) -> Result<Template, Invalid> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        if at > 0 {
            parts.push(TemplatePart::Text(rest[..at].to_owned()));
        }
        let after = &rest[at + 1..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..end];
        let value = RequestValue::named(name).ok_or_else(|| {
            let known: Vec<String> = RequestValue::ALL
                .iter()
                .map(|value| format!("${}", value.name()))
                .collect();
            format!(
                "${name} is not supported; only {} are filled in",
                known.join(", ")
            )
        })?;
        parts.push(TemplatePart::Value(value));
        rest = &after[end..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest.to_owned()));
    }
    let bad = text
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '"' | '\'' | '\\' | '<' | '>' | '`'));
    match bad {
        Some(c) => Err(format!("the URL contains {c:?}")),
        None => Ok(Template(parts)),
    }
}

/// A path beginning with `/`, of printable ASCII other than quotes, backslashes and `?#`.
pub(crate) fn path(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let valid = text.starts_with('/')
        && !text.starts_with("//")
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '?' | '#' | '$'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a path beginning with '/'".to_owned())
    }
}

/// A host name, optionally with a port, as a `Host` header carries it.
pub(crate) fn host_header(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if valid {
        Ok(text.to_ascii_lowercase())
    } else {
        Err("expected a host name, optionally with :port".to_owned())
    }
}

/// A comma-separated list of host names, each exact or a one-label wildcard.
pub(crate) fn hosts(text: &str) -> Result<Vec<HostMatch>, Invalid> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match HostMatch::parse(item) {
            Ok(HostMatch::Any) | Err(_) => Err(format!("{item:?} is not a valid host name")),
            Ok(host) => Ok(host),
        })
        .collect()
}

/// A Secret name, optionally as `namespace/name`: the namespace (if given) and the name.
pub(crate) fn object_name(text: &str) -> Result<(Option<String>, String), Invalid> {
    let text = text.trim();
    let (namespace, name) = match text.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, text),
    };
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 253
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
    };
    if valid(name) && namespace.is_none_or(valid) {
        Ok((namespace.map(str::to_owned), name.to_owned()))
    } else {
        Err("expected a Secret name, or namespace/name".to_owned())
    }
}

/// Printable ASCII text without quotes or backslashes, such as a realm.
pub(crate) fn quoted_text(text: &str) -> Result<String, Invalid> {
    let valid = text.len() <= 256
        && text
            .chars()
            .all(|c| (c == ' ' || c.is_ascii_graphic()) && !matches!(c, '"' | '\\'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected printable text without quotes or backslashes".to_owned())
    }
}

/// A comma-separated list of HTTP tokens (methods or header names), returned joined by `, `.
pub(crate) fn tokens(text: &str) -> Result<String, Invalid> {
    let items: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    match items.iter().find(|item| !item.chars().all(token_char)) {
        Some(item) => Err(format!("{item:?} is not a valid name")),
        None => Ok(items.join(", ")),
    }
}

/// `*`, or a comma-separated list of origins such as `https://app.example.com` or
/// `https://*.example.com`. `None` means any origin.
pub(crate) fn origins(text: &str) -> Result<Option<Vec<OriginPattern>>, Invalid> {
    let items: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    if items.is_empty() || items.contains(&"*") {
        return Ok(None);
    }
    items
        .into_iter()
        .map(|item| {
            let (scheme, host) = item
                .split_once("://")
                .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
                .ok_or_else(|| format!("{item:?} is not an origin such as https://example.com"))?;
            let (any_subdomain, host) = match host.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, host),
            };
            let host = host_header(host).map_err(|_| format!("{item:?} has no valid host"))?;
            Ok(OriginPattern {
                scheme: format!("{scheme}://"),
                any_subdomain,
                host,
            })
        })
        .collect::<Result<Vec<_>, Invalid>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_nginx() {
        assert_eq!(body_limit("8k"), Ok(BodyLimit::Bytes(8192)));
        assert_eq!(body_limit("1M"), Ok(BodyLimit::Bytes(1 << 20)));
        assert_eq!(body_limit("0"), Ok(BodyLimit::Unlimited));
        assert_eq!(body_limit("100"), Ok(BodyLimit::Bytes(100)));
        assert!(body_limit("1mb").is_err());
        assert!(body_limit("").is_err());
        assert!(body_limit("m").is_err());
        assert!(body_limit("99999999999999999g").is_err());
    }

    #[test]
    fn seconds_are_whole_and_positive() {
        assert_eq!(seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(seconds("30s"), Ok(Duration::from_secs(30)));
        assert!(seconds("0").is_err());
        assert!(seconds("1.5").is_err());
        assert!(seconds("-1").is_err());
    }

    #[test]
    fn ranges_parse_addresses_and_cidrs() {
        let ranges = ip_ranges("10.0.0.0/8, 192.168.1.1 ,::1").expect("valid");
        assert_eq!(ranges.len(), 3);
        assert_eq!(ranges[1].prefix_len, 32);
        assert_eq!(ranges[2].prefix_len, 128);
        assert!(ip_ranges("10.0.0.0/33").is_err());
        assert!(ip_ranges("example.com").is_err());
    }

    #[test]
    fn redirect_urls_allow_only_known_values() {
        let url = redirect_url("https://example.com$request_uri").expect("valid");
        assert_eq!(url.to_string(), "https://example.com$request_uri");
        assert!(redirect_url("https://example.com/$remote_addr").is_err());
        assert!(redirect_url("/relative").is_err());
        assert!(redirect_url("https://a.com/x\"; return 200").is_err());
        assert!(redirect_url("https://a.com/x\nb").is_err());
    }

    #[test]
    fn origins_parse_lists_and_wildcards() {
        assert_eq!(origins("*"), Ok(None));
        let list = origins("https://a.example.com, https://*.b.example.com")
            .expect("valid")
            .expect("a list");
        assert!(list[1].any_subdomain);
        assert!(origins("a.example.com").is_err());
    }

    #[test]
    fn tokens_refuse_separators() {
        assert_eq!(tokens("GET,POST , PUT"), Ok("GET, POST, PUT".to_owned()));
        assert!(tokens("X-A; rm").is_err());
    }
}
