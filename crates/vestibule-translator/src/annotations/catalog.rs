//! The ingress-nginx annotations Vestibule knows but does not act on, and why.
//!
//! Annotations Vestibule honours are not listed here: they are the ones the settings parser
//! reads. Anything under a recognised prefix that is neither read nor listed is unknown.

/// How Vestibule treats a known annotation it does not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Known {
    /// Vestibule already behaves the way the annotation asks, or the setting has no meaning
    /// for it; accepted silently.
    Ignored(&'static str),
    /// The setting would change behaviour, and Vestibule does not provide it.
    Unsupported(&'static str),
}

const STREAMS: &str = "Vestibule streams request and response bodies without buffering";
const NOT_YET: &str = "not implemented yet";
const NO_NGINX: &str = "an nginx-specific setting with no Vestibule equivalent";

/// What Vestibule does with the known annotation `name` (without prefix), if it is known.
pub(crate) fn known(name: &str) -> Option<Known> {
    use Known::{Ignored, Unsupported};
    let known = match name {
        "proxy-buffering"
        | "proxy-request-buffering"
        | "proxy-buffer-size"
        | "proxy-buffers-number"
        | "proxy-busy-buffers-size"
        | "proxy-max-temp-file-size"
        | "client-body-buffer-size" => Ignored(STREAMS),
        "proxy-http-version" => {
            Ignored("Vestibule speaks HTTP/1.1 to HTTP backends and HTTP/2 to gRPC ones")
        }
        "enable-access-log" | "enable-rewrite-log" => {
            Ignored("access logging is configured per controller (--access-log)")
        }
        "enable-opentelemetry" | "opentelemetry-trust-incoming-span" | "enable-opentracing" => {
            Ignored("tracing is configured per controller (--otlp-endpoint)")
        }
        "ssl-prefer-server-ciphers" | "ssl-ciphers" | "server-tokens" => Ignored(NO_NGINX),
        "preserve-trailing-slash" => {
            Ignored("HTTPS redirects always keep the path exactly as requested")
        }
        "connection-proxy-header" => Ignored("hop-by-hop headers are managed by Vestibule"),
        "affinity-canary-behavior" => Unsupported(NOT_YET),
        "auth-keepalive"
        | "auth-keepalive-requests"
        | "auth-keepalive-timeout"
        | "auth-keepalive-share-vars" => {
            Ignored("connections to the authentication service are always pooled and kept alive")
        }
        "enable-global-auth" => Ignored("Vestibule has no global external authentication"),
        "auth-cache-key" | "auth-cache-duration" => Unsupported(
            "answers of the authentication service are not cached; it is asked on every request",
        ),
        "auth-proxy-set-headers" => {
            Unsupported("extra headers to the authentication service are not supported")
        }
        "auth-tls-secret"
        | "auth-tls-verify-client"
        | "auth-tls-verify-depth"
        | "auth-tls-error-page"
        | "auth-tls-pass-certificate-to-upstream"
        | "auth-tls-match-cn" => Unsupported("client certificate authentication is not supported"),
        "proxy-ssl-secret"
        | "proxy-ssl-verify"
        | "proxy-ssl-verify-depth"
        | "proxy-ssl-name"
        | "proxy-ssl-server-name"
        | "proxy-ssl-ciphers"
        | "proxy-ssl-protocols" => {
            Unsupported("backend certificate verification settings are not supported")
        }
        "custom-http-errors" | "default-backend" => {
            Unsupported("custom error pages are not supported")
        }
        "mirror-uri" | "mirror-request-body" | "mirror-target" | "mirror-host" => {
            Unsupported("request mirroring is not supported")
        }
        "from-to-www-redirect" => Unsupported("www redirects are not supported"),
        "limit-rate" | "limit-rate-after" => {
            Unsupported("response bandwidth limits are not supported")
        }
        "proxy-redirect-from"
        | "proxy-redirect-to"
        | "proxy-cookie-domain"
        | "proxy-cookie-path" => Unsupported("rewriting response headers is not supported"),
        "proxy-next-upstream" | "proxy-next-upstream-timeout" => Unsupported(
            "which failures are retried is fixed: connection failures, and resets before an answer for idempotent requests",
        ),
        "upstream-hash-by-subset" | "upstream-hash-by-subset-size" => {
            Unsupported("hashing onto subsets of endpoints is not supported")
        }
        "session-cookie-conditional-samesite-none" => {
            Unsupported("SameSite=None is sent to every browser")
        }
        "service-upstream" => Unsupported("Vestibule always sends to pod endpoints"),
        "satisfy" | "global-rate-limit" | "global-rate-limit-window" | "global-rate-limit-key" => {
            Unsupported("not supported")
        }
        _ => return None,
    };
    Some(known)
}
