//! Upgraded connections (WebSocket and the like), relayed between a client and an endpoint
//! after the endpoint agreed to the upgrade.

use std::sync::Arc;

use http::uri::Authority;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

use crate::plane::DataPlane;
use crate::rate_limit::Permit;
use crate::tunnels::OpenTunnel;
use crate::upstream::Upstream;

/// An upgraded connection (WebSocket and the like) between a client and an endpoint. It
/// survives configuration changes, and ends when its route or its endpoint is removed.
pub(super) struct Tunnel {
    /// The data plane, whose changes may remove the route or the endpoint.
    pub plane: Arc<DataPlane>,
    /// The upstream the request that opened the tunnel went to.
    pub upstream: Arc<Upstream>,
    /// The host and path that request was routed by.
    pub route_key: (String, String),
    /// The endpoint at the other end.
    pub endpoint: Authority,
    /// Keeps the connection counted by its route's `limit-connections` while it lasts.
    pub _permit: Option<Permit>,
    /// Keeps the connection counted for the drain while it lasts.
    pub _open: OpenTunnel,
}

impl Tunnel {
    /// Relays between the client and the endpoint, in a task of its own, once both sides'
    /// connections are upgraded.
    pub(super) fn spawn(self, client: OnUpgrade, server: OnUpgrade) {
        tokio::spawn(async move {
            match tokio::try_join!(client, server) {
                Ok((client, server)) => self.run(client, server).await,
                Err(error) => {
                    tracing::debug!(backend = %self.upstream.id(), %error, "upgrade failed")
                }
            }
        });
    }

    async fn run(&self, client: Upgraded, server: Upgraded) {
        let mut client = TokioIo::new(client);
        let mut server = TokioIo::new(server);
        let mut changes = self.plane.changes();
        let removed = async {
            while changes.changed().await.is_ok() {
                if !self.still_routed() {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        let backend = self.upstream.id();
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                if let Err(error) = copied {
                    tracing::debug!(%backend, %error, "upgraded connection ended");
                }
            }
            () = removed => {
                tracing::info!(%backend, endpoint = %self.endpoint, "closing an upgraded connection: its route or endpoint was removed");
            }
        }
    }

    /// Whether the request that opened the tunnel could still reach the same upstream (the
    /// route's own or its canary's), and its endpoint is still part of it.
    fn still_routed(&self) -> bool {
        let table = self.plane.table();
        let same_route = table
            .route(&self.route_key.0, &self.route_key.1)
            .is_some_and(|selected| selected.target().leads_to(&self.upstream));
        same_route && self.upstream.serves(&self.endpoint)
    }
}
