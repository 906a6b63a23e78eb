//! A keyed, single-flight memo: concurrent callers for one key share one fetch; a
//! successful value is kept forever or until its time-to-live passes; a failed fetch is
//! not kept, so the next caller tries again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::clock::Clock;

type Slot<V> = Arc<OnceCell<(V, Instant)>>;

pub(crate) struct Memo<K, V> {
    slots: Mutex<HashMap<K, Slot<V>>>,
    /// `None`: values never expire (digest-addressed content).
    ttl: Option<Duration>,
}

impl<K: Hash + Eq + Clone, V: Clone> Memo<K, V> {
    pub fn new(ttl: Option<Duration>) -> Self {
        Memo {
            slots: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn slot(&self, key: &K, now: Instant) -> Slot<V> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = slots.entry(key.clone()).or_default();
        if let (Some(ttl), Some((_, at))) = (self.ttl, slot.get()) {
            if now.saturating_duration_since(*at) >= ttl {
                *slot = Arc::default();
            }
        }
        slot.clone()
    }

    /// The value for `key`, fetched with `init` unless a fresh one is kept.
    pub async fn get<E, F, Fut>(&self, key: &K, clock: &dyn Clock, init: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self.slot(key, clock.now());
        let (value, _) = slot
            .get_or_try_init(|| async {
                let v = init().await?;
                Ok::<_, E>((v, clock.now()))
            })
            .await?;
        Ok(value.clone())
    }

    /// Stores `value` unless a fresh value is already kept.
    pub fn offer(&self, key: &K, value: V, clock: &dyn Clock) {
        let now = clock.now();
        let _ = self.slot(key, now).set((value, now));
    }

    /// The kept value, if any and fresh.
    pub fn peek(&self, key: &K, clock: &dyn Clock) -> Option<V> {
        self.slot(key, clock.now()).get().map(|(v, _)| v.clone())
    }

    /// Number of keys with a value.
    pub fn len(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.values().filter(|s| s.initialized()).count()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::clock::ManualClock;
    use super::*;

    #[tokio::test]
    async fn single_flight_expiry_and_errors_not_kept() {
        let clock = ManualClock::new();
        let memo: Memo<&str, usize> = Memo::new(Some(Duration::from_secs(10)));
        let calls = AtomicUsize::new(0);
        let fetch = || async {
            tokio::task::yield_now().await;
            Ok::<_, ()>(calls.fetch_add(1, Ordering::SeqCst))
        };
        let (a, b) = tokio::join!(memo.get(&"k", &clock, fetch), memo.get(&"k", &clock, fetch));
        assert_eq!((a, b), (Ok(0), Ok(0)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(9));
        assert_eq!(memo.get(&"k", &clock, fetch).await, Ok(0));
        clock.advance(Duration::from_secs(1));
        assert_eq!(memo.get(&"k", &clock, fetch).await, Ok(1));

        let failing = || async { Err::<usize, _>("down") };
        assert_eq!(memo.get(&"e", &clock, failing).await, Err("down"));
        assert_eq!(memo.peek(&"e", &clock), None);
        assert_eq!(memo.get(&"e", &clock, fetch).await, Ok(2));
        memo.offer(&"o", 7, &clock);
        memo.offer(&"o", 8, &clock);
        assert_eq!(memo.peek(&"o", &clock), Some(7));
        assert_eq!(memo.len(), 3);
    }
}
