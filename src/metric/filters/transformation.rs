//! Transformation filters that rewrite each response: `lowercase`,
//! `uppercase` (applied inline by the pipeline) and `map`, as in
//! lm_eval/filters/transformation.py.
//!
//! `map` may map to numbers or booleans in a task config; responses stay
//! text here, so a mapped value is kept as Python's `str()` of it ("0",
//! "True", "None"), which compares the same way once lm-eval's scorer casts
//! the gold to the response's type.

use serde_json::Value;

use super::Kwargs;
use crate::metric::MetricError;
use crate::python::text::python_str;

/// lm-eval's `MapFilter`.
#[derive(Debug, Clone, PartialEq)]
pub struct MapFilter {
    mapping: Vec<(String, String)>,
    default_value: String,
}

impl MapFilter {
    pub(super) const KWARGS: &'static [&'static str] = &["mapping_dict", "default_value"];

    pub(super) fn from_kwargs(args: &Kwargs<'_>) -> Result<MapFilter, MetricError> {
        let scalar = |key: &str, value: &Value| {
            python_str(value)
                .ok_or_else(|| args.bad(key, "a string, number, boolean or null", value))
        };
        let mapping = match args.get("mapping_dict") {
            None => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| Ok((k.clone(), scalar("mapping_dict", v)?)))
                .collect::<Result<_, MetricError>>()?,
            Some(other) => return Err(args.bad("mapping_dict", "a dictionary", other)),
        };
        let default_value = match args.get("default_value") {
            None => "None".to_string(),
            Some(v) => scalar("default_value", v)?,
        };
        Ok(MapFilter {
            mapping,
            default_value,
        })
    }

    /// `mapping_dict.get(response, default_value)`.
    pub(super) fn lookup(&self, response: &str) -> String {
        self.mapping
            .iter()
            .find(|(k, _)| k == response)
            .map_or(&self.default_value, |(_, v)| v)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map_filter(kwargs: Value) -> Result<MapFilter, MetricError> {
        MapFilter::from_kwargs(&Kwargs::new("map", kwargs.as_object().unwrap()))
    }

    /// Expected values from lm_eval.filters.transformation.MapFilter, with
    /// str() of the results.
    #[test]
    fn map_uses_the_default_for_unknown_responses() {
        let f =
            map_filter(json!({"mapping_dict": {"A": 0, "B": "b", "C": true}, "default_value": -1}))
                .unwrap();
        let got: Vec<String> = ["A", "B", "C", "D", "a"]
            .iter()
            .map(|r| f.lookup(r))
            .collect();
        assert_eq!(got, ["0", "b", "True", "-1", "-1"]);
        let no_default = map_filter(json!({"mapping_dict": {"A": 1.5}})).unwrap();
        assert_eq!(no_default.lookup("A"), "1.5");
        assert_eq!(no_default.lookup("Z"), "None");
        let empty = map_filter(json!({})).unwrap();
        assert_eq!(empty.lookup("A"), "None");
    }

    #[test]
    fn map_rejects_a_non_dictionary() {
        let err = map_filter(json!({"mapping_dict": ["A"]}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`mapping_dict`") && err.contains("dictionary"),
            "{err}"
        );
    }
}
