//! Command-line flags; every flag can also be set from a `VESTIBULE_*` environment variable.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use tracing::level_filters::LevelFilter;

/// Vestibule, a Kubernetes Ingress controller with its own HTTP data plane.
#[derive(Debug, Parser)]
#[command(name = "vestibule", version, about, args_override_self = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log level: off, error, warn, info, debug or trace.
    #[arg(
        long,
        global = true,
        env = "VESTIBULE_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: LevelFilter,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Route traffic according to Ingress resources.
    Serve(Box<ServeArgs>),
    /// Run a demo backend that answers with a JSON description of each request.
    Echo(EchoArgs),
    /// Print the routing table a manifest directory translates to, as JSON (the same view as
    /// /debug/routes); exits 1 when there are warnings, 2 when the directory cannot be read.
    Routes(RoutesArgs),
    /// Report, for every Ingress in the given manifests (any class), which ingress-nginx
    /// annotations Vestibule honours, ignores as harmless, refuses or does not provide: the
    /// check to run before switching controllers. Exits 1 when any annotation is refused,
    /// invalid, unsupported or unknown, 2 when the input cannot be read.
    Check(CheckArgs),
}

/// Arguments of `vestibule check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Manifest files or directories (YAML or JSON, including `kubectl get ingress -A -o yaml`
    /// output), or `-` for standard input.
    #[arg(required = true, value_name = "FILE|DIR|-")]
    pub inputs: Vec<PathBuf>,
}

/// Flags that decide which Ingresses are served and how they translate; shared by `serve` and
/// `routes` so that both see the same configuration.
#[derive(Debug, Args)]
pub struct TranslationArgs {
    /// The IngressClass name this controller serves.
    #[arg(long, env = "VESTIBULE_INGRESS_CLASS", default_value = "vestibule")]
    pub ingress_class: String,
    /// The `spec.controller` of IngressClasses this controller serves; give each installation
    /// its own when several run in one cluster.
    #[arg(long, env = "VESTIBULE_CONTROLLER_CLASS", default_value = vestibule_translator::CONTROLLER_NAME)]
    pub controller_class: String,
    /// Also serve Ingresses that name no class.
    #[arg(long, env = "VESTIBULE_WATCH_INGRESS_WITHOUT_CLASS")]
    pub watch_ingress_without_class: bool,
    /// Secret (NAMESPACE/NAME) with the certificate for unknown TLS server names [default: a
    /// self-signed certificate generated at start-up].
    #[arg(long, env = "VESTIBULE_DEFAULT_SSL_CERTIFICATE", value_parser = parse_namespaced_name)]
    pub default_ssl_certificate: Option<(String, String)>,
    /// Redirect plain-HTTP requests for TLS hosts to HTTPS with a 308.
    #[arg(long, env = "VESTIBULE_DEFAULT_SSL_REDIRECT", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub default_ssl_redirect: bool,
    /// Relay TLS connections for hosts of Ingresses annotated `ssl-passthrough: "true"` to
    /// their backend without terminating them (the HTTPS listener then reads every ClientHello
    /// first); without it the annotation is ignored with a warning.
    #[arg(long, env = "VESTIBULE_ENABLE_SSL_PASSTHROUGH")]
    pub enable_ssl_passthrough: bool,
}

/// Flags of `vestibule routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// Directory of Kubernetes manifests (YAML or JSON) to read once.
    #[arg(long, env = "VESTIBULE_MANIFESTS")]
    pub manifests: PathBuf,
    /// Which Ingresses are served and how.
    #[command(flatten)]
    pub translation: TranslationArgs,
}

/// Flags of `vestibule serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of Kubernetes manifests (YAML or JSON) to serve, watched for changes. Without
    /// it, Vestibule watches the Kubernetes API (in-cluster config, or KUBECONFIG).
    #[arg(long, env = "VESTIBULE_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    /// Watch only this namespace (cluster mode) [default: all namespaces].
    #[arg(long, env = "VESTIBULE_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Service (NAMESPACE/NAME) whose addresses are written to Ingress status (cluster mode).
    #[arg(long, env = "VESTIBULE_PUBLISH_SERVICE", value_parser = parse_namespaced_name)]
    pub publish_service: Option<(String, String)>,
    /// Comma-separated IPs or hostnames written to Ingress status instead of a Service's.
    #[arg(
        long,
        env = "VESTIBULE_PUBLISH_STATUS_ADDRESS",
        value_delimiter = ',',
        conflicts_with = "publish_service"
    )]
    pub publish_status_address: Vec<String>,
    /// Name of the Lease replicas elect the status writer with (cluster mode).
    #[arg(
        long,
        env = "VESTIBULE_ELECTION_ID",
        default_value = "vestibule-leader"
    )]
    pub election_id: String,
    /// Namespace of the election Lease [default: the pod's own namespace, from its
    /// ServiceAccount mount; else "default"].
    #[arg(long, env = "VESTIBULE_ELECTION_NAMESPACE")]
    pub election_namespace: Option<String>,
    /// How long a leader's lease lasts without renewal.
    #[arg(long, env = "VESTIBULE_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub election_lease_duration: Duration,
    /// This replica's name in the election and in Events [default: $HOSTNAME].
    #[arg(long, env = "VESTIBULE_POD_NAME")]
    pub pod_name: Option<String>,
    /// After SIGTERM, how long listeners keep accepting (while /readyz says 503) so load
    /// balancers stop sending traffic first.
    #[arg(long, env = "VESTIBULE_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// After the listeners stop, how long open requests get to finish.
    #[arg(long, env = "VESTIBULE_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Address of the plain HTTP listener.
    #[arg(long, env = "VESTIBULE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Address of the HTTPS listener.
    #[arg(long, env = "VESTIBULE_HTTPS_ADDR", default_value = "0.0.0.0:8443")]
    pub https_addr: SocketAddr,
    /// Address of the admin listener (/healthz, /readyz, /debug/routes); keep it off the traffic
    /// ports.
    #[arg(long, env = "VESTIBULE_ADMIN_ADDR", default_value = "127.0.0.1:10254")]
    pub admin_addr: SocketAddr,
    /// Which Ingresses are served and how.
    #[command(flatten)]
    pub translation: TranslationArgs,
    /// Worker threads for the data plane [default: the number of cores].
    #[arg(long, env = "VESTIBULE_WORKERS")]
    pub workers: Option<NonZeroUsize>,
    /// The port HTTPS redirects point at: the one clients reach (the LoadBalancer's), not
    /// necessarily --https-addr's.
    #[arg(long, env = "VESTIBULE_HTTPS_REDIRECT_PORT", default_value_t = 443)]
    pub https_redirect_port: u16,
    /// Send Strict-Transport-Security on HTTPS responses for TLS hosts.
    #[arg(long, env = "VESTIBULE_HSTS", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub hsts: bool,
    /// HSTS max-age, in seconds.
    #[arg(long, env = "VESTIBULE_HSTS_MAX_AGE", default_value_t = 31_536_000)]
    pub hsts_max_age: u64,
    /// Add includeSubDomains to HSTS.
    #[arg(long, env = "VESTIBULE_HSTS_INCLUDE_SUBDOMAINS", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub hsts_include_subdomains: bool,
    /// Add preload to HSTS.
    #[arg(long, env = "VESTIBULE_HSTS_PRELOAD")]
    pub hsts_preload: bool,
    /// How long a client may take to send request headers; also how long an idle keep-alive
    /// connection is kept.
    #[arg(long, env = "VESTIBULE_CLIENT_HEADER_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub client_header_timeout: Duration,
    /// The largest request head (request line and headers) accepted, e.g. 32k; at least 8k.
    /// Larger requests get 431.
    #[arg(long, env = "VESTIBULE_MAX_REQUEST_HEADER_SIZE", default_value = "32k", value_parser = parse_header_size)]
    pub max_request_header_size: usize,
    /// The largest request body accepted, e.g. 1m or 512k; 0 for no limit. Larger bodies get 413.
    #[arg(long, env = "VESTIBULE_PROXY_BODY_SIZE", default_value = "1m", value_parser = parse_size)]
    pub proxy_body_size: u64,
    /// How long connecting to a backend endpoint may take (504 past it).
    #[arg(long, env = "VESTIBULE_PROXY_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub proxy_connect_timeout: Duration,
    /// How long a backend endpoint may take to start answering (504 past it).
    #[arg(long, env = "VESTIBULE_PROXY_READ_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub proxy_read_timeout: Duration,
    /// How long a write of the request to a backend endpoint may make no progress, i.e. the
    /// time allowed between two successive writes (504 past it).
    #[arg(long, env = "VESTIBULE_PROXY_SEND_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub proxy_send_timeout: Duration,
    /// The most connections each traffic listener holds open at once.
    #[arg(long, env = "VESTIBULE_MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,
    /// The access log on stdout: json (one object per request), combined (nginx's format) or
    /// off.
    #[arg(long, env = "VESTIBULE_ACCESS_LOG", default_value = "json", value_parser = ["json", "combined", "off"])]
    pub access_log: String,
    /// Record the data plane's Prometheus metrics (requests, latencies, bytes, connections);
    /// --metrics=false turns recording off, e.g. to measure its cost.
    #[arg(long, env = "VESTIBULE_METRICS", default_value_t = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics: bool,
    /// OpenTelemetry collector to export one span per proxied request to, over OTLP/HTTP with
    /// JSON (plain http only), e.g. http://otel-collector:4318; spans are posted to /v1/traces
    /// under it [default: no export].
    #[arg(long, env = "VESTIBULE_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The most concurrent streams on one HTTP/2 connection.
    #[arg(
        long,
        env = "VESTIBULE_HTTP2_MAX_CONCURRENT_STREAMS",
        default_value_t = 128
    )]
    pub http2_max_concurrent_streams: u32,
    /// How long a client may take to finish its TLS handshake (e.g. 10s, 500ms).
    #[arg(long, env = "VESTIBULE_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,
}

impl ServeArgs {
    /// The Strict-Transport-Security header value these flags describe, if HSTS is on.
    pub fn hsts_header(&self) -> Option<String> {
        self.hsts.then(|| {
            let mut value = format!("max-age={}", self.hsts_max_age);
            if self.hsts_include_subdomains {
                value.push_str("; includeSubDomains");
            }
            if self.hsts_preload {
                value.push_str("; preload");
            }
            value
        })
    }
}

fn parse_namespaced_name(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => Err(format!("{text:?} is not NAMESPACE/NAME")),
    }
}

/// Parses a size in bytes: `512`, `8k`, `1m` or `1g` (powers of 1024, as nginx reads them).
fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || format!("{text:?} is not a size such as 512, 8k, 1m or 1g");
    let lower = text.to_ascii_lowercase();
    let (number, factor) = match lower.as_bytes().last() {
        Some(b'k') => (&lower[..lower.len() - 1], 1 << 10),
        Some(b'm') => (&lower[..lower.len() - 1], 1 << 20),
        Some(b'g') => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower.as_str(), 1),
    };
    let number: u64 = number.parse().map_err(|_| invalid())?;
    number.checked_mul(factor).ok_or_else(invalid)
}

/// A request-head limit: a size of at least 8 KiB (the smallest buffer the HTTP/1 parser takes).
fn parse_header_size(text: &str) -> Result<usize, String> {
    let size = parse_size(text)?;
    match usize::try_from(size) {
        Ok(size) if size >= 8192 => Ok(size),
        _ => Err(format!("{text:?} must be at least 8k")),
    }
}

/// Parses `250ms`, `10s`, `2m` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration such as 500ms, 10s or 2m");
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let number: u64 = number.parse().map_err(|_| invalid())?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(invalid()),
    }
}

/// Flags of `vestibule echo`.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, env = "VESTIBULE_ECHO_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Name reported in every answer, to tell backends apart.
    #[arg(long, env = "VESTIBULE_ECHO_NAME", default_value = "echo")]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_match_the_documentation() {
        let cli = Cli::try_parse_from(["vestibule", "serve", "--manifests", "m"]).expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(args.admin_addr.to_string(), "127.0.0.1:10254");
        assert_eq!(args.translation.ingress_class, "vestibule");
        assert!(!args.translation.watch_ingress_without_class);
        assert_eq!(args.workers, None);
        assert_eq!(args.https_addr.to_string(), "0.0.0.0:8443");
        assert!(args.translation.default_ssl_redirect);
        assert!(!args.translation.enable_ssl_passthrough);
        assert_eq!(args.https_redirect_port, 443);
        assert_eq!(args.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(args.shutdown_grace, Duration::from_secs(5));
        assert_eq!(args.election_id, "vestibule-leader");
        assert_eq!(args.proxy_body_size, 1 << 20);
        assert_eq!(args.proxy_read_timeout, Duration::from_secs(60));
        assert_eq!(args.proxy_send_timeout, Duration::from_secs(60));
        assert_eq!(
            args.translation.controller_class,
            "vestibule.dev/ingress-controller"
        );
        assert!(args.publish_status_address.is_empty());
        assert!(args.metrics);
        assert_eq!(args.otlp_endpoint, None);
        assert_eq!(
            args.hsts_header().as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
    }

    #[test]
    fn booleans_can_be_turned_off() {
        let cli = Cli::try_parse_from([
            "vestibule",
            "serve",
            "--manifests",
            "m",
            "--default-ssl-redirect=false",
            "--hsts=false",
            "--metrics=false",
            "--default-ssl-certificate",
            "ingress/default-tls",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(!args.translation.default_ssl_redirect);
        assert_eq!(args.hsts_header(), None);
        assert!(!args.metrics);
        assert_eq!(
            args.translation.default_ssl_certificate,
            Some(("ingress".to_owned(), "default-tls".to_owned()))
        );
    }

    #[test]
    fn cluster_mode_flags() {
        let cli = Cli::try_parse_from([
            "vestibule",
            "serve",
            "--publish-status-address",
            "203.0.113.7,lb.example.com",
            "--watch-namespace",
            "shop",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.manifests, None);
        assert_eq!(
            args.publish_status_address,
            ["203.0.113.7", "lb.example.com"]
        );
        assert_eq!(args.watch_namespace.as_deref(), Some("shop"));
        let both = Cli::try_parse_from([
            "vestibule",
            "serve",
            "--publish-status-address",
            "a",
            "--publish-service",
            "ns/svc",
        ]);
        assert!(both.is_err(), "publish flags exclude each other");
    }

    #[test]
    fn routes_takes_the_translation_flags() {
        let cli = Cli::try_parse_from([
            "vestibule",
            "routes",
            "--manifests",
            "m",
            "--ingress-class",
            "edge",
            "--watch-ingress-without-class",
            "--controller-class",
            "example.com/edge",
        ])
        .expect("parses");
        let Command::Routes(args) = cli.command else {
            panic!("not routes")
        };
        assert_eq!(args.manifests, PathBuf::from("m"));
        assert_eq!(args.translation.ingress_class, "edge");
        assert!(args.translation.watch_ingress_without_class);
        assert_eq!(args.translation.controller_class, "example.com/edge");
        assert!(args.translation.default_ssl_redirect);
        assert!(
            Cli::try_parse_from(["vestibule", "routes"]).is_err(),
            "--manifests is required"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_namespaced_name("no-slash").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("8K"), Ok(8192));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_header_size("4k").is_err());
        assert_eq!(parse_header_size("32k"), Ok(32768));
    }
}
