//! Upgraded (WebSocket) and passthrough connections outlive the HTTP connection or the accept
//! that opened them, so a drain counts them separately and waits for them too.

use tokio::sync::watch;

/// The open tunnels of one proxy.
pub(crate) struct Tunnels(watch::Sender<()>);

/// Held by a tunnel for as long as it is open.
pub(crate) struct OpenTunnel {
    /// Only its lifetime matters: the drain waits until every one is dropped.
    _counted: watch::Receiver<()>,
}

impl Default for Tunnels {
    fn default() -> Self {
        Self(watch::Sender::new(()))
    }
}

impl Tunnels {
    /// Counts a tunnel until the returned value is dropped.
    pub fn open(&self) -> OpenTunnel {
        OpenTunnel {
            _counted: self.0.subscribe(),
        }
    }

    /// How many tunnels are open.
    pub fn count(&self) -> usize {
        self.0.receiver_count()
    }

    /// Waits until no tunnel is open (tunnels opened meanwhile are waited for too).
    pub async fn all_closed(&self) {
        self.0.closed().await;
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;

    use super::*;

    #[tokio::test]
    async fn waits_for_every_open_tunnel() {
        let tunnels = Tunnels::default();
        tunnels.all_closed().await;
        let first = tunnels.open();
        let second = tunnels.open();
        assert_eq!(tunnels.count(), 2);
        drop(first);
        let waiting = tunnels.all_closed();
        tokio::pin!(waiting);
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "one tunnel is still open"
        );
        drop(second);
        waiting.await;
        assert_eq!(tunnels.count(), 0);
    }
}
