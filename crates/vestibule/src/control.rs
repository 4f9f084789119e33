//! The one point where the control plane meets the data plane: each snapshot is translated
//! and the result applied to the live configuration.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;

use vestibule_proxy::DataPlane;

use crate::control_metrics::ControlMetrics;
use vestibule_resources::Snapshot;
use vestibule_translator::{Options, Translation, Translator};

/// Translates snapshots, publishes them, and logs problems once each while they last.
pub struct Publisher {
    plane: Arc<DataPlane>,
    translator: Translator,
    reported: HashSet<String>,
    metrics: Arc<ControlMetrics>,
}

impl Publisher {
    /// A publisher into `plane`, recording each publication in `metrics`.
    pub fn new(plane: Arc<DataPlane>, options: Options, metrics: Arc<ControlMetrics>) -> Self {
        Self {
            plane,
            translator: Translator::new(options),
            reported: HashSet::new(),
            metrics,
        }
    }

    /// [`Publisher::publish`] on a blocking thread, so the runtime keeps serving requests while a
    /// large configuration is translated and the one it replaces is dropped. `keep` takes what
    /// the caller needs from the snapshot and the translation on that thread too, and the rest is
    /// dropped there. Gives back the publisher and what `keep` returned.
    pub async fn publish_in_background<R: Send + 'static>(
        mut self,
        snapshot: Snapshot,
        problems: Vec<String>,
        keep: impl FnOnce(Snapshot, Translation) -> R + Send + 'static,
    ) -> anyhow::Result<(Self, R)> {
        tokio::task::spawn_blocking(move || {
            let translation = self.publish(&snapshot, &problems);
            let kept = keep(snapshot, translation);
            (self, kept)
        })
        .await
        .context("publishing a configuration did not finish")
    }

    /// Makes a snapshot live; the source's `problems`, and translation warnings, are logged
    /// when they first appear. Returns the translation for the caller's write-back.
    pub fn publish(&mut self, snapshot: &Snapshot, problems: &[String]) -> Translation {
        let started = Instant::now();
        let translation = self.translator.translate(snapshot);
        let translated = started.elapsed();
        let applied =
            self.plane
                .apply(&translation.routes, &translation.backends, &translation.tls);
        let passthrough_changed = self.plane.apply_passthrough(&translation.passthrough);
        self.metrics
            .published(problems.len(), &translation.warnings, &translation.tls);
        let mut current = HashSet::new();
        for message in problems {
            if !self.reported.contains(message) {
                tracing::warn!("{message}");
            }
            current.insert(message.clone());
        }
        let expired = expired_certificates(&translation.tls);
        for warning in translation
            .warnings
            .iter()
            .map(ToString::to_string)
            .chain(expired)
        {
            let message = warning;
            if !self.reported.contains(&message) {
                tracing::warn!("{message}");
            }
            current.insert(message);
        }
        self.reported = current;
        tracing::info!(
            ingresses = translation.ingresses.len(),
            backends = translation.backends.len(),
            routes_changed = applied.routes_changed,
            endpoint_sets_changed = applied.endpoint_sets_changed,
            tls_changed = applied.tls_changed,
            passthrough_changed,
            translation_us = translated.as_micros() as u64,
            "configuration applied"
        );
        translation
    }
}

/// A warning for each certificate past its expiry; such certificates are still served.
pub fn expired_certificates(tls: &vestibule_tls::TlsTable) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    tls.certificates()
        .into_iter()
        .filter_map(|certificate| {
            let not_after = certificate.not_after()?;
            let expired_at = u64::try_from(not_after).unwrap_or_default();
            (expired_at < now).then(|| {
                let when = httpdate::fmt_http_date(
                    UNIX_EPOCH + std::time::Duration::from_secs(expired_at),
                );
                format!(
                    "the certificate in {} expired on {when}; it is still served",
                    certificate.source()
                )
            })
        })
        .collect()
}
