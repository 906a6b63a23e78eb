//! Work that outlives its callers: the first caller for a key starts a task, every
//! caller for that key waits on the same task, and a caller that gives up (a request
//! past its deadline) leaves the task running for the next one. A result is kept for
//! later callers when asked (`keep`); a failure never is, so the next caller tries
//! again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::error::{FsError, FsResult};

type Task<V> = Shared<BoxFuture<'static, FsResult<V>>>;

pub(crate) struct Flights<K, V: Clone> {
    tasks: Mutex<HashMap<K, Task<V>>>,
    keep: bool,
}

impl<K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Flights<K, V> {
    pub fn new(keep: bool) -> Self {
        Flights {
            tasks: Mutex::new(HashMap::new()),
            keep,
        }
    }

    /// The result of the task for `key`, started with `start` (on the current Tokio
    /// runtime) unless one runs or a kept result exists.
    pub async fn run<F, Fut>(&self, key: &K, start: F) -> FsResult<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = FsResult<V>> + Send + 'static,
    {
        let task = {
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            tasks
                .entry(key.clone())
                .or_insert_with(|| {
                    let handle = tokio::spawn(start());
                    async move {
                        handle
                            .await
                            .unwrap_or_else(|e| Err(FsError::io(format!("a task failed: {e}"))))
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        let result = task.clone().await;
        if result.is_err() || !self.keep {
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            if tasks.get(key).is_some_and(|t| t.ptr_eq(&task)) {
                tasks.remove(key);
            }
        }
        result
    }

    /// Keys with a kept result.
    pub fn kept(&self) -> usize {
        let tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.values().filter(|t| t.peek().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_task_per_key_that_outlives_a_caller_who_gives_up() {
        let flights: Arc<Flights<&str, usize>> = Arc::new(Flights::new(true));
        let runs = Arc::new(AtomicUsize::new(0));
        let start = |runs: Arc<AtomicUsize>| {
            move || async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(runs.fetch_add(1, Ordering::SeqCst))
            }
        };
        // A caller that gives up early does not stop the task.
        let quick = tokio::time::timeout(
            Duration::from_millis(5),
            flights.run(&"k", start(runs.clone())),
        )
        .await;
        assert!(quick.is_err());
        let (a, b) = tokio::join!(
            flights.run(&"k", start(runs.clone())),
            flights.run(&"k", start(runs.clone()))
        );
        assert_eq!((a, b), (Ok(0), Ok(0)));
        assert_eq!(flights.run(&"k", start(runs.clone())).await, Ok(0));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.kept(), 1);

        // Failures are not kept.
        let fail = || async { Err::<usize, _>(FsError::io("down")) };
        assert!(flights.run(&"e", fail).await.is_err());
        assert_eq!(flights.run(&"e", start(runs.clone())).await, Ok(1));
    }
}
