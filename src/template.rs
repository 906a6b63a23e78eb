//! The Go `text/template` subset that `inspect --format` accepts, rendered over a
//! `serde_json::Value`.
//!
//! Supported: text; `{{.Field}}`, `{{.A.B}}`, `{{.}}`, `{{$}}`; variables
//! (`{{$x := …}}`, `{{$x = …}}`, `$x.Field`); pipelines (`{{.X | json}}`) and
//! parenthesised sub-pipelines; `{{if}}`/`{{else if}}`/`{{else}}`, `{{with}}`,
//! `{{range}}` (with `$i, $e :=`, `{{else}}`, `{{break}}`, `{{continue}}`);
//! comments and `{{- -}}` trim markers; string, raw string, number, bool and nil
//! constants; the functions of `funcs.rs`. Not supported: `define`, `template`,
//! `block`, character constants, and method calls other than those of times made with
//! [`go_time`].
//!
//! Output follows Go's printing (`gofmt.rs`). The caller appends the trailing
//! newline skopeo prints.
//!
//! Data is untyped JSON, so a few Go behaviours that depend on static types are
//! approximated: an object is a map (a missing key prints `<no value>`) unless it was
//! made with [`go_struct`] (prints `{a b}`, a missing field is an error), and a JSON
//! null prints `<no value>` (a nil Go slice or map would print `[]` or `map[]`; a
//! typed nil pointer made with [`go_nil`] prints `<nil>`).

mod exec;
mod funcs;
mod gofmt;
mod gotime;
mod lex;
mod parse;

use serde_json::Value;

use crate::error::{Error, Result};

/// A parsed template, reusable over many values.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    nodes: Vec<parse::Node>,
}

impl Template {
    /// Parses `source`; errors are `InvalidInput` and name the template.
    pub fn parse(source: &str) -> Result<Template> {
        let nodes = lex::lex(source)
            .and_then(parse::parse)
            .map_err(|reason| Error::InvalidInput(format!("template {source:?}: {reason}")))?;
        Ok(Template {
            source: source.to_string(),
            nodes,
        })
    }

    /// Renders over `data` (`.` and `$` start as `data`). Execution errors (a field of a
    /// string, an index out of range, …) are `InvalidInput` and name the template.
    pub fn render(&self, data: &Value) -> Result<String> {
        self.run(data, false)
    }

    /// Renders over `data` standing for a Go struct: a field the top-level object lacks
    /// is an error rather than `<no value>`.
    pub fn render_struct(&self, data: &Value) -> Result<String> {
        self.run(data, true)
    }

    fn run(&self, data: &Value, root_is_struct: bool) -> Result<String> {
        exec::execute(&self.nodes, data, root_is_struct).map_err(|reason| {
            Error::InvalidInput(format!("executing template {:?}: {reason}", self.source))
        })
    }
}

/// A value standing for a Go struct of type `type_name` (used in error messages) with
/// `fields` in declaration order: `{{.}}` prints `{v1 v2 …}`, it is always true, and a
/// field it lacks is an error, as in Go.
pub fn go_struct<'a>(type_name: &str, fields: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(gofmt::STRUCT_KEY.into(), Value::String(type_name.into()));
    for (k, v) in fields {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// A Go `time.Time` holding the RFC 3339 time `rfc3339`: prints as Go prints times
/// (`2024-01-02 03:04:05 +0000 UTC`), and templates may call its methods
/// (`{{.Created.Format "2006-01-02"}}`, `.Year`, `.Unix`, …).
pub fn go_time(rfc3339: &str) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(gofmt::TIME_KEY.into(), Value::String(rfc3339.into()));
    Value::Object(m)
}

/// A typed nil pointer of type `type_name` (e.g. `*time.Time`): prints `<nil>`, is false.
pub fn go_nil(type_name: &str) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(gofmt::NIL_KEY.into(), Value::String(type_name.into()));
    Value::Object(m)
}

/// Parses and renders `template` over `data` in one step.
pub fn render(template: &str, data: &Value) -> Result<String> {
    Template::parse(template)?.render(data)
}

#[cfg(test)]
mod tests;
