//! The upstream clients: one for the listener's settings, and one per distinct connection
//! setting a route's policy asks for, each with its own connection pool.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use vestibule_routing::Limits;

use crate::handler::UpstreamClient;
use crate::listener::upstream_client;

/// Upstream clients by connect timeout.
pub(crate) struct UpstreamClients {
    connect_timeout: Duration,
    default: UpstreamClient,
    by_connect_timeout: Mutex<HashMap<Duration, UpstreamClient>>,
}

impl UpstreamClients {
    /// Clients whose default connects within `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self {
            connect_timeout,
            default: upstream_client(connect_timeout),
            by_connect_timeout: Mutex::default(),
        }
    }

    /// The client for a route with these limits: the shared default one unless the route
    /// sets its own connect timeout.
    pub fn for_limits(&self, limits: &Limits) -> UpstreamClient {
        match limits.connect_timeout {
            Some(timeout) if timeout != self.connect_timeout => self
                .by_connect_timeout
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(timeout)
                .or_insert_with(|| upstream_client(timeout))
                .clone(),
            _ => self.default.clone(),
        }
    }
}
