//! The auth challenge (`WWW-Authenticate`) and bearer tokens cached per scope.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use tokio::sync::Mutex;

use super::{response, Access, Credential};
use crate::error::{Error, Result};

/// What the registry asked for in its ping answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Picks the first challenge scry understands from the response headers.
pub fn from_headers(h: &HeaderMap) -> Option<Challenge> {
    h.get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse)
}

/// Parses one `WWW-Authenticate` value: `Scheme k="v", k2=v2`.
pub fn parse(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = match value.find(char::is_whitespace) {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic {
            realm: params.get("realm").cloned(),
        }),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            return out;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            continue;
        }
        chars.next();
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.insert(key.to_ascii_lowercase(), val);
    }
}

/// The token scope for a request.
pub fn scope_for(repo: Option<&str>, access: Access) -> String {
    match (repo, access) {
        (_, Access::Catalog) => "registry:catalog:*".to_string(),
        (Some(r), Access::Pull) => format!("repository:{r}:pull"),
        (Some(r), Access::PushPull) => format!("repository:{r}:pull,push"),
        (Some(r), Access::Delete) => format!("repository:{r}:delete"),
        (None, _) => String::new(),
    }
}

pub fn header_value(s: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(s)
        .map_err(|_| Error::invalid("a header value holds characters HTTP does not allow"))
}

pub fn basic_header(user: &str, pass: &str) -> Result<HeaderValue> {
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let mut v = header_value(&format!("Basic {enc}"))?;
    v.set_sensitive(true);
    Ok(v)
}

struct Token {
    value: String,
    expires: Instant,
}

/// Bearer tokens by scope, reused until shortly before they expire.
#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenCache {
    #[allow(clippy::too_many_arguments)]
    pub async fn get_or_fetch(
        &self,
        http: &reqwest::Client,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        cred: &Credential,
        timeout: Duration,
        force_new: bool,
    ) -> Result<String> {
        let mut tokens = self.tokens.lock().await;
        if !force_new {
            if let Some(t) = tokens.get(scope) {
                if t.expires > Instant::now() {
                    return Ok(t.value.clone());
                }
            }
        }
        let t = fetch(http, realm, service, scope, cred, timeout).await?;
        let value = t.value.clone();
        tokens.insert(scope.to_string(), t);
        Ok(value)
    }
}

async fn fetch(
    http: &reqwest::Client,
    realm: &str,
    service: Option<&str>,
    scope: &str,
    cred: &Credential,
    timeout: Duration,
) -> Result<Token> {
    let mut url = url::Url::parse(realm).map_err(|e| {
        Error::Network(format!(
            "the registry's token realm {realm:?} is not a URL: {e}"
        ))
    })?;
    let resp = match cred {
        Credential::IdentityToken { token, .. } => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", token.clone()),
                ("client_id", "scry".to_string()),
            ];
            if let Some(s) = service {
                form.push(("service", s.to_string()));
            }
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                form.push(("scope", s.to_string()));
            }
            http.post(url).form(&form).timeout(timeout).send().await
        }
        _ => {
            {
                let mut q = url.query_pairs_mut();
                if let Some(s) = service {
                    q.append_pair("service", s);
                }
                for s in scope.split(' ').filter(|s| !s.is_empty()) {
                    q.append_pair("scope", s);
                }
            }
            let mut req = http.get(url).timeout(timeout);
            if let Credential::Basic { username, password } = cred {
                req = req.header(
                    reqwest::header::AUTHORIZATION,
                    basic_header(username, password)?,
                );
            }
            req.send().await
        }
    }
    .map_err(|e| Error::Network(format!("GET {realm}: {}", response::describe_reqwest(&e))))?;
    let status = resp.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let body = response::error_text(resp).await;
        return Err(Error::Unauthorized(format!(
            "unable to retrieve auth token: invalid username/password: {}",
            if body.is_empty() {
                "unauthorized".to_string()
            } else {
                body
            }
        )));
    }
    if !status.is_success() {
        let body = response::error_text(resp).await;
        return Err(Error::Network(format!(
            "token server {realm} answered {status}: {body}"
        )));
    }
    let body = response::read_limited(resp, 1024 * 1024, "token response").await?;
    let tr: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| Error::Network(format!("token server {realm} sent invalid JSON: {e}")))?;
    let value = tr
        .token
        .filter(|t| !t.is_empty())
        .or(tr.access_token)
        .ok_or_else(|| Error::Network(format!("token server {realm} sent no token")))?;
    // Registries default to 60 s; renew a little early.
    let life = tr.expires_in.unwrap_or(60).max(60);
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(life.saturating_sub(10)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: Some("Registry Realm".into())
            })
        );
        assert_eq!(
            parse(r#"bearer   realm=http://h/t , service = "s\"q""#),
            Some(Challenge::Bearer {
                realm: "http://h/t".into(),
                service: Some("s\"q".into()),
                scope: None,
            })
        );
        assert_eq!(parse("Bearer service=x"), None);
        assert_eq!(parse("Negotiate abc"), None);
    }

    #[test]
    fn scopes() {
        assert_eq!(scope_for(Some("a/b"), Access::Pull), "repository:a/b:pull");
        assert_eq!(
            scope_for(Some("a"), Access::PushPull),
            "repository:a:pull,push"
        );
        assert_eq!(scope_for(None, Access::Catalog), "registry:catalog:*");
    }
}
