//! The ClickHouse schema, embedded from `sql/schema/*.sql` (the same files
//! `scripts/check-clickhouse-sql` runs on 18.16 and current ClickHouse); on
//! a cluster, `sql/cluster/*.sql` instead (the `cluster` module).

const FILES: &[&str] = &[
    include_str!("../sql/schema/001_conversations.sql"),
    include_str!("../sql/schema/002_scorecards.sql"),
    include_str!("../sql/schema/003_scores.sql"),
];

/// The schema statements of one server in order, comments removed.
pub(crate) fn statements() -> impl Iterator<Item = String> {
    FILES.iter().flat_map(|file| split(file))
}

/// A query file's text, comment lines removed (a `?` in a comment would be
/// taken for a placeholder).
pub(crate) fn query_text(file: &str) -> String {
    file.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n")
}

/// The statements of a `.sql` file, comment lines removed.
pub(crate) fn split(file: &str) -> Vec<String> {
    let code: String =
        file.lines().filter(|line| !line.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    code.split(';').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_schema_file_yields_one_create_table() {
        let statements: Vec<String> = super::statements().collect();
        assert_eq!(statements.len(), 3);
        assert!(statements.iter().all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS")));
    }
}
