//! Builds the template tree from lexed items: text, output actions, `if`/`else if`/
//! `else`, `with`, `range` (with `$i, $e :=`), `break`/`continue`, variables, pipelines
//! and parenthesised sub-pipelines. Unknown functions and undefined variables are
//! parse errors, as in Go.

use super::funcs::is_function;
use super::lex::{Item, Tok, Token};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    /// Prints the pipeline's value unless it declares or assigns variables.
    Action(Pipeline),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Branch {
    pub pipe: Pipeline,
    pub then: Vec<Node>,
    pub otherwise: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pipeline {
    /// Variables declared (`:=`) or assigned (`=`), `$`-prefixed.
    pub vars: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Command>,
    /// Source text, for error messages.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    pub args: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Operand {
    pub term: Term,
    /// Field chain applied to the term's value.
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Term {
    Dot,
    Var(String),
    Func(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Sub(Box<Pipeline>),
}

enum Stop {
    Eof,
    End,
    /// `{{else ...}}` with the tokens after `else`.
    Else(Vec<Token>),
}

struct Parser {
    items: std::vec::IntoIter<Item>,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    range_depth: usize,
}

/// Parses lexed items into a node list. Errors are plain reasons.
pub(crate) fn parse(items: Vec<Item>) -> Result<Vec<Node>, String> {
    let mut p = Parser {
        items: items.into_iter(),
        vars: vec!["$".to_string()],
        range_depth: 0,
    };
    let (nodes, end) = p.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End => Err("unexpected {{end}}".into()),
        Stop::Else(_) => Err("unexpected {{else}}".into()),
    }
}

fn ident(tokens: &[Token], i: usize) -> Option<&str> {
    match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut nodes = Vec::new();
        while let Some(item) = self.items.next() {
            let (tokens, text) = match item {
                Item::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Item::Action(tokens, text) => (tokens, text),
            };
            match ident(&tokens, 0) {
                Some("end") if tokens.len() == 1 => return Ok((nodes, Stop::End)),
                Some("end") => return Err(format!("unexpected tokens in {{{{{text}}}}}")),
                Some("else") => return Ok((nodes, Stop::Else(tokens[1..].to_vec()))),
                Some(kw @ ("if" | "with" | "range")) => {
                    let kw = kw.to_string();
                    nodes.push(self.control(&kw, &tokens[1..], &text)?);
                }
                Some(kw @ ("break" | "continue")) => {
                    if tokens.len() != 1 {
                        return Err(format!("unexpected tokens in {{{{{text}}}}}"));
                    }
                    if self.range_depth == 0 {
                        return Err(format!("{{{{{kw}}}}} outside {{{{range}}}}"));
                    }
                    nodes.push(if kw == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                Some(kw @ ("define" | "template" | "block")) => {
                    return Err(format!("{{{{{kw}}}}} is not supported"));
                }
                _ => nodes.push(Node::Action(self.pipeline(&tokens, &text, false)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// `if`/`with`/`range` after the keyword, through the matching `{{end}}`.
    fn control(&mut self, kw: &str, tokens: &[Token], text: &str) -> Result<Node, String> {
        let mark = self.vars.len();
        let pipe = self.pipeline(tokens, text, kw == "range")?;
        let scope = self.vars.len();
        if kw == "range" {
            self.range_depth += 1;
        }
        let body = self.list();
        if kw == "range" {
            self.range_depth -= 1;
        }
        let (then, end) = body?;
        // Variables declared in the first branch are not visible in the second.
        self.vars.truncate(scope);
        let otherwise = match end {
            Stop::Eof => return Err(format!("unexpected EOF: {{{{{kw}}}}} without {{{{end}}}}")),
            Stop::End => Vec::new(),
            Stop::Else(rest) if rest.is_empty() => {
                let (nodes, end) = self.list()?;
                match end {
                    Stop::End => nodes,
                    Stop::Eof => {
                        return Err(format!("unexpected EOF: {{{{{kw}}}}} without {{{{end}}}}"))
                    }
                    Stop::Else(_) => return Err("more than one {{else}}".into()),
                }
            }
            Stop::Else(rest) => match ident(&rest, 0) {
                // `{{else if x}}` / `{{else with x}}` chain onto the same {{end}}.
                Some(chained @ ("if" | "with")) if kw != "range" => {
                    let chained = chained.to_string();
                    let text = format!("else {}", text_of(&rest));
                    vec![self.control(&chained, &rest[1..], &text)?]
                }
                _ => {
                    return Err(format!(
                        "unexpected tokens after {{{{else}}}} in {{{{{kw}}}}}"
                    ))
                }
            },
        };
        self.vars.truncate(mark);
        let branch = Branch {
            pipe,
            then,
            otherwise,
        };
        Ok(match kw {
            "if" => Node::If(branch),
            "with" => Node::With(branch),
            _ => Node::Range(branch),
        })
    }

    fn pipeline(
        &mut self,
        tokens: &[Token],
        text: &str,
        two_vars: bool,
    ) -> Result<Pipeline, String> {
        let var_at = |i: usize| match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Var(v)) => Some(v.clone()),
            _ => None,
        };
        let tok_at = |i: usize| tokens.get(i).map(|t| &t.tok);
        let (mut vars, mut assign, mut start) = (Vec::new(), false, 0);
        if let Some(v) = var_at(0) {
            match tok_at(1) {
                Some(Tok::Declare) => (vars, start) = (vec![v], 2),
                Some(Tok::Assign) => (vars, assign, start) = (vec![v], true, 2),
                Some(Tok::Comma) if two_vars => match (var_at(2), tok_at(3)) {
                    (Some(w), Some(Tok::Declare)) => (vars, start) = (vec![v, w], 4),
                    (Some(w), Some(Tok::Assign)) => (vars, assign, start) = (vec![v, w], true, 4),
                    _ => return Err(format!("bad variable declaration in {{{{{text}}}}}")),
                },
                _ => {}
            }
        }
        if vars.len() == 2 && !two_vars {
            return Err(format!("too many declarations in {{{{{text}}}}}"));
        }
        if assign {
            if let Some(v) = vars.iter().find(|v| !self.vars.contains(v)) {
                return Err(format!("undefined variable {v:?}"));
            }
        }
        let cmds = self.commands(&tokens[start..], text)?;
        if !assign {
            self.vars.extend(vars.iter().cloned());
        }
        Ok(Pipeline {
            vars,
            assign,
            cmds,
            text: text.to_string(),
        })
    }

    fn commands(&mut self, tokens: &[Token], text: &str) -> Result<Vec<Command>, String> {
        if tokens.is_empty() {
            return Err(format!("missing value in {{{{{text}}}}}"));
        }
        let mut cmds = Vec::new();
        let mut i = 0;
        loop {
            let mut args = Vec::new();
            while i < tokens.len() && tokens[i].tok != Tok::Pipe {
                args.push(self.operand(tokens, &mut i, text)?);
            }
            if args.is_empty() {
                return Err(format!("missing command in {{{{{text}}}}}"));
            }
            if let [Operand {
                term: Term::Nil, ..
            }] = args.as_slice()
            {
                return Err("nil is not a command".into());
            }
            cmds.push(Command { args });
            if i == tokens.len() {
                return Ok(cmds);
            }
            i += 1; // the pipe
        }
    }

    fn operand(&mut self, tokens: &[Token], i: &mut usize, text: &str) -> Result<Operand, String> {
        let tok = tokens[*i].tok.clone();
        *i += 1;
        let mut fields = Vec::new();
        let term = match tok {
            Tok::Dot => Term::Dot,
            Tok::Field(f) => {
                fields.push(f);
                Term::Dot
            }
            Tok::Var(v) => {
                if !self.vars.contains(&v) {
                    return Err(format!("undefined variable {v:?}"));
                }
                Term::Var(v)
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Term::Bool(true),
                "false" => Term::Bool(false),
                "nil" => Term::Nil,
                _ if is_function(&name) => Term::Func(name),
                _ => return Err(format!("function {name:?} not defined")),
            },
            Tok::Str(s) => Term::Str(s),
            Tok::Num(n) => number(&n)?,
            Tok::LParen => {
                let start = *i;
                let mut depth = 1;
                while depth > 0 {
                    match tokens.get(*i).map(|t| &t.tok) {
                        None => return Err(format!("unclosed left paren in {{{{{text}}}}}")),
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => depth -= 1,
                        _ => {}
                    }
                    *i += 1;
                }
                let inner = &tokens[start..*i - 1];
                Term::Sub(Box::new(Pipeline {
                    vars: Vec::new(),
                    assign: false,
                    cmds: self.commands(inner, text)?,
                    text: text_of(inner),
                }))
            }
            other => return Err(format!("unexpected {} in {{{{{text}}}}}", describe(&other))),
        };
        while let Some(Token {
            tok: Tok::Field(f),
            spaced: false,
        }) = tokens.get(*i)
        {
            if matches!(
                term,
                Term::Func(_)
                    | Term::Str(_)
                    | Term::Int(_)
                    | Term::Float(_)
                    | Term::Bool(_)
                    | Term::Nil
            ) {
                return Err(format!(
                    "unexpected .{f} after a constant or function in {{{{{text}}}}}"
                ));
            }
            fields.push(f.clone());
            *i += 1;
        }
        Ok(Operand { term, fields })
    }
}

fn number(text: &str) -> Result<Term, String> {
    let clean = text.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix = [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ]
    .into_iter()
    .find_map(|(p, r)| digits.strip_prefix(p).map(|d| (d, r)));
    let int = match radix {
        Some((d, r)) => i64::from_str_radix(d, r).ok(),
        None => digits.parse::<i64>().ok(),
    };
    if let Some(n) = int {
        return Ok(Term::Int(if neg { -n } else { n }));
    }
    match clean.parse::<f64>() {
        Ok(f) if f.is_finite() && radix.is_none() => Ok(Term::Float(f)),
        _ => Err(format!("bad number syntax: {text:?}")),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Pipe => "\"|\"".into(),
        Tok::RParen => "right paren".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        other => format!("{other:?}"),
    }
}

/// Approximate source text of a token run, for messages.
fn text_of(tokens: &[Token]) -> String {
    let mut s = String::new();
    for t in tokens {
        if t.spaced && !s.is_empty() {
            s.push(' ');
        }
        match &t.tok {
            Tok::Dot => s.push('.'),
            Tok::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Tok::Var(v) | Tok::Ident(v) | Tok::Num(v) => s.push_str(v),
            Tok::Str(v) => s.push_str(&format!("{v:?}")),
            Tok::Pipe => s.push('|'),
            Tok::LParen => s.push('('),
            Tok::RParen => s.push(')'),
            Tok::Declare => s.push_str(":="),
            Tok::Assign => s.push('='),
            Tok::Comma => s.push(','),
        }
    }
    s
}
