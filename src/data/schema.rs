//! The column types HF `datasets` infers when it reads JSON, applied to our
//! documents.
//!
//! lm-eval sees documents after `datasets` has built an Arrow table: every
//! row has every column (missing keys are None), keys are in schema order,
//! and a column mixing integers and floats holds floats (`3` prints as
//! `3.0`). Prompts print these values, so assay unifies the rows the same way.

use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, PartialEq)]
enum Ty {
    Null,
    Bool,
    Int,
    Float,
    Str,
    List(Box<Ty>),
    Struct(Vec<(String, Ty)>),
    /// Incompatible values: left as they are.
    Mixed,
}

fn infer(v: &Value) -> Ty {
    match v {
        Value::Null => Ty::Null,
        Value::Bool(_) => Ty::Bool,
        Value::Number(n) if n.is_f64() => Ty::Float,
        Value::Number(_) => Ty::Int,
        Value::String(_) => Ty::Str,
        Value::Array(items) => Ty::List(Box::new(items.iter().map(infer).fold(Ty::Null, merge))),
        Value::Object(m) => Ty::Struct(m.iter().map(|(k, v)| (k.clone(), infer(v))).collect()),
    }
}

fn merge(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        (Ty::Null, x) | (x, Ty::Null) => x,
        (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => Ty::Float,
        (Ty::List(a), Ty::List(b)) => Ty::List(Box::new(merge(*a, *b))),
        (Ty::Struct(mut a), Ty::Struct(b)) => {
            for (k, t) in b {
                match a.iter_mut().find(|(name, _)| *name == k) {
                    Some((_, existing)) => *existing = merge(existing.clone(), t),
                    None => a.push((k, t)),
                }
            }
            Ty::Struct(a)
        }
        (a, b) if a == b => a,
        _ => Ty::Mixed,
    }
}

fn cast(v: Value, ty: &Ty) -> Value {
    match (v, ty) {
        (Value::Number(n), Ty::Float) if !n.is_f64() => n
            .as_f64()
            .and_then(Number::from_f64)
            .map_or(Value::Number(n), Value::Number),
        (Value::Array(items), Ty::List(t)) => {
            Value::Array(items.into_iter().map(|x| cast(x, t)).collect())
        }
        (Value::Object(mut m), Ty::Struct(fields)) => {
            let mut out = Map::with_capacity(fields.len());
            for (k, t) in fields {
                let v = m.remove(k).unwrap_or(Value::Null);
                out.insert(k.clone(), cast(v, t));
            }
            Value::Object(out)
        }
        (v, _) => v,
    }
}

/// Gives every row of one split the split's inferred schema.
pub fn unify(rows: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    let ty = rows
        .iter()
        .map(|r| Ty::Struct(r.iter().map(|(k, v)| (k.clone(), infer(v))).collect()))
        .fold(Ty::Null, merge);
    rows.into_iter()
        .map(|r| match cast(Value::Object(r), &ty) {
            Value::Object(m) => m,
            _ => unreachable!("rows are objects"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unifies_like_datasets() {
        let rows = vec![
            json!({"a": 3, "m": {"x": 1, "y": "s"}, "l": [1]}),
            json!({"m": {"y": "t", "x": 2}, "a": 2.5, "l": [0.5], "late": "k"}),
        ];
        let rows = unify(
            rows.into_iter()
                .map(|r| r.as_object().unwrap().clone())
                .collect(),
        );
        assert_eq!(
            Value::Object(rows[0].clone()),
            json!({"a": 3.0, "m": {"x": 1, "y": "s"}, "l": [1.0], "late": null})
        );
        assert_eq!(rows[1].keys().collect::<Vec<_>>(), ["a", "m", "l", "late"]);
    }
}
