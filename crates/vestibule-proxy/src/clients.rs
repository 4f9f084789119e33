//! The upstream clients: one for the listener's settings, and one per distinct backend
//! protocol and pair of connect and send timeouts that routes' policies ask for, each with its
//! own connection pool (protocol and timeouts are properties of the pooled connections).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use vestibule_routing::{BackendProtocol, Limits};

use crate::backend_tls::BackendTls;
use crate::metrics::ProxyMetrics;
use crate::upstream_client::UpstreamClient;

/// A backend protocol, a connect timeout and a send timeout.
pub(crate) type ClientKey = (BackendProtocol, Duration, Duration);

/// Upstream clients by protocol and connection timeouts.
pub(crate) struct UpstreamClients {
    defaults: ClientKey,
    default: UpstreamClient,
    tls: BackendTls,
    metrics: Arc<ProxyMetrics>,
    by_key: Mutex<HashMap<ClientKey, UpstreamClient>>,
}

impl UpstreamClients {
    /// Clients whose default speaks HTTP/1.1 in clear, connects within `connect_timeout` and
    /// lets writes stall for at most `send_timeout`; every client's connections are counted in
    /// `metrics`.
    pub fn new(
        connect_timeout: Duration,
        send_timeout: Duration,
        metrics: Arc<ProxyMetrics>,
    ) -> Result<Self, rustls::Error> {
        let tls = BackendTls::new()?;
        let defaults = (BackendProtocol::Http, connect_timeout, send_timeout);
        Ok(Self {
            defaults,
            default: UpstreamClient::new(defaults, &tls, metrics.clone()),
            tls,
            metrics,
            by_key: Mutex::default(),
        })
    }

    /// The client for a route speaking `protocol` with these limits: the shared default one
    /// unless the route uses another protocol or sets its own connect or send timeout.
    pub fn get(&self, protocol: BackendProtocol, limits: &Limits) -> UpstreamClient {
        let key = (
            protocol,
            limits.connect_timeout.unwrap_or(self.defaults.1),
            limits.send_timeout.unwrap_or(self.defaults.2),
        );
        if key == self.defaults {
            return self.default.clone();
        }
        self.by_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_insert_with(|| UpstreamClient::new(key, &self.tls, self.metrics.clone()))
            .clone()
    }
}
