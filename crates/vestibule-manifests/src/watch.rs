//! Rescanning a manifest directory when it changes.

use std::path::PathBuf;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use crate::{ManifestDir, ManifestError, Scan};

/// How often a directory whose root cannot be read is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// The longest a burst of changes may delay a scan, in multiples of the debounce.
const MAX_DELAY_FACTOR: u32 = 10;

/// Watches a directory and sends a new scan after each burst of changes.
///
/// A burst ends when no filesystem event arrived for `debounce` (or, should events never stop,
/// after ten times `debounce`). The directory is also scanned once as soon as the watch is in
/// place, and that scan is sent only if it differs from the directory's previous scan (or if
/// `dir` was never scanned), so changes made before the watch started are not lost.
///
/// Must be called within a Tokio runtime. Watching ends when the receiver is dropped. If the root
/// becomes unreadable the error is logged, nothing is sent, and the root is tried again every few
/// seconds until it is back.
pub fn watch(dir: ManifestDir, debounce: Duration) -> Result<mpsc::Receiver<Scan>, ManifestError> {
    let root = dir.root().to_owned();
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| ManifestError::NoRuntime { path: root.clone() })?;
    // One pending event is enough: any event leads to a full rescan.
    let (events_tx, events) = mpsc::channel(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        match event {
            Ok(event) if !matters(&event.kind) => return,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "manifest directory watcher reported an error"),
        }
        // Full means a rescan is already pending; closed means the watch is ending.
        let _ = events_tx.try_send(());
    })
    .map_err(|source| ManifestError::Watch {
        path: root.clone(),
        source,
    })?;
    let mut watching = Watching {
        watcher,
        root,
        events,
    };
    watching.watch().map_err(|source| ManifestError::Watch {
        path: watching.root.clone(),
        source,
    })?;
    let (scans, receiver) = mpsc::channel(1);
    runtime.spawn(run(watching, dir, debounce, scans));
    Ok(receiver)
}

/// Whether an event can mean that the directory's content changed. Opening and reading files
/// (which scanning itself does) cannot; closing a file written to can.
fn matters(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The watcher and what it reports.
struct Watching {
    /// Kept alive as long as the watch runs.
    watcher: RecommendedWatcher,
    root: PathBuf,
    events: mpsc::Receiver<()>,
}

impl Watching {
    /// Watches the root afresh (it may be a new directory at the same path).
    fn watch(&mut self) -> notify::Result<()> {
        let _ = self.watcher.unwatch(&self.root);
        self.watcher.watch(&self.root, RecursiveMode::Recursive)
    }
}

/// Why waiting for the next scan ended.
enum Wake {
    /// Scan now.
    Scan,
    /// The receiver of scans was dropped, or the watcher stopped: end.
    Stop,
}

async fn run(
    mut watching: Watching,
    mut dir: ManifestDir,
    debounce: Duration,
    scans: mpsc::Sender<Scan>,
) {
    let mut first = true;
    let mut root_failed = false;
    loop {
        if !first {
            let wake = if root_failed {
                retry_or_change(&mut watching, &scans).await
            } else {
                next_burst(&mut watching.events, &scans, debounce).await
            };
            if let Wake::Stop = wake {
                return;
            }
        }

        let scanning = tokio::task::spawn_blocking(move || {
            let result = dir.scan_and_compare();
            (dir, result)
        });
        let result = match scanning.await {
            Ok((returned, result)) => {
                dir = returned;
                result
            }
            Err(error) => {
                tracing::error!(%error, "manifest directory scan did not finish; watching stops");
                return;
            }
        };
        match result {
            Ok((scan, changed)) => {
                if root_failed {
                    tracing::info!(root = %dir.root().display(), "manifest directory readable again");
                }
                root_failed = false;
                if (changed || !first) && scans.send(scan).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                if !root_failed {
                    tracing::error!(%error, "manifest directory unreadable; keeping the last configuration");
                }
                root_failed = true;
            }
        }
        first = false;
    }
}

/// Waits for a burst of events to end.
async fn next_burst(
    events: &mut mpsc::Receiver<()>,
    scans: &mpsc::Sender<Scan>,
    debounce: Duration,
) -> Wake {
    tokio::select! {
        _ = scans.closed() => return Wake::Stop,
        event = events.recv() => if event.is_none() {
            tracing::error!("manifest directory watcher stopped");
            return Wake::Stop;
        },
    }
    let deadline = Instant::now().checked_add(debounce.saturating_mul(MAX_DELAY_FACTOR));
    loop {
        let latest = async {
            match deadline {
                Some(deadline) => sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = scans.closed() => return Wake::Stop,
            event = events.recv() => if event.is_none() {
                tracing::error!("manifest directory watcher stopped");
                return Wake::Stop;
            },
            _ = sleep(debounce) => return Wake::Scan,
            _ = latest => return Wake::Scan,
        }
    }
}

/// While the root is unreadable: waits for an event or for the next retry, and watches the root
/// afresh in case it was replaced.
async fn retry_or_change(watching: &mut Watching, scans: &mpsc::Sender<Scan>) -> Wake {
    tokio::select! {
        _ = scans.closed() => return Wake::Stop,
        event = watching.events.recv() => if event.is_none() {
            tracing::error!("manifest directory watcher stopped");
            return Wake::Stop;
        },
        _ = sleep(RETRY) => {}
    }
    if let Err(error) = watching.watch() {
        tracing::debug!(%error, "manifest directory still cannot be watched");
    }
    Wake::Scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    const SERVICE: &str =
        "apiVersion: v1\nkind: Service\nmetadata: {name: NAME}\nspec: {ports: [{port: 80}]}\n";

    fn has_service(scan: &Scan, name: &str) -> bool {
        scan.snapshot
            .services
            .iter()
            .any(|service| service.metadata.name.as_deref() == Some(name))
    }

    async fn wait_for(
        scans: &mut mpsc::Receiver<Scan>,
        what: impl Fn(&Scan) -> bool,
    ) -> Option<Scan> {
        let waiting = async {
            while let Some(scan) = scans.recv().await {
                if what(&scan) {
                    return Some(scan);
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_file_leads_to_a_scan_with_it() {
        let temp = TempDir::new().expect("temp dir");
        fs::write(temp.path().join("a.yaml"), SERVICE.replace("NAME", "a")).expect("write");
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert!(has_service(&dir.scan().expect("scan"), "a"));
        let mut scans = watch(dir, Duration::from_millis(100)).expect("watch");

        fs::create_dir(temp.path().join("sub")).expect("mkdir");
        fs::write(temp.path().join("sub/b.yaml"), SERVICE.replace("NAME", "b")).expect("write");
        let scan = wait_for(&mut scans, |scan| has_service(scan, "b"))
            .await
            .expect("a scan with the new file");
        assert!(has_service(&scan, "a"));
    }

    #[tokio::test]
    async fn a_directory_never_scanned_is_sent_at_once() {
        let temp = TempDir::new().expect("temp dir");
        fs::write(
            temp.path().join("a.json"),
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}"#,
        )
        .expect("write");
        let dir = ManifestDir::open(temp.path()).expect("open");
        let mut scans = watch(dir, Duration::from_millis(50)).expect("watch");
        wait_for(&mut scans, |scan| has_service(scan, "a"))
            .await
            .expect("the first scan");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_config_map_update_leads_to_a_scan() {
        use std::os::unix::fs::symlink;

        let temp = TempDir::new().expect("temp dir");
        let root = temp.path();
        // What the kubelet does: write a new timestamped directory, then swap `..data`.
        let publish = |version: &str, name: &str| {
            let dir = root.join(format!("..{version}"));
            fs::create_dir(&dir).expect("mkdir");
            fs::write(dir.join("app.yaml"), SERVICE.replace("NAME", name)).expect("write");
            symlink(format!("..{version}"), root.join("..data_tmp")).expect("link");
            fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
        };
        publish("v1", "old");
        symlink("..data/app.yaml", root.join("app.yaml")).expect("link");
        let mut dir = ManifestDir::open(root).expect("open");
        assert!(has_service(&dir.scan().expect("scan"), "old"));
        let mut scans = watch(dir, Duration::from_millis(100)).expect("watch");

        publish("v2", "new");
        let scan = wait_for(&mut scans, |scan| has_service(scan, "new"))
            .await
            .expect("a scan with the new content");
        assert!(!has_service(&scan, "old"));
    }

    #[test]
    fn watch_needs_a_runtime() {
        let temp = TempDir::new().expect("temp dir");
        let dir = ManifestDir::open(temp.path()).expect("open");
        assert!(matches!(
            watch(dir, Duration::from_millis(50)),
            Err(ManifestError::NoRuntime { .. })
        ));
    }
}
