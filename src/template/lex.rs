//! Splits a template into text and action tokens, applying the `{{- ` / ` -}}` trim
//! markers and dropping `{{/* comments */}}`.

/// One token inside `{{ }}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// `.` alone.
    Dot,
    /// `.Name` (one link of a field chain).
    Field(String),
    /// `$` or `$name`, with the `$`.
    Var(String),
    /// A function name or keyword (`if`, `range`, `true`, ...).
    Ident(String),
    /// A quoted or raw string, already unescaped.
    Str(String),
    /// Number literal text.
    Num(String),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Whitespace (or the start of the action) precedes the token. Field links that are
    /// not spaced continue the operand before them.
    pub spaced: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Text(String),
    /// Tokens of one action and its source text (for messages).
    Action(Vec<Token>, String),
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Lexes the whole template. Errors are plain reasons; the caller names the template.
pub(crate) fn lex(src: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    loop {
        let Some(open) = rest.find("{{") else {
            push_text(&mut items, rest, trim_next_text, false);
            return Ok(items);
        };
        let after = &rest[open + 2..];
        let left_trim = after.starts_with('-') && after[1..].starts_with(is_space);
        push_text(&mut items, &rest[..open], trim_next_text, left_trim);
        let body = if left_trim { &after[1..] } else { after };
        let (action, consumed, right_trim) = lex_action(body)?;
        if let Some((tokens, text)) = action {
            items.push(Item::Action(tokens, text));
        }
        trim_next_text = right_trim;
        rest = &body[consumed..];
    }
}

fn push_text(items: &mut Vec<Item>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start_matches(is_space);
    }
    if trim_end {
        t = t.trim_end_matches(is_space);
    }
    if !t.is_empty() {
        items.push(Item::Text(t.to_string()));
    }
}

type Lexed = (Option<(Vec<Token>, String)>, usize, bool);

/// Lexes from just after `{{` (and a left trim marker) through `}}`. Returns the tokens
/// (`None` for a comment), the bytes consumed and whether a right trim marker was seen.
fn lex_action(body: &str) -> Result<Lexed, String> {
    let trimmed = body.trim_start_matches(is_space);
    if let Some(comment) = trimmed.strip_prefix("/*") {
        let Some(end) = comment.find("*/") else {
            return Err("unclosed comment".into());
        };
        let after = &comment[end + 2..];
        let tail = after.trim_start_matches(is_space);
        let (right_trim, close) = match tail.strip_prefix("-}}") {
            Some(_) if tail.len() < after.len() => (true, 3),
            _ if tail.starts_with("}}") => (false, 2),
            _ => return Err("comment ends before closing delimiter".into()),
        };
        let consumed = body.len() - tail.len() + close;
        return Ok((None, consumed, right_trim));
    }

    let mut tokens = Vec::new();
    let mut spaced = true;
    let mut i = 0;
    let b = body.as_bytes();
    loop {
        let Some(c) = body[i..].chars().next() else {
            return Err("unclosed action".into());
        };
        if body[i..].starts_with("}}") {
            return Ok((Some((tokens, body[..i].trim().to_string())), i + 2, false));
        }
        if spaced && c == '-' && body[i..].starts_with("-}}") && i > 0 {
            return Ok((Some((tokens, body[..i].trim().to_string())), i + 3, true));
        }
        if is_space(c) {
            spaced = true;
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            '|' => {
                i += 1;
                Tok::Pipe
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            ':' if body[i..].starts_with(":=") => {
                i += 2;
                Tok::Declare
            }
            '"' => {
                let (s, len) = lex_quoted(&body[i..])?;
                i += len;
                Tok::Str(s)
            }
            '`' => {
                let Some(end) = body[i + 1..].find('`') else {
                    return Err("unterminated raw quoted string".into());
                };
                i += end + 2;
                Tok::Str(body[start + 1..i - 1].to_string())
            }
            '.' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 1;
                let name_len = body[i..]
                    .find(|c| !is_ident_char(c))
                    .unwrap_or(body.len() - i);
                i += name_len;
                if name_len == 0 {
                    Tok::Dot
                } else {
                    Tok::Field(body[start + 1..i].to_string())
                }
            }
            '$' => {
                i += 1;
                i += body[i..]
                    .find(|c| !is_ident_char(c))
                    .unwrap_or(body.len() - i);
                Tok::Var(body[start..i].to_string())
            }
            '0'..='9' | '.' | '-' | '+' => {
                i += 1;
                while let Some(c) = body[i..].chars().next() {
                    let prev = body.as_bytes()[i - 1];
                    let exponent_sign =
                        matches!(c, '+' | '-') && matches!(prev, b'e' | b'E' | b'p' | b'P');
                    if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                Tok::Num(body[start..i].to_string())
            }
            c if is_ident_char(c) => {
                i += body[i..]
                    .find(|c| !is_ident_char(c))
                    .unwrap_or(body.len() - i);
                Tok::Ident(body[start..i].to_string())
            }
            '\'' => return Err("character constants are not supported".into()),
            other => return Err(format!("unexpected {other:?} in action")),
        };
        tokens.push(Token { tok, spaced });
        spaced = false;
    }
}

/// Decodes a Go interpreted string literal starting at `s[0] == '"'`; returns it and
/// the number of bytes consumed.
fn lex_quoted(s: &str) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\\' | '"' | '\'' => out.push(e),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == n)
                            .ok_or_else(|| format!("invalid escape \\{e}{hex} in string"))?;
                        let ch = char::from_u32(code)
                            .ok_or_else(|| format!("invalid code point \\{e}{hex}"))?;
                        out.push(ch);
                    }
                    '0'..='7' => {
                        let mut code = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let d = chars.next().and_then(|(_, c)| c.to_digit(8));
                            code = code * 8 + d.ok_or("invalid octal escape in string")?;
                        }
                        let ch = char::from_u32(code)
                            .filter(|_| code < 256)
                            .ok_or("invalid octal escape in string")?;
                        out.push(ch);
                    }
                    other => return Err(format!("unknown escape \\{other} in string")),
                }
            }
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        match lex(src).unwrap().as_slice() {
            [Item::Action(t, _)] => t.iter().map(|t| t.tok.clone()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(toks("{{.}}"), [Tok::Dot]);
        assert_eq!(
            toks("{{.A.b_2}}"),
            [Tok::Field("A".into()), Tok::Field("b_2".into())]
        );
        assert_eq!(
            toks(r#"{{index .M "k\t\"x\u00e9" `raw\n` -1 2.5}}"#),
            [
                Tok::Ident("index".into()),
                Tok::Field("M".into()),
                Tok::Str("k\t\"x\u{e9}".into()),
                Tok::Str("raw\\n".into()),
                Tok::Num("-1".into()),
                Tok::Num("2.5".into()),
            ]
        );
        assert_eq!(
            toks("{{range $i, $e := .L}}"),
            [
                Tok::Ident("range".into()),
                Tok::Var("$i".into()),
                Tok::Comma,
                Tok::Var("$e".into()),
                Tok::Declare,
                Tok::Field("L".into()),
            ]
        );
        assert_eq!(toks("{{$ = (.X)|len}}").len(), 7);
        assert_eq!(toks("{{1e+3}}"), [Tok::Num("1e+3".into())]);
    }

    #[test]
    fn spacing_marks_chains() {
        let items = lex("{{$x.A .B}}").unwrap();
        let Item::Action(t, text) = &items[0] else {
            panic!()
        };
        assert_eq!(text, "$x.A .B");
        let spaced: Vec<bool> = t.iter().map(|t| t.spaced).collect();
        assert_eq!(spaced, [true, false, true]);
    }

    #[test]
    fn text_trim_and_comments() {
        let items = lex("a  {{- .X -}}\n b{{/* note */}}c{{- /* x */ -}}  d").unwrap();
        let texts: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["a", "b", "c", "d"]);
        // "{{-3}}" is a number, not a trim marker.
        assert_eq!(toks("{{-3}}"), [Tok::Num("-3".into())]);
    }

    #[test]
    fn errors() {
        for (src, want) in [
            ("{{.X", "unclosed action"),
            ("{{\"abc}}", "unterminated quoted string"),
            ("{{`abc}}", "unterminated raw quoted string"),
            ("{{/* x }}", "unclosed comment"),
            ("{{/* x */ y}}", "comment ends before closing delimiter"),
            ("{{\"\\q\"}}", "unknown escape"),
            ("{{'a'}}", "character constants"),
            ("{{.X # y}}", "unexpected '#'"),
        ] {
            let e = lex(src).unwrap_err();
            assert!(e.contains(want), "{src}: {e}");
        }
    }
}
