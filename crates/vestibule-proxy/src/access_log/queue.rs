//! Lines waiting for the writer task: one shared buffer that requests append to and the task
//! swaps out and writes whole, so a line costs a copy, not an allocation or a message, and
//! lines are written in batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::sync::Notify;

/// Bytes waiting to be written; past this, lines are dropped rather than slow requests down.
const MOST_PENDING: usize = 8 * 1024 * 1024;

/// How long the writer lets lines gather after the first of a batch, so that it writes (and
/// wakes the blocking pool that writes stdout) once per interval rather than once per request.
const GATHERING: Duration = Duration::from_millis(5);

/// The writer task's buffer keeps at most this much capacity between batches.
const KEPT_CAPACITY: usize = 256 * 1024;

/// Lines on their way to stdout.
#[derive(Debug)]
pub(super) struct LineQueue {
    pending: Mutex<Vec<u8>>,
    ready: Notify,
    closed: AtomicBool,
}

impl LineQueue {
    /// A queue, and the task that writes it to stdout until writing fails.
    pub fn start() -> Arc<Self> {
        let queue = Arc::new(Self {
            pending: Mutex::new(Vec::new()),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(queue.clone().write_to(tokio::io::stdout()));
        queue
    }

    /// Whether the writer has stopped, so lines are no longer wanted.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Appends whole lines; false when they were dropped because too much is waiting.
    pub fn push(&self, lines: &[u8]) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() + lines.len() > MOST_PENDING {
            return false;
        }
        let was_empty = pending.is_empty();
        pending.extend_from_slice(lines);
        drop(pending);
        // The writer empties the whole buffer each time, so only the first line needs to wake
        // it; a wake-up before it waits is kept for it.
        if was_empty {
            self.ready.notify_one();
        }
        true
    }

    async fn write_to<W: tokio::io::AsyncWrite + Unpin>(self: Arc<Self>, mut out: W) {
        let mut batch = Vec::new();
        loop {
            self.ready.notified().await;
            tokio::time::sleep(GATHERING).await;
            std::mem::swap(
                &mut batch,
                &mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner),
            );
            if batch.is_empty() {
                continue;
            }
            if out.write_all(&batch).await.is_err() || out.flush().await.is_err() {
                self.closed.store(true, Ordering::Relaxed);
                return;
            }
            batch.clear();
            batch.shrink_to(KEPT_CAPACITY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    fn queue() -> Arc<LineQueue> {
        Arc::new(LineQueue {
            pending: Mutex::new(Vec::new()),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
        })
    }

    #[tokio::test]
    async fn lines_reach_the_writer_in_order() {
        let queue = queue();
        let (out, mut read) = tokio::io::duplex(1024);
        tokio::spawn(queue.clone().write_to(out));
        assert!(queue.push(b"one\n"));
        assert!(queue.push(b"two\n"));
        let mut text = vec![0; 8];
        read.read_exact(&mut text).await.expect("read");
        assert!(queue.push(b"three\n"));
        let mut more = vec![0; 6];
        read.read_exact(&mut more).await.expect("read");
        assert_eq!([text, more].concat(), b"one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn lines_past_the_bound_are_dropped_and_a_failed_writer_closes() {
        let queue = queue();
        assert!(queue.push(&vec![b'x'; MOST_PENDING]));
        assert!(!queue.push(b"dropped\n"));
        let (out, read) = tokio::io::duplex(16);
        drop(read);
        assert!(!queue.closed());
        queue.clone().write_to(out).await;
        assert!(queue.closed());
    }
}
