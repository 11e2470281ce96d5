//! Human output of the admin views: a list of objects as an aligned table of its scalar
//! fields, an object as `field: value` lines. `--json` prints the server's JSON instead.

use serde_json::Value;

/// How a scalar shows in a cell (nested values as compact JSON).
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Columns shown first when present (the server's objects come with their keys sorted).
const LEADING: &[&str] = &["id", "name", "tenant", "kind", "state", "status"];

/// `keys` with the [`LEADING`] ones first.
fn ordered<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = keys.map(String::as_str).collect();
    keys.sort_by_key(|k| LEADING.iter().position(|l| l == k).unwrap_or(LEADING.len()));
    keys
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Renders `v` for a terminal.
pub fn render(v: &Value) -> String {
    match v {
        Value::Array(rows) if rows.is_empty() => "(none)\n".into(),
        Value::Array(rows) if rows.iter().all(Value::is_object) => rows_table(rows),
        Value::Object(fields) => {
            let width = fields.keys().map(String::len).max().unwrap_or(0);
            ordered(fields.keys())
                .iter()
                .map(|k| format!("{k:<width$}  {}\n", cell(&fields[*k])))
                .collect()
        }
        other => format!("{}\n", cell(other)),
    }
}

/// The scalar columns of `rows`, in order of first appearance, as an aligned table.
fn rows_table(rows: &[Value]) -> String {
    let mut seen: Vec<&String> = Vec::new();
    for row in rows {
        for (k, v) in row.as_object().into_iter().flatten() {
            if is_scalar(v) && !seen.contains(&k) {
                seen.push(k);
            }
        }
    }
    let columns = ordered(seen.into_iter());
    let cells: Vec<Vec<String>> =
        rows.iter().map(|r| columns.iter().map(|c| cell(&r[*c])).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].len()).max().unwrap_or(0).max(c.len()))
        .collect();
    let line = |values: Vec<&str>| -> String {
        let padded: Vec<String> =
            values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(columns.clone());
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_become_aligned_tables_of_their_scalar_fields() {
        let v = json!([
            { "name": "acme", "priority": 2.0, "keys": [1, 2] },
            { "name": "default", "priority": 1.0, "extra": null },
        ]);
        let out = render(&v);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "name     priority  extra");
        assert_eq!(lines[1], "acme     2.0       -");
        assert_eq!(lines[2], "default  1.0       -");
        assert!(!out.contains("keys"), "nested values are left to --json");
    }

    #[test]
    fn objects_become_field_lines_and_empty_lists_say_so() {
        let out = render(&json!({ "counts": { "prove": 2 }, "id": "j1" }));
        assert_eq!(out, "id      j1\ncounts  {\"prove\":2}\n");
        assert_eq!(render(&json!([])), "(none)\n");
        assert_eq!(render(&json!("ok")), "ok\n");
    }
}
