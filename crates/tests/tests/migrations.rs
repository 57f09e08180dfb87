//! The Postgres schema's two migration sets on a real server: the store's
//! and the job engine's, each with its own history. A database migrated
//! before the job engine had its own set (the job tables recorded as the
//! store's V2–V4) migrates without error, changed by nothing but the job
//! set's later versions (V4: the pages column), and ends with the same
//! schema as a fresh database.

use refinery::{Migration, Runner};
use scorekeeper_jobs::{JobStore, migrate_postgres};
use scorekeeper_store::Store;
use scorekeeper_tests::TestEnv;
use scorekeeper_tests::env::Options;
use tokio_postgres::NoTls;

/// The store's history as it was before the job tables moved: V2–V4 were
/// the job engine's files of today, under their old numbers and names.
fn history_before_the_move() -> Vec<Migration> {
    let files = [
        ("V1__initial", include_str!("../../store/migrations/V1__initial.sql")),
        ("V2__jobs", include_str!("../../jobs/migrations/V1__jobs.sql")),
        ("V3__schedules", include_str!("../../jobs/migrations/V2__schedules.sql")),
        ("V4__activity_estimates", include_str!("../../jobs/migrations/V3__activity_estimates.sql")),
        (
            "V5__outbox_announced_after_commit",
            include_str!("../../store/migrations/V5__outbox_announced_after_commit.sql"),
        ),
        ("V6__audit_statistics", include_str!("../../store/migrations/V6__audit_statistics.sql")),
        ("V7__audit_hour_statistics", include_str!("../../store/migrations/V7__audit_hour_statistics.sql")),
    ];
    files.iter().map(|(name, sql)| Migration::unapplied(name, sql).expect("a migration")).collect()
}

/// Every column, index, constraint, trigger and function of the schema,
/// history tables left out, as sorted lines.
async fn schema(store: &Store) -> Vec<String> {
    let client = store.pool().get().await.expect("a Postgres connection");
    let rows = client
        .query(
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
                    || is_nullable || ' ' || coalesce(column_default, '') AS line
             FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name NOT LIKE 'refinery_schema_history%'
             UNION ALL
             SELECT 'index ' || indexdef FROM pg_indexes
             WHERE schemaname = 'public' AND tablename NOT LIKE 'refinery_schema_history%'
             UNION ALL
             SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
             FROM pg_constraint
             WHERE connamespace = 'public'::regnamespace
               AND conrelid::regclass::text NOT LIKE 'refinery_schema_history%'
             UNION ALL
             SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
             UNION ALL
             SELECT 'function ' || proname || ' ' || md5(prosrc) FROM pg_proc
             WHERE pronamespace = 'public'::regnamespace
             ORDER BY 1",
            &[],
        )
        .await
        .expect("reading the catalog");
    rows.iter().map(|r| r.get("line")).collect()
}

/// The versions a refinery history table records, in order.
async fn history(store: &Store, table: &str) -> Vec<i32> {
    let client = store.pool().get().await.expect("a Postgres connection");
    let rows = client
        .query(&format!("SELECT version FROM {table} ORDER BY version"), &[])
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"));
    rows.iter().map(|r| r.get("version")).collect()
}

/// A database of its own beside the test's, dropped at the end.
struct ExtraDatabase {
    admin_url: String,
    name: String,
}

impl ExtraDatabase {
    /// The test's database name with `_<suffix>`; its URL and the guard.
    async fn create(env: &TestEnv, suffix: &str) -> (ExtraDatabase, String) {
        let admin_url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
        let url = format!("{}_{suffix}", env.database_url());
        let name = url.rsplit('/').next().expect("a database name").to_owned();
        let (admin, connection) = tokio_postgres::connect(&admin_url, NoTls).await.expect("connecting");
        tokio::spawn(connection);
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("creating a database");
        (ExtraDatabase { admin_url, name }, url)
    }
}

impl Drop for ExtraDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let (admin, connection) = tokio_postgres::connect(&admin_url, NoTls).await.ok()?;
                tokio::spawn(connection);
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()
            })
        })
        .join();
    }
}

#[tokio::test]
async fn a_database_migrated_before_the_job_engine_had_its_own_set_migrates_unchanged() {
    // The test's own database is migrated the way of today: the fresh case.
    let env = TestEnv::start_with(Options { worker: false, dispatcher: false, ..Options::default() }).await;
    assert_eq!(
        history(&env.store, "refinery_schema_history").await,
        [1, 5, 6, 7, 9, 10, 11],
        "the store's own"
    );
    assert_eq!(history(&env.store, scorekeeper_jobs::store::MIGRATION_TABLE).await, [1, 2, 3, 4, 5, 6, 7]);
    let fresh = schema(&env.store).await;
    assert!(fresh.iter().any(|l| l.starts_with("column job_activities.rows_estimated")), "{fresh:#?}");
    assert!(fresh.iter().any(|l| l.starts_with("column job_activities.pages_done")), "{fresh:#?}");
    assert!(fresh.iter().any(|l| l.starts_with("trigger CREATE TRIGGER jobs_notify")), "{fresh:#?}");
    assert!(fresh.iter().any(|l| l.starts_with("column schedules.last_tick")), "{fresh:#?}");

    // A database whose store history holds V1–V7, job tables included,
    // with a job in it as the versions of that time wrote it (no pages).
    let (_dropped, url) = ExtraDatabase::create(&env, "legacy").await;
    let legacy = Store::connect(&url, 2).expect("a pool");
    let (mut client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connecting");
    tokio::spawn(connection);
    Runner::new(&history_before_the_move()).run_async(&mut client).await.expect("the old layout");
    let customer = legacy.ensure_customer("acme").await.expect("a customer");
    let jobs = JobStore::new(&legacy);
    let created = client
        .query_one(
            "INSERT INTO jobs (customer_id, job_type, payload, max_attempts, dedupe_key)
             VALUES ($1, 1, '{\"kept\": true}', 3, 'kept') RETURNING id",
            &[&customer.0],
        )
        .await
        .expect("a job in the old layout");
    let id = created.get("id");
    client
        .execute(
            "INSERT INTO job_activities (job_id, activity, position, rows_done, batches_done)
             VALUES ($1, 'one', 0, 40, 2), ($1, 'two', 1, 0, 0)",
            &[&id],
        )
        .await
        .expect("its progress in the old layout");
    let before = schema(&legacy).await;

    migrate_postgres(&legacy).await.expect("the old layout migrates");
    let after = schema(&legacy).await;
    // The job set's V1–V3 find everything in place; what is added is what
    // the migrations after the hand-over add (each new one adds its lines).
    // The store's token migration's lines are checked apart (a trigger and
    // a function whose text is long).
    let tokens_migration = |l: &&str| l.contains("api_tokens") || l.contains("notify_api_token_changed");
    let added: Vec<&str> = after.iter().filter(|l| !before.contains(l)).map(String::as_str).collect();
    let (tokens, added): (Vec<&str>, Vec<&str>) = added.into_iter().partition(tokens_migration);
    assert!(tokens.iter().any(|l| l.starts_with("column api_tokens.prefix")), "{tokens:#?}");
    let after_the_hand_over = [
        "column audit_calls.called_at timestamp with time zone NO now()", // store V9
        "column audit_calls.customer_id bigint NO ",                      // store V9
        "column job_activities.pages_done bigint NO 0",                   // jobs V4
        "column job_turns.customer_key bigint NO ",                       // jobs V5
        "column job_turns.last_claimed_at timestamp with time zone NO ",  // jobs V5
        "column jobs.active_key text YES ",                               // jobs V5
        "constraint audit_calls audit_calls_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES customers(id)",
        "constraint job_turns job_turns_pkey PRIMARY KEY (customer_key)",
        "index CREATE INDEX audit_calls_by_customer ON public.audit_calls USING btree (customer_id, called_at)",
        "index CREATE INDEX jobs_active_by_customer ON public.jobs USING btree (customer_id, state) \
         WHERE (state = ANY (ARRAY['queued'::text, 'running'::text]))",
        "index CREATE UNIQUE INDEX job_turns_pkey ON public.job_turns USING btree (customer_key)",
        "index CREATE UNIQUE INDEX jobs_active_key ON public.jobs USING btree (active_key) \
         WHERE (state = ANY (ARRAY['queued'::text, 'running'::text]))",
    ];
    // Jobs V6 and V7 (partitions) add a table: its lines are checked apart.
    let (partitions, added): (Vec<&str>, Vec<&str>) =
        added.into_iter().partition(|l| l.contains("job_partitions"));
    assert!(partitions.iter().any(|l| l.starts_with("column job_partitions.range jsonb")), "{partitions:#?}");
    assert!(
        partitions.iter().any(|l| l.starts_with("trigger CREATE TRIGGER job_partitions_notify")),
        "{partitions:#?}"
    );
    // Store V11 (the console) adds three tables: checked apart too.
    let console_tables = ["console_sessions", "audit_reports", "write_activity"];
    let (console, added): (Vec<&str>, Vec<&str>) =
        added.into_iter().partition(|l| console_tables.iter().any(|t| l.contains(t)));
    for table in console_tables {
        assert!(console.iter().any(|l| l.starts_with(&format!("column {table}."))), "{console:#?}");
    }
    assert_eq!(added, after_the_hand_over, "migrating the old layout");
    assert!(before.iter().all(|l| after.contains(l)), "migrating the old layout changed the schema");
    assert_eq!(after, fresh, "the old layout and a fresh database differ");
    let kept = jobs.get_job(id, None).await.unwrap().expect("the job is kept");
    assert_eq!(
        (kept.customer_id, kept.job_type, &kept.payload, kept.max_attempts, kept.dedupe_key.as_deref()),
        (Some(customer), 1, &serde_json::json!({"kept": true}), 3, Some("kept")),
        "the job changed"
    );
    let progress: Vec<(&str, i64, i64, i64)> = kept
        .activities
        .iter()
        .map(|a| (a.activity.as_str(), a.rows_done, a.checkpoints_done, a.pages_done))
        .collect();
    assert_eq!(progress, [("one", 40, 2, 0), ("two", 0, 0, 0)], "kept, with no pages counted before V4");
    assert_eq!(
        history(&legacy, "refinery_schema_history").await,
        [1, 2, 3, 4, 5, 6, 7, 9, 10, 11],
        "kept, and V9 to V11 on"
    );
    assert_eq!(history(&legacy, scorekeeper_jobs::store::MIGRATION_TABLE).await, [1, 2, 3, 4, 5, 6, 7]);

    // And once more: nothing left to do.
    migrate_postgres(&legacy).await.expect("a second migrate");
    migrate_postgres(&env.store).await.expect("a second migrate of the fresh database");
    assert_eq!(schema(&legacy).await, fresh);
}
