//! Reading a manifest directory, with a per-file cache of the last good content.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use vestibule_resources::{
    DecodeError, ManifestFormat, Object, ObjectKey, Snapshot, decode_manifest,
};

use crate::ManifestError;
use crate::problem::Problem;

/// How long after a file's modified time its content is still distrusted.
///
/// Filesystem timestamps are coarse (the kernel's clock tick, or whole seconds on some
/// filesystems), so a file written again just after it was read can keep both its modified time
/// and its length. A file whose modified time falls within this window of the moment it was read
/// is therefore read again by the next scan, until its timestamp is safely in the past.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// A manifest directory and the last good content of each file in it.
#[derive(Debug)]
pub struct ManifestDir {
    root: PathBuf,
    /// Every manifest file seen by the last scan, by path (so in sorted order).
    files: BTreeMap<PathBuf, CachedFile>,
    /// Directories below the root the last scan could not list, with the reason.
    unreadable_dirs: Vec<(PathBuf, String)>,
    /// Whether a scan has completed.
    scanned: bool,
}

/// The result of one scan.
#[derive(Clone, Debug)]
pub struct Scan {
    /// Every object in force: the directory's good files plus the last good content of its
    /// broken ones.
    pub snapshot: Snapshot,
    /// What is wrong in the directory, in path order, duplicates last.
    pub problems: Vec<Problem>,
}

/// What is known of one manifest file.
#[derive(Debug)]
struct CachedFile {
    /// The file's modified time and length when it was read; `None` to read it again next time.
    stamp: Option<Stamp>,
    /// When the scan that read it started.
    read_at: SystemTime,
    /// The objects of the last version that decoded, `None` if none ever did.
    objects: Option<Vec<Object>>,
    /// What is wrong with the file now.
    problem: Option<FileProblem>,
    /// A hash of the text `objects` and `problem` were decoded from, if it was read.
    digest: Option<u64>,
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Stamp {
    fn of(metadata: &Metadata) -> Self {
        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
        }
    }

    /// Whether the file may have changed since a read that started at `read_at` without its
    /// stamp changing.
    fn is_racy(self, read_at: SystemTime) -> bool {
        match self.modified {
            None => true,
            Some(modified) => modified
                .checked_add(RACY_WINDOW)
                .is_none_or(|settled| settled >= read_at),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum FileProblem {
    Unreadable(String),
    Invalid {
        error: DecodeError,
        kept_last_good: bool,
    },
}

impl FileProblem {
    fn to_problem(&self, path: &Path) -> Problem {
        match self {
            Self::Unreadable(reason) => Problem::Unreadable {
                path: path.to_owned(),
                reason: reason.clone(),
            },
            Self::Invalid {
                error,
                kept_last_good,
            } => Problem::Invalid {
                path: path.to_owned(),
                error: error.clone(),
                kept_last_good: *kept_last_good,
            },
        }
    }
}

/// What became of one file in a scan.
enum Outcome {
    /// It no longer exists.
    Gone,
    /// It has not changed since it was last read; the cached entry stands.
    Unchanged,
    /// It was read (or failed to be) again.
    Updated(CachedFile),
}

impl ManifestDir {
    /// Opens `root`; fails with a clear error if it does not exist, is not a directory or cannot
    /// be read. Reads no manifest yet: call [`ManifestDir::scan`].
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ManifestError> {
        let root = root.into();
        check_root(&root)?;
        Ok(Self {
            root,
            files: BTreeMap::new(),
            unreadable_dirs: Vec::new(),
            scanned: false,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Re-reads the directory.
    ///
    /// Files whose modified time or length changed since the last scan (or that were modified
    /// too recently to trust their timestamp) are read and decoded again, removed files are
    /// dropped, and unchanged files reuse their cached objects. A file that fails to read or
    /// decode is reported and its last good objects stay in force (none if it never decoded).
    /// Returns `Err` only if the root itself became unreadable; the cache is then left as it was.
    pub fn scan(&mut self) -> Result<Scan, ManifestError> {
        self.scan_and_compare().map(|(scan, _)| scan)
    }

    /// Scans, and also says whether anything in force or reported differs from the previous
    /// scan (always true for the first one).
    pub(crate) fn scan_and_compare(&mut self) -> Result<(Scan, bool), ManifestError> {
        let started = SystemTime::now();
        check_root(&self.root)?;
        let listing = list(&self.root).map_err(|source| ManifestError::Unreadable {
            path: self.root.clone(),
            source,
        })?;

        let mut changed = !self.scanned || listing.unreadable_dirs != self.unreadable_dirs;
        // Looked up by hash and rebuilt from a sorted list: comparing paths is slow enough to
        // matter with thousands of files.
        let mut old: HashMap<PathBuf, CachedFile> =
            std::mem::take(&mut self.files).into_iter().collect();
        let mut files = Vec::with_capacity(listing.files.len());
        for path in listing.files {
            let previous = old.remove(&path);
            match read_file(&path, previous.as_ref(), started) {
                Outcome::Gone => changed |= previous.is_some(),
                Outcome::Unchanged => {
                    if let Some(previous) = previous {
                        files.push((path, previous));
                    }
                }
                Outcome::Updated(file) => {
                    changed |= previous.as_ref().is_none_or(|previous| {
                        previous.objects != file.objects || previous.problem != file.problem
                    });
                    files.push((path, file));
                }
            }
        }
        // Files below a directory that could not be listed keep their last state.
        for (path, file) in old {
            if listing
                .unreadable_dirs
                .iter()
                .any(|(dir, _)| path.starts_with(dir))
            {
                files.push((path, file));
            } else {
                changed = true;
            }
        }

        self.files = files.into_iter().collect();
        self.unreadable_dirs = listing.unreadable_dirs;
        self.scanned = true;
        Ok((self.current(), changed))
    }

    /// Builds the scan result from the cache.
    fn current(&self) -> Scan {
        let mut problems: Vec<Problem> = self
            .unreadable_dirs
            .iter()
            .map(|(path, reason)| Problem::Unreadable {
                path: path.clone(),
                reason: reason.clone(),
            })
            .collect();
        problems.extend(
            self.files
                .iter()
                .filter_map(|(path, file)| Some(file.problem.as_ref()?.to_problem(path))),
        );

        let mut origins: Vec<&Path> = Vec::new();
        let (snapshot, duplicates) =
            Snapshot::from_objects(self.in_force().map(|(path, object)| {
                origins.push(path);
                object.clone()
            }));
        if !duplicates.is_empty() {
            let wanted: HashSet<&ObjectKey> = duplicates.iter().map(|d| &d.key).collect();
            let mut first: HashMap<ObjectKey, &Path> = HashMap::new();
            for (path, object) in self.in_force() {
                let key = object.key();
                if wanted.contains(&key) {
                    first.entry(key).or_insert(path);
                }
            }
            for duplicate in duplicates {
                let dropped = origins.get(duplicate.index).copied().unwrap_or(&self.root);
                let kept = first.get(&duplicate.key).copied().unwrap_or(dropped);
                problems.push(Problem::Duplicate {
                    kept: kept.to_owned(),
                    dropped: dropped.to_owned(),
                    key: duplicate.key,
                });
            }
        }
        Scan { snapshot, problems }
    }

    /// Every object in force with its file, in path then document order.
    fn in_force(&self) -> impl Iterator<Item = (&Path, &Object)> {
        self.files.iter().flat_map(|(path, file)| {
            file.objects
                .iter()
                .flatten()
                .map(move |object| (path.as_path(), object))
        })
    }
}

/// Fails unless `root` is a readable directory.
fn check_root(root: &Path) -> Result<(), ManifestError> {
    let unreadable = |source| ManifestError::Unreadable {
        path: root.to_owned(),
        source,
    };
    match fs::metadata(root) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(ManifestError::Missing {
                path: root.to_owned(),
            });
        }
        Err(error) => return Err(unreadable(error)),
        Ok(metadata) if !metadata.is_dir() => {
            return Err(ManifestError::NotADirectory {
                path: root.to_owned(),
            });
        }
        Ok(_) => {}
    }
    fs::read_dir(root).map(drop).map_err(unreadable)
}

/// The manifest files below a root.
struct Listing {
    /// Every file with a manifest extension, sorted.
    files: Vec<PathBuf>,
    /// Directories below the root that could not be listed, with the reason.
    unreadable_dirs: Vec<(PathBuf, String)>,
}

/// Walks the tree below `root`, following symlinks, skipping names that start with `.` and
/// visiting each real directory once (so symlink loops end). Fails only if `root` cannot be read.
fn list(root: &Path) -> io::Result<Listing> {
    let mut listing = Listing {
        files: Vec::new(),
        unreadable_dirs: Vec::new(),
    };
    let mut visited = HashSet::new();
    visited.insert(fs::canonicalize(root)?);
    let mut entries = read_sorted(root)?;
    let mut pending: Vec<PathBuf> = Vec::new();
    loop {
        // Directories are pushed in reverse so they are visited in sorted order.
        for (path, is_dir) in entries.into_iter().rev() {
            if is_dir {
                pending.push(path);
            } else if format_of(&path).is_some() {
                listing.files.push(path);
            }
        }
        let Some(dir) = pending.pop() else { break };
        let read = fs::canonicalize(&dir).and_then(|real| {
            if visited.insert(real) {
                read_sorted(&dir)
            } else {
                tracing::debug!(dir = %dir.display(), "directory already read through another path");
                Ok(Vec::new())
            }
        });
        entries = read.unwrap_or_else(|error| {
            // A directory removed since its parent was listed is simply gone.
            if error.kind() != io::ErrorKind::NotFound {
                listing.unreadable_dirs.push((dir, error.to_string()));
            }
            Vec::new()
        });
    }
    listing.files.sort();
    Ok(listing)
}

/// The entries of one directory that are not hidden, sorted by name, each with whether it is
/// (or links to) a directory.
fn read_sorted(dir: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let is_dir = match entry.file_type() {
            Ok(kind) if kind.is_symlink() => fs::metadata(&path).is_ok_and(|m| m.is_dir()),
            Ok(kind) => kind.is_dir(),
            Err(_) => false,
        };
        entries.push((path, is_dir));
    }
    entries.sort();
    Ok(entries)
}

/// Whether a name is hidden. Kubernetes ConfigMap and Secret volumes keep their real content
/// in `..data` and timestamped `..` directories and link each key to it from the top, so reading
/// the visible names reads each key once.
fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// How a file is decoded, by extension; `None` for files that are not manifests.
fn format_of(path: &Path) -> Option<ManifestFormat> {
    let extension = path.extension()?;
    if extension.eq_ignore_ascii_case("json") {
        Some(ManifestFormat::Json)
    } else if extension.eq_ignore_ascii_case("yaml") || extension.eq_ignore_ascii_case("yml") {
        Some(ManifestFormat::Yaml)
    } else {
        None
    }
}

/// Brings one file up to date, reading it only if its stamp says it may have changed.
fn read_file(path: &Path, previous: Option<&CachedFile>, started: SystemTime) -> Outcome {
    let Some(format) = format_of(path) else {
        return Outcome::Gone;
    };
    let last_good = || previous.and_then(|file| file.objects.clone());
    let failed = |reason: String| {
        Outcome::Updated(CachedFile {
            stamp: None,
            read_at: started,
            objects: last_good(),
            problem: Some(FileProblem::Unreadable(reason)),
            digest: None,
        })
    };

    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        // Removed since the directory was listed (a dangling symlink is still reported).
        Err(error)
            if error.kind() == io::ErrorKind::NotFound && fs::symlink_metadata(path).is_err() =>
        {
            return Outcome::Gone;
        }
        Err(error) => return failed(error.to_string()),
    };
    if !metadata.is_file() {
        return failed("not a regular file".to_owned());
    }
    if let Some(previous) = previous
        && previous.stamp == Some(Stamp::of(&metadata))
        && !Stamp::of(&metadata).is_racy(previous.read_at)
    {
        return Outcome::Unchanged;
    }

    let (stamp, text) = match read_text(path) {
        Ok(read) => read,
        Err(reason) => return failed(reason),
    };
    let digest = Some(digest_of(&text));
    // Files written just before a scan are read again by the next one (see `RACY_WINDOW`);
    // thousands of them are cheap to read, but not to decode again.
    if let Some(previous) = previous.filter(|previous| previous.digest == digest) {
        return Outcome::Updated(CachedFile {
            stamp: Some(stamp),
            read_at: started,
            objects: previous.objects.clone(),
            problem: previous.problem.clone(),
            digest,
        });
    }
    let file = match decode_manifest(&text, format) {
        Ok(objects) => CachedFile {
            stamp: Some(stamp),
            read_at: started,
            objects: Some(objects),
            problem: None,
            digest,
        },
        Err(error) => {
            let objects = last_good();
            CachedFile {
                stamp: Some(stamp),
                read_at: started,
                problem: Some(FileProblem::Invalid {
                    error,
                    kept_last_good: objects.is_some(),
                }),
                objects,
                digest,
            }
        }
    };
    Outcome::Updated(file)
}

/// A hash that tells versions of a file's text apart.
fn digest_of(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Reads a regular file as text, with the stamp of the version read.
fn read_text(path: &Path) -> Result<(Stamp, String), String> {
    let mut file = File::open(path).map_err(|error| error.to_string())?;
    let metadata = file.metadata().map_err(|error| error.to_string())?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    let text = String::from_utf8(bytes).map_err(|error| format!("not UTF-8 text: {error}"))?;
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    };
    Ok((Stamp::of(&metadata), text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    fn service(name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{ports: [{{port: 80}}]}}\n"
        )
    }

    fn write(dir: &TempDir, relative: &str, text: &str) -> PathBuf {
        let path = dir.path().join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, text).expect("write");
        path
    }

    fn names(scan: &Scan) -> Vec<String> {
        let mut names: Vec<String> = scan
            .snapshot
            .services
            .iter()
            .filter_map(|service| service.metadata.name.clone())
            .collect();
        names.sort();
        names
    }

    fn scan(dir: &mut ManifestDir) -> Scan {
        dir.scan().expect("scan")
    }

    #[test]
    fn open_fails_on_a_missing_dir_and_on_a_file() {
        let temp = TempDir::new().expect("temp dir");
        let missing = ManifestDir::open(temp.path().join("nope")).expect_err("missing");
        assert!(
            matches!(missing, ManifestError::Missing { .. }),
            "{missing}"
        );
        assert!(missing.to_string().contains("does not exist"), "{missing}");

        let file = write(&temp, "file.yaml", &service("web"));
        let not_dir = ManifestDir::open(&file).expect_err("a file");
        assert!(
            matches!(not_dir, ManifestError::NotADirectory { .. }),
            "{not_dir}"
        );
        assert!(not_dir.to_string().contains("file.yaml"), "{not_dir}");
    }

    #[test]
    fn scan_reads_manifests_recursively_and_ignores_the_rest() {
        let temp = TempDir::new().expect("temp dir");
        write(&temp, "a.yaml", &service("a"));
        write(&temp, "nested/deeper/b.yml", &service("b"));
        write(
            &temp,
            "nested/c.json",
            r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"c"}}"#,
        );
        write(&temp, "d.txt", &service("d"));
        write(&temp, "README", "not a manifest");
        write(&temp, ".hidden.yaml", &service("e"));
        write(&temp, ".git/f.yaml", &service("f"));
        write(&temp, "upper.YAML", &service("g"));

        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert_eq!(dir.root(), temp.path());
        let scan = scan(&mut dir);
        assert_eq!(names(&scan), ["a", "b", "c", "g"]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    }

    #[test]
    fn a_file_broken_from_the_start_is_reported_and_the_rest_applies() {
        let temp = TempDir::new().expect("temp dir");
        write(&temp, "a.yaml", &service("a"));
        let broken = write(
            &temp,
            "b.yaml",
            &format!("{}---\nkind: [unclosed\n", service("b")),
        );
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        let scan = scan(&mut dir);
        assert_eq!(names(&scan), ["a"]);
        let [problem] = scan.problems.as_slice() else {
            panic!("one problem expected: {:?}", scan.problems)
        };
        assert!(
            matches!(problem, Problem::Invalid { path, error: DecodeError::Syntax { document: 1, .. }, kept_last_good: false } if *path == broken),
            "{problem:?}"
        );
        let message = problem.to_string();
        assert!(message.contains("b.yaml: document 1:"), "{message}");
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_content_until_fixed() {
        let temp = TempDir::new().expect("temp dir");
        write(&temp, "a.yaml", &service("a"));
        let path = write(&temp, "b.yaml", &service("b"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert_eq!(names(&scan(&mut dir)), ["a", "b"]);

        // Same length as before, very likely within the same timestamp tick.
        let good = service("b");
        let broken = format!("kind: [{}", &good[7..]);
        assert_eq!(broken.len(), good.len());
        fs::write(&path, &broken).expect("break");
        for _ in 0..2 {
            let scan = scan(&mut dir);
            assert_eq!(names(&scan), ["a", "b"]);
            let [problem] = scan.problems.as_slice() else {
                panic!("one problem expected: {:?}", scan.problems)
            };
            assert!(
                matches!(problem, Problem::Invalid { path: p, kept_last_good: true, .. } if *p == path),
                "{problem:?}"
            );
            assert!(problem.to_string().contains("last good"), "{problem}");
        }

        fs::write(&path, service("c")).expect("fix");
        let scan = scan(&mut dir);
        assert_eq!(names(&scan), ["a", "c"]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    }

    #[test]
    fn removing_a_file_removes_its_objects() {
        let temp = TempDir::new().expect("temp dir");
        write(&temp, "a.yaml", &service("a"));
        let b = write(&temp, "sub/b.yaml", &service("b"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert_eq!(names(&scan(&mut dir)), ["a", "b"]);
        fs::remove_file(&b).expect("remove");
        assert_eq!(names(&scan(&mut dir)), ["a"]);
        fs::remove_dir(temp.path().join("sub")).expect("remove dir");
        assert_eq!(names(&scan(&mut dir)), ["a"]);
    }

    #[test]
    fn duplicates_keep_the_first_by_path() {
        let temp = TempDir::new().expect("temp dir");
        let first = write(
            &temp,
            "a/web.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n",
        );
        let second = write(
            &temp,
            "b.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {ports: [{port: 81}]}\n",
        );
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        let scan = scan(&mut dir);
        let [service] = scan.snapshot.services.as_slice() else {
            panic!("one service expected")
        };
        let port = service
            .spec
            .as_ref()
            .and_then(|spec| spec.ports.as_ref())
            .and_then(|ports| ports.first())
            .map(|port| port.port);
        assert_eq!(port, Some(80));
        let [problem] = scan.problems.as_slice() else {
            panic!("one problem expected: {:?}", scan.problems)
        };
        let Problem::Duplicate { key, kept, dropped } = problem else {
            panic!("a duplicate expected: {problem:?}")
        };
        assert_eq!(key.to_string(), "Service default/web");
        assert_eq!((kept, dropped), (&first, &second));
        assert!(problem.to_string().contains("a/web.yaml"), "{problem}");
    }

    #[test]
    fn unchanged_files_are_not_read_again() {
        let temp = TempDir::new().expect("temp dir");
        let path = write(&temp, "a.yaml", &service("a"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        let (_, changed) = dir.scan_and_compare().expect("scan");
        assert!(changed);
        // Pretend the file was read long after it was written.
        for file in dir.files.values_mut() {
            file.read_at = SystemTime::now() + Duration::from_secs(60);
            file.objects = Some(Vec::new());
        }
        let (scan, changed) = dir.scan_and_compare().expect("scan");
        assert!(!changed);
        assert!(names(&scan).is_empty(), "the cache was used");
        // A new length is noticed even within the same timestamp.
        fs::write(&path, format!("{}\n", service("b"))).expect("rewrite");
        let (scan, changed) = dir.scan_and_compare().expect("scan");
        assert!(changed);
        assert_eq!(names(&scan), ["b"]);
    }

    #[test]
    fn files_read_again_with_the_same_text_are_not_decoded_again() {
        let temp = TempDir::new().expect("temp dir");
        let path = write(&temp, "a.yaml", &service("a"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        dir.scan_and_compare().expect("scan");
        // Just written, so read again by every scan for a while; a stand-in for the decoded
        // objects shows whether it was decoded again.
        for file in dir.files.values_mut() {
            file.objects = Some(Vec::new());
        }
        let (scan, changed) = dir.scan_and_compare().expect("scan");
        assert!(!changed);
        assert!(
            names(&scan).is_empty(),
            "the same text was not decoded again"
        );
        fs::write(&path, service("b")).expect("rewrite");
        let (scan, changed) = dir.scan_and_compare().expect("scan");
        assert!(changed);
        assert_eq!(names(&scan), ["b"]);
    }

    #[test]
    fn a_vanished_root_is_an_error_and_keeps_the_cache() {
        let temp = TempDir::new().expect("temp dir");
        let root = temp.path().join("manifests");
        fs::create_dir(&root).expect("mkdir");
        fs::write(root.join("a.yaml"), service("a")).expect("write");
        let mut dir = ManifestDir::open(&root).expect("open");
        assert_eq!(names(&scan(&mut dir)), ["a"]);
        fs::remove_dir_all(&root).expect("remove");
        assert!(matches!(dir.scan(), Err(ManifestError::Missing { .. })));
        assert_eq!(dir.files.len(), 1, "the cache is kept");
        fs::create_dir(&root).expect("mkdir again");
        assert!(names(&scan(&mut dir)).is_empty());
    }

    #[test]
    fn non_utf8_files_are_unreadable() {
        let temp = TempDir::new().expect("temp dir");
        let path = temp.path().join("bad.yaml");
        fs::write(&path, [0xff, 0xfe, 0x00]).expect("write");
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        let scan = scan(&mut dir);
        assert!(
            matches!(scan.problems.as_slice(), [Problem::Unreadable { path: p, .. }] if *p == path),
            "{:?}",
            scan.problems
        );
    }

    #[cfg(unix)]
    #[test]
    fn config_map_volumes_and_symlink_loops() {
        use std::os::unix::fs::symlink;

        let temp = TempDir::new().expect("temp dir");
        // The layout the kubelet writes for a ConfigMap volume.
        write(&temp, "..2025_01_01_00_00_00.1/app.yaml", &service("app"));
        write(&temp, "..2025_01_01_00_00_00.1/db.json", "{}");
        symlink("..2025_01_01_00_00_00.1", temp.path().join("..data")).expect("link");
        symlink("..data/app.yaml", temp.path().join("app.yaml")).expect("link");
        // A symlinked directory, and a loop.
        write(&temp, "elsewhere/x.yaml", &service("x"));
        symlink("elsewhere", temp.path().join("linked")).expect("link");
        symlink("..", temp.path().join("elsewhere/up")).expect("link");
        // A dangling link.
        symlink("nowhere.yaml", temp.path().join("dangling.yaml")).expect("link");

        let mut dir = ManifestDir::open(temp.path()).expect("open");
        let scan = scan(&mut dir);
        assert_eq!(names(&scan), ["app", "x"]);
        assert!(
            matches!(scan.problems.as_slice(), [Problem::Unreadable { path, .. }] if path.ends_with("dangling.yaml")),
            "{:?}",
            scan.problems
        );
    }
}
