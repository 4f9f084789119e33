//! The one point where the control plane meets the data plane: each snapshot is translated
//! and the result applied to the live configuration.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use vestibule_manifests::Scan;
use vestibule_proxy::DataPlane;
use vestibule_translator::{Options, translate};

/// Translates snapshots, publishes them, and logs problems once each while they last.
pub struct Publisher {
    plane: Arc<DataPlane>,
    options: Options,
    reported: HashSet<String>,
}

impl Publisher {
    /// A publisher into `plane`.
    pub fn new(plane: Arc<DataPlane>, options: Options) -> Self {
        Self {
            plane,
            options,
            reported: HashSet::new(),
        }
    }

    /// Makes a scan's snapshot live; problems and warnings are logged when they first appear.
    pub fn publish(&mut self, scan: &Scan) {
        let started = Instant::now();
        let translation = translate(&scan.snapshot, &self.options);
        let translated = started.elapsed();
        let applied = self.plane.apply(&translation.routes, &translation.backends);
        let mut current = HashSet::new();
        for problem in &scan.problems {
            let message = problem.to_string();
            if !self.reported.contains(&message) {
                tracing::warn!("{message}");
            }
            current.insert(message);
        }
        for warning in &translation.warnings {
            let message = warning.to_string();
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
            translation_us = translated.as_micros() as u64,
            "configuration applied"
        );
    }
}
