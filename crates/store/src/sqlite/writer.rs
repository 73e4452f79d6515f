//! Group commit for SQLite: one task owns the write connection, takes every write that is
//! waiting, runs them in one `BEGIN IMMEDIATE … COMMIT`, and only then answers each caller.
//!
//! One fsync per commit caps a durable store at a few thousand commits per second; a batch
//! of concurrent writes shares that fsync. Each write runs inside its own SAVEPOINT, so a
//! write that fails is rolled back alone and its batch-mates still commit.

use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection, sqlite::SqliteConnectOptions};
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Work for the writer: runs against the connection inside the batch transaction and
/// returns what to do once the batch's commit has succeeded or failed.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Reply> + Send>;
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// By default at most this many writes share one transaction, so that one batch cannot
/// hold the write lock for long.
pub const MAX_BATCH: usize = 256;

#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// `max_batch` writes share a commit at most (1: one commit per write, the comparison
    /// the benchmarks keep).
    pub(crate) async fn start(options: SqliteConnectOptions, max_batch: usize) -> Result<Self> {
        let conn = SqliteConnection::connect_with(&options).await?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(run(conn, options, rx, max_batch.max(1)));
        Ok(Self { jobs: tx })
    }

    /// Runs `op` in the next batch and returns its result once the batch is durable.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = in_savepoint(conn, op).await;
                let reply: Reply = Box::new(move |commit| {
                    let answer = match commit {
                        Ok(()) => result,
                        Err(e) => Err(StoreError::Corrupt(format!("commit failed: {e}"))),
                    };
                    let _ = tx.send(answer);
                });
                reply
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable)?;
        rx.await.map_err(|_| StoreError::Unavailable)?
    }
}

async fn in_savepoint<T, F>(conn: &mut SqliteConnection, op: F) -> Result<T>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>>,
{
    exec(conn, "SAVEPOINT op").await?;
    let result = op(&mut *conn).await;
    if result.is_err() {
        exec(conn, "ROLLBACK TO op").await?;
    }
    exec(conn, "RELEASE op").await?;
    result
}

/// Runs one fixed statement. (`sqlx::raw_sql` would take several, but its future is not
/// `Send` for every lifetime, which the boxed jobs need.)
async fn exec(conn: &mut SqliteConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql).execute(conn).await?;
    Ok(())
}

async fn run(
    mut conn: SqliteConnection,
    options: SqliteConnectOptions,
    mut rx: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    loop {
        if rx.recv_many(&mut batch, max_batch).await == 0 {
            break; // every Writer handle is gone: shut down
        }
        let replies = run_batch(&mut conn, batch.drain(..)).await;
        let commit = match replies {
            Ok(_) => commit(&mut conn).await,
            Err(ref e) => Err(e.clone()),
        };
        if let Err(e) = &commit {
            tracing::error!(error = %e, "write batch failed; reconnecting");
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            if let Ok(fresh) = SqliteConnection::connect_with(&options).await {
                conn = fresh;
            }
        }
        for reply in replies.unwrap_or_default() {
            reply(commit.clone());
        }
    }
    let _ = conn.close().await;
}

/// Runs the jobs in one open transaction. On error (the transaction could not begin, or
/// the connection broke) every job in the batch is failed.
async fn run_batch(
    conn: &mut SqliteConnection,
    jobs: impl Iterator<Item = Job>,
) -> Result<Vec<Reply>, String> {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut replies = Vec::new();
    for job in jobs {
        replies.push(job(&mut *conn).await);
    }
    Ok(replies)
}

async fn commit(conn: &mut SqliteConnection) -> Result<(), String> {
    sqlx::query("COMMIT")
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
