//! The names a query's outer `SELECT` list gives its columns, for the tests
//! that hold each `.sql` query to the row struct it is decoded into. Rows
//! come back as RowBinary, which is decoded by position (ClickHouse 18.16
//! has no RowBinaryWithNamesAndTypes to decode by name), so a list reordered
//! without its struct would shift one field into another silently; these
//! tests make it loud.

/// The outer `SELECT` list's column names, in order: each column's `AS`
/// name, or the column itself when it is a bare name. The list is the text
/// between a line starting with `SELECT` and the next line starting with
/// `FROM` (how the queries in `sql/queries` are laid out); `--` comment
/// lines are skipped.
pub(crate) fn select_names(sql: &str) -> Vec<String> {
    let lines: Vec<&str> = sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect();
    let start = lines.iter().position(|l| l.starts_with("SELECT")).expect("a line starting with SELECT");
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.starts_with("FROM"))
            .expect("a line starting with FROM after SELECT");
    let list = lines[start..end].join("\n");
    let list = list.trim_start_matches("SELECT");
    let mut names = Vec::new();
    let (mut depth, mut column) = (0usize, String::new());
    for c in list.chars().chain([',']) {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                let item = column.split_whitespace().collect::<Vec<_>>().join(" ");
                let name = item.rsplit_once(" AS ").map_or(item.as_str(), |(_, name)| name);
                names.push(name.to_owned());
                column.clear();
                continue;
            }
            _ => {}
        }
        column.push(c);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::select_names;

    #[test]
    fn names_come_from_aliases_or_bare_columns() {
        let sql = "-- a comment, with a comma\nWITH f(a, b) AS x\nSELECT\n    id,\n    toInt64(max(a, b)) AS top\nFROM t";
        assert_eq!(select_names(sql), ["id", "top"]);
    }
}
