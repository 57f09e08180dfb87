//! The scoring pool: AutoQA's CPU work runs on at most `threads` blocking
//! threads at once, never on the async runtime's workers, which serve every
//! tenant's calls, health checks, the outbox and job heartbeats.
//!
//! A permit of a FIFO semaphore is held for one slice of work (see
//! `score::SLICE`), so concurrent calls take turns slice by slice.

use std::sync::Arc;

use tokio::sync::Semaphore;

#[derive(Clone, Debug)]
pub struct ScoringPool {
    permits: Arc<Semaphore>,
    threads: usize,
}

impl ScoringPool {
    /// A pool running at most `threads` (at least 1) pieces of work at once.
    pub fn new(threads: usize) -> ScoringPool {
        let threads = threads.max(1);
        ScoringPool { permits: Arc::new(Semaphore::new(threads)), threads }
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `work` on a blocking thread once one of the pool's permits is
    /// free, and returns its result. A panic in `work` is resumed here.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let permit =
            self.permits.clone().acquire_owned().await.expect("the pool's semaphore is never closed");
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await;
        match done {
            Ok(value) => value,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_than_threads_at_once() {
        let pool = ScoringPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
