//! Template functions: Go's built-ins (`index`, `slice`, `len`, `not`, `eq`…`ge`, `print`,
//! `printf`, `println`; `and`/`or` are evaluated lazily by the executor) and the helpers
//! skopeo's `--format` offers through containers/common (`json`, `join`, `split`,
//! `lower`, `upper`, `title`, `truncate`, `pad`).
//!
//! `index` of a missing map key gives `""`: skopeo's maps (labels, annotations) hold
//! strings, and Go returns the element type's zero value.

use serde_json::{Number, Value};

use super::gofmt::{self, type_name, Val};

const FUNCTIONS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "json", "print", "printf", "println", "eq", "ne",
    "lt", "le", "gt", "ge", "join", "split", "lower", "upper", "title", "truncate", "pad",
];

pub(crate) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Go's truth: false, 0, nil, and empty strings, lists and maps are false.
pub(crate) fn truthy(v: &Val) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) if gofmt::is_go_nil(m) => false,
        Some(Value::Object(m)) if gofmt::go_type(m).is_some() => true,
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

fn want_args(name: &str, args: &[Val], min: usize, max: Option<usize>) -> Result<(), String> {
    let n = args.len();
    if n < min || max.is_some_and(|m| n > m) {
        let want = match max {
            Some(m) if m == min => format!("{min}"),
            Some(m) => format!("{min} to {m}"),
            None => format!("at least {min}"),
        };
        return Err(format!(
            "wrong number of args for {name}: want {want} got {n}"
        ));
    }
    Ok(())
}

fn string_arg(v: &Val) -> Result<&str, String> {
    match v {
        Some(Value::String(s)) => Ok(s),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            type_name(other)
        )),
    }
}

/// An integer argument (integral floats are accepted).
fn int_arg(v: &Val) -> Option<i64> {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        _ => None,
    }
}

fn int_param(v: &Val) -> Result<i64, String> {
    int_arg(v).ok_or_else(|| format!("wrong type for value; expected int; got {}", type_name(v)))
}

/// Calls every function except `and`/`or`. Errors read like Go's (`error calling …`).
pub(crate) fn apply(name: &str, args: Vec<Val>) -> Result<Val, String> {
    let s = |v: String| Ok(Some(Value::String(v)));
    match name {
        "json" => {
            want_args(name, &args, 1, Some(1))?;
            s(gofmt::json(&args[0].as_ref().map(gofmt::plain)))
        }
        "index" => {
            want_args(name, &args, 1, None)?;
            index(&args).map_err(|e| format!("error calling index: {e}"))
        }
        "slice" => {
            want_args(name, &args, 1, Some(3))?;
            slice(&args).map_err(|e| format!("error calling slice: {e}"))
        }
        "len" => {
            want_args(name, &args, 1, Some(1))?;
            let n = match &args[0] {
                Some(Value::String(v)) => v.len(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(m)) if gofmt::go_type(m).is_none() => m.len(),
                other => {
                    return Err(format!(
                        "error calling len: len of type {}",
                        type_name(other)
                    ))
                }
            };
            Ok(Some(Value::from(n)))
        }
        "not" => {
            want_args(name, &args, 1, Some(1))?;
            Ok(Some(Value::Bool(!truthy(&args[0]))))
        }
        "eq" | "ne" => {
            want_args(name, &args, 2, if name == "ne" { Some(2) } else { None })?;
            let mut any = false;
            for b in &args[1..] {
                any |= equal(&args[0], b).map_err(|e| format!("error calling {name}: {e}"))?;
            }
            Ok(Some(Value::Bool(if name == "eq" { any } else { !any })))
        }
        "lt" | "le" | "gt" | "ge" => {
            want_args(name, &args, 2, Some(2))?;
            let ord =
                order(&args[0], &args[1]).map_err(|e| format!("error calling {name}: {e}"))?;
            let r = match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            };
            Ok(Some(Value::Bool(r)))
        }
        "print" => s(sprint_args(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(sprint_val).collect();
            s(parts.join(" ") + "\n")
        }
        "printf" => {
            want_args(name, &args, 1, None)?;
            s(sprintf(string_arg(&args[0])?, &args[1..]))
        }
        "join" => {
            want_args(name, &args, 2, Some(2))?;
            let Some(Value::Array(list)) = &args[0] else {
                return Err(format!(
                    "wrong type for value; expected []string; got {}",
                    type_name(&args[0])
                ));
            };
            let parts: Vec<String> = list.iter().map(gofmt::sprint).collect();
            s(parts.join(string_arg(&args[1])?))
        }
        "split" => {
            want_args(name, &args, 2, Some(2))?;
            let (text, sep) = (string_arg(&args[0])?, string_arg(&args[1])?);
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                text.split(sep)
                    .map(|p| Value::String(p.to_string()))
                    .collect()
            };
            Ok(Some(Value::Array(parts)))
        }
        "lower" | "upper" | "title" => {
            want_args(name, &args, 1, Some(1))?;
            let text = string_arg(&args[0])?;
            s(match name {
                "lower" => text
                    .chars()
                    .map(|c| simple_case(c, char::to_lowercase))
                    .collect(),
                "upper" => text
                    .chars()
                    .map(|c| simple_case(c, char::to_uppercase))
                    .collect(),
                _ => title(text),
            })
        }
        "truncate" => {
            want_args(name, &args, 2, Some(2))?;
            let (text, n) = (string_arg(&args[0])?, int_param(&args[1])?);
            let mut end = usize::try_from(n).unwrap_or(0).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            s(text[..end].to_string())
        }
        "pad" => {
            want_args(name, &args, 3, Some(3))?;
            let text = string_arg(&args[0])?;
            let (pre, post) = (int_param(&args[1])?, int_param(&args[2])?);
            if text.is_empty() {
                return s(String::new());
            }
            let spaces = |n: i64| " ".repeat(usize::try_from(n).unwrap_or(0));
            s(format!("{}{text}{}", spaces(pre), spaces(post)))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

fn index(args: &[Val]) -> Result<Val, String> {
    let mut item = args[0].clone();
    for idx in &args[1..] {
        item = match (&item, idx) {
            (Some(Value::Array(a)), _) => {
                let i = int_arg(idx).ok_or_else(|| {
                    format!("cannot index slice/array with type {}", type_name(idx))
                })?;
                let got = usize::try_from(i).ok().and_then(|i| a.get(i));
                Some(
                    got.cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                )
            }
            (Some(Value::String(text)), _) => {
                let i = int_arg(idx)
                    .ok_or_else(|| format!("cannot index string with type {}", type_name(idx)))?;
                let byte = usize::try_from(i).ok().and_then(|i| text.as_bytes().get(i));
                Some(Value::from(
                    *byte.ok_or_else(|| format!("index out of range: {i}"))?,
                ))
            }
            (Some(Value::Object(m)), Some(Value::String(k))) if gofmt::go_type(m).is_none() => {
                Some(
                    m.get(k)
                        .cloned()
                        .unwrap_or_else(|| Value::String(String::new())),
                )
            }
            (Some(Value::Object(_)), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    type_name(other)
                ));
            }
            (None | Some(Value::Null), _) => return Err("index of untyped nil".into()),
            (other, _) => return Err(format!("can't index item of type {}", type_name(other))),
        };
    }
    Ok(item)
}

/// `slice x i j`: `x[i:j]` of a string (bytes) or list.
fn slice(args: &[Val]) -> Result<Val, String> {
    let mut bounds = Vec::new();
    for a in &args[1..] {
        let i = int_arg(a)
            .ok_or_else(|| format!("cannot index slice/array with type {}", type_name(a)))?;
        bounds.push(usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?);
    }
    let check = |len: usize| -> Result<(usize, usize), String> {
        let lo = bounds.first().copied().unwrap_or(0);
        let hi = bounds.get(1).copied().unwrap_or(len);
        if hi > len {
            return Err(format!("index out of range: {hi}"));
        }
        if lo > hi {
            return Err(format!("invalid slice index: {lo} > {hi}"));
        }
        Ok((lo, hi))
    };
    match &args[0] {
        Some(Value::String(t)) => {
            if bounds.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            let (lo, hi) = check(t.len())?;
            let bytes = &t.as_bytes()[lo..hi];
            Ok(Some(Value::String(
                String::from_utf8_lossy(bytes).into_owned(),
            )))
        }
        Some(Value::Array(a)) => {
            let (lo, hi) = check(a.len())?;
            Ok(Some(Value::Array(a[lo..hi].to_vec())))
        }
        other => Err(format!("can't slice item of type {}", type_name(other))),
    }
}

/// Go maps case rune by rune (`unicode.ToUpper`): a character whose full mapping is
/// several characters (ß → SS) stays as it is.
fn simple_case<I: Iterator<Item = char> + ExactSizeIterator>(
    c: char,
    map: impl Fn(char) -> I,
) -> char {
    let mut m = map(c);
    match (m.len(), m.next()) {
        (1, Some(u)) => u,
        _ => c,
    }
}

fn num_pair(a: &Number, b: &Number) -> std::cmp::Ordering {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => match (a.as_u64(), b.as_u64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (
                    a.as_f64().unwrap_or(f64::NAN),
                    b.as_f64().unwrap_or(f64::NAN),
                );
                x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
            }
        },
    }
}

fn equal(a: &Val, b: &Val) -> Result<bool, String> {
    match (a, b) {
        (None, _) | (_, None) => Err("invalid type for comparison".into()),
        (Some(Value::Null), Some(Value::Null)) => Ok(true),
        (Some(Value::Null), _) | (_, Some(Value::Null)) => Ok(false),
        (Some(Value::Number(x)), Some(Value::Number(y))) => Ok(num_pair(x, y).is_eq()),
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x == y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => Ok(x == y),
        (Some(Value::Array(_) | Value::Object(_)), _)
        | (_, Some(Value::Array(_) | Value::Object(_))) => Err("non-comparable types".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn order(a: &Val, b: &Val) -> Result<std::cmp::Ordering, String> {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => Ok(num_pair(x, y)),
        (Some(Value::String(x)), Some(Value::String(y))) => Ok(x.cmp(y)),
        (Some(Value::Number(_) | Value::String(_)), Some(Value::Number(_) | Value::String(_))) => {
            Err("incompatible types for comparison".into())
        }
        _ => Err("invalid type for comparison".into()),
    }
}

fn sprint_val(v: &Val) -> String {
    match v {
        None => "<nil>".to_string(),
        Some(v) => gofmt::sprint(v),
    }
}

/// `fmt.Sprint`: a space between operands when neither is a string.
fn sprint_args(args: &[Val]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &Val| matches!(v, Some(Value::String(_)));
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&sprint_val(a));
    }
    out
}

/// strings.Title: upper-cases the first letter of each word.
fn title(text: &str) -> String {
    let is_sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !(c.is_alphanumeric()) && c.is_whitespace()
        }
    };
    let mut out = String::with_capacity(text.len());
    let mut prev_sep = true;
    for c in text.chars() {
        if prev_sep {
            out.push(simple_case(c, char::to_uppercase));
        } else {
            out.push(c);
        }
        prev_sep = is_sep(c);
    }
    out
}

fn bad_verb(verb: char, v: &Val) -> String {
    format!("%!{verb}({}={})", type_name(v), sprint_val(v))
}

/// A subset of Go's `fmt.Sprintf`: flags `-`, `+` and `0`, width, precision, and verbs
/// `v s q d t x X f F e g %`.
pub(crate) fn sprintf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut left, mut zero, mut plus) = (false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => left = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            width.push(d);
        }
        let mut prec: Option<usize> = None;
        if chars.next_if_eq(&'.').is_some() {
            let mut p = String::new();
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                p.push(d);
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let numeric = matches!(arg, Some(Value::Number(_)));
        let float = |a: &Val| match a {
            Some(Value::Number(n)) => n.as_f64(),
            _ => None,
        };
        let text = match verb {
            'v' => sprint_val(arg),
            's' => {
                let t = sprint_val(arg);
                match prec {
                    Some(p) => t.chars().take(p).collect(),
                    None => t,
                }
            }
            'q' => match arg {
                Some(Value::String(t)) => gofmt::quote(t),
                _ => bad_verb(verb, arg),
            },
            't' => match arg {
                Some(Value::Bool(b)) => b.to_string(),
                _ => bad_verb(verb, arg),
            },
            'd' => match arg {
                Some(Value::Number(n)) if !n.is_f64() => n.to_string(),
                _ => bad_verb(verb, arg),
            },
            'x' | 'X' => {
                let t = match arg {
                    Some(Value::Number(n)) if n.is_i64() => {
                        let i = n.as_i64().unwrap_or(0);
                        let sign = if i < 0 { "-" } else { "" };
                        format!("{sign}{:x}", i.unsigned_abs())
                    }
                    Some(Value::Number(n)) if n.is_u64() => {
                        format!("{:x}", n.as_u64().unwrap_or(0))
                    }
                    Some(Value::String(t)) => t.bytes().map(|b| format!("{b:02x}")).collect(),
                    _ => bad_verb(verb, arg),
                };
                if verb == 'X' {
                    t.to_uppercase()
                } else {
                    t
                }
            }
            'f' | 'F' => match float(arg) {
                Some(f) => format!("{:.*}", prec.unwrap_or(6), f),
                None => bad_verb(verb, arg),
            },
            'e' => match float(arg) {
                Some(f) => {
                    let t = format!("{:.*e}", prec.unwrap_or(6), f);
                    let (m, e) = t.split_once('e').unwrap_or((&t, "0"));
                    let e: i32 = e.parse().unwrap_or(0);
                    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
                }
                None => bad_verb(verb, arg),
            },
            'g' => match float(arg) {
                Some(f) => gofmt::float_v(f),
                None => bad_verb(verb, arg),
            },
            _ => bad_verb(verb, arg),
        };
        let text = if plus
            && numeric
            && matches!(verb, 'd' | 'f' | 'F' | 'e' | 'g')
            && !text.starts_with('-')
        {
            format!("+{text}")
        } else {
            text
        };
        let w: usize = width.parse().unwrap_or(0);
        let len = text.chars().count();
        if len >= w {
            out.push_str(&text);
        } else if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(w - len));
        } else if zero && numeric {
            let split = usize::from(text.starts_with(['-', '+']));
            let (sign, digits) = text.split_at(split);
            out.push_str(sign);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&text);
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", type_name(a), sprint_val(a)))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}
