//! Leader election on a `coordination.k8s.io/v1` Lease, so that one replica writes status.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// Which Lease to hold, as whom, and how long a lease lasts.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    /// The Lease's namespace (the controller's own).
    pub namespace: String,
    /// The Lease's name (`--election-id`).
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the lease is renewed, or an expired one tried.
    pub retry_period: Duration,
}

/// A running election: tells whether this replica leads, and gives the lease up on release.
pub struct Election {
    leading: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl Election {
    /// Starts taking part in the election.
    pub fn start(client: Client, settings: LeaseSettings) -> Self {
        let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
        let (sender, leading) = watch::channel(false);
        let task = tokio::spawn(campaign(api.clone(), settings.clone(), sender));
        Self {
            leading,
            task,
            api,
            settings,
        }
    }

    /// Whether this replica leads now; changes can be awaited on the receiver.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops campaigning and, if this replica holds the lease, releases it so another replica
    /// takes over without waiting for it to expire.
    pub async fn release(self) {
        self.task.abort();
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("released the leader lease"),
            Err(error) => tracing::warn!(%error, "could not release the leader lease"),
        }
    }
}

/// The lease as last observed, and when this replica observed it change.
struct Observed {
    holder: Option<String>,
    renewed: Option<Timestamp>,
    at: Instant,
}

async fn campaign(api: Api<Lease>, settings: LeaseSettings, leading: watch::Sender<bool>) {
    let mut observed: Option<Observed> = None;
    loop {
        let leads = match try_lead(&api, &settings, &mut observed).await {
            Ok(leads) => leads,
            Err(error) => {
                tracing::warn!(%error, lease = %settings.name, "leader election request failed");
                false
            }
        };
        leading.send_if_modified(|current| {
            let changed = *current != leads;
            if changed {
                tracing::info!(leading = leads, identity = %settings.identity, "leadership changed");
            }
            *current = leads;
            changed
        });
        tokio::time::sleep(settings.retry_period).await;
    }
}

/// One round: create, renew or take over the lease. Returns whether this replica leads.
async fn try_lead(
    api: &Api<Lease>,
    settings: &LeaseSettings,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let seconds = i32::try_from(settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(settings.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(settings.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return create_or_lose(api.create(&PostParams::default(), &lease).await);
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec
        .holder_identity
        .clone()
        .filter(|holder| !holder.is_empty());
    let renewed = spec.renew_time.as_ref().map(|time| time.0);
    let duration = spec
        .lease_duration_seconds
        .and_then(|seconds| u64::try_from(seconds).ok())
        .map_or(settings.lease_duration, Duration::from_secs);
    let changed = observed
        .as_ref()
        .is_none_or(|seen| seen.holder != holder || seen.renewed != renewed);
    if changed {
        *observed = Some(Observed {
            holder: holder.clone(),
            renewed,
            at: Instant::now(),
        });
    }
    let ours = holder.as_deref() == Some(settings.identity.as_str());
    let expired = holder.is_none()
        || observed
            .as_ref()
            .is_some_and(|seen| seen.at.elapsed() >= duration);
    if !ours && !expired {
        return Ok(false);
    }
    if !ours {
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        spec.holder_identity = Some(settings.identity.clone());
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(seconds);
    create_or_lose(
        api.replace(&settings.name, &PostParams::default(), &lease)
            .await,
    )
}

/// A write that lost a race (conflict or already exists) means another replica leads.
fn create_or_lose(result: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}
