//! `vestibule serve`: listeners, a configuration source, and graceful termination.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use vestibule_cluster::{Client, ClusterError, LeaseSettings, PublishAddress};
use vestibule_manifests::ManifestDir;
use vestibule_proxy::{
    AccessLog, AccessLogFormat, DataPlane, EndpointCollector, Health, Observers, OtlpExporter,
    Proxy, ProxyMetrics, ProxySettings, serve_admin,
};
use vestibule_tls::Certificate;
use vestibule_translator::{Options, SecretName};

use crate::cli::{ServeArgs, TranslationArgs};
use crate::cluster::{self, ClusterSettings};
use crate::control::Publisher;
use crate::control_metrics::ControlMetrics;

/// The name in the self-signed certificate served when no other certificate applies.
const FALLBACK_CERTIFICATE_NAME: &str = "vestibule.invalid";

/// Where a pod finds its own namespace.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// How long the manifest directory must be quiet before a change is applied: long enough for
/// a tool writing several files at once, and a fixed part of every change-to-routed time.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(20);

/// How long exporting the last spans may take at shutdown.
const OTLP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the configuration comes from.
enum Source {
    Files(ManifestDir),
    Cluster(Client, ClusterSettings),
}

/// Runs the controller until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let source = open_source(&args).await?;
    let http = bind(args.http_addr, "http").await?;
    let https = bind(args.https_addr, "https").await?;
    let admin = bind(args.admin_addr, "admin").await?;

    let plane = Arc::new(DataPlane::default());
    let health = Arc::new(Health::default());
    let mut registry = Registry::with_prefix("vestibule");
    let metrics = if args.metrics {
        ProxyMetrics::register(&mut registry)
    } else {
        ProxyMetrics::disabled()
    };
    let otlp = args
        .otlp_endpoint
        .as_deref()
        .map(|endpoint| OtlpExporter::start(endpoint, &mut registry))
        .transpose()
        .context("cannot export spans")?
        .map(Arc::new);
    let observers = Observers {
        metrics: Arc::new(metrics),
        access_log: Arc::new(AccessLog::start(access_log_format(&args.access_log))),
        otlp: otlp.clone(),
    };
    let control_metrics = Arc::new(ControlMetrics::register(&mut registry));
    registry.register_collector(Box::new(EndpointCollector::new(plane.clone())));
    let proxy = Arc::new(build_proxy(&args, plane.clone(), observers)?);
    let admin_task = tokio::spawn(serve_admin(
        admin,
        health.clone(),
        plane.clone(),
        Arc::new(registry),
    ));
    let listeners = {
        let (plain, secure) = (proxy.clone(), proxy.clone());
        [
            tokio::spawn(async move { plain.serve_http(http).await }),
            tokio::spawn(async move { secure.serve_https(https).await }),
        ]
    };

    let publisher = Publisher::new(
        plane,
        translator_options(&args.translation),
        control_metrics,
    );
    let (stop, stopped) = watch::channel(false);
    let mut configuring = match source {
        Source::Files(dir) => tokio::spawn(serve_files(dir, publisher, health.clone(), stopped)),
        Source::Cluster(client, settings) => tokio::spawn(cluster::run(
            client,
            settings,
            publisher,
            health.clone(),
            stopped,
        )),
    };
    let outcome = tokio::select! {
        finished = &mut configuring => Some(finished.context("the configuration task failed")?),
        () = shutdown_signal() => None,
    };
    if let Some(Err(error)) = outcome {
        return Err(error);
    }

    tracing::info!(grace = ?args.shutdown_grace, "shutting down: /readyz answers 503 from now on");
    health.set_ready(false);
    stop.send_replace(true);
    let _ = configuring.await;
    tokio::time::sleep(args.shutdown_grace).await;
    for listener in listeners {
        listener.abort();
    }
    tracing::info!(timeout = ?args.shutdown_timeout, "listeners closed; draining open connections");
    if proxy.drain(args.shutdown_timeout).await {
        tracing::info!("all connections closed");
    } else {
        tracing::warn!("connections still open at the shutdown timeout were cut");
    }
    if let Some(otlp) = otlp
        && !otlp.flush(OTLP_FLUSH_TIMEOUT).await
    {
        tracing::warn!(timeout = ?OTLP_FLUSH_TIMEOUT, "spans not yet exported at shutdown were dropped");
    }
    admin_task.abort();
    Ok(())
}

async fn open_source(args: &ServeArgs) -> anyhow::Result<Source> {
    if let Some(manifests) = &args.manifests {
        let dir = ManifestDir::open(manifests)
            .with_context(|| format!("cannot serve manifests from {}", manifests.display()))?;
        return Ok(Source::Files(dir));
    }
    let client = Client::try_default().await.map_err(ClusterError::Config)?;
    let publish = match (
        &args.publish_service,
        args.publish_status_address.as_slice(),
    ) {
        (Some((namespace, name)), _) => Some(PublishAddress::Service {
            namespace: namespace.clone(),
            name: name.clone(),
        }),
        (None, []) => None,
        (None, addresses) => Some(PublishAddress::Fixed(addresses.to_vec())),
    };
    if publish.is_none() {
        tracing::warn!(
            "neither --publish-service nor --publish-status-address is set: Ingress status is left alone"
        );
    }
    let identity = args
        .pod_name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("vestibule-{:08x}", fastrand::u32(..)));
    let namespace = args
        .election_namespace
        .clone()
        .or_else(|| {
            std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                .ok()
                .map(|namespace| namespace.trim().to_owned())
        })
        .unwrap_or_else(|| "default".to_owned());
    let lease = LeaseSettings {
        namespace,
        name: args.election_id.clone(),
        identity,
        lease_duration: args.election_lease_duration,
        retry_period: args.election_lease_duration / 5,
    };
    Ok(Source::Cluster(
        client,
        ClusterSettings {
            namespace: args.watch_namespace.clone(),
            publish,
            lease,
        },
    ))
}

fn access_log_format(name: &str) -> AccessLogFormat {
    match name {
        "combined" => AccessLogFormat::Combined,
        "off" => AccessLogFormat::Off,
        _ => AccessLogFormat::Json,
    }
}

fn build_proxy(
    args: &ServeArgs,
    plane: Arc<DataPlane>,
    observers: Observers,
) -> anyhow::Result<Proxy> {
    let fallback = Certificate::self_signed(&[FALLBACK_CERTIFICATE_NAME])
        .context("cannot generate the self-signed default certificate")?;
    let hsts = args
        .hsts_header()
        .map(|value| value.parse())
        .transpose()
        .context("invalid HSTS settings")?;
    let settings = ProxySettings {
        https_redirect_port: args.https_redirect_port,
        hsts,
        tls_handshake_timeout: args.tls_handshake_timeout,
        client_header_timeout: args.client_header_timeout,
        max_request_header_bytes: args.max_request_header_size,
        max_body_bytes: (args.proxy_body_size > 0).then_some(args.proxy_body_size),
        upstream_connect_timeout: args.proxy_connect_timeout,
        upstream_read_timeout: args.proxy_read_timeout,
        upstream_send_timeout: args.proxy_send_timeout,
        max_connections: args.max_connections,
        http2_max_concurrent_streams: args.http2_max_concurrent_streams,
    };
    Proxy::new(plane, settings, Arc::new(fallback), observers).context("cannot configure TLS")
}

/// The translator options the flags describe; `serve` and `routes` share them.
pub fn translator_options(args: &TranslationArgs) -> Options {
    Options {
        ingress_class: args.ingress_class.clone(),
        controller_class: args.controller_class.clone(),
        watch_ingress_without_class: args.watch_ingress_without_class,
        ssl_redirect: args.default_ssl_redirect,
        ssl_passthrough: args.enable_ssl_passthrough,
        default_certificate: args
            .default_ssl_certificate
            .clone()
            .map(|(namespace, name)| SecretName { namespace, name }),
    }
}

/// File mode: publishes the directory, then every change, until `stop` fires.
async fn serve_files(
    mut dir: ManifestDir,
    mut publisher: Publisher,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let root = dir.root().display().to_string();
    let first = dir.scan().with_context(|| format!("cannot read {root}"))?;
    let first_problems = problems(&first);
    (publisher, ()) = publisher
        .publish_in_background(first.snapshot, first_problems, |_, _| ())
        .await?;
    health.set_ready(true);
    let mut scans = vestibule_manifests::watch(dir, RELOAD_DEBOUNCE)
        .context("cannot watch the manifest directory")?;
    loop {
        tokio::select! {
            scan = scans.recv() => match scan {
                Some(scan) => {
                    let scan_problems = problems(&scan);
                    (publisher, ()) = publisher
                        .publish_in_background(scan.snapshot, scan_problems, |_, _| ())
                        .await?;
                }
                None => anyhow::bail!("the manifest watcher for {root} stopped"),
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

fn problems(scan: &vestibule_manifests::Scan) -> Vec<String> {
    scan.problems.iter().map(ToString::to_string).collect()
}

async fn bind(addr: std::net::SocketAddr, kind: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({kind})"))?;
    let bound = listener.local_addr().context("listener has no address")?;
    tracing::info!(kind, addr = %bound, "listening");
    Ok(listener)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
