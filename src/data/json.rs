//! JSON and JSON Lines files, as HF datasets' `json` builder reads them: a
//! file is either one JSON value per line, a top-level array of rows, or an
//! object whose `field` holds the rows.

use serde_json::Value;

use super::Doc;

pub fn read(bytes: &[u8], field: Option<&str>) -> Result<Vec<Doc>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let trimmed = text.trim_start();
    if field.is_some() || trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let rows = match (field, value) {
            (Some(f), Value::Object(mut m)) => m
                .remove(f)
                .ok_or_else(|| format!("has no top-level field `{f}` (dataset_kwargs.field)"))?,
            (None, v) => v,
            (Some(f), _) => return Err(format!("is not an object, so it has no field `{f}`")),
        };
        let Value::Array(rows) = rows else {
            return Err("the rows must be a JSON array of objects".into());
        };
        return rows
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Value::Object(m) => Ok(m),
                _ => Err(format!("row {i} is not a JSON object")),
            })
            .collect();
    }
    let mut docs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => docs.push(m),
            Ok(_) => return Err(format!("line {}: not a JSON object", i + 1)),
            Err(e) => return Err(format!("line {}: invalid JSON: {e}", i + 1)),
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_arrays_and_fields() {
        assert_eq!(read(b"{\"a\":1}\n\n{\"a\":2}\n", None).unwrap().len(), 2);
        assert_eq!(read(b"[{\"a\":1}]", None).unwrap().len(), 1);
        assert_eq!(
            read(b"{\"data\":[{\"a\":1},{\"a\":2}]}", Some("data"))
                .unwrap()
                .len(),
            2
        );
        let err = read(b"{\"a\":1}\n{\"a\":", None).unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }
}
