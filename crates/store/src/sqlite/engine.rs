//! The SQLite engine: synchronous connections on threads of their own, so a store call
//! costs one hand-off to a thread and one wake-up back — never one per statement.
//!
//! - **The writer** owns the one write connection on a dedicated OS thread. It takes every
//!   write that is waiting (up to `max_batch`), runs them in one `BEGIN IMMEDIATE … COMMIT`
//!   with cached prepared statements, and only after the commit answers each caller
//!   (group commit: one fsync shared by the batch). Each write runs inside its own
//!   `SAVEPOINT`, so a write that fails is rolled back alone and its batch-mates commit.
//! - **Readers**: a few threads, each with its own read connection (WAL lets them read
//!   beside the writer, each statement on one snapshot), take read jobs from one queue.
//! - **The checkpointer** copies committed pages from the WAL into the database file (and
//!   syncs it) on a thread and connection of its own, every [`CHECKPOINT_EVERY`]. SQLite's
//!   own checkpoint still runs on the writer's thread when a commit crosses 1,000 WAL pages
//!   (it is what lets the next write start the WAL over, keeping it small), but by then the
//!   checkpointer has copied nearly every page, so the writes queued behind it wait for
//!   the last few milliseconds' pages instead of all 1,000.
//!
//! Every connection: WAL, `synchronous=FULL`, foreign keys on, a 10 s busy timeout.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// By default at most this many writes share one transaction, so that one batch cannot
/// hold the write lock for long.
pub const MAX_BATCH: usize = 256;

/// Read connections (and threads). Reads are short indexed lookups; two cores gain nothing
/// from more.
const READERS: usize = 4;

/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write: runs inside the batch transaction (in its savepoint) and returns what to tell
/// its caller once the commit has succeeded or failed.
type WriteJob = Box<dyn FnOnce(&Connection) -> Reply + Send>;
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

#[derive(Debug, Clone)]
pub(crate) struct Engine {
    writes: tokio::sync::mpsc::Sender<WriteJob>,
    reads: mpsc::Sender<ReadJob>,
    path: Arc<PathBuf>,
    /// Dropped with the last handle, which stops the checkpointer.
    _checkpoints: mpsc::Sender<()>,
}

/// Opens a connection configured as every connection of the store is.
pub(crate) fn connect(path: &Path) -> Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(10))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "foreign_keys", true)?;
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(c)
}

impl Engine {
    /// Starts the writer and the readers on the database at `path` (which must exist and
    /// be migrated). `max_batch` writes share a commit at most (1: one commit per write,
    /// the comparison the benchmarks keep).
    pub(crate) fn start(path: &Path, max_batch: usize) -> Result<Self> {
        let writer = connect(path)?;
        let (writes, write_queue) = tokio::sync::mpsc::channel::<WriteJob>(4096);
        let owned = path.to_owned();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(writer, &owned, write_queue, max_batch.max(1)))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        let (reads, read_queue) = mpsc::channel::<ReadJob>();
        let read_queue = Arc::new(Mutex::new(read_queue));
        for i in 0..READERS {
            let connection = connect(path)?;
            let queue = read_queue.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-reader-{i}"))
                .spawn(move || read_loop(&connection, &queue))
                .map_err(|e| StoreError::Corrupt(format!("cannot start a reader thread: {e}")))?;
        }
        let checkpointer = connect(path)?;
        let (checkpoints, stop) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &stop))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            writes,
            reads,
            path: Arc::new(path.to_owned()),
            _checkpoints: checkpoints,
        })
    }

    /// The database file (for tools that open a connection of their own).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `op` in the next batch and returns its result once the batch is durable.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: WriteJob = Box::new(move |c| {
            let result = in_savepoint(c, op);
            Box::new(move |commit| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
                };
                let _ = tx.send(answer);
            })
        });
        self.writes
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable)?;
        rx.await.map_err(|_| StoreError::Unavailable)?
    }

    /// Runs `op` on a read connection.
    pub(crate) async fn read<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: ReadJob = Box::new(move |c| {
            let _ = tx.send(op(c));
        });
        self.reads.send(job).map_err(|_| StoreError::Unavailable)?;
        rx.await.map_err(|_| StoreError::Unavailable)?
    }
}

/// Runs one statement without parameters from the statement cache (`execute_batch` would
/// parse it again each time: twice per write, twice per batch).
fn run(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    c.prepare_cached(sql)?.execute([]).map(drop)
}

fn in_savepoint<T>(c: &Connection, op: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    run(c, "SAVEPOINT op")?;
    let result = op(c);
    if result.is_err() {
        run(c, "ROLLBACK TO op")?;
    }
    run(c, "RELEASE op")?;
    result
}

fn write_loop(
    mut c: Connection,
    path: &Path,
    mut queue: tokio::sync::mpsc::Receiver<WriteJob>,
    max_batch: usize,
) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(max_batch);
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (replies, commit) = match run(&c, "BEGIN IMMEDIATE") {
            Ok(()) => {
                let replies: Vec<Reply> = batch.drain(..).map(|job| job(&c)).collect();
                let commit = run(&c, "COMMIT").map_err(|e| e.to_string());
                (replies, commit)
            }
            Err(e) => {
                // Nothing ran: dropping the jobs answers every caller `Unavailable`.
                batch.clear();
                (Vec::new(), Err(e.to_string()))
            }
        };
        if let Err(e) = &commit {
            tracing::error!(error = %e, "write batch failed; reconnecting");
            let _ = c.execute_batch("ROLLBACK");
            if let Ok(fresh) = connect(path) {
                c = fresh;
            }
        }
        for reply in replies {
            reply(commit.clone());
        }
    }
}

/// Checkpoints (PASSIVE: never waits for readers or the writer) until the store is gone.
fn checkpoint_loop(c: &Connection, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let done = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        });
        if let Err(e) = done {
            tracing::warn!(error = %e, "WAL checkpoint failed; the writer's own checkpoint does it");
        }
    }
}

fn read_loop(c: &Connection, queue: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let job = {
            let queue = queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.recv()
        };
        match job {
            Ok(job) => job(c),
            Err(_) => return, // the store is gone
        }
    }
}
