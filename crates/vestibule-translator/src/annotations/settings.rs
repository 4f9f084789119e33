//! The settings Vestibule honours, each read with its ingress-nginx default.

use std::sync::{Arc, LazyLock};

use vestibule_routing::{Cors, Limits, Redirect, RoutePolicy, SourceFilter};

use vestibule_resources::Snapshot;

use super::{IngressSettings, Reader};
use super::{auth, external_auth, rewrite, values};

/// Reads every honoured setting from an Ingress's annotations.
pub(super) fn read(
    reader: &mut Reader<'_>,
    snapshot: &Snapshot,
    namespace: &str,
) -> IngressSettings {
    let auth = auth::read(reader, snapshot, namespace);
    let reads_secrets = !matches!(auth, auth::Outcome::None);
    let (basic_auth, denied) = match auth {
        auth::Outcome::None => (None, None),
        auth::Outcome::Basic(basic) => (Some(basic), None),
        auth::Outcome::Denied(why) => (None, Some(why)),
    };
    let (external_auth, denied) = match external_auth::read(reader) {
        external_auth::Outcome::None => (None, denied),
        external_auth::Outcome::Auth(auth) => (Some(auth), denied),
        external_auth::Outcome::Denied(why) => (None, denied.or(Some(why))),
    };
    let policy = RoutePolicy {
        basic_auth,
        external_auth,
        denied,
        redirect: redirect(reader),
        app_root: reader.parse("app-root", values::path),
        source: source_filter(reader),
        cors: cors(reader),
        limits: limits(reader),
        upstream_host: reader.parse("upstream-vhost", values::host_header),
        forwarded_prefix: reader.parse("x-forwarded-prefix", values::path),
        rewrite: reader.parse("rewrite-target", rewrite::target),
        protocol: super::protocol::backend_protocol(reader),
        balancing: super::balancing::read(reader),
        rate_limit: super::rate_limit::read(reader),
    };
    IngressSettings {
        policy: shared(policy),
        ssl_redirect: reader.parse("ssl-redirect", values::boolean),
        force_ssl_redirect: reader
            .parse("force-ssl-redirect", values::boolean)
            .unwrap_or(false),
        aliases: reader
            .parse("server-alias", values::hosts)
            .unwrap_or_default(),
        use_regex: reader.parse("use-regex", values::boolean).unwrap_or(false),
        canary: None,
        ssl_passthrough: reader
            .parse("ssl-passthrough", values::boolean)
            .unwrap_or(false),
        reads_secrets,
    }
}

/// `policy` behind an `Arc`. The default policy, which every Ingress without annotations has, is
/// one value shared by all of them: 10,000 Ingresses held 7 MB of identical copies.
fn shared(policy: RoutePolicy) -> Arc<RoutePolicy> {
    static DEFAULT: LazyLock<Arc<RoutePolicy>> = LazyLock::new(Arc::default);
    if policy == RoutePolicy::default() {
        Arc::clone(&DEFAULT)
    } else {
        Arc::new(policy)
    }
}

/// `temporal-redirect` (302 unless `temporal-redirect-code` says otherwise) takes precedence
/// over `permanent-redirect` (301 unless `permanent-redirect-code`), as in ingress-nginx.
fn redirect(reader: &mut Reader<'_>) -> Option<Redirect> {
    let code = |text: &str| values::number(text, 300..=308).map(|code| code as u16);
    let temporal = reader.parse("temporal-redirect", values::redirect_url);
    let temporal_code = reader.parse("temporal-redirect-code", code);
    let permanent = reader.parse("permanent-redirect", values::redirect_url);
    let permanent_code = reader.parse("permanent-redirect-code", code);
    match (temporal, permanent) {
        (Some(location), _) => Some(Redirect {
            status: temporal_code.unwrap_or(302),
            location,
        }),
        (None, Some(location)) => Some(Redirect {
            status: permanent_code.unwrap_or(301),
            location,
        }),
        (None, None) => None,
    }
}

/// `allowlist-source-range` (or its older name `whitelist-source-range`) and
/// `denylist-source-range`.
fn source_filter(reader: &mut Reader<'_>) -> Option<SourceFilter> {
    let allowlist = reader.parse("allowlist-source-range", values::ip_ranges);
    let whitelist = reader.parse("whitelist-source-range", values::ip_ranges);
    let filter = SourceFilter {
        allow: allowlist.or(whitelist).unwrap_or_default(),
        deny: reader
            .parse("denylist-source-range", values::ip_ranges)
            .unwrap_or_default(),
    };
    (!filter.allow.is_empty() || !filter.deny.is_empty()).then_some(filter)
}

/// `enable-cors` and the `cors-*` settings, with ingress-nginx's defaults.
fn cors(reader: &mut Reader<'_>) -> Option<Cors> {
    let enabled = reader
        .parse("enable-cors", values::boolean)
        .unwrap_or(false);
    let defaults = Cors::default();
    let cors = Cors {
        allow_origins: reader
            .parse("cors-allow-origin", values::origins)
            .unwrap_or(defaults.allow_origins),
        allow_methods: reader
            .parse("cors-allow-methods", values::tokens)
            .unwrap_or(defaults.allow_methods),
        allow_headers: reader
            .parse("cors-allow-headers", values::tokens)
            .unwrap_or(defaults.allow_headers),
        expose_headers: reader
            .parse("cors-expose-headers", values::tokens)
            .unwrap_or(defaults.expose_headers),
        allow_credentials: reader
            .parse("cors-allow-credentials", values::boolean)
            .unwrap_or(defaults.allow_credentials),
        max_age: reader
            .parse("cors-max-age", |text| {
                values::number(text, 0..=u64::from(u32::MAX))
            })
            .unwrap_or(defaults.max_age),
    };
    enabled.then_some(cors)
}

/// Body size, timeouts and tries.
fn limits(reader: &mut Reader<'_>) -> Limits {
    Limits {
        max_body: reader.parse("proxy-body-size", values::body_limit),
        connect_timeout: reader.parse("proxy-connect-timeout", values::seconds),
        read_timeout: reader.parse("proxy-read-timeout", values::seconds),
        send_timeout: reader.parse("proxy-send-timeout", values::seconds),
        upstream_tries: reader
            .parse("proxy-next-upstream-tries", |text| {
                values::number(text, 0..=100)
            })
            .map(|tries| tries as u32),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_the_default_policy_is_shared() {
        let default = || shared(RoutePolicy::default());
        assert!(Arc::ptr_eq(&default(), &default()));
        let with_timeout = || {
            shared(RoutePolicy {
                limits: Limits {
                    read_timeout: Some(Duration::from_secs(5)),
                    ..Limits::default()
                },
                ..RoutePolicy::default()
            })
        };
        assert!(!Arc::ptr_eq(&with_timeout(), &with_timeout()));
        assert_eq!(with_timeout(), with_timeout());
    }
}
