//! Go's text forms of JSON-shaped values: `fmt`'s `%v` (what `{{.X}}` prints) and
//! `encoding/json`'s compact encoding (what `{{json .X}}` prints).
//!
//! `%v`: strings raw, integers as written, floats as Go's `%g` with shortest digits
//! (`1e+06`), `true`/`false`, `<nil>`, lists `[a b]`, maps `map[k:v]` sorted by key.
//! JSON: no spaces, keys in the value's order, `<`, `>`, `&`, U+2028 and U+2029 escaped
//! as `\u003c`-style sequences, floats as Go writes them (`1e+21`, `1e-7`, `0.5`).

use serde_json::{Number, Value};

/// A value during template execution; `None` is Go's "no value" (a missing map key).
pub(crate) type Val = Option<Value>;

/// Key that makes a JSON object stand for a Go struct; its value is the Go type name
/// and the other keys are the fields in declaration order. Such an object prints as
/// `{v1 v2}`, is always true, and asking it for a field it lacks is an error.
pub(crate) const STRUCT_KEY: &str = "\u{0}struct";
/// Key that makes a JSON object stand for a typed nil pointer (value: the type name):
/// it prints `<nil>` and is false.
pub(crate) const NIL_KEY: &str = "\u{0}nil";

/// Key that makes a JSON object stand for a Go `time.Time` (value: RFC 3339 text): it
/// prints as Go prints times, and templates may call its methods (`gotime.rs`).
pub(crate) const TIME_KEY: &str = "\u{0}time";

/// The RFC 3339 text of a time object.
pub(crate) fn go_time_text(m: &serde_json::Map<String, Value>) -> Option<&str> {
    m.get(TIME_KEY).and_then(Value::as_str)
}

/// The Go type name of a struct or typed-nil object.
pub(crate) fn go_type(m: &serde_json::Map<String, Value>) -> Option<&str> {
    if m.contains_key(TIME_KEY) {
        return Some("time.Time");
    }
    m.get(STRUCT_KEY)
        .or_else(|| m.get(NIL_KEY))
        .and_then(Value::as_str)
}

/// Whether the object stands for a typed nil pointer.
pub(crate) fn is_go_nil(m: &serde_json::Map<String, Value>) -> bool {
    m.contains_key(NIL_KEY)
}

/// A copy of `v` with the struct and nil markers replaced by plain JSON (a nil pointer
/// becomes null), for `json` and comparisons.
pub(crate) fn plain(v: &Value) -> Value {
    match v {
        Value::Object(m) if is_go_nil(m) => Value::Null,
        Value::Object(m) if go_time_text(m).is_some() => {
            Value::String(go_time_text(m).unwrap_or_default().to_string())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != STRUCT_KEY)
                .map(|(k, v)| (k.clone(), plain(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(plain).collect()),
        other => other.clone(),
    }
}

/// What an output action prints for a pipeline's final value.
pub(crate) fn print_top(v: &Val) -> String {
    match v {
        // Go unwraps interface values before printing, so a nil reads as "no value".
        None | Some(Value::Null) => "<no value>".to_string(),
        Some(v) => sprint(v),
    }
}

/// `fmt.Sprint(v)` for one value.
pub(crate) fn sprint(v: &Value) -> String {
    let mut s = String::new();
    print_value(v, &mut s);
    s
}

fn print_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_v(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_value(e, out);
            }
            out.push(']');
        }
        Value::Object(m) if is_go_nil(m) => out.push_str("<nil>"),
        Value::Object(m) if go_time_text(m).is_some() => out.push_str(&super::gotime::go_string(
            go_time_text(m).unwrap_or_default(),
        )),
        Value::Object(m) if m.contains_key(STRUCT_KEY) => {
            out.push('{');
            let fields = m.iter().filter(|(k, _)| k.as_str() != STRUCT_KEY);
            for (i, (_, v)) in fields.enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_value(v, out);
            }
            out.push('}');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_value(&m[k], out);
            }
            out.push(']');
        }
    }
}

fn number_v(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        n.as_f64().map(float_v).unwrap_or_else(|| n.to_string())
    }
}

/// Go type names used in messages.
pub(crate) fn type_name(v: &Val) -> String {
    match v {
        Some(Value::Object(m)) => go_type(m).unwrap_or("map[string]interface {}").to_string(),
        other => basic_type_name(other).to_string(),
    }
}

fn basic_type_name(v: &Val) -> &'static str {
    match v {
        None => "<no value>",
        Some(Value::Null) => "nil",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Number(n)) if n.is_f64() => "float64",
        Some(Value::Number(_)) => "int",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "[]interface {}",
        Some(Value::Object(_)) => "map[string]interface {}",
    }
}

/// Shortest round-trip decimal digits of `|f|` and the decimal point position:
/// `|f| = 0.DIGITS × 10^dp`.
fn shortest_digits(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse::<i32>().unwrap_or(0) + 1)
}

fn fixed(neg: bool, digits: &str, dp: i32) -> String {
    let mut s = String::from(if neg { "-" } else { "" });
    let nd = digits.len() as i32;
    if dp <= 0 {
        s.push_str("0.");
        s.push_str(&"0".repeat((-dp) as usize));
        s.push_str(digits);
    } else if dp >= nd {
        s.push_str(digits);
        s.push_str(&"0".repeat((dp - nd) as usize));
    } else {
        s.push_str(&digits[..dp as usize]);
        s.push('.');
        s.push_str(&digits[dp as usize..]);
    }
    s
}

fn exponent(neg: bool, digits: &str, dp: i32, min_exp_digits: usize) -> String {
    let mut s = String::from(if neg { "-" } else { "" });
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    let e = dp - 1;
    s.push('e');
    s.push(if e < 0 { '-' } else { '+' });
    s.push_str(&format!("{:0width$}", e.abs(), width = min_exp_digits));
    s
}

/// Go's `%v` for a float64: `%g` with the shortest digits; exponent form when the
/// decimal exponent is below -4 or at least 6 (Go's threshold for shortest `%g`).
pub(crate) fn float_v(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, dp) = shortest_digits(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        exponent(f < 0.0, &digits, dp, 2)
    } else {
        fixed(f < 0.0, &digits, dp)
    }
}

/// `encoding/json`'s float64 form.
fn float_json(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (digits, dp) = shortest_digits(f);
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        // Go writes at least two exponent digits, then trims "e-07" to "e-7".
        let s = exponent(f < 0.0, &digits, dp, 2);
        match s.split_once("e-0") {
            Some((m, d)) if d.len() == 1 => format!("{m}e-{d}"),
            _ => s,
        }
    } else {
        fixed(f < 0.0, &digits, dp)
    }
}

/// Go's `json.Marshal` of a value, compact; a missing value encodes as `null`.
pub(crate) fn json(v: &Val) -> String {
    let mut out = String::new();
    match v {
        None => out.push_str("null"),
        Some(v) => json_value(v, &mut out),
    }
    out
}

fn json_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_f64() => {
            out.push_str(&n.as_f64().map(float_json).unwrap_or_default())
        }
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_value(e, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                json_value(e, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal with Go's HTML-safe escaping.
pub(crate) fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `%q` of a string (`strconv.Quote`).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_printing() {
        let cases = [
            (json!("raw <&> text"), "raw <&> text"),
            (json!(42), "42"),
            (json!(-7), "-7"),
            (json!(18446744073709551615u64), "18446744073709551615"),
            (json!(true), "true"),
            (json!(null), "<nil>"),
            (json!(["a", "b", 3]), "[a b 3]"),
            (json!([]), "[]"),
            (
                json!({"zeta": "1", "alpha": "x y", "mid": [1, 2]}),
                "map[alpha:x y mid:[1 2] zeta:1]",
            ),
            (json!({}), "map[]"),
            (json!([{"b": 1, "a": null}]), "[map[a:<nil> b:1]]"),
        ];
        for (v, want) in cases {
            assert_eq!(sprint(&v), want, "{v}");
        }
        assert_eq!(print_top(&None), "<no value>");
        assert_eq!(print_top(&Some(Value::Null)), "<no value>");
        assert_eq!(print_top(&Some(json!("s"))), "s");
    }

    #[test]
    fn go_float_forms() {
        let cases = [
            (0.5, "0.5", "0.5"),
            (1.0, "1", "1"),
            (-2.25, "-2.25", "-2.25"),
            (123456.0, "123456", "123456"),
            (1e6, "1e+06", "1000000"),
            (1234567.0, "1.234567e+06", "1234567"),
            (0.0001, "0.0001", "0.0001"),
            (0.00001, "1e-05", "0.00001"),
            (1e-7, "1e-07", "1e-7"),
            (1.5e-7, "1.5e-07", "1.5e-7"),
            (1e21, "1e+21", "1e+21"),
            (1e20, "1e+20", "100000000000000000000"),
            (1e100, "1e+100", "1e+100"),
            (0.0, "0", "0"),
        ];
        for (f, v, j) in cases {
            assert_eq!(float_v(f), v, "%v of {f}");
            assert_eq!(float_json(f), j, "json of {f}");
        }
        assert_eq!(sprint(&json!(2.5)), "2.5");
    }

    #[test]
    fn json_encoding() {
        let v = json!({"b": "x<y>&z\u{2028}", "a": [1, 2.5, true, null], "c": {"q": "\"\\\n\t\u{1}\u{8}"}});
        assert_eq!(
            json(&Some(v)),
            r#"{"b":"x\u003cy\u003e\u0026z\u2028","a":[1,2.5,true,null],"c":{"q":"\"\\\n\t\u0001\b"}}"#
        );
        assert_eq!(json(&None), "null");
        assert_eq!(json(&Some(json!("é"))), "\"é\"");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n\u{1}é"), r#""a\"b\\c\n\x01é""#);
    }
}
