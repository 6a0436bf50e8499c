//! The database: SQLite in memory behind a pool of connections, each query slowed to
//! `QUERY_TIME`, and its seed data.

use super::*;

/// A failed database query.
#[derive(Debug)]
pub(crate) enum DbError {
    /// SQLite reported an error.
    Sqlite(rusqlite::Error),
    /// The blocking task that ran the query panicked or was cancelled.
    Task(String),
    /// No connection was left in the pool (one was lost to a panic).
    PoolEmpty,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(e) => write!(f, "sqlite: {e}"),
            Self::Task(e) => write!(f, "query task failed: {e}"),
            Self::PoolEmpty => f.write_str("the connection pool is empty"),
        }
    }
}

impl std::error::Error for DbError {}

/// An in-memory SQLite database behind a small connection pool, counting the queries it runs.
#[derive(Debug)]
pub(crate) struct Database {
    /// Idle connections. A connection is taken only with a permit of `slots`, so there is one.
    pub(crate) idle: Mutex<Vec<Connection>>,
    /// One permit per connection: waiting for a permit is waiting for a free connection.
    pub(crate) slots: Arc<Semaphore>,
    /// Queries executed, incremented where the query runs.
    pub(crate) queries: AtomicU64,
    /// The deliberate cost of one query.
    pub(crate) query_time: Duration,
}

impl Database {
    /// Opens `pool_size` connections to a fresh in-memory database and seeds it.
    pub(crate) fn open(pool_size: usize, query_time: Duration) -> rusqlite::Result<Self> {
        // `memdb` with a name that starts with '/' is one in-memory database shared by every
        // connection of this process that opens the same name; the name is unique per `open`, so
        // tests running side by side get their own databases. It lives as long as a connection.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let uri = format!(
            "file:/customers-{}-{}?vfs=memdb",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut pool = Vec::with_capacity(pool_size);
        for _ in 0..pool_size.max(1) {
            let conn = Connection::open_with_flags(&uri, flags)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            pool.push(conn);
        }
        seed(&mut pool[0])?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(pool.len())),
            idle: Mutex::new(pool),
            queries: AtomicU64::new(0),
            query_time,
        })
    }

    /// Looks the customer up: waits for a free connection, then runs the (slow) query on a
    /// blocking thread.
    pub(crate) async fn customer_id(self: Arc<Self>, name: String) -> Lookup {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        let db = self.clone();
        // The permit moves into the blocking task: if this future is dropped, the connection is
        // still busy until the query ends, and nobody else may take it meanwhile.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = db
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .ok_or(DbError::PoolEmpty)?;
            let result = db.query(&conn, &name).map_err(DbError::Sqlite);
            db.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        });
        match task.await {
            Ok(result) => result.map_err(Arc::new),
            Err(e) => Err(Arc::new(DbError::Task(e.to_string()))),
        }
    }

    /// Runs the query on `conn`. This is where queries are counted.
    pub(crate) fn query(&self, conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.query_time); // stands in for a query that takes its time
        conn.prepare_cached("SELECT id FROM customers WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()
    }

    /// Queries executed so far.
    pub(crate) fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Runs `sql` on one of the pool's connections, outside the counted queries (for tests).
    #[cfg(test)]
    pub(crate) fn execute_batch(&self, sql: &str) -> rusqlite::Result<()> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle[0].execute_batch(sql)
    }
}

/// Creates the table and inserts the customers.
pub(crate) fn seed(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);",
    )?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO customers (name) VALUES (?1)")?;
        for name in KNOWN {
            insert.execute([name])?;
        }
        for i in 0..FILLER {
            insert.execute([format!("customer-{i:05}")])?;
        }
    }
    tx.commit()
}
