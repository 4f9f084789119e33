//! `load-balance`, `upstream-hash-by` and cookie session affinity (`affinity`,
//! `affinity-mode`, `session-cookie-*`).

use vestibule_routing::{
    AffinityMode, Algorithm, Balancing, HashKey, KeyPart, RequestValue, SameSite, SessionCookie,
};

use super::Reader;
use super::values::{self, Invalid};

/// The longest `Max-Age` or `Expires` accepted: ten years, in seconds.
const LONGEST_COOKIE: u64 = 10 * 365 * 24 * 3600;

/// Reads the balancing settings. The `session-cookie-*` settings are validated even without
/// `affinity: cookie`, and take effect only with it.
pub(super) fn read(reader: &mut Reader<'_>) -> Balancing {
    let affinity = reader.parse("affinity", affinity).unwrap_or(false);
    let defaults = SessionCookie::default();
    let lifetime = |text: &str| values::number(text, 1..=LONGEST_COOKIE);
    let cookie = SessionCookie {
        name: reader
            .parse("session-cookie-name", cookie_name)
            .unwrap_or(defaults.name),
        path: reader.parse("session-cookie-path", cookie_path),
        max_age: reader.parse("session-cookie-max-age", lifetime),
        expires: reader.parse("session-cookie-expires", lifetime),
        same_site: reader.parse("session-cookie-samesite", same_site),
        secure: reader
            .parse("session-cookie-secure", values::boolean)
            .unwrap_or(defaults.secure),
        mode: reader
            .parse("affinity-mode", affinity_mode)
            .unwrap_or(defaults.mode),
        change_on_failure: reader
            .parse("session-cookie-change-on-failure", values::boolean)
            .unwrap_or(defaults.change_on_failure),
    };
    let hash_by = reader.parse("upstream-hash-by", hash_key);
    let balancing = Balancing {
        algorithm: reader.parse("load-balance", algorithm).unwrap_or_default(),
        hash_by: hash_by.filter(|_| !affinity),
        affinity: affinity.then_some(cookie),
    };
    if affinity {
        reader.overridden(
            "upstream-hash-by",
            "cookie affinity takes precedence, as in ingress-nginx",
        );
    } else {
        for name in COOKIE_SETTINGS {
            reader.overridden(name, "it applies only with affinity: cookie");
        }
    }
    balancing
}

/// The settings that shape the session cookie.
const COOKIE_SETTINGS: [&str; 8] = [
    "affinity-mode",
    "session-cookie-name",
    "session-cookie-path",
    "session-cookie-max-age",
    "session-cookie-expires",
    "session-cookie-samesite",
    "session-cookie-secure",
    "session-cookie-change-on-failure",
];

/// `cookie`, the one affinity ingress-nginx provides.
fn affinity(text: &str) -> Result<bool, Invalid> {
    match text.trim() {
        "cookie" => Ok(true),
        _ => Err("expected cookie".to_owned()),
    }
}

fn affinity_mode(text: &str) -> Result<AffinityMode, Invalid> {
    match text.trim() {
        "balanced" => Ok(AffinityMode::Balanced),
        "persistent" => Ok(AffinityMode::Persistent),
        _ => Err("expected balanced or persistent".to_owned()),
    }
}

fn algorithm(text: &str) -> Result<Algorithm, Invalid> {
    match text.trim() {
        "round_robin" => Ok(Algorithm::RoundRobin),
        "ewma" => Ok(Algorithm::Ewma),
        _ => Err("expected round_robin or ewma".to_owned()),
    }
}

fn same_site(text: &str) -> Result<SameSite, Invalid> {
    match text.trim().to_ascii_lowercase().as_str() {
        "none" => Ok(SameSite::None),
        "lax" => Ok(SameSite::Lax),
        "strict" => Ok(SameSite::Strict),
        _ => Err("expected None, Lax or Strict".to_owned()),
    }
}

/// A cookie name: an HTTP token (RFC 6265).
fn cookie_name(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !text.is_empty() && text.len() <= 128 && text.chars().all(token) {
        Ok(text.to_owned())
    } else {
        Err("expected a cookie name of letters, digits and -_.".to_owned())
    }
}

/// A cookie `Path`: `/` and then printable ASCII without `;`, `,`, quotes or backslashes.
fn cookie_path(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let valid = text.starts_with('/')
        && text.len() <= 1024
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '"' | '\'' | '\\'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a path beginning with '/', without spaces, ';', ',' or quotes".to_owned())
    }
}

/// nginx variables (`$name` or `${name}`) and text between them, such as `$host$request_uri`
/// or `$http_x_user`. Variables other than the request values Vestibule knows are refused.
pub(crate) fn hash_key(text: &str) -> Result<HashKey, Invalid> {
    let text = text.trim();
    if let Some(c) = text
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        return Err(format!("the key contains {c:?}"));
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        if at > 0 {
            parts.push(KeyPart::Text(rest[..at].to_owned()));
        }
        let after = &rest[at + 1..];
        let (name, next) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').ok_or("a ${ without its }")?;
                (&braced[..end], &braced[end + 1..])
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        parts.push(variable(name)?);
        rest = next;
    }
    if !rest.is_empty() {
        parts.push(KeyPart::Text(rest.to_owned()));
    }
    if parts.iter().all(|part| matches!(part, KeyPart::Text(_))) {
        return Err("expected at least one $variable".to_owned());
    }
    Ok(HashKey(parts))
}

/// The request value an nginx variable name (without `$`) stands for.
fn variable(name: &str) -> Result<KeyPart, Invalid> {
    let named = |prefix: &str| {
        name.strip_prefix(prefix).filter(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
    };
    if let Some(value) = RequestValue::named(name) {
        return Ok(KeyPart::Value(value));
    }
    match name {
        "document_uri" => return Ok(KeyPart::Value(RequestValue::Uri)),
        "remote_addr" => return Ok(KeyPart::RemoteAddr),
        "args" | "query_string" => return Ok(KeyPart::Args),
        _ => {}
    }
    if let Some(header) = named("http_") {
        return Ok(KeyPart::Header(
            header.to_ascii_lowercase().replace('_', "-"),
        ));
    }
    if let Some(cookie) = named("cookie_") {
        return Ok(KeyPart::Cookie(cookie.to_owned()));
    }
    if let Some(arg) = named("arg_") {
        return Ok(KeyPart::Arg(arg.to_owned()));
    }
    Err(format!(
        "${name} is not supported; use $request_uri, $uri, $host, $scheme, $remote_addr, $args, $http_NAME, $cookie_NAME or $arg_NAME"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys_are_typed_variables_and_text() {
        let key = hash_key("$host$request_uri").expect("valid");
        assert_eq!(
            key.0,
            [
                KeyPart::Value(RequestValue::Host),
                KeyPart::Value(RequestValue::RequestUri)
            ]
        );
        let key = hash_key("${http_x_user}-$cookie_session:$arg_id").expect("valid");
        assert_eq!(
            key.0,
            [
                KeyPart::Header("x-user".into()),
                KeyPart::Text("-".into()),
                KeyPart::Cookie("session".into()),
                KeyPart::Text(":".into()),
                KeyPart::Arg("id".into()),
            ]
        );
        assert_eq!(key.to_string(), "$http_x_user-$cookie_session:$arg_id");
        assert_eq!(
            hash_key("$remote_addr").expect("valid").0,
            [KeyPart::RemoteAddr]
        );
    }

    #[test]
    fn hash_keys_refuse_unknown_variables_and_constants() {
        assert!(hash_key("$upstream_addr").is_err());
        assert!(hash_key("$http_").is_err());
        assert!(hash_key("constant").is_err());
        assert!(hash_key("${host").is_err());
        assert!(hash_key("$host\"; x").is_err());
        assert!(hash_key("").is_err());
    }

    #[test]
    fn settings_without_effect_are_reported_as_ignored() {
        let verdicts = |pairs: &[(&str, &str)]| {
            let ingress = vestibule_resources::IngressSummary {
                annotations: pairs
                    .iter()
                    .map(|(key, value)| (format!("vestibule.dev/{key}"), (*value).to_owned()))
                    .collect(),
                ..Default::default()
            };
            crate::review_annotations(&ingress)
                .into_iter()
                .map(|verdict| verdict.verdict.label())
                .collect::<Vec<_>>()
        };
        let sticky = [("affinity", "cookie"), ("upstream-hash-by", "$uri")];
        assert_eq!(verdicts(&sticky), ["honoured", "ignored"]);
        let lonely = [
            ("session-cookie-name", "route"),
            ("upstream-hash-by", "$uri"),
        ];
        assert_eq!(verdicts(&lonely), ["ignored", "honoured"]);
    }

    #[test]
    fn cookie_names_and_paths_are_validated() {
        assert_eq!(cookie_name("route"), Ok("route".to_owned()));
        assert!(cookie_name("a b").is_err());
        assert!(cookie_name("a;b").is_err());
        assert_eq!(cookie_path("/app"), Ok("/app".to_owned()));
        assert!(cookie_path("/app; Domain=evil").is_err());
        assert!(cookie_path("app").is_err());
    }
}
