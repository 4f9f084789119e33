//! Reading a manifest directory, with a per-file cache of the last good content.
//!
//! A full scan lists the whole tree and checks every file's stamp. When the watcher can name the
//! paths that changed, a targeted rescan reads just the known manifest files among them, and falls
//! back to a full scan whenever it could not be sure to give the same result.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, Metadata};
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::io::{self, Read};
use std::ops::Bound;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use vestibule_resources::{
    DecodeError, DuplicateObject, ManifestFormat, Object, ObjectKey, Snapshot, decode_manifest,
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
    /// The duplicates among the objects in force, while the files in force hold objects with
    /// the same keys in the same order as when they were found.
    duplicates: Option<Vec<DuplicateObject>>,
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
    /// The objects of the last version that decoded, `None` if none ever did. Boxed, as are
    /// problems, because an entry is kept for every file and most files hold one object.
    objects: Option<Box<[Object]>>,
    /// What is wrong with the file now.
    problem: Option<Box<FileProblem>>,
    /// A hash of the text `objects` and `problem` were decoded from, if it was read.
    digest: Option<u64>,
}

impl CachedFile {
    /// Whether `other` holds objects with the same keys, in the same order.
    fn same_keys(&self, other: &CachedFile) -> bool {
        let keys = |file: &CachedFile| file.objects.as_deref().unwrap_or_default().len();
        keys(self) == keys(other)
            && self
                .objects
                .iter()
                .flatten()
                .zip(other.objects.iter().flatten())
                .all(|(a, b)| a.same_key(b))
    }
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    /// Whether the path is a symbolic link or the file has other hard links: its content can then
    /// change without an event naming this path.
    aliased: bool,
}

impl Stamp {
    /// The stamp of a file with these metadata, reached through a symbolic link or not.
    fn of(metadata: &Metadata, symlink: bool) -> Self {
        Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            aliased: symlink || has_other_links(metadata),
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

/// What a targeted rescan does about one changed path.
enum Update {
    /// Read this known manifest file again.
    Read(ManifestFormat),
    /// Drop this known manifest file: it is gone.
    Drop,
    /// Nothing: no scan reads this path (an editor's swap or backup file, say).
    Ignore,
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
            duplicates: None,
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
        self.scan_and_compare()?;
        Ok(self.current())
    }

    /// Scans without building the result ([`ManifestDir::current`] does), and says whether
    /// anything in force or reported differs from the previous scan (always true for the first
    /// one).
    pub(crate) fn scan_and_compare(&mut self) -> Result<bool, ManifestError> {
        let started = SystemTime::now();
        check_root(&self.root)?;
        self.scan_all(started)
    }

    /// Brings the cache up to date after changes at `paths` (spelled from the root), and says
    /// whether anything in force or reported differs from the previous scan.
    ///
    /// Known manifest files among `paths` are read again whatever their stamp says (the event is
    /// proof of a change) or dropped if gone, paths no scan reads (an editor's swap or backup
    /// file) are ignored, and files that failed to read are tried again. Anything else (a new
    /// manifest file, a directory, a symbolic link, a path near a directory that could not be
    /// listed) and any tree where a file can change without an event naming it (a symbolic or
    /// hard link to it) leads to a full scan: the result is always what a full scan would give.
    pub(crate) fn rescan_and_compare(
        &mut self,
        paths: &BTreeSet<PathBuf>,
    ) -> Result<bool, ManifestError> {
        let started = SystemTime::now();
        check_root(&self.root)?;
        match self.plan(paths) {
            Some(updates) => Ok(self.apply(updates, started)),
            None => self.scan_all(started),
        }
    }

    /// Lists the whole tree and brings every file up to date; the root was just checked.
    fn scan_all(&mut self, started: SystemTime) -> Result<bool, ManifestError> {
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
        self.duplicates = None;
        Ok(changed)
    }

    /// What a targeted rescan does about each of `paths` and each file that failed to read, or
    /// `None` if only a full scan can bring the cache up to date.
    fn plan(&self, paths: &BTreeSet<PathBuf>) -> Option<Vec<(PathBuf, Update)>> {
        if !self.scanned || self.has_aliases() {
            return None;
        }
        let failed = self
            .files
            .iter()
            .filter(|(_, file)| file.stamp.is_none())
            .map(|(path, _)| path);
        let targets: BTreeSet<&PathBuf> = paths.iter().chain(failed).collect();
        targets
            .into_iter()
            .map(|path| Some((path.clone(), self.update_for(path)?)))
            .collect()
    }

    /// What a targeted rescan does about one changed path, or `None` if only a full scan can
    /// tell.
    fn update_for(&self, path: &Path) -> Option<Update> {
        if !self.is_below_root(path) || self.is_near_unreadable_dir(path) {
            return None;
        }
        let exists = match fs::symlink_metadata(path) {
            Ok(metadata) if is_plain_file(&metadata) => true,
            Err(error) if error.kind() == io::ErrorKind::NotFound => false,
            // A directory, a symbolic link, a special or hard-linked file, or an unknown.
            _ => return None,
        };
        if self.files.contains_key(path) {
            Some(if exists {
                Update::Read(format_of(path)?)
            } else {
                Update::Drop
            })
        } else if is_manifest_name(path) || self.has_files_below(path) {
            None
        } else {
            Some(Update::Ignore)
        }
    }

    /// Applies the updates of a targeted rescan; says whether anything in force or reported
    /// changed.
    fn apply(&mut self, updates: Vec<(PathBuf, Update)>, started: SystemTime) -> bool {
        let mut changed = false;
        for (path, update) in updates {
            match update {
                Update::Read(format) => {
                    let previous = self.files.get(&path);
                    let file = load(&path, format, false, previous, started);
                    if previous.is_none_or(|previous| !previous.same_keys(&file)) {
                        self.duplicates = None;
                    }
                    changed |= previous.is_none_or(|previous| {
                        previous.objects != file.objects || previous.problem != file.problem
                    });
                    self.files.insert(path, file);
                }
                Update::Drop => {
                    if self.files.remove(&path).is_some() {
                        self.duplicates = None;
                        changed = true;
                    }
                }
                Update::Ignore => {}
            }
        }
        changed
    }

    /// Whether some file can change without an event naming it, so that only a full scan is
    /// sure to notice.
    fn has_aliases(&self) -> bool {
        self.files
            .values()
            .any(|file| file.stamp.is_some_and(|stamp| stamp.aliased))
    }

    /// Whether `path` lies strictly below the root, spelled without `.` or `..`.
    fn is_below_root(&self, path: &Path) -> bool {
        path.strip_prefix(&self.root).is_ok_and(|relative| {
            let mut components = relative.components().peekable();
            components.peek().is_some()
                && components.all(|component| matches!(component, Component::Normal(_)))
        })
    }

    /// Whether `path` is, is inside or contains a directory the last scan could not list.
    fn is_near_unreadable_dir(&self, path: &Path) -> bool {
        self.unreadable_dirs
            .iter()
            .any(|(dir, _)| path.starts_with(dir) || dir.starts_with(path))
    }

    /// Whether some known manifest file lies below `path`.
    fn has_files_below(&self, path: &Path) -> bool {
        // Paths sort by component, so those below `path` directly follow it.
        self.files
            .range::<Path, _>((Bound::Excluded(path), Bound::Unbounded))
            .next()
            .is_some_and(|(next, _)| next.starts_with(path))
    }

    /// Builds the scan result from the cache.
    pub(crate) fn current(&mut self) -> Scan {
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

        // Finding duplicates hashes every key, which is most of the work with thousands of
        // files; the ones found stand while no key moved.
        let known = self.duplicates.take();
        let objects = self.in_force().map(|(_, object)| object.clone());
        let (snapshot, duplicates) = match known {
            Some(duplicates) => (
                Snapshot::from_objects_without(objects, &duplicates),
                duplicates,
            ),
            None => Snapshot::from_objects(objects),
        };
        if !duplicates.is_empty() {
            let origins: Vec<&Path> = self.in_force().map(|(path, _)| path).collect();
            let wanted: HashSet<&ObjectKey> = duplicates.iter().map(|d| &d.key).collect();
            let mut first: HashMap<ObjectKey, &Path> = HashMap::new();
            for (path, object) in self.in_force() {
                let key = object.key();
                if wanted.contains(&key) {
                    first.entry(key).or_insert(path);
                }
            }
            for duplicate in &duplicates {
                let dropped = origins.get(duplicate.index).copied().unwrap_or(&self.root);
                let kept = first.get(&duplicate.key).copied().unwrap_or(dropped);
                problems.push(Problem::Duplicate {
                    kept: kept.to_owned(),
                    dropped: dropped.to_owned(),
                    key: duplicate.key.clone(),
                });
            }
        }
        self.duplicates = Some(duplicates);
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

/// Whether a scan would read a file at `path`, wherever its directory is: a manifest extension
/// and a name that is not hidden.
fn is_manifest_name(path: &Path) -> bool {
    format_of(path).is_some() && path.file_name().is_some_and(|name| !is_hidden(name))
}

/// Whether these metadata (of the path itself, not of what it links to) are those of a regular
/// file that has no other hard link.
fn is_plain_file(metadata: &Metadata) -> bool {
    metadata.is_file() && !has_other_links(metadata)
}

/// Whether the file has other hard links, through which it can change without an event naming
/// this path.
#[cfg(unix)]
fn has_other_links(metadata: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    metadata.nlink() > 1
}

/// Whether the file has other hard links; this platform cannot tell, so it may.
#[cfg(not(unix))]
fn has_other_links(_: &Metadata) -> bool {
    true
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
    let (metadata, symlink) = match metadata_of(path) {
        Ok(Some(found)) => found,
        Ok(None) => return Outcome::Gone,
        Err(reason) => return Outcome::Updated(unreadable(previous, started, reason)),
    };
    if !metadata.is_file() {
        let reason = "not a regular file".to_owned();
        return Outcome::Updated(unreadable(previous, started, reason));
    }
    let stamp = Stamp::of(&metadata, symlink);
    if let Some(previous) = previous
        && previous.stamp == Some(stamp)
        && !stamp.is_racy(previous.read_at)
    {
        return Outcome::Unchanged;
    }
    Outcome::Updated(load(path, format, symlink, previous, started))
}

/// The metadata of what `path` leads to, and whether `path` is a symbolic link; `None` if
/// nothing is there (a dangling link is an error).
fn metadata_of(path: &Path) -> Result<Option<(Metadata, bool)>, String> {
    let own = match fs::symlink_metadata(path) {
        Ok(own) => own,
        // Removed since the directory was listed.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    if !own.file_type().is_symlink() {
        return Ok(Some((own, false)));
    }
    fs::metadata(path)
        .map(|target| Some((target, true)))
        .map_err(|error| error.to_string())
}

/// The cache entry of a file that cannot be read: its last good objects stay in force, and it is
/// read again next time.
fn unreadable(previous: Option<&CachedFile>, started: SystemTime, reason: String) -> CachedFile {
    CachedFile {
        stamp: None,
        read_at: started,
        objects: previous.and_then(|file| file.objects.clone()),
        problem: Some(Box::new(FileProblem::Unreadable(reason))),
        digest: None,
    }
}

/// Reads and decodes a file that may have changed, reached through a symbolic link or not. Text
/// identical to the cached version's is not decoded again.
fn load(
    path: &Path,
    format: ManifestFormat,
    symlink: bool,
    previous: Option<&CachedFile>,
    started: SystemTime,
) -> CachedFile {
    let (stamp, text) = match read_text(path, symlink) {
        Ok(read) => read,
        Err(reason) => return unreadable(previous, started, reason),
    };
    let digest = Some(digest_of(&text));
    // Files written just before a scan are read again by the next one (see `RACY_WINDOW`);
    // thousands of them are cheap to read, but not to decode again.
    if let Some(previous) = previous.filter(|previous| previous.digest == digest) {
        return CachedFile {
            stamp: Some(stamp),
            read_at: started,
            objects: previous.objects.clone(),
            problem: previous.problem.clone(),
            digest,
        };
    }
    match decode_manifest(&text, format) {
        Ok(objects) => CachedFile {
            stamp: Some(stamp),
            read_at: started,
            objects: Some(objects.into_boxed_slice()),
            problem: None,
            digest,
        },
        Err(error) => {
            let objects = previous.and_then(|file| file.objects.clone());
            CachedFile {
                stamp: Some(stamp),
                read_at: started,
                problem: Some(Box::new(FileProblem::Invalid {
                    error,
                    kept_last_good: objects.is_some(),
                })),
                objects,
                digest,
            }
        }
    }
}

/// A hash that tells versions of a file's text apart.
fn digest_of(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Reads a regular file as text, with the stamp of the version read.
fn read_text(path: &Path, symlink: bool) -> Result<(Stamp, String), String> {
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
    Ok((Stamp::of(&metadata, symlink), text))
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
            .map(|service| service.name.to_string())
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
        let port = service.ports.first().map(|port| port.port);
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
        let changed = dir.scan_and_compare().expect("scan");
        assert!(changed);
        // Pretend the file was read long after it was written.
        for file in dir.files.values_mut() {
            file.read_at = SystemTime::now() + Duration::from_secs(60);
            file.objects = Some(Box::default());
        }
        let changed = dir.scan_and_compare().expect("scan");
        let scan = dir.current();
        assert!(!changed);
        assert!(names(&scan).is_empty(), "the cache was used");
        // A new length is noticed even within the same timestamp.
        fs::write(&path, format!("{}\n", service("b"))).expect("rewrite");
        let changed = dir.scan_and_compare().expect("scan");
        let scan = dir.current();
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
            file.objects = Some(Box::default());
        }
        let changed = dir.scan_and_compare().expect("scan");
        let scan = dir.current();
        assert!(!changed);
        assert!(
            names(&scan).is_empty(),
            "the same text was not decoded again"
        );
        fs::write(&path, service("b")).expect("rewrite");
        let changed = dir.scan_and_compare().expect("scan");
        let scan = dir.current();
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

    fn rescan(dir: &mut ManifestDir, paths: &[&Path]) -> (Scan, bool) {
        let paths = paths.iter().map(|path| path.to_path_buf()).collect();
        let changed = dir.rescan_and_compare(&paths).expect("rescan");
        (dir.current(), changed)
    }

    /// Asserts that `scan` is what a full scan of the same directory from scratch gives.
    fn assert_as_full_scan(dir: &ManifestDir, rescanned: &Scan) {
        let full = scan(&mut ManifestDir::open(dir.root()).expect("open"));
        assert_eq!(
            format!("{:?}", rescanned.snapshot),
            format!("{:?}", full.snapshot)
        );
        assert_eq!(rescanned.problems, full.problems);
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_reads_only_the_named_known_files() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("a"));
        let b = write(&temp, "sub/b.yaml", &service("b"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);
        fs::write(&a, service("a2")).expect("rewrite");
        fs::write(&b, service("b2")).expect("rewrite");

        let (scan, changed) = rescan(&mut dir, &[&a]);
        assert!(changed);
        assert_eq!(names(&scan), ["a2", "b"], "only the named file was read");
        let (scan, changed) = rescan(&mut dir, &[&b]);
        assert!(changed);
        assert_eq!(names(&scan), ["a2", "b2"]);
        assert_as_full_scan(&dir, &scan);
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_finds_duplicates_again_only_when_a_key_moved() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("web"));
        let b = write(
            &temp,
            "b.yaml",
            &format!("{}---\n{}", service("web"), service("b")),
        );
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert_eq!(scan(&mut dir).problems.len(), 1, "b's web is a duplicate");

        // Same keys, other content: the duplicate found stands.
        fs::write(
            &b,
            format!("{}---\n{}", service("web"), service("b")).replace("80", "81"),
        )
        .expect("rewrite");
        let (rescanned, _) = rescan(&mut dir, &[&b]);
        assert_eq!(rescanned.problems.len(), 1);
        assert_as_full_scan(&dir, &rescanned);

        // A key moved: a's web is now c, so b's web is no longer a duplicate.
        fs::write(&a, service("c")).expect("rewrite");
        let (rescanned, _) = rescan(&mut dir, &[&a]);
        assert!(rescanned.problems.is_empty(), "{:?}", rescanned.problems);
        assert_eq!(names(&rescanned), ["b", "c", "web"]);
        assert_as_full_scan(&dir, &rescanned);

        // A file that goes takes its keys along.
        fs::write(&a, service("b")).expect("rewrite");
        let (rescanned, _) = rescan(&mut dir, &[&a]);
        assert_eq!(
            rescanned.problems.len(),
            1,
            "b.yaml's b is a duplicate of a.yaml's"
        );
        fs::remove_file(&a).expect("remove");
        let (rescanned, _) = rescan(&mut dir, &[&a]);
        assert!(rescanned.problems.is_empty(), "{:?}", rescanned.problems);
        assert_as_full_scan(&dir, &rescanned);
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_reads_a_named_file_whatever_its_stamp_says() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("a"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);
        // A stand-in a full scan trusts: read long after it was written, never decoded.
        for file in dir.files.values_mut() {
            file.read_at = SystemTime::now() + Duration::from_secs(60);
            file.objects = Some(Box::default());
            file.digest = None;
        }
        assert!(names(&scan(&mut dir)).is_empty(), "a full scan trusts it");
        let (scan, changed) = rescan(&mut dir, &[&a]);
        assert!(changed);
        assert_eq!(names(&scan), ["a"]);
    }

    #[test]
    fn a_rescan_drops_a_removed_known_file() {
        let temp = TempDir::new().expect("temp dir");
        write(&temp, "a.yaml", &service("a"));
        let b = write(&temp, "b.yaml", &service("b"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);
        fs::remove_file(&b).expect("remove");
        let (scan, changed) = rescan(&mut dir, &[&b]);
        assert!(changed);
        assert_eq!(names(&scan), ["a"]);
        assert_as_full_scan(&dir, &scan);
    }

    #[test]
    fn a_rescan_of_the_same_text_changes_nothing() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("a"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);
        fs::write(&a, service("a")).expect("rewrite");
        let (scan, changed) = rescan(&mut dir, &[&a]);
        assert!(!changed);
        assert_eq!(names(&scan), ["a"]);
    }

    #[test]
    fn a_rescan_of_a_new_file_or_a_directory_scans_everything() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("a"));
        let c = write(&temp, "sub/c.yaml", &service("c"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);

        // Each time, a change to `a.yaml` that is not named shows that everything was scanned.
        fs::write(&a, service("a2")).expect("rewrite");
        let b = write(&temp, "b.yaml", &service("b"));
        let (scan, changed) = rescan(&mut dir, &[&b]);
        assert!(changed);
        assert_eq!(names(&scan), ["a2", "b", "c"]);

        fs::write(&a, service("a3")).expect("rewrite");
        write(&temp, "new/d.yaml", &service("d"));
        let (scan, _) = rescan(&mut dir, &[&temp.path().join("new")]);
        assert_eq!(names(&scan), ["a3", "b", "c", "d"]);

        fs::write(&a, service("a4")).expect("rewrite");
        fs::remove_file(&c).expect("remove");
        fs::remove_dir(temp.path().join("sub")).expect("remove dir");
        let (scan, _) = rescan(&mut dir, &[&temp.path().join("sub")]);
        assert_eq!(names(&scan), ["a4", "b", "d"]);
        assert_as_full_scan(&dir, &scan);
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_ignores_files_no_scan_reads() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("a"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);
        fs::write(&a, service("a2")).expect("rewrite");
        let swap = write(&temp, ".a.yaml.swp", "swap");
        let backup = write(&temp, "a.yaml~", &service("backup"));
        let lock = write(&temp, ".#a.yaml", "lock");
        let temporary = temp.path().join(".a.yaml.tmp");

        let (scan, changed) = rescan(&mut dir, &[&swap, &backup, &lock, &temporary]);
        assert!(!changed);
        assert_eq!(names(&scan), ["a"], "nothing was read");
        let b = write(&temp, "b.yaml", &service("b"));
        let (scan, changed) = rescan(&mut dir, &[&swap, &b]);
        assert!(changed);
        assert_eq!(names(&scan), ["a2", "b"], "everything was scanned");
        assert_as_full_scan(&dir, &scan);
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_of_the_root_or_beyond_it_scans_everything() {
        let temp = TempDir::new().expect("temp dir");
        let root = temp.path().join("manifests");
        fs::create_dir(&root).expect("mkdir");
        let a = root.join("a.yaml");
        fs::write(&a, service("a")).expect("write");
        let mut dir = ManifestDir::open(&root).expect("open");
        scan(&mut dir);
        let outside = temp.path().join("outside.txt");
        let roundabout = root.join("..").join("outside.txt");
        for (version, path) in [&root, &outside, &roundabout].into_iter().enumerate() {
            let name = format!("v{version}");
            fs::write(&a, service(&name)).expect("rewrite");
            let (scan, _) = rescan(&mut dir, &[path]);
            assert_eq!(names(&scan), [name], "{}", path.display());
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_near_a_directory_that_could_not_be_listed_scans_everything() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("a"));
        let b = write(&temp, "sub/b.yaml", &service("b"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);
        // A stand-in: running as root, permissions would not make it unreadable.
        dir.unreadable_dirs
            .push((temp.path().join("sub"), "permission denied".to_owned()));
        fs::write(&a, service("a2")).expect("rewrite");
        let (scan, changed) = rescan(&mut dir, &[&b]);
        assert!(changed);
        assert_eq!(names(&scan), ["a2", "b"]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    }

    #[test]
    fn a_rescan_tries_files_that_failed_to_read_again() {
        let temp = TempDir::new().expect("temp dir");
        write(&temp, "a.yaml", &service("a"));
        let bad = temp.path().join("bad.yaml");
        fs::write(&bad, [0xff, 0xfe, 0x00]).expect("write");
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert_eq!(scan(&mut dir).problems.len(), 1);
        fs::write(&bad, service("b")).expect("fix");
        let (scan, changed) = rescan(&mut dir, &[]);
        assert!(changed);
        assert_eq!(names(&scan), ["a", "b"]);
        assert_as_full_scan(&dir, &scan);
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_scans_everything_where_a_file_is_a_symbolic_link() {
        use std::os::unix::fs::symlink;

        let temp = TempDir::new().expect("temp dir");
        write(&temp, "a.yaml", &service("a"));
        let shared = write(&temp, "shared.txt", &service("s"));
        symlink("shared.txt", temp.path().join("linked.yaml")).expect("link");
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        assert_eq!(names(&scan(&mut dir)), ["a", "s"]);
        // The link's content changes, but the event names the file it links to.
        fs::write(&shared, service("s2")).expect("rewrite");
        let (scan, changed) = rescan(&mut dir, &[&shared]);
        assert!(changed);
        assert_eq!(names(&scan), ["a", "s2"]);
        assert_as_full_scan(&dir, &scan);
    }

    #[cfg(unix)]
    #[test]
    fn a_rescan_scans_everything_where_a_file_has_another_hard_link() {
        let temp = TempDir::new().expect("temp dir");
        let a = write(&temp, "a.yaml", &service("a"));
        let mut dir = ManifestDir::open(temp.path()).expect("open");
        scan(&mut dir);
        let other = temp.path().join("a.txt");
        fs::hard_link(&a, &other).expect("link");
        rescan(&mut dir, &[&other]);
        // The file's content changes, but the event names its other link.
        fs::write(&other, service("a2")).expect("rewrite");
        let (scan, changed) = rescan(&mut dir, &[&other]);
        assert!(changed);
        assert_eq!(names(&scan), ["a2"]);
        assert_as_full_scan(&dir, &scan);
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
