//! Metrics of the control plane: reloads, translation warnings, certificate expiry.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use vestibule_tls::TlsTable;
use vestibule_translator::Warning;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretLabels {
    secret: String,
}

/// What each published configuration looked like.
#[derive(Debug)]
pub struct ControlMetrics {
    reloads: Family<ResultLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    warnings: Family<ReasonLabels, Gauge>,
    certificate_expiry: Family<SecretLabels, Gauge>,
}

impl ControlMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reloads: Family::default(),
            last_success: Gauge::default(),
            warnings: Family::default(),
            certificate_expiry: Family::default(),
        };
        registry.register(
            "config_reloads",
            "Configurations published; failure means part of the input was invalid and its last good version kept",
            metrics.reloads.clone(),
        );
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "When a configuration was last published without problems",
            metrics.last_success.clone(),
        );
        registry.register(
            "translation_warnings",
            "Translation warnings in the live configuration, by reason",
            metrics.warnings.clone(),
        );
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When each served certificate expires, by Secret",
            metrics.certificate_expiry.clone(),
        );
        metrics
    }

    /// Records one published configuration.
    pub fn published(&self, problems: usize, warnings: &[Warning], tls: &TlsTable) {
        let result = if problems == 0 { "success" } else { "failure" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
        if problems == 0 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |elapsed| elapsed.as_secs_f64());
            self.last_success.set(now);
        }
        self.warnings.clear();
        for warning in warnings {
            self.warnings
                .get_or_create(&ReasonLabels {
                    reason: warning.reason.as_str(),
                })
                .inc();
        }
        self.certificate_expiry.clear();
        for certificate in tls.certificates() {
            let (Some(secret), Some(not_after)) = (
                certificate.source().strip_prefix("Secret "),
                certificate.not_after(),
            ) else {
                continue;
            };
            self.certificate_expiry
                .get_or_create(&SecretLabels {
                    secret: secret.to_owned(),
                })
                .set(not_after);
        }
    }
}
