//! What can go wrong talking to the Kubernetes API.

/// An error from the cluster side.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot configure a Kubernetes client (set KUBECONFIG or run in a cluster): {0}")]
    Config(#[source] kube::Error),
    /// An API request failed.
    #[error("Kubernetes API request failed: {0}")]
    Api(#[from] kube::Error),
    /// The API server offers no EndpointSlice version Vestibule reads.
    #[error("the API server serves neither discovery.k8s.io/v1 nor v1beta1 EndpointSlices")]
    NoEndpointSlices,
    /// `--publish-service` names a Service that does not exist.
    #[error("the publish Service {namespace}/{name} does not exist")]
    PublishServiceNotFound {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
}
