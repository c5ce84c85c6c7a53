//! Printing API answers: aligned tables, `key: value` records, or the raw
//! JSON with `--json`.

use serde_json::Value;

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Prints `value[list_key]` as a table of `columns`.
pub fn table(json: bool, value: &Value, list_key: &str, columns: &[&str]) {
    if json {
        println!("{value:#}");
        return;
    }
    let rows: Vec<Vec<String>> = value[list_key]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| columns.iter().map(|c| cell(&item[*c])).collect())
                .collect()
        })
        .unwrap_or_default();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// Prints one object as `field: value` lines.
pub fn record(json: bool, value: &Value) {
    match value.as_object() {
        Some(map) if !json => {
            for (k, v) in map {
                println!("{k}: {}", cell(v));
            }
        }
        _ => println!("{value:#}"),
    }
}

/// Prints a just-created credential with a warning that it is shown once.
pub fn secret_once(json: bool, value: &Value, secret_field: &str, id_field: &str) {
    if json {
        println!("{value:#}");
        return;
    }
    println!("{}: {}", id_field, cell(&value[id_field]));
    println!("{secret_field}: {}", cell(&value[secret_field]));
    eprintln!("store the {secret_field} now: it is shown only once");
}
