//! SSL passthrough: TLS connections whose ClientHello names a passthrough host are relayed as
//! raw TCP to an endpoint of that host's backend, without being terminated.
//!
//! While some host is passed through, the HTTPS listener reads each connection's ClientHello
//! (within the TLS handshake timeout, and at most [`MAX_BUFFERED`] bytes) before deciding. Every
//! other connection, including those whose first bytes are not a ClientHello, gets the bytes
//! read replayed into the normal TLS termination. A relayed connection survives configuration
//! changes until its host or its endpoint is removed.

use std::net::SocketAddr;
use std::sync::Arc;

use foldhash::HashMap;
use http::uri::Authority;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use vestibule_routing::{BackendId, HostMap, HostMatch, Passthrough, PassthroughTable};
use vestibule_tls::{ClientHello, read_client_hello};

use crate::handler::Handler;
use crate::metrics::{HandshakeResult, RouteLabels};
use crate::plane::DataPlane;
use crate::replay::Replay;
use crate::upstream::Upstream;

/// The most bytes read from a client while waiting for its whole ClientHello: enough for the
/// largest one [`read_client_hello`] accepts, spread over its largest number of records.
const MAX_BUFFERED: usize =
    2 * vestibule_tls::MAX_HELLO_BYTES + 5 * vestibule_tls::MAX_HELLO_RECORDS;

/// How many endpoints a passthrough connection is tried on.
const TRIES: usize = 2;

/// A passthrough host as the data plane serves it.
#[derive(Debug)]
pub(crate) struct PassthroughTarget {
    /// Where the translator sends the host.
    pub(crate) passthrough: Passthrough,
    /// The live upstream of its backend.
    pub(crate) upstream: Arc<Upstream>,
    /// Its metric labels.
    pub(crate) labels: RouteLabels,
}

/// The passthrough hosts the HTTPS listener serves now.
#[derive(Debug, Default)]
pub(crate) struct LivePassthrough {
    table: PassthroughTable,
    hosts: HostMap<Arc<PassthroughTarget>>,
}

impl LivePassthrough {
    /// `table` with every backend bound to its live upstream from `upstreams`.
    pub(crate) fn build(
        table: &PassthroughTable,
        upstreams: &HashMap<BackendId, Arc<Upstream>>,
    ) -> Self {
        let hosts = table.map(|passthrough| {
            let backend = &passthrough.backend;
            let upstream = upstreams
                .get(backend)
                .cloned()
                .unwrap_or_else(|| Arc::new(Upstream::new(backend.clone(), &[])));
            Arc::new(PassthroughTarget {
                labels: RouteLabels {
                    namespace: passthrough.ingress.namespace.clone(),
                    ingress: passthrough.ingress.name.clone(),
                    service: backend.service.clone(),
                },
                passthrough: passthrough.clone(),
                upstream,
            })
        });
        Self {
            table: table.clone(),
            hosts,
        }
    }

    /// Whether this was built from `table` with these `upstreams`.
    pub(crate) fn is_current(
        &self,
        table: &PassthroughTable,
        upstreams: &HashMap<BackendId, Arc<Upstream>>,
    ) -> bool {
        self.table == *table
            && self.hosts.iter().into_iter().all(|(_, target)| {
                upstreams
                    .get(&target.passthrough.backend)
                    .is_some_and(|upstream| Arc::ptr_eq(upstream, &target.upstream))
            })
    }

    /// The target of connections asking for server name `host`.
    pub(crate) fn get(&self, host: &str) -> Option<&Arc<PassthroughTarget>> {
        self.hosts.get(host)
    }

    /// Every passthrough host pattern and its target, in precedence order.
    pub(crate) fn targets(&self) -> Vec<(HostMatch, &Arc<PassthroughTarget>)> {
        self.hosts.iter()
    }

    /// Whether no host is passed through.
    pub(crate) fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// Reads the ClientHello of a new HTTPS connection when some host is passed through, and relays
/// the connection if its server name is one of them. Returns the stream (its bytes read so far
/// put back) for TLS termination, or `None` when it was relayed or has ended.
pub(crate) async fn intercept(
    handler: &Handler,
    mut stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Option<Replay<TcpStream>> {
    if handler.plane.passthrough().is_empty() {
        return Some(Replay::new(stream, Vec::new()));
    }
    let metrics = &handler.observers.metrics;
    let (read, hello) = match tokio::time::timeout_at(deadline, read_hello(&mut stream)).await {
        Ok(Ok(read)) => read,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "connection ended before its ClientHello");
            metrics.handshake(HandshakeResult::Failure);
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "ClientHello timed out");
            metrics.handshake(HandshakeResult::Failure);
            return None;
        }
    };
    let target = match &hello {
        ClientHello::Complete(Some(host)) => handler
            .plane
            .passthrough()
            .get(host)
            .map(|target| (host.clone(), target.clone())),
        _ => None,
    };
    let Some((host, target)) = target else {
        return Some(Replay::new(stream, read));
    };
    Relay {
        plane: &handler.plane,
        host,
        target,
    }
    .run(handler, stream, read, peer)
    .await;
    None
}

/// Reads until the ClientHello is complete or cannot be one; returns the bytes read and the
/// verdict. Fails when the client closes first.
async fn read_hello(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, ClientHello)> {
    let mut read = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let needed = match read_client_hello(&read) {
            ClientHello::Incomplete(needed) if needed <= MAX_BUFFERED => needed,
            ClientHello::Incomplete(_) => return Ok((read, ClientHello::Invalid)),
            verdict => return Ok((read, verdict)),
        };
        while read.len() < needed {
            let count = stream.read(&mut chunk).await?;
            if count == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            read.extend_from_slice(&chunk[..count]);
        }
    }
}

/// One connection relayed to a passthrough host's backend.
struct Relay<'a> {
    plane: &'a DataPlane,
    host: String,
    target: Arc<PassthroughTarget>,
}

impl Relay<'_> {
    async fn run(
        &self,
        handler: &Handler,
        mut client: TcpStream,
        hello: Vec<u8>,
        peer: SocketAddr,
    ) {
        let _open = handler.tunnels.open();
        let metrics = &handler.observers.metrics;
        metrics.passthrough(&self.target.labels);
        let backend = self.target.upstream.id();
        let timeout = handler.settings.upstream_connect_timeout;
        let Some((mut server, endpoint)) = self.connect(timeout).await else {
            tracing::warn!(%peer, host = %self.host, %backend, "no endpoint accepted a passthrough connection");
            return;
        };
        let _open = metrics.upstream_connection(Some(backend));
        if let Err(error) = server.write_all(&hello).await {
            tracing::debug!(%backend, %endpoint, %error, "passthrough connection failed");
            return;
        }
        let mut changes = self.plane.changes();
        let removed = async {
            while changes.changed().await.is_ok() {
                if !self.still_routed(&endpoint) {
                    return;
                }
            }
            std::future::pending::<()>().await;
        };
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                if let Err(error) = copied {
                    tracing::debug!(%backend, %endpoint, %error, "passthrough connection ended");
                }
            }
            () = removed => {
                tracing::info!(host = %self.host, %backend, %endpoint, "closing a passthrough connection: its host or endpoint was removed");
            }
        }
    }

    /// A connection to an endpoint of the host's backend, trying another endpoint once when the
    /// first fails; failures count toward the endpoints' passive health.
    async fn connect(&self, timeout: std::time::Duration) -> Option<(TcpStream, Authority)> {
        let upstream = &self.target.upstream;
        let mut pick = upstream.pick()?;
        for _ in 0..TRIES {
            let authority = pick.authority().clone();
            match tokio::time::timeout(timeout, TcpStream::connect(authority.as_str())).await {
                Ok(Ok(stream)) => {
                    pick.succeeded();
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%authority, %error, "could not set TCP_NODELAY");
                    }
                    return Some((stream, authority));
                }
                Ok(Err(error)) => {
                    tracing::debug!(backend = %upstream.id(), %authority, %error, "passthrough connect failed");
                }
                Err(_) => {
                    tracing::debug!(backend = %upstream.id(), %authority, "passthrough connect timed out");
                }
            }
            pick.failed();
            pick = upstream.pick_other(&pick)?;
        }
        None
    }

    /// Whether the host still leads to the same upstream, and `endpoint` is still one of its
    /// endpoints.
    fn still_routed(&self, endpoint: &Authority) -> bool {
        let live = self.plane.passthrough();
        let same_host = live
            .get(&self.host)
            .is_some_and(|target| Arc::ptr_eq(&target.upstream, &self.target.upstream));
        same_host && self.target.upstream.serves(endpoint)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use vestibule_routing::{
        HostMatch, IngressRef, PathMatch, Route, RouteTableBuilder, ServicePortRef,
    };
    use vestibule_tls::TlsTable;

    use super::*;

    fn backend() -> BackendId {
        BackendId {
            namespace: "default".into(),
            service: "pass".into(),
            port: ServicePortRef::Number(443),
        }
    }

    fn ingress() -> IngressRef {
        IngressRef {
            namespace: "default".into(),
            name: "pass".into(),
        }
    }

    #[test]
    fn passthrough_hosts_share_the_routes_upstream_and_change_only_when_asked() {
        let plane = DataPlane::default();
        let mut builder = RouteTableBuilder::default();
        let route = Route {
            backend: backend(),
            ingress: ingress(),
            tls: false,
            https_redirect: false,
            policy: Default::default(),
            canary: None,
        };
        let host = HostMatch::parse("*.pass.example").expect("host");
        builder
            .add_rule(host.clone(), PathMatch::prefix("/"), Arc::new(route))
            .expect("no conflict");
        let endpoints = Arc::new(BTreeMap::from([(backend(), Arc::default())]));
        plane.apply(&Arc::new(builder.build()), &endpoints, &TlsTable::default());
        let mut table = PassthroughTable::default();
        table.insert(
            host,
            Passthrough {
                backend: backend(),
                ingress: ingress(),
            },
        );

        let changes = plane.changes();
        assert!(plane.apply_passthrough(&table));
        assert!(changes.has_changed().expect("plane alive"));
        assert!(!plane.apply_passthrough(&table), "nothing changed");
        let live = plane.passthrough();
        let target = live.get("A.pass.example").expect("one-label wildcard");
        let routed = plane.table();
        let routed = routed.route("a.pass.example", "/").expect("route");
        assert!(Arc::ptr_eq(&target.upstream, &routed.target().upstream));
        assert_eq!(&*target.labels.ingress, "pass");
        assert!(live.get("a.b.pass.example").is_none());
        assert!(live.get("pass.example").is_none());

        assert!(plane.apply_passthrough(&PassthroughTable::default()));
        assert!(plane.passthrough().is_empty());
    }
}
