//! External authentication: `auth-url` with `auth-method`, `auth-response-headers`,
//! `auth-signin`, `auth-signin-redirect-param`, `auth-request-redirect` and
//! `auth-always-set-cookie`.
//!
//! As in ingress-nginx, an invalid `auth-url`, `auth-method` or `auth-response-headers` refuses
//! the Ingress's routes (503) rather than serve them without the check, or with client-sent
//! headers the backend would take for the service's. An invalid `auth-signin` only loses the
//! redirect: refused requests get the service's 401 instead.
//!
//! The URLs may use `$request_uri`, `$uri`, `$host`, `$http_host`, `$scheme` and
//! `$escaped_request_uri`; any other nginx variable makes them invalid. With `$host` in the
//! address of the service, the request's host decides where it is asked: on a rule without a
//! host, that is the client's choice, as it is in ingress-nginx.

use vestibule_routing::{AuthMethod, ExternalAuth, RequestValue, Template, TemplatePart};

use super::Reader;
use super::values::{self, Invalid};

/// The query parameter carrying the original URL to the sign-in page, as in ingress-nginx.
const DEFAULT_REDIRECT_PARAM: &str = "rd";

/// Settings that only mean something together with `auth-url`.
const DEPENDENT: [&str; 6] = [
    "auth-method",
    "auth-response-headers",
    "auth-signin",
    "auth-signin-redirect-param",
    "auth-request-redirect",
    "auth-always-set-cookie",
];

/// What external authentication an Ingress gets: the setting, or why its routes must be refused.
pub(super) enum Outcome {
    /// No `auth-url`.
    None,
    /// Authentication as configured.
    Auth(ExternalAuth),
    /// Authentication was asked for and cannot be provided as asked.
    Denied(String),
}

/// Reads the external authentication settings of an Ingress.
pub(super) fn read(reader: &mut Reader<'_>) -> Outcome {
    let url = reader.parse("auth-url", auth_url);
    let method = reader.parse("auth-method", method);
    let response_headers = reader.parse("auth-response-headers", header_names);
    let param = reader.parse("auth-signin-redirect-param", query_name);
    let param = param.as_deref().unwrap_or(DEFAULT_REDIRECT_PARAM);
    let signin = reader.parse("auth-signin", |text| signin(text, param));
    let request_redirect = reader.parse("auth-request-redirect", request_redirect);
    let always_set_cookie = reader.parse("auth-always-set-cookie", values::boolean);
    if !reader.has("auth-url") {
        for name in DEPENDENT {
            reader.overridden(name, "it has no effect without auth-url");
        }
        return Outcome::None;
    }
    let Some(url) = url else {
        return Outcome::Denied("its auth-url is invalid".to_owned());
    };
    for (name, valid) in [
        ("auth-method", method.is_some()),
        ("auth-response-headers", response_headers.is_some()),
    ] {
        if !valid && reader.has(name) {
            return Outcome::Denied(format!("its {name} is invalid"));
        }
    }
    Outcome::Auth(ExternalAuth {
        url,
        method,
        response_headers: response_headers.unwrap_or_default(),
        signin,
        request_redirect,
        always_set_cookie: always_set_cookie.unwrap_or(false),
    })
}

/// An absolute `http` or `https` URL whose address is a host (a name, `[IPv6]`, `$host` or
/// `$http_host`) and an optional port.
fn auth_url(text: &str) -> Result<Template, Invalid> {
    let template = values::redirect_url(text)?;
    let rest = text
        .trim()
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority_is_valid(authority) {
        Ok(template)
    } else {
        Err("expected a host and optional port after the scheme, without credentials".to_owned())
    }
}

fn authority_is_valid(authority: &str) -> bool {
    let literal = authority.replace("$http_host", "h").replace("$host", "h");
    let (host, port) = match literal.strip_prefix('[') {
        Some(bracketed) => {
            let Some((ip, after)) = bracketed.split_once(']') else {
                return false;
            };
            if ip.parse::<std::net::Ipv6Addr>().is_err() {
                return false;
            }
            match after {
                "" => ("h", None),
                after => match after.strip_prefix(':') {
                    Some(port) => ("h", Some(port)),
                    None => return false,
                },
            }
        }
        None => match literal.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (literal.as_str(), None),
        },
    };
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && port.is_none_or(|port| port.parse::<u16>().is_ok())
}

/// One of the methods ingress-nginx accepts, in capitals; `CONNECT` is refused, since it cannot
/// ask a question about another request.
fn method(text: &str) -> Result<AuthMethod, Invalid> {
    let text = text.trim();
    AuthMethod::ALL
        .into_iter()
        .find(|method| method.as_str() == text)
        .ok_or_else(|| "expected GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or TRACE".to_owned())
}

/// A comma-separated list of header names of letters, digits, `-` and `_`, lowercased.
fn header_names(text: &str) -> Result<Vec<String>, Invalid> {
    text.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let valid = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if valid {
                Ok(name.to_ascii_lowercase())
            } else {
                Err(format!("{name:?} is not a header name"))
            }
        })
        .collect()
}

/// A query parameter name: letters, digits and `-._~`.
fn query_name(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a query parameter name of letters, digits and -._~".to_owned())
    }
}

/// The sign-in URL, with `param=$scheme://$http_host$escaped_request_uri` added to its query
/// unless the query already gives `param` a value, as ingress-nginx builds it.
fn signin(text: &str, param: &str) -> Result<Template, Invalid> {
    let mut template = values::redirect_url(text)?;
    let text = text.trim();
    if text.contains('#') {
        return Err("a sign-in URL cannot have a fragment".to_owned());
    }
    let separator = match text.split_once('?').map(|(_, query)| query) {
        None => "?",
        Some("") => "",
        Some(query) => {
            let has_param = query.split('&').any(|pair| {
                pair.split_once('=')
                    .is_some_and(|(name, value)| name == param && !value.is_empty())
            });
            if has_param {
                return Ok(template);
            }
            "&"
        }
    };
    template.0.extend([
        TemplatePart::Text(format!("{separator}{param}=")),
        TemplatePart::Value(RequestValue::Scheme),
        TemplatePart::Text("://".to_owned()),
        TemplatePart::Value(RequestValue::HttpHost),
        TemplatePart::Value(RequestValue::EscapedRequestUri),
    ]);
    Ok(template)
}

/// The `X-Auth-Request-Redirect` value: printable ASCII without spaces, quotes, backslashes or
/// `$`.
fn request_redirect(text: &str) -> Result<String, Invalid> {
    let text = text.trim();
    let valid = !text.is_empty()
        && text.len() <= 2048
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '$'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err("expected a URL of printable characters, without spaces, quotes or $".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_urls_name_a_host() {
        assert!(auth_url("http://auth.default.svc:8080/check").is_ok());
        assert!(auth_url("https://$host/oauth2/auth?rd=$escaped_request_uri").is_ok());
        assert!(auth_url("http://[::1]:9000/").is_ok());
        assert!(auth_url("http://user:pw@auth/").is_err());
        assert!(auth_url("http:///path").is_err());
        assert!(auth_url("ftp://auth/").is_err());
        assert!(auth_url("http://auth/$remote_user").is_err());
        assert!(auth_url("http://$request_uri/").is_err());
        assert!(auth_url("http://$host:8443/auth").is_ok());
        assert!(auth_url("http://a:b:c/").is_err());
        assert!(auth_url("http://auth:99999/").is_err());
        assert!(auth_url("http://[::1/").is_err());
    }

    #[test]
    fn methods_are_capitalised_names() {
        assert_eq!(method("POST"), Ok(AuthMethod::Post));
        assert!(method("post").is_err());
        assert!(method("CONNECT").is_err());
    }

    #[test]
    fn header_lists_are_lowercased() {
        assert_eq!(
            header_names("X-Auth-User, x_email,,"),
            Ok(vec!["x-auth-user".to_owned(), "x_email".to_owned()])
        );
        assert!(header_names("X-User: admin").is_err());
    }

    #[test]
    fn signin_urls_get_the_original_url() {
        let rendered = |text: &str| signin(text, "rd").expect("valid").to_string();
        assert_eq!(
            rendered("https://login.example/start"),
            "https://login.example/start?rd=$scheme://$http_host$escaped_request_uri"
        );
        assert_eq!(
            rendered("https://login.example/start?x=1"),
            "https://login.example/start?x=1&rd=$scheme://$http_host$escaped_request_uri"
        );
        assert_eq!(
            rendered("https://$host/oauth2/start?rd=$escaped_request_uri"),
            "https://$host/oauth2/start?rd=$escaped_request_uri"
        );
        assert!(signin("https://login.example/#top", "rd").is_err());
    }
}
