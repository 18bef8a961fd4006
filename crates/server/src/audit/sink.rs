//! The audit writer.
//!
//! A request serialises its record into a buffer of its own thread, then appends the line to
//! one shared batch under a short lock. A single writer thread takes the whole batch at once
//! and writes it with blocking I/O. Requests never wait on the disk, and a busy gateway pays
//! one write and one wake-up per batch, not per record: the writer wakes when the first line
//! of a batch arrives, waits up to [`BATCH_WINDOW`] for more (or until the batch reaches
//! [`WRITE_AT_BYTES`]), and writes.
//!
//! What waits is bounded ([`MAX_PENDING_BYTES`], the batch gathering plus the one being
//! written). A record that does not fit, or that a failed write loses, is counted in
//! [`AuditSink::dropped`] and reported in the diagnostic log (a failed write counts every record
//! of its batch, even if part of it reached the output). [`AuditSink::flush`] waits until every
//! record queued before it is written; the gateway calls it when it shuts down, and the writer
//! also writes what is left when the last sink is dropped. Both give up after
//! [`FLUSH_TIMEOUT`] on an output that takes nothing, so a stuck disk cannot hang shutdown.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::AuditRecord;
use crate::config::AuditOutput;

/// How long the writer lets a batch gather after its first record.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

/// A batch this large is written at once.
const WRITE_AT_BYTES: usize = 256 * 1024;

/// Most serialised bytes that may wait for the output, gathering or being written; beyond,
/// records are dropped and counted.
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// The longest [`AuditSink::flush`], or the drop of the last sink, waits for a stuck output.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// A buffer kept between batches is trimmed back to this size.
const KEEP_CAPACITY: usize = 1024 * 1024;

thread_local! {
    /// Each thread's scratch line, reused so a record costs no allocation once warm.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The sending half of the audit stream; cheap to clone. The writer thread stops, after
/// writing what is queued, when the last clone is dropped.
#[derive(Clone)]
pub struct AuditSink {
    shared: Arc<Shared>,
    _writer: Arc<WriterHandle>,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the writer has work: a first line, a full batch, a flush, the end.
    work: Condvar,
    /// Signalled when the writer has written a batch.
    written: Condvar,
    dropped: AtomicU64,
    max_pending: usize,
    flush_timeout: Duration,
}

#[derive(Default)]
struct State {
    batch: Vec<u8>,
    /// Records appended since start-up; the batch holds the last `queued - taken` of them.
    queued: u64,
    /// Records the writer has taken (and written, or counted as lost).
    taken: u64,
    /// Records the writer has finished with.
    done: u64,
    /// Bytes of the batch the writer is writing now.
    in_flight: usize,
    /// A flush is waiting: write without waiting for the batch to gather.
    urgent: bool,
    closing: bool,
    /// The writer thread has finished.
    exited: bool,
}

/// Stops the writer when the last sink goes.
struct WriterHandle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.closing = true;
        self.shared.work.notify_one();
        let (state, timeout) = self
            .shared
            .written
            .wait_timeout_while(state, self.shared.flush_timeout, |state| !state.exited)
            .unwrap_or_else(PoisonError::into_inner);
        let left = state.queued - state.done;
        drop(state);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if timeout.timed_out() {
            // The output takes nothing: leave the thread behind rather than hang.
            tracing::error!(audit.waiting = left, "Audit output stuck at shutdown");
        } else if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl AuditSink {
    /// Opens the output and starts the writer thread.
    pub async fn open(output: &AuditOutput) -> std::io::Result<AuditSink> {
        let writer: Box<dyn Write + Send> = match output {
            AuditOutput::Stdout => Box::new(std::io::stdout()),
            AuditOutput::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        Self::start(writer, MAX_PENDING_BYTES, FLUSH_TIMEOUT)
    }

    fn start(
        writer: Box<dyn Write + Send>,
        max_pending: usize,
        flush_timeout: Duration,
    ) -> std::io::Result<AuditSink> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            written: Condvar::new(),
            dropped: AtomicU64::new(0),
            max_pending,
            flush_timeout,
        });
        let thread = std::thread::Builder::new()
            .name("cosmogate-audit".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || write_batches(&shared, writer)
            })?;
        Ok(AuditSink {
            _writer: Arc::new(WriterHandle {
                shared: Arc::clone(&shared),
                thread: Mutex::new(Some(thread)),
            }),
            shared,
        })
    }

    /// Records dropped since start-up: the queue was full, or the output failed.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Queues one record. Never waits for the output.
    pub fn record(&self, record: &AuditRecord) {
        LINE.with(|line| {
            // A record serialised while another is being appended on the same thread cannot
            // happen (nothing here re-enters), but a fresh buffer is the safe answer if it did.
            match line.try_borrow_mut() {
                Ok(mut line) => self.append(record, &mut line),
                Err(_) => self.append(record, &mut Vec::new()),
            }
        });
    }

    fn append(&self, record: &AuditRecord, line: &mut Vec<u8>) {
        line.clear();
        super::write_line(record, line);
        let mut state = lock(&self.shared.state);
        if state.batch.len() + state.in_flight + line.len() > self.shared.max_pending {
            drop(state);
            let dropped = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(audit.dropped = dropped, "Audit queue full, record dropped");
            return;
        }
        let first = state.batch.is_empty();
        state.batch.extend_from_slice(line);
        state.queued += 1;
        let full = state.batch.len() >= WRITE_AT_BYTES;
        drop(state);
        if first || full {
            self.shared.work.notify_one();
        }
        if line.capacity() > KEEP_CAPACITY {
            *line = Vec::new();
        }
    }

    /// Waits until every record queued before the call has been written (or counted as lost),
    /// for at most [`FLUSH_TIMEOUT`]. Blocks the calling thread.
    pub fn flush(&self) {
        let mut state = lock(&self.shared.state);
        let target = state.queued;
        if state.done >= target {
            return;
        }
        state.urgent = true;
        self.shared.work.notify_one();
        let (state, timeout) = self
            .shared
            .written
            .wait_timeout_while(state, self.shared.flush_timeout, |state| {
                state.done < target
            })
            .unwrap_or_else(PoisonError::into_inner);
        if timeout.timed_out() {
            let waiting = target.saturating_sub(state.done);
            tracing::error!(
                audit.waiting = waiting,
                "Audit output did not take the queued records in time"
            );
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The lock is never held across anything that can panic; a poisoned one is still sound.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The writer thread: takes whole batches and writes them until the last sink is dropped.
fn write_batches(shared: &Shared, mut writer: Box<dyn Write + Send>) {
    let mut spare = Vec::new();
    loop {
        let mut state = lock(&shared.state);
        while state.batch.is_empty() && !state.closing && !state.urgent {
            state = shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if !state.closing && !state.urgent && state.batch.len() < WRITE_AT_BYTES {
            // Let the batch gather; a flush, the end or a full batch cuts the wait short.
            state = shared
                .work
                .wait_timeout_while(state, BATCH_WINDOW, |state| {
                    !state.closing && !state.urgent && state.batch.len() < WRITE_AT_BYTES
                })
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        std::mem::swap(&mut state.batch, &mut spare);
        state.in_flight = spare.len();
        let records = state.queued - state.taken;
        state.taken = state.queued;
        state.urgent = false;
        let closing = state.closing;
        drop(state);

        if !spare.is_empty()
            && let Err(err) = writer.write_all(&spare).and_then(|()| writer.flush())
        {
            let dropped = shared.dropped.fetch_add(records, Ordering::Relaxed) + records;
            tracing::error!(error = %err, audit.dropped = dropped, "Audit write failed");
        }
        spare.clear();
        if spare.capacity() > KEEP_CAPACITY {
            spare = Vec::new();
        }

        let mut state = lock(&shared.state);
        state.done += records;
        state.in_flight = 0;
        let finished = closing && state.batch.is_empty();
        state.exited = finished;
        drop(state);
        shared.written.notify_all();
        if finished {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
