//! The manifest-directory configuration source.
//!
//! A [`ManifestDir`] reads every `*.yaml`, `*.yml` and `*.json` file under a directory
//! (recursively, following symlinks, skipping names that start with `.`), decodes them with
//! [`vestibule_resources::decode_manifest`] and gathers the objects into one
//! [`vestibule_resources::Snapshot`]. A file that breaks keeps its last good content in force and
//! is reported as a [`Problem`]; the rest of the directory still applies. [`watch`] rescans after
//! each burst of filesystem changes: just the files it touched when they are all known manifest
//! files (or files no scan reads), the whole tree otherwise, with the same result either way.
//!
//! Files are processed in sorted path order and objects in document order, so the same directory
//! always yields the same snapshot, and of two objects with the same key the first is kept.
//!
//! This crate only reads files: it does no routing and no HTTP.

mod dir;
mod problem;
mod watch;

use std::io;
use std::path::PathBuf;

pub use dir::{ManifestDir, Scan};
pub use problem::Problem;
pub use watch::watch;

/// Why a manifest directory cannot be used at all (as opposed to a [`Problem`] with one file).
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The directory does not exist.
    #[error("manifest directory {} does not exist", path.display())]
    Missing {
        /// The directory.
        path: PathBuf,
    },
    /// The path exists but is not a directory.
    #[error("manifest directory {} is not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The directory exists but cannot be read.
    #[error("cannot read manifest directory {}: {source}", path.display())]
    Unreadable {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The filesystem watcher could not be set up.
    #[error("cannot watch manifest directory {}: {source}", path.display())]
    Watch {
        /// The directory.
        path: PathBuf,
        /// What the watcher said.
        #[source]
        source: notify::Error,
    },
    /// [`watch`] was called outside a Tokio runtime.
    #[error("watching manifest directory {} needs a Tokio runtime", path.display())]
    NoRuntime {
        /// The directory.
        path: PathBuf,
    },
}
