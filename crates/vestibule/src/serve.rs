//! `vestibule serve`: listeners, the manifest source and the publishing loop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use vestibule_manifests::ManifestDir;
use vestibule_proxy::{DataPlane, Health, Proxy, ProxySettings, serve_admin};
use vestibule_tls::Certificate;
use vestibule_translator::{Options, SecretName};

use crate::cli::ServeArgs;
use crate::control::Publisher;

/// The name in the self-signed certificate served when no other certificate applies.
const FALLBACK_CERTIFICATE_NAME: &str = "vestibule.invalid";

/// How long the manifest directory must be quiet before a change is applied.
const RELOAD_DEBOUNCE: Duration = Duration::from_millis(50);

/// Runs the controller until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut dir = ManifestDir::open(&args.manifests)
        .with_context(|| format!("cannot serve manifests from {}", args.manifests.display()))?;
    let http = bind(args.http_addr, "http").await?;
    let https = bind(args.https_addr, "https").await?;
    let admin = bind(args.admin_addr, "admin").await?;

    let plane = Arc::new(DataPlane::default());
    let health = Arc::new(Health::default());
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
    };
    let proxy = Arc::new(
        Proxy::new(plane.clone(), settings, Arc::new(fallback)).context("cannot configure TLS")?,
    );
    tokio::spawn(serve_admin(admin, health.clone()));
    let plain = proxy.clone();
    tokio::spawn(async move { plain.serve_http(http).await });
    tokio::spawn(async move { proxy.serve_https(https).await });

    let options = Options {
        ingress_class: args.ingress_class,
        watch_ingress_without_class: args.watch_ingress_without_class,
        ssl_redirect: args.default_ssl_redirect,
        default_certificate: args
            .default_ssl_certificate
            .map(|(namespace, name)| SecretName { namespace, name }),
    };
    let mut publisher = Publisher::new(plane, options);
    let first = dir
        .scan()
        .with_context(|| format!("cannot read {}", args.manifests.display()))?;
    publisher.publish(&first);
    health.set_ready(true);

    let mut scans = vestibule_manifests::watch(dir, RELOAD_DEBOUNCE)
        .context("cannot watch the manifest directory")?;
    let publishing = async move {
        while let Some(scan) = scans.recv().await {
            publisher.publish(&scan);
        }
    };
    tokio::select! {
        () = publishing => tracing::error!("the manifest watcher stopped"),
        () = shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
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
