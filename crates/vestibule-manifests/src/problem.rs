//! What can be wrong with part of a manifest directory.

use std::fmt;
use std::path::PathBuf;

use vestibule_resources::{DecodeError, ObjectKey};

/// Something wrong in the directory; the rest of the directory still applies.
///
/// Paths are the paths found while walking, that is the directory's root joined with the path
/// below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A file (or a directory below the root) could not be read. A file's last good objects stay
    /// in force, as do those of the files below a directory that could not be listed.
    Unreadable {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong, as the operating system said it.
        reason: String,
    },
    /// A file could not be decoded; its last good content stays in force.
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why it could not be decoded; names the document.
        error: DecodeError,
        /// Whether an earlier good version of the file is still in force (false if the file
        /// never decoded, in which case nothing of it applies).
        kept_last_good: bool,
    },
    /// The same object (kind, namespace and name) appears twice; the first (by sorted path, then
    /// document order) is kept.
    Duplicate {
        /// The object.
        key: ObjectKey,
        /// The file of the copy in force.
        kept: PathBuf,
        /// The file of the copy ignored (the same as `kept` when a file repeats an object).
        dropped: PathBuf,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { path, reason } => {
                write!(f, "{}: cannot read: {reason}", path.display())
            }
            Self::Invalid {
                path,
                error,
                kept_last_good,
            } => {
                let consequence = if *kept_last_good {
                    "its last good content stays in force"
                } else {
                    "the file is ignored"
                };
                write!(f, "{}: {error}; {consequence}", path.display())
            }
            Self::Duplicate { key, kept, dropped } if kept == dropped => write!(
                f,
                "{key} appears more than once in {}; the first one is used",
                kept.display()
            ),
            Self::Duplicate { key, kept, dropped } => write!(
                f,
                "{key} is in both {} and {}; the one in {} is used",
                kept.display(),
                dropped.display(),
                kept.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vestibule_resources::ObjectKind;

    #[test]
    fn messages_name_the_file_and_the_consequence() {
        let invalid = Problem::Invalid {
            path: PathBuf::from("manifests/app.yaml"),
            error: DecodeError::NotAnObject {
                document: 2,
                reason: "has no kind".to_owned(),
            },
            kept_last_good: true,
        };
        assert_eq!(
            invalid.to_string(),
            "manifests/app.yaml: document 2: has no kind; its last good content stays in force"
        );
        assert_eq!(invalid.clone(), invalid);

        let key = ObjectKey {
            kind: ObjectKind::Service,
            namespace: "default".to_owned(),
            name: "web".to_owned(),
        };
        let duplicate = Problem::Duplicate {
            key,
            kept: PathBuf::from("a.yaml"),
            dropped: PathBuf::from("b.yaml"),
        };
        assert_eq!(
            duplicate.to_string(),
            "Service default/web is in both a.yaml and b.yaml; the one in a.yaml is used"
        );

        let unreadable = Problem::Unreadable {
            path: PathBuf::from("x.json"),
            reason: "permission denied".to_owned(),
        };
        assert_eq!(
            unreadable.to_string(),
            "x.json: cannot read: permission denied"
        );
    }
}
