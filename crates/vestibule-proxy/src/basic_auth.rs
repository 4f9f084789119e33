//! HTTP basic authentication for routes whose policy asks for it.
//!
//! Checking a bcrypt hash costs tens of milliseconds of CPU, so those checks run on the
//! blocking pool, a few at a time, and a successful one is remembered (by a digest of the user,
//! password and stored hash) so that a logged-in client pays it once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use tokio::sync::Semaphore;
use vestibule_routing::BasicAuth;

/// How many slow checks run at once; more wait their turn.
const SLOW_CHECKS_AT_ONCE: usize = 2;
/// How many successful slow checks are remembered before the memory is cleared.
const REMEMBERED: usize = 10_000;

/// Checks the credentials requests present.
pub(crate) struct Authenticator {
    verified: Mutex<HashSet<[u8; 32]>>,
    slow_checks: Semaphore,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self {
            verified: Mutex::default(),
            slow_checks: Semaphore::new(SLOW_CHECKS_AT_ONCE),
        }
    }
}

impl Authenticator {
    /// Whether the request's `Authorization` names a user of `auth` with their password.
    pub async fn admits(&self, auth: &BasicAuth, headers: &HeaderMap) -> bool {
        let Some((user, password)) = presented(headers) else {
            return false;
        };
        let credentials = &auth.credentials;
        if !credentials.is_slow(&user) {
            return credentials.verify(&user, &password);
        }
        let Some(fingerprint) = credentials.fingerprint(&user, &password) else {
            return false;
        };
        if self.remembered().contains(&fingerprint) {
            return true;
        }
        let Ok(_permit) = self.slow_checks.acquire().await else {
            return false;
        };
        let credentials = Arc::clone(credentials);
        let checked =
            tokio::task::spawn_blocking(move || credentials.verify(&user, &password)).await;
        let admitted = checked.unwrap_or(false);
        if admitted {
            let mut remembered = self.remembered();
            if remembered.len() >= REMEMBERED {
                remembered.clear();
            }
            remembered.insert(fingerprint);
        }
        admitted
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The user and password of a `Basic` `Authorization` header.
fn presented(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use vestibule_htpasswd::Credentials;

    fn auth() -> BasicAuth {
        let file = "alice:$2y$05$F8v33s3F9xwI36YoExsWXOSTu5WXxYxL4L/xApQQ1//QpZdFDGnmO\nbob:{SHA}9SMYoF5RilWWASry7TjeaKwmpGg=\n";
        BasicAuth {
            realm: "r".into(),
            credentials: Arc::new(Credentials::from_htpasswd(file).0),
        }
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[tokio::test]
    async fn admits_only_matching_credentials() {
        let authenticator = Authenticator::default();
        let auth = auth();
        let basic = |text: &str| headers(&format!("Basic {}", STANDARD.encode(text)));
        assert!(authenticator.admits(&auth, &basic("bob:builder")).await);
        assert!(
            authenticator
                .admits(&auth, &basic("alice:wonderland"))
                .await
        );
        assert!(
            authenticator
                .admits(&auth, &basic("alice:wonderland"))
                .await
        );
        assert!(!authenticator.admits(&auth, &basic("alice:wrong")).await);
        assert!(!authenticator.admits(&auth, &basic("carol:x")).await);
        assert!(!authenticator.admits(&auth, &headers("Bearer abc")).await);
        assert!(!authenticator.admits(&auth, &headers("Basic %%%")).await);
        assert!(!authenticator.admits(&auth, &HeaderMap::new()).await);
        assert_eq!(authenticator.remembered().len(), 1);
    }
}
