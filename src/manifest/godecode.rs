//! Reading JSON objects with the leniency of Go's `encoding/json` decoding into a
//! struct: keys match field names case-insensitively (the last matching key wins),
//! `null` leaves a field at its zero value, unknown keys are ignored, and a value of
//! the wrong JSON type is an error.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::gojson::sanitize_input;
use super::gotime::GoTime;
use crate::error::{Error, Result};

/// Parses JSON text the way Go would before decoding it (see [`sanitize_input`]).
pub(crate) fn parse_value(bytes: &[u8]) -> std::result::Result<Value, serde_json::Error> {
    serde_json::from_slice(&sanitize_input(bytes))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being decoded into a Go-style struct; `path` names it in errors.
#[derive(Clone, Copy)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

fn type_error(path: &str, field: &str, want: &str, got: &Value) -> Error {
    let at = if path.is_empty() {
        format!("{field:?}")
    } else {
        format!("\"{path}.{field}\"")
    };
    Error::invalid(format!("field {at}: expected {want}, found {}", kind(got)))
}

impl<'a> Obj<'a> {
    /// The top-level value, which must be an object.
    pub(crate) fn root(v: &'a Value) -> Result<Obj<'a>> {
        match v {
            Value::Object(map) => Ok(Obj { map, path: "" }),
            other => Err(Error::invalid(format!(
                "expected a JSON object, found {}",
                kind(other)
            ))),
        }
    }

    /// The value of the last key equal to `field` ignoring ASCII case, if any.
    fn raw(&self, field: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v)
    }

    /// Like [`Obj::raw`] but ignoring `null`s, which Go skips for scalar fields.
    fn scalar(&self, field: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .rev()
            .find(|(k, v)| k.eq_ignore_ascii_case(field) && !v.is_null())
            .map(|(_, v)| v)
    }

    pub(crate) fn string(&self, field: &str) -> Result<String> {
        match self.scalar(field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(type_error(self.path, field, "a string", v)),
        }
    }

    pub(crate) fn boolean(&self, field: &str) -> Result<bool> {
        match self.scalar(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(type_error(self.path, field, "a boolean", v)),
        }
    }

    /// A `*time.Time` field: `None` when absent or null.
    pub(crate) fn time(&self, field: &str) -> Result<Option<GoTime>> {
        match self.scalar(field) {
            None => Ok(None),
            Some(Value::String(s)) => GoTime::parse_rfc3339(s).map(Some),
            Some(v) => Err(type_error(self.path, field, "a time string", v)),
        }
    }

    /// A `[]string` field: `None` when absent or null; `null` elements become "".
    pub(crate) fn strings(&self, field: &str) -> Result<Option<Vec<String>>> {
        match self.raw(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Null => Ok(String::new()),
                    Value::String(s) => Ok(s.clone()),
                    v => Err(type_error(self.path, field, "an array of strings", v)),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(type_error(self.path, field, "an array of strings", v)),
        }
    }

    /// A `map[string]string` field: `None` when absent or null.
    pub(crate) fn string_map(&self, field: &str) -> Result<Option<BTreeMap<String, String>>> {
        match self.raw(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::Null => Ok((k.clone(), String::new())),
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    v => Err(type_error(self.path, field, "an object of strings", v)),
                })
                .collect::<Result<BTreeMap<_, _>>>()
                .map(Some),
            Some(v) => Err(type_error(self.path, field, "an object of strings", v)),
        }
    }

    /// A `map[string]struct{}` field (a set of keys): `None` when absent or null.
    pub(crate) fn key_set(&self, field: &str) -> Result<Option<BTreeSet<String>>> {
        match self.raw(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::Null | Value::Object(_) => Ok(k.clone()),
                    v => Err(type_error(self.path, field, "an object of objects", v)),
                })
                .collect::<Result<BTreeSet<_>>>()
                .map(Some),
            Some(v) => Err(type_error(self.path, field, "an object of objects", v)),
        }
    }

    /// A nested struct field: `None` when absent or null.
    pub(crate) fn object(&self, field: &'a str) -> Result<Option<Obj<'a>>> {
        match self.raw(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Obj { map, path: field })),
            Some(v) => Err(type_error(self.path, field, "an object", v)),
        }
    }

    /// A `[]Struct` field: `None` when absent or null; `null` elements decode as `{}`.
    pub(crate) fn objects(&self, field: &'a str) -> Result<Option<Vec<Option<Obj<'a>>>>> {
        match self.raw(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Null => Ok(None),
                    Value::Object(map) => Ok(Some(Obj { map, path: field })),
                    v => Err(type_error(self.path, field, "an array of objects", v)),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(type_error(self.path, field, "an array of objects", v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_case_insensitively_and_last_wins() {
        let v = json!({"OS": "a", "os": "b", "Os": null});
        let o = Obj::root(&v).unwrap();
        assert_eq!(o.string("os").unwrap(), "b");
        assert_eq!(o.string("missing").unwrap(), "");
    }

    #[test]
    fn null_is_zero_and_wrong_types_fail() {
        let v = json!({"s": null, "n": 5, "l": null, "m": {"a": null}, "b": "x", "f": 1.5});
        let o = Obj::root(&v).unwrap();
        assert_eq!(o.string("s").unwrap(), "");
        assert_eq!(o.strings("l").unwrap(), None);
        assert_eq!(o.string_map("m").unwrap().unwrap()["a"], "");
        assert_eq!(
            o.string("n").unwrap_err().to_string(),
            "field \"n\": expected a string, found a number"
        );
        assert!(o.boolean("b").is_err());
        assert!(o.boolean("f").is_err());
        assert!(Obj::root(&json!([1])).is_err());
    }

    #[test]
    fn nested_paths_in_errors() {
        let v = json!({"config": {"Env": "x"}});
        let o = Obj::root(&v).unwrap();
        let c = o.object("config").unwrap().unwrap();
        assert_eq!(
            c.strings("Env").unwrap_err().to_string(),
            "field \"config.Env\": expected an array of strings, found a string"
        );
    }

    #[test]
    fn key_sets_and_object_lists() {
        let v = json!({"p": {"80/tcp": {}, "53/udp": null}, "h": [null, {"a": 1}]});
        let o = Obj::root(&v).unwrap();
        let set = o.key_set("p").unwrap().unwrap();
        assert_eq!(
            set.into_iter().collect::<Vec<_>>(),
            vec!["53/udp", "80/tcp"]
        );
        let h = o.objects("h").unwrap().unwrap();
        assert!(h[0].is_none() && h[1].is_some());
        assert!(Obj::root(&json!({"p": {"a": 1}}))
            .unwrap()
            .key_set("p")
            .is_err());
    }
}
