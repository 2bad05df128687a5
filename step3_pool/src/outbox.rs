//! One client's outbox: the bounded queue between the room, which fills it, and the client's
//! writer thread, which empties it into the socket.
//!
//! It is an `mpsc::sync_channel` of *batches* (a `Vec` of lines each), not of lines: the room
//! hands a writer everything one round produced for it in one `try_send`, so the writer is
//! woken once per round, not once per line. A channel bounded in batches does not bound the
//! lines, so the outbox also counts them:
//! - `pending`: lines the room has queued but not yet handed over (the channel was full);
//! - `queued`: lines handed over that the writer has not yet given to the kernel. The room adds
//!   to it before each `try_send`, the writer subtracts once a write has taken the lines.
//!
//! `backlog()` is the sum of the two: every line the server still holds for this client. The
//! room never lets it pass `SOFT` (see `room.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvError, SyncSender, TryRecvError, TrySendError};

use crate::connection::Line;

/// What one `try_send` carries: the lines of one round, in the room's order.
pub type Batch = Vec<Line>;

/// Batches the channel holds. The writer takes all of them each time it wakes up, so a few are
/// enough; when they are all taken, lines wait in `pending` (counted the same way).
const BATCHES: usize = 4;

/// The room's end.
pub struct Outbox {
    batches: SyncSender<Batch>,
    pending: Batch,
    queued: Arc<AtomicUsize>,
}

/// The writer's end.
pub struct WriterEnd {
    batches: Receiver<Batch>,
    queued: Arc<AtomicUsize>,
}

/// The writer is gone (its client was cut or its socket failed): nobody will take the lines.
pub struct WriterGone;

/// A new, empty outbox: the room's end and the writer's.
pub fn outbox() -> (Outbox, WriterEnd) {
    let (sender, receiver) = mpsc::sync_channel(BATCHES);
    let queued = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        batches: sender,
        pending: Vec::new(),
        queued: Arc::clone(&queued),
    };
    let writer_end = WriterEnd {
        batches: receiver,
        queued,
    };
    (outbox, writer_end)
}

impl Outbox {
    /// Queues one line; it leaves with the next `flush`.
    pub fn push(&mut self, line: Line) {
        self.pending.push(line);
    }

    /// Lines the server holds for this client: not yet handed over, or not yet written.
    pub fn backlog(&self) -> usize {
        self.pending.len() + self.queued.load(Ordering::Acquire)
    }

    /// Nothing waits in `pending`.
    pub fn is_flushed(&self) -> bool {
        self.pending.is_empty()
    }

    /// Hands the pending lines to the writer as one batch, if the channel has room; never
    /// blocks. If it has no room, the lines stay pending for the next try.
    pub fn flush(&mut self) -> Result<(), WriterGone> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let lines = self.pending.len();
        // Counted before the send: the writer may take the batch and subtract at once.
        self.queued.fetch_add(lines, Ordering::AcqRel);
        match self.batches.try_send(std::mem::take(&mut self.pending)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(batch)) => {
                self.queued.fetch_sub(lines, Ordering::AcqRel);
                self.pending = batch;
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(WriterGone),
        }
    }
}

impl Outbox {
    /// A second way into the writer's channel, for the acceptor: if the reader that should
    /// take this outbox to the room cannot start, the acceptor sends the refusal through it.
    pub fn writer_handle(&self) -> SyncSender<Batch> {
        self.batches.clone()
    }
}

impl WriterEnd {
    /// The next batch, sleeping until one comes. `Err`: the room dropped the outbox and every
    /// batch has been taken.
    pub fn recv(&self) -> Result<Batch, RecvError> {
        self.batches.recv()
    }

    /// The next batch if one is already waiting.
    pub fn try_recv(&self) -> Result<Batch, TryRecvError> {
        self.batches.try_recv()
    }

    /// The writer gave `lines` lines to the kernel: the room may queue that many more.
    pub fn written(&self, lines: usize) {
        self.queued.fetch_sub(lines, Ordering::AcqRel);
    }
}
