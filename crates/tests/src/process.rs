//! Running the real `scorekeeper` binary against one test's databases,
//! through the one launcher (`scorekeeper-testbed`'s [`Serve`]), and
//! talking to its HTTP port.

use std::path::PathBuf;

pub use scorekeeper_testbed::loopback::http_get;
pub use scorekeeper_testbed::serve::{Serve, ServeProcess};

use crate::TestEnv;

/// `<binary> serve` on this test's Postgres and ClickHouse databases, with
/// all its parts, quiet but for warnings, killed when dropped, and with
/// none of the scheduler settings of the environment the tests run in; the
/// dispatcher polls every 100 ms so that tests need not wait long. Callers
/// add what they need and spawn it.
pub fn serve(binary: impl Into<PathBuf>, env: &TestEnv) -> Serve {
    let clickhouse = env.clickhouse_config();
    Serve::new(binary)
        .postgres(&env.database_url())
        .clickhouse(&clickhouse.url, &clickhouse.database, &clickhouse.user, &clickhouse.password)
        .env("OUTBOX_POLL_MS", "100")
}
