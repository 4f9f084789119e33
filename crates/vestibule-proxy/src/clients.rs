//! The upstream clients: one for the listener's settings, and one per distinct pair of
//! connect and send timeouts that routes' policies ask for, each with its own connection pool
//! (the timeouts are properties of the pooled connections).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use vestibule_routing::Limits;

use crate::handler::UpstreamClient;
use crate::listener::upstream_client;
use crate::metrics::ProxyMetrics;

/// A connect timeout and a send timeout.
type Timeouts = (Duration, Duration);

/// Upstream clients by connection timeouts.
pub(crate) struct UpstreamClients {
    defaults: Timeouts,
    metrics: Arc<ProxyMetrics>,
    default: UpstreamClient,
    by_timeouts: Mutex<HashMap<Timeouts, UpstreamClient>>,
}

impl UpstreamClients {
    /// Clients whose default connects within `connect_timeout` and lets writes stall for at
    /// most `send_timeout`.
    pub fn new(
        connect_timeout: Duration,
        send_timeout: Duration,
        metrics: Arc<ProxyMetrics>,
    ) -> Self {
        Self {
            defaults: (connect_timeout, send_timeout),
            default: upstream_client(connect_timeout, send_timeout, metrics.clone()),
            metrics,
            by_timeouts: Mutex::default(),
        }
    }

    /// The client for a route with these limits: the shared default one unless the route
    /// sets its own connect or send timeout.
    pub fn for_limits(&self, limits: &Limits) -> UpstreamClient {
        let timeouts = (
            limits.connect_timeout.unwrap_or(self.defaults.0),
            limits.send_timeout.unwrap_or(self.defaults.1),
        );
        if timeouts == self.defaults {
            return self.default.clone();
        }
        self.by_timeouts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(timeouts)
            .or_insert_with(|| upstream_client(timeouts.0, timeouts.1, self.metrics.clone()))
            .clone()
    }
}
