//! The registry of open long-lived admissions: every upgrade tunnel and
//! every open-ended response body, each with what its admission needs to
//! be run again (the caller's credentials, host and path) and a
//! cancellation flag. Only long-lived things touch it; an entry leaves it
//! when its [`Registration`] is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};

use super::Generation;

/// The request's credentials, as recognition reads them: the `Cookie`
/// field that carries the session cookie and the `Authorization` value.
/// Secrets: kept in memory only, never printed.
#[derive(Clone, Default)]
pub struct Credentials {
    cookie: Option<HeaderValue>,
    authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

impl Credentials {
    /// Takes the credentials from a request's headers. Header values share
    /// the request's buffer: this copies no bytes.
    pub fn capture(headers: &HeaderMap, cookie_name: Option<&str>) -> Self {
        let mut fields = headers.get_all(COOKIE).iter();
        let cookie = match (fields.next(), fields.next()) {
            // The usual case (HTTP/1.1): one field, kept whole, unread.
            (Some(only), None) => cookie_name.map(|_| only.clone()),
            // Several fields (HTTP/2 splits cookies): the one with ours.
            _ => cookie_name.and_then(|name| {
                headers
                    .get_all(COOKIE)
                    .iter()
                    .find(|value| names_cookie(value.as_bytes(), name.as_bytes()))
                    .cloned()
            }),
        };
        Self {
            cookie,
            authorization: headers.get(AUTHORIZATION).cloned(),
        }
    }

    /// The headers to recognise the caller from again.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(2);
        if let Some(cookie) = &self.cookie {
            headers.insert(COOKIE, cookie.clone());
        }
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        headers
    }
}

/// Whether a `Cookie` field has a pair named `name`.
fn names_cookie(field: &[u8], name: &[u8]) -> bool {
    field.split(|b| *b == b';').any(|pair| {
        let pair = pair.trim_ascii();
        pair.iter()
            .position(|b| *b == b'=')
            .is_some_and(|eq| pair[..eq].trim_ascii() == name)
    })
}

/// One open long-lived admission.
pub struct Entry {
    pub credentials: Credentials,
    /// The request's host (canonical form), for routing it again.
    pub host: Option<String>,
    /// The normalised request path.
    pub path: String,
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    /// Ends what this admission let through (the tunnel or the body).
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        let waker = self
            .waker
            .lock()
            .map(|mut w| w.take())
            .unwrap_or_else(|p| p.into_inner().take());
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_cancelled() {
            return Poll::Ready(());
        }
        if let Ok(mut waker) = self.waker.lock() {
            match waker.as_mut() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *waker = Some(cx.waker().clone()),
            }
        }
        // Checked again: a cancel between the first check and storing the
        // waker would otherwise be missed.
        if self.is_cancelled() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// The open long-lived admissions of this process (it outlives reloads).
pub struct Registry {
    entries: Arc<Mutex<HashMap<u64, Arc<Entry>>>>,
    next: AtomicU64,
    generation: Generation,
}

impl Registry {
    pub fn new(generation: Generation) -> Self {
        Self {
            entries: Arc::new(Mutex::new(HashMap::new())),
            next: AtomicU64::new(0),
            generation,
        }
    }

    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// Registers an admission taken under access generation
    /// `admitted_under`. If the generation moved on since, the watcher may
    /// have looked before this entry existed: it is woken to look again.
    pub fn register(
        &self,
        credentials: Credentials,
        host: Option<String>,
        path: String,
        admitted_under: u64,
    ) -> Registration {
        let entry = Arc::new(Entry {
            credentials,
            host,
            path,
            cancelled: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&entry));
        if self.generation.current() != admitted_under {
            self.generation.bump();
        }
        Registration {
            entry,
            id,
            entries: Arc::downgrade(&self.entries),
        }
    }

    /// The entries open now (a copy: checking them takes no lock).
    pub fn snapshot(&self) -> Vec<Arc<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A long-lived thing's place in the registry; dropping it leaves.
pub struct Registration {
    entry: Arc<Entry>,
    id: u64,
    entries: Weak<Mutex<HashMap<u64, Arc<Entry>>>>,
}

impl Registration {
    /// Ready once the admission no longer holds.
    pub fn poll_cancelled(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.entry.poll_cancelled(cx)
    }

    /// Resolves once the admission no longer holds.
    pub fn cancelled(&self) -> Cancelled<'_> {
        Cancelled(self)
    }
}

/// See [`Registration::cancelled`].
pub struct Cancelled<'a>(&'a Registration);

impl std::future::Future for Cancelled<'_> {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_cancelled(cx)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(entries) = self.entries.upgrade() {
            entries.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_only_the_session_cookie_field() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1"));
        headers.append(COOKIE, HeaderValue::from_static("b=2; dw = sealed"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let again = Credentials::capture(&headers, Some("dw")).headers();
        assert_eq!(again.get(COOKIE), Some(&HeaderValue::from_static("b=2; dw = sealed")));
        assert_eq!(again.get(AUTHORIZATION), Some(&HeaderValue::from_static("Bearer t")));
        assert!(Credentials::capture(&headers, Some("d"))
            .headers()
            .get(COOKIE)
            .is_none());
        assert_eq!(
            format!("{:?}", Credentials::capture(&headers, None)),
            "Credentials([redacted])"
        );
    }

    #[tokio::test]
    async fn entries_leave_on_drop_and_wake_on_cancel() {
        let registry = Registry::new(Generation::new());
        let registration = registry.register(Credentials::default(), None, "/".into(), 0);
        assert_eq!(registry.len(), 1);
        let entry = registry.snapshot().pop().expect("an entry");
        let waiting = tokio::spawn(async move {
            registration.cancelled().await;
        });
        tokio::task::yield_now().await;
        entry.cancel();
        waiting.await.expect("woken");
        assert!(registry.is_empty());
    }

    #[test]
    fn a_late_registration_wakes_the_watcher() {
        let registry = Registry::new(Generation::new());
        let mut woken = registry.generation().subscribe();
        let _fresh = registry.register(Credentials::default(), None, "/".into(), 0);
        assert!(!woken.has_changed().unwrap_or(true));
        registry.generation().bump();
        woken.borrow_and_update();
        let _late = registry.register(Credentials::default(), None, "/".into(), 0);
        assert!(woken.has_changed().unwrap_or(false));
    }
}
