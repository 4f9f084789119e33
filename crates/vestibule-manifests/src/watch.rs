//! Rescanning a manifest directory when it changes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
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

/// The most changed paths remembered for one burst; past that the whole directory is scanned.
const MAX_CHANGED_PATHS: usize = 4096;

/// Watches a directory and sends a new scan after each burst of changes.
///
/// A burst ends when no filesystem event arrived for `debounce` (or, should events never stop,
/// after ten times `debounce`). The directory is also scanned once as soon as the watch is in
/// place, and that scan is sent only if it differs from the directory's previous scan (or if
/// `dir` was never scanned), so changes made before the watch started are not lost.
///
/// After a burst that only touched manifest files the directory already had (or files no scan
/// reads, such as an editor's swap files), just those files are read again. Anything else (a new
/// file, a directory, a symbolic link, a ConfigMap volume's update, an event the watcher lost or
/// could not name, a burst of more than a few thousand paths) leads to a full rescan; either way
/// the scan sent is what a full rescan would give.
///
/// Must be called within a Tokio runtime. Watching ends when the receiver is dropped. If the root
/// becomes unreadable the error is logged, nothing is sent, and the root is tried again every few
/// seconds until it is back.
pub fn watch(dir: ManifestDir, debounce: Duration) -> Result<mpsc::Receiver<Scan>, ManifestError> {
    let root = dir.root().to_owned();
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| ManifestError::NoRuntime { path: root.clone() })?;
    // What changed is recorded in `dirty`, so one pending signal is enough.
    let (events_tx, events) = mpsc::channel(1);
    let dirty = Arc::new(Mutex::new(Dirty::default()));
    let recorded = Arc::clone(&dirty);
    // The watcher reports paths below the root made absolute (as here); they are spelled again
    // from `root`, as scans spell them.
    let watched = std::path::absolute(&root).unwrap_or_else(|_| root.clone());
    let spelled = root.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        match &event {
            Ok(event) if !matters(&event.kind) => return,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "manifest directory watcher reported an error"),
        }
        lock(&recorded).record(&event, &watched, &spelled);
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
        dirty,
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

/// What changed in the directory since the last scan, as the watcher reported it.
#[derive(Debug, PartialEq)]
enum Dirty {
    /// These paths, spelled from the directory's root.
    Paths(BTreeSet<PathBuf>),
    /// Anything may have: scan the whole directory.
    Everything,
}

impl Default for Dirty {
    fn default() -> Self {
        Self::Paths(BTreeSet::new())
    }
}

impl Dirty {
    /// Records what one report of the watcher says changed. `watched` is the root as the watcher
    /// spells it, `root` as the directory does.
    fn record(&mut self, event: &notify::Result<Event>, watched: &Path, root: &Path) {
        let Self::Paths(paths) = self else {
            return;
        };
        let named: Option<Vec<PathBuf>> = match event {
            Ok(event) if !event.need_rescan() && !event.paths.is_empty() => event
                .paths
                .iter()
                .map(|path| spelled_from_root(path, watched, root))
                .collect(),
            // An error, or events lost or not said where.
            _ => None,
        };
        match named {
            Some(named) if paths.len().saturating_add(named.len()) <= MAX_CHANGED_PATHS => {
                paths.extend(named);
            }
            _ => *self = Self::Everything,
        }
    }

    /// Whether nothing changed.
    fn is_nothing(&self) -> bool {
        matches!(self, Self::Paths(paths) if paths.is_empty())
    }

    /// Brings `dir` up to date: a full scan, or one of just the changed paths.
    fn rescan(&self, dir: &mut ManifestDir) -> Result<bool, ManifestError> {
        match self {
            Self::Paths(paths) => dir.rescan_and_compare(paths),
            Self::Everything => dir.scan_and_compare(),
        }
    }
}

/// `path`, reported by the watcher below `watched`, spelled from `root` as the directory's scans
/// spell it; `None` if it is not below `watched`.
fn spelled_from_root(path: &Path, watched: &Path, root: &Path) -> Option<PathBuf> {
    path.strip_prefix(watched)
        .ok()
        .map(|relative| root.join(relative))
}

/// Locks what changed. Nothing panics while holding it, but a poisoned lock is still usable.
fn lock(dirty: &Mutex<Dirty>) -> MutexGuard<'_, Dirty> {
    dirty.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The watcher and what it reports.
struct Watching {
    /// Kept alive as long as the watch runs.
    watcher: RecommendedWatcher,
    root: PathBuf,
    /// One signal after each event that matters.
    events: mpsc::Receiver<()>,
    /// What the events said changed.
    dirty: Arc<Mutex<Dirty>>,
}

impl Watching {
    /// Watches the root afresh (it may be a new directory at the same path).
    fn watch(&mut self) -> notify::Result<()> {
        let _ = self.watcher.unwatch(&self.root);
        self.watcher.watch(&self.root, RecursiveMode::Recursive)
    }

    /// What changed since the last call, forgetting it.
    fn take_dirty(&self) -> Dirty {
        std::mem::take(&mut *lock(&self.dirty))
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
        let dirty = if first {
            Dirty::Everything
        } else {
            let wake = if root_failed {
                retry_or_change(&mut watching, &scans).await
            } else {
                next_burst(&mut watching.events, &scans, debounce).await
            };
            if let Wake::Stop = wake {
                return;
            }
            let dirty = watching.take_dirty();
            if root_failed {
                Dirty::Everything
            } else {
                dirty
            }
        };
        // A signal can outlive the changes it stood for, already taken by the previous scan.
        if dirty.is_nothing() {
            continue;
        }

        // The first scan here only makes sure nothing changed while the watch started: its
        // result is built only if something did.
        let scanning = tokio::task::spawn_blocking(move || {
            let result = dirty
                .rescan(&mut dir)
                .map(|changed| (changed || !first).then(|| dir.current()));
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
            Ok(scan) => {
                if root_failed {
                    tracing::info!(root = %dir.root().display(), "manifest directory readable again");
                }
                root_failed = false;
                if let Some(scan) = scan
                    && scans.send(scan).await.is_err()
                {
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
            .any(|service| &*service.name == name)
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

    /// Waits until the watch has made its first scan and handles changes as they come: a file
    /// written now shows up in a scan.
    async fn wait_until_watching(root: &Path, scans: &mut mpsc::Receiver<Scan>) {
        fs::write(root.join("ready.yaml"), SERVICE.replace("NAME", "ready")).expect("write");
        wait_for(scans, |scan| has_service(scan, "ready"))
            .await
            .expect("a scan with the file written once watching");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_file_leads_to_a_scan_with_it() {
        let temp = TempDir::new().expect("temp dir");
        fs::write(temp.path().join("a.yaml"), SERVICE.replace("NAME", "a")).expect("write");
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert!(has_service(&dir.scan().expect("scan"), "a"));
        let mut scans = watch(dir, Duration::from_millis(100)).expect("watch");
        wait_until_watching(temp.path(), &mut scans).await;

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
        wait_until_watching(root, &mut scans).await;

        publish("v2", "new");
        let scan = wait_for(&mut scans, |scan| has_service(scan, "new"))
            .await
            .expect("a scan with the new content");
        assert!(!has_service(&scan, "old"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn edits_to_known_files_lead_to_scans_with_the_new_content() {
        let temp = TempDir::new().expect("temp dir");
        let root = temp.path();
        fs::write(root.join("a.yaml"), SERVICE.replace("NAME", "a")).expect("write");
        fs::create_dir(root.join("sub")).expect("mkdir");
        fs::write(root.join("sub/b.yaml"), SERVICE.replace("NAME", "b")).expect("write");
        let mut dir = ManifestDir::open(root).expect("open");
        dir.scan().expect("scan");
        let mut scans = watch(dir, Duration::from_millis(100)).expect("watch");
        wait_until_watching(root, &mut scans).await;

        fs::write(root.join("a.yaml"), SERVICE.replace("NAME", "edited")).expect("edit");
        let scan = wait_for(&mut scans, |scan| has_service(scan, "edited"))
            .await
            .expect("a scan with the edit");
        assert!(has_service(&scan, "b") && !has_service(&scan, "a"));

        // As the scale benchmark writes: a hidden temporary file renamed over the old one.
        let temporary = root.join("sub/.b.yaml.tmp");
        fs::write(&temporary, SERVICE.replace("NAME", "replaced")).expect("write");
        fs::rename(&temporary, root.join("sub/b.yaml")).expect("rename");
        let scan = wait_for(&mut scans, |scan| has_service(scan, "replaced"))
            .await
            .expect("a scan with the replacement");
        assert!(has_service(&scan, "edited") && !has_service(&scan, "b"));

        fs::remove_file(root.join("a.yaml")).expect("remove");
        let scan = wait_for(&mut scans, |scan| !has_service(scan, "edited"))
            .await
            .expect("a scan without the removed file");
        assert!(has_service(&scan, "replaced"));
    }

    #[test]
    fn dirty_keeps_the_paths_it_can_name_and_otherwise_means_everything() {
        let watched = Path::new("/work/manifests");
        let root = Path::new("manifests");
        let event = |paths: &[&str]| {
            let event = Event::new(EventKind::Any);
            Ok(paths
                .iter()
                .fold(event, |event, path| event.add_path(watched.join(path))))
        };
        let recorded = |events: Vec<notify::Result<Event>>| {
            let mut dirty = Dirty::default();
            for event in &events {
                dirty.record(event, watched, root);
            }
            dirty
        };

        let paths = ["a.yaml", "sub/b.yaml", ".a.yaml.swp"];
        let expected = paths.iter().map(|path| root.join(path)).collect();
        assert_eq!(
            recorded(vec![event(&paths[..2]), event(&paths[2..])]),
            Dirty::Paths(expected)
        );
        assert!(recorded(Vec::new()).is_nothing());

        let lost = event(&["a.yaml"]).map(|event| event.set_flag(notify::event::Flag::Rescan));
        let error = Err(notify::Error::generic("queue overflow"));
        let outside = Ok(Event::new(EventKind::Any).add_path(PathBuf::from("/elsewhere/a.yaml")));
        let many: Vec<String> = (0..=MAX_CHANGED_PATHS)
            .map(|i| format!("{i}.yaml"))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        for everything in [lost, error, event(&[]), outside, event(&many)] {
            assert_eq!(
                recorded(vec![everything, event(&["a.yaml"])]),
                Dirty::Everything
            );
        }
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
