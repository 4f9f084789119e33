//! Cluster mode: snapshots from the Kubernetes API, and the leader's write-back (Ingress status
//! and Events).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use vestibule_cluster::{
    Client, Election, EventPublisher, LeaseSettings, PublishAddress, StatusWriter,
};
use vestibule_proxy::Health;
use vestibule_resources::{ObjectKey, Snapshot};
use vestibule_translator::Translation;

use crate::control::Publisher;

/// How long the watches must be quiet before a change is applied.
const DEBOUNCE: Duration = Duration::from_millis(50);
/// How often the leader re-checks status even without changes (a publish Service's address
/// may change, or someone may edit status by hand).
const RESYNC: Duration = Duration::from_secs(30);
/// The controller name Events are reported under.
const CONTROLLER: &str = "vestibule";

/// How cluster mode is configured.
pub struct ClusterSettings {
    /// The namespace to watch, or all.
    pub namespace: Option<String>,
    /// Where Ingress status addresses come from; `None` leaves status alone.
    pub publish: Option<PublishAddress>,
    /// The leader election.
    pub lease: LeaseSettings,
}

/// What the leader writes back for one published snapshot.
struct WriteBack {
    snapshot: Snapshot,
    ours: BTreeSet<(String, String)>,
    warnings: Vec<(ObjectKey, String, String)>,
}

impl WriteBack {
    /// What the leader needs from a published snapshot and its translation.
    fn of(snapshot: Snapshot, translation: Translation) -> Self {
        let ours = translation
            .ingresses
            .iter()
            .map(|ingress| (ingress.namespace.to_string(), ingress.name.to_string()))
            .collect();
        let warnings = translation
            .warnings
            .iter()
            .map(|w| {
                (
                    w.object.clone(),
                    w.reason.as_str().to_owned(),
                    w.message.clone(),
                )
            })
            .collect();
        Self {
            snapshot,
            ours,
            warnings,
        }
    }
}

/// Publishes every snapshot from the API until `stop` fires, then releases the lease.
pub async fn run(
    client: Client,
    settings: ClusterSettings,
    mut publisher: Publisher,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut snapshots = vestibule_cluster::watch(client.clone(), settings.namespace, DEBOUNCE)
        .await
        .context("cannot watch the Kubernetes API")?;
    let identity = settings.lease.identity.clone();
    let election = Election::start(client.clone(), settings.lease);
    let (latest, write_back_state) = watch::channel(None);
    let writer = tokio::spawn(write_back(
        client,
        settings.publish,
        identity,
        election.leading(),
        write_back_state,
    ));
    let outcome = loop {
        tokio::select! {
            snapshot = snapshots.recv() => {
                let Some(snapshot) = snapshot else {
                    break Err(anyhow::anyhow!("the Kubernetes watches stopped"));
                };
                let published = publisher
                    .publish_in_background(snapshot, Vec::new(), WriteBack::of)
                    .await;
                let (returned, write_back) = match published {
                    Ok(published) => published,
                    Err(error) => break Err(error),
                };
                publisher = returned;
                health.set_ready(true);
                latest.send_replace(Some(Arc::new(write_back)));
            }
            _ = stop.changed() => break Ok(()),
        }
    };
    writer.abort();
    election.release().await;
    outcome
}

/// While this replica leads: keeps Ingress status current and publishes warnings as Events.
async fn write_back(
    client: Client,
    publish: Option<PublishAddress>,
    identity: String,
    mut leading: watch::Receiver<bool>,
    mut latest: watch::Receiver<Option<Arc<WriteBack>>>,
) {
    let status = publish.map(|source| StatusWriter::new(client.clone(), source));
    let mut events = EventPublisher::new(client, CONTROLLER.to_owned(), Some(identity));
    let mut resync = tokio::time::interval(RESYNC);
    loop {
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { return },
            changed = latest.changed() => if changed.is_err() { return },
            _ = resync.tick() => {}
        }
        let current = latest.borrow().clone();
        let (true, Some(current)) = (*leading.borrow(), current) else {
            continue;
        };
        if let Some(status) = &status
            && let Err(error) = status.sync(&current.snapshot, &current.ours).await
        {
            tracing::warn!(%error, "could not update Ingress status");
        }
        events
            .publish(&current.snapshot, current.warnings.clone())
            .await;
    }
}
