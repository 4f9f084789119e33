//! The Kubernetes API side of Vestibule: the cluster configuration source and what a controller
//! writes back.
//!
//! - [`watch`] runs reflectors for every kind Vestibule reads and yields [`Snapshot`]s, the same
//!   type the manifest directory yields, and only once every reflector has listed everything.
//! - [`Election`] elects one replica through a `coordination.k8s.io/v1` Lease.
//! - [`StatusWriter`] publishes the controller's addresses in the status of the Ingresses it
//!   serves.
//! - [`EventPublisher`] turns translation warnings into Kubernetes Events.
//!
//! [`Snapshot`]: vestibule_resources::Snapshot

mod error;
mod events;
mod leader;
mod slices;
mod source;
mod status;
mod summarized;

pub use error::ClusterError;
pub use events::EventPublisher;
pub use leader::{Election, LeaseSettings};
pub use source::watch;
pub use status::{PublishAddress, StatusWriter};

pub use kube::Client;
