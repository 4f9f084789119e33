//! Basic-authentication credentials as ingress-nginx's `auth-secret` holds them: an htpasswd
//! file (`auth-file`) or a map of user to hash (`auth-map`).
//!
//! The hash formats nginx's `auth_basic_user_file` accepts with Apache's `htpasswd` tool are
//! supported: bcrypt (`$2y$`, `$2a$`, `$2b$`), Apache MD5 (`$apr1$`) and MD5-crypt (`$1$`),
//! `{SHA}`, `{SSHA}` and `{PLAIN}`. Other formats (such as glibc's SHA-crypt `$5$`/`$6$`) are
//! reported when parsing and never match.

mod md5_crypt;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Why a credential line or hash cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// A line of an htpasswd file is not `user:hash`.
    #[error("line {line} is not USER:HASH")]
    Malformed {
        /// The line number, from 1.
        line: usize,
    },
    /// The hash is in a format Vestibule does not verify.
    #[error("the password hash of user {user:?} is in an unsupported format")]
    UnsupportedHash {
        /// The user.
        user: String,
    },
}

/// One stored password hash.
#[derive(Clone, PartialEq, Eq)]
enum PasswordHash {
    /// `$2y$...`: bcrypt, kept as written.
    Bcrypt(String),
    /// `$apr1$salt$hash` or `$1$salt$hash`.
    Md5Crypt {
        magic: md5_crypt::Magic,
        salt: String,
        hash: String,
    },
    /// `{SHA}` base64 of the SHA-1 of the password.
    Sha1(Vec<u8>),
    /// `{SSHA}` base64 of SHA-1(password + salt) followed by the salt.
    SaltedSha1 { digest: Vec<u8>, salt: Vec<u8> },
    /// `{PLAIN}` the password itself.
    Plain(String),
}

impl PasswordHash {
    fn parse(text: &str) -> Option<Self> {
        if text.starts_with("$2y$") || text.starts_with("$2a$") || text.starts_with("$2b$") {
            return Some(Self::Bcrypt(text.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("{SHA}") {
            let digest = STANDARD.decode(rest).ok().filter(|d| d.len() == 20)?;
            return Some(Self::Sha1(digest));
        }
        if let Some(rest) = text.strip_prefix("{SSHA}") {
            let mut digest = STANDARD.decode(rest).ok().filter(|d| d.len() > 20)?;
            let salt = digest.split_off(20);
            return Some(Self::SaltedSha1 { digest, salt });
        }
        if let Some(rest) = text.strip_prefix("{PLAIN}") {
            return Some(Self::Plain(rest.to_owned()));
        }
        let (magic, rest) = md5_crypt::Magic::split(text)?;
        let (salt, hash) = rest.split_once('$')?;
        (salt.len() <= 8 && hash.len() == 22).then(|| Self::Md5Crypt {
            magic,
            salt: salt.to_owned(),
            hash: hash.to_owned(),
        })
    }

    fn verify(&self, password: &str) -> bool {
        match self {
            Self::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Self::Md5Crypt { magic, salt, hash } => {
                let computed = md5_crypt::hash(password.as_bytes(), salt.as_bytes(), *magic);
                constant_time_eq(computed.as_bytes(), hash.as_bytes())
            }
            Self::Sha1(digest) => constant_time_eq(&sha1(&[password.as_bytes()]), digest),
            Self::SaltedSha1 { digest, salt } => {
                constant_time_eq(&sha1(&[password.as_bytes(), salt]), digest)
            }
            Self::Plain(plain) => constant_time_eq(plain.as_bytes(), password.as_bytes()),
        }
    }

    fn is_slow(&self) -> bool {
        matches!(self, Self::Bcrypt(_))
    }
}

fn sha1(parts: &[&[u8]]) -> Vec<u8> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    for part in parts {
        context.update(part);
    }
    context.finish().as_ref().to_vec()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The users allowed in, with their password hashes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    users: Vec<(String, PasswordHash)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(user, _)| user.as_str()).collect();
        f.debug_struct("Credentials")
            .field("users", &users)
            .finish()
    }
}

impl Credentials {
    /// Reads an htpasswd file: one `user:hash` per line; blank lines and `#` comments are
    /// skipped. Lines that cannot be used are reported, and the others still count.
    pub fn from_htpasswd(text: &str) -> (Self, Vec<CredentialError>) {
        let mut problems = Vec::new();
        let pairs = text.lines().enumerate().filter_map(|(index, line)| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            match line.split_once(':') {
                Some((user, hash)) if !user.is_empty() => Some((user, hash)),
                _ => {
                    problems.push(CredentialError::Malformed { line: index + 1 });
                    None
                }
            }
        });
        let pairs: Vec<(&str, &str)> = pairs.collect();
        let (credentials, more) = Self::from_pairs(pairs);
        problems.extend(more);
        (credentials, problems)
    }

    /// Reads `(user, hash)` pairs, such as the keys and values of an `auth-map` Secret.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> (Self, Vec<CredentialError>) {
        let mut problems = Vec::new();
        let mut users = Vec::new();
        for (user, hash) in pairs {
            match PasswordHash::parse(hash.trim()) {
                Some(hash) => users.push((user.to_owned(), hash)),
                None => problems.push(CredentialError::UnsupportedHash {
                    user: user.to_owned(),
                }),
            }
        }
        (Self { users }, problems)
    }

    /// Whether no user can log in.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether checking `user`'s password is slow enough (bcrypt) that it should not run on
    /// the request path's thread.
    pub fn is_slow(&self, user: &str) -> bool {
        self.hash_of(user).is_some_and(PasswordHash::is_slow)
    }

    /// Whether `user` exists and `password` is theirs.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.hash_of(user).is_some_and(|hash| hash.verify(password))
    }

    /// A digest identifying `user`, `password` and the stored hash together, for remembering
    /// a slow check that succeeded; it changes when the stored hash does.
    pub fn fingerprint(&self, user: &str, password: &str) -> Option<[u8; 32]> {
        let Some(PasswordHash::Bcrypt(stored)) = self.hash_of(user) else {
            return None;
        };
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [stored.as_bytes(), user.as_bytes(), password.as_bytes()] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        context.finish().as_ref().try_into().ok()
    }

    fn hash_of(&self, user: &str) -> Option<&PasswordHash> {
        self.users
            .iter()
            .find(|(name, _)| name == user)
            .map(|(_, hash)| hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generated with Apache's `htpasswd` (-B -C 5, -s, -m) and `openssl passwd` (-apr1, -1).
    const FILE: &str = "\
# team
alice:$2y$05$F8v33s3F9xwI36YoExsWXOSTu5WXxYxL4L/xApQQ1//QpZdFDGnmO
bob:{SHA}9SMYoF5RilWWASry7TjeaKwmpGg=
carol:$apr1$s4Lee7dk$t/SSvzId5wxWP9d9ne7Mp.
dave:$apr1$saltsalt$HIDXe7D36X22w1CH4M1cQ.
erin:$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1
frank:{PLAIN}plain text

not a credential line
grace:$6$salt$unsupported
";

    #[test]
    fn every_supported_format_verifies() {
        let (credentials, problems) = Credentials::from_htpasswd(FILE);
        assert_eq!(
            problems,
            [
                CredentialError::Malformed { line: 9 },
                CredentialError::UnsupportedHash {
                    user: "grace".into()
                }
            ]
        );
        let good = [
            ("alice", "wonderland"),
            ("bob", "builder"),
            ("carol", "pa:ss"),
            ("dave", "open sesame"),
            ("erin", "secret"),
            ("frank", "plain text"),
        ];
        for (user, password) in good {
            assert!(credentials.verify(user, password), "{user}");
            assert!(!credentials.verify(user, "wrong"), "{user}");
        }
        assert!(!credentials.verify("grace", "anything"));
        assert!(!credentials.verify("nobody", "wonderland"));
        assert!(credentials.is_slow("alice"));
        assert!(!credentials.is_slow("bob"));
    }

    #[test]
    fn salted_sha_verifies() {
        let salt = b"NaCl";
        let mut stored = sha1(&[b"tide", salt]);
        stored.extend_from_slice(salt);
        let line = format!("sea:{{SSHA}}{}", STANDARD.encode(stored));
        let (credentials, problems) = Credentials::from_htpasswd(&line);
        assert!(problems.is_empty());
        assert!(credentials.verify("sea", "tide"));
        assert!(!credentials.verify("sea", "tid"));
    }

    #[test]
    fn debug_output_names_users_only() {
        let (credentials, _) = Credentials::from_htpasswd(FILE);
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("alice") && !shown.contains("$2y$"),
            "{shown}"
        );
    }
}
