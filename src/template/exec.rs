//! Runs a parsed template over a JSON value with Go's rules: `.` is the current value,
//! `$` the root; a field of a map is its key (missing: no value), a field of a
//! missing or null value is no value, a field of anything else is an error; `range`
//! walks lists in order and maps in key order; variables live until their block's
//! `{{end}}`.

use serde_json::Value;

use super::funcs::{apply, truthy};
use super::gofmt::{go_time_text, go_type, is_go_nil, print_top, type_name, Val};
use super::parse::{Branch, Command, Node, Operand, Pipeline, Term};

enum Flow {
    Normal,
    Break,
    Continue,
}

pub(crate) struct Exec {
    vars: Vec<(String, Val)>,
    out: String,
    /// When set, the root stands for a Go struct: asking it for a field it does not
    /// have is an error (as in Go), not "no value" (as for a map).
    root_struct: Option<Value>,
}

/// Renders `nodes` with `root` as both `.` and `$`. Errors are plain reasons.
pub(crate) fn execute(
    nodes: &[Node],
    root: &Value,
    root_is_struct: bool,
) -> Result<String, String> {
    let mut ex = Exec {
        vars: vec![("$".to_string(), Some(root.clone()))],
        out: String::new(),
        root_struct: root_is_struct.then(|| root.clone()),
    };
    ex.walk(&Some(root.clone()), nodes)?;
    Ok(ex.out)
}

impl Exec {
    fn walk(&mut self, dot: &Val, nodes: &[Node]) -> Result<Flow, String> {
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipeline(dot, p)?;
                    if p.vars.is_empty() {
                        self.out.push_str(&print_top(&v));
                    }
                    Flow::Normal
                }
                Node::If(b) => self.if_or_with(dot, b, false)?,
                Node::With(b) => self.if_or_with(dot, b, true)?,
                Node::Range(b) => self.range(dot, b)?,
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if !matches!(flow, Flow::Normal) {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn if_or_with(&mut self, dot: &Val, b: &Branch, with: bool) -> Result<Flow, String> {
        let mark = self.vars.len();
        let v = self.pipeline(dot, &b.pipe)?;
        let flow = if truthy(&v) {
            let inner = if with { &v } else { dot };
            self.walk(inner, &b.then)
        } else {
            self.walk(dot, &b.otherwise)
        };
        self.vars.truncate(mark);
        flow
    }

    fn range(&mut self, dot: &Val, b: &Branch) -> Result<Flow, String> {
        let mark = self.vars.len();
        let v = self.pipeline_value(dot, &b.pipe)?;
        let items: Vec<(Value, Value)> = match &v {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i), e.clone()))
                .collect(),
            Some(Value::Object(m)) if go_type(m).is_none() => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (Value::String(k.clone()), m[k].clone()))
                    .collect()
            }
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                if b.pipe.vars.len() > 1 {
                    return Err(format!(
                        "can't use {} to iterate over more than one variable",
                        n
                    ));
                }
                let count = n.as_u64().unwrap_or(0);
                (0..count)
                    .map(|i| (Value::from(i), Value::from(i)))
                    .collect()
            }
            other => return Err(format!("range can't iterate over {}", print_top(other))),
        };
        if items.is_empty() {
            let flow = self.walk(dot, &b.otherwise);
            self.vars.truncate(mark);
            return flow.map(|_| Flow::Normal);
        }
        if !b.pipe.assign {
            for name in &b.pipe.vars {
                self.vars.push((name.clone(), None));
            }
        }
        let scope = self.vars.len();
        for (key, elem) in items {
            match b.pipe.vars.as_slice() {
                [e] => self.set_var(e, Some(elem.clone())),
                [k, e] => {
                    self.set_var(k, Some(key));
                    self.set_var(e, Some(elem.clone()));
                }
                _ => {}
            }
            let flow = self.walk(&Some(elem), &b.then);
            self.vars.truncate(scope);
            match flow? {
                Flow::Break => break,
                Flow::Normal | Flow::Continue => {}
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Val) {
        if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
            slot.1 = v;
        }
    }

    /// Evaluates a pipeline and performs its declaration or assignment.
    fn pipeline(&mut self, dot: &Val, p: &Pipeline) -> Result<Val, String> {
        let v = self.pipeline_value(dot, p)?;
        for name in &p.vars {
            if p.assign {
                self.set_var(name, v.clone());
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    /// Evaluates a pipeline's commands, each result feeding the next as its last argument.
    fn pipeline_value(&mut self, dot: &Val, p: &Pipeline) -> Result<Val, String> {
        let mut value: Option<Val> = None;
        for cmd in &p.cmds {
            value = Some(self.command(dot, cmd, value)?);
        }
        Ok(value.flatten())
    }

    fn command(&mut self, dot: &Val, cmd: &Command, piped: Option<Val>) -> Result<Val, String> {
        let first = &cmd.args[0];
        if let (Term::Func(name), true) = (&first.term, first.fields.is_empty()) {
            return self.call(dot, name, &cmd.args[1..], piped);
        }
        if cmd.args.len() > 1 || piped.is_some() {
            if let Some(v) = self.method_call(dot, cmd, &piped)? {
                return Ok(v);
            }
            return Err(match (&first.term, first.fields.last()) {
                (Term::Dot | Term::Var(_) | Term::Sub(_), Some(field)) => {
                    format!("{field} is not a method but has arguments")
                }
                _ => format!("can't give argument to non-function {}", describe(first)),
            });
        }
        self.operand(dot, first)
    }

    /// `{{.T.Format "2006"}}`: a method with arguments on a time value; `None` when the
    /// command is not one.
    fn method_call(
        &mut self,
        dot: &Val,
        cmd: &Command,
        piped: &Option<Val>,
    ) -> Result<Option<Val>, String> {
        let first = &cmd.args[0];
        let Some((method, chain)) = first.fields.split_last() else {
            return Ok(None);
        };
        if matches!(first.term, Term::Func(_)) {
            return Ok(None);
        }
        let receiver = Operand {
            term: first.term.clone(),
            fields: chain.to_vec(),
        };
        let Some(Value::Object(m)) = self.operand(dot, &receiver)? else {
            return Ok(None);
        };
        let Some(t) = go_time_text(&m) else {
            return Ok(None);
        };
        let mut args = Vec::new();
        for op in &cmd.args[1..] {
            args.push(self.operand(dot, op)?.unwrap_or(Value::Null));
        }
        if let Some(p) = piped {
            args.push(p.clone().unwrap_or(Value::Null));
        }
        match super::gotime::call(t, method, &args) {
            Some(r) => r
                .map(|v| Some(Some(v)))
                .map_err(|e| format!("error calling {method}: {e}")),
            None => Err(format!("can't evaluate field {method} in type time.Time")),
        }
    }

    fn call(
        &mut self,
        dot: &Val,
        name: &str,
        args: &[Operand],
        piped: Option<Val>,
    ) -> Result<Val, String> {
        if name == "and" || name == "or" {
            // Lazy: stops at the first false (and) or true (or) argument and returns it.
            let total = args.len() + usize::from(piped.is_some());
            if total < 1 {
                return Err(format!(
                    "wrong number of args for {name}: want at least 1 got 0"
                ));
            }
            let mut last = None;
            let mut piped = piped;
            for i in 0..total {
                let v = match args.get(i) {
                    Some(op) => self.operand(dot, op)?,
                    None => piped.take().flatten(),
                };
                let stop = truthy(&v) == (name == "or");
                last = v;
                if stop {
                    break;
                }
            }
            return Ok(last);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for op in args {
            values.push(self.operand(dot, op)?);
        }
        if let Some(p) = piped {
            values.push(p);
        }
        apply(name, values)
    }

    fn operand(&mut self, dot: &Val, op: &Operand) -> Result<Val, String> {
        let mut v = match &op.term {
            Term::Dot => dot.clone(),
            Term::Var(name) => match self.vars.iter().rev().find(|(n, _)| n == name) {
                Some((_, v)) => v.clone(),
                None => return Err(format!("undefined variable: {name}")),
            },
            Term::Func(name) => self.call(dot, name, &[], None)?,
            Term::Str(s) => Some(Value::String(s.clone())),
            Term::Int(i) => Some(Value::from(*i)),
            Term::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number),
            Term::Bool(b) => Some(Value::Bool(*b)),
            Term::Nil => Some(Value::Null),
            Term::Sub(p) => self.pipeline_value(dot, p)?,
        };
        for f in &op.fields {
            v = match v {
                Some(Value::Object(m))
                    if !m.contains_key(f)
                        && matches!(&self.root_struct, Some(Value::Object(r)) if *r == m) =>
                {
                    return Err(format!("can't evaluate field {f} in type struct"));
                }
                Some(Value::Object(m)) if go_time_text(&m).is_some() => {
                    let t = go_time_text(&m).unwrap_or_default();
                    match super::gotime::call(t, f, &[]) {
                        Some(r) => Some(r.map_err(|e| format!("error calling {f}: {e}"))?),
                        None => return Err(format!("can't evaluate field {f} in type time.Time")),
                    }
                }
                Some(Value::Object(m)) if is_go_nil(&m) => {
                    return Err(format!(
                        "nil pointer evaluating {}.{f}",
                        go_type(&m).unwrap_or("pointer")
                    ));
                }
                Some(Value::Object(m)) if go_type(&m).is_some() && !m.contains_key(f) => {
                    return Err(format!(
                        "can't evaluate field {f} in type {}",
                        go_type(&m).unwrap_or("struct")
                    ));
                }
                Some(Value::Object(mut m)) => m.remove(f),
                None | Some(Value::Null) => None,
                other => {
                    return Err(format!(
                        "can't evaluate field {f} in type {}",
                        type_name(&other)
                    ))
                }
            };
        }
        Ok(v)
    }
}

fn describe(op: &Operand) -> String {
    let base = match &op.term {
        Term::Dot if !op.fields.is_empty() => String::new(),
        Term::Dot => ".".into(),
        Term::Var(v) => v.clone(),
        Term::Func(f) => f.clone(),
        Term::Str(s) => format!("{s:?}"),
        Term::Int(i) => i.to_string(),
        Term::Float(f) => f.to_string(),
        Term::Bool(b) => b.to_string(),
        Term::Nil => "nil".into(),
        Term::Sub(p) => format!("({})", p.text),
    };
    let fields: String = op.fields.iter().map(|f| format!(".{f}")).collect();
    base + &fields
}
