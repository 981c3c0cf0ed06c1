//! CSV and Parquet files through polars, turned into JSON documents so every
//! source looks the same to templates and metrics.

use std::path::Path;

use polars::prelude::*;
use serde_json::{Map, Number, Value};

use super::Doc;

pub fn read_csv(path: &Path) -> Result<Vec<Doc>, String> {
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|r| r.finish())
        .map_err(|e| format!("invalid CSV: {e}"))?;
    frame_to_docs(&df)
}

pub fn read_parquet(path: &Path) -> Result<Vec<Doc>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| format!("invalid Parquet: {e}"))?;
    frame_to_docs(&df)
}

fn frame_to_docs(df: &DataFrame) -> Result<Vec<Doc>, String> {
    let columns = df.columns();
    let mut docs = vec![Map::new(); df.height()];
    for column in columns {
        let series = column.as_materialized_series();
        for (i, doc) in docs.iter_mut().enumerate() {
            let v = series.get(i).map_err(|e| e.to_string())?;
            doc.insert(series.name().to_string(), any_to_json(v));
        }
    }
    Ok(docs)
}

fn any_to_json(v: AnyValue) -> Value {
    match v {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(x) => Value::from(x),
        AnyValue::Int16(x) => Value::from(x),
        AnyValue::Int32(x) => Value::from(x),
        AnyValue::Int64(x) => Value::from(x),
        AnyValue::UInt8(x) => Value::from(x),
        AnyValue::UInt16(x) => Value::from(x),
        AnyValue::UInt32(x) => Value::from(x),
        AnyValue::UInt64(x) => Value::from(x),
        AnyValue::Float32(x) => Number::from_f64(x as f64).map_or(Value::Null, Value::Number),
        AnyValue::Float64(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
        AnyValue::List(s) => Value::Array(s.iter().map(any_to_json).collect()),
        AnyValue::Struct(_, _, fields) => {
            let values: Vec<Value> = v._iter_struct_av().map(any_to_json).collect();
            Value::Object(
                fields
                    .iter()
                    .map(|f| f.name().to_string())
                    .zip(values)
                    .collect(),
            )
        }
        AnyValue::StructOwned(payload) => {
            let (values, fields) = *payload;
            Value::Object(
                fields
                    .iter()
                    .map(|f| f.name().to_string())
                    .zip(values.into_iter().map(any_to_json))
                    .collect(),
            )
        }
        other => Value::String(other.to_string()),
    }
}
