//! Turning registry responses into bytes or typed errors.

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::error::{Error, Result};

/// The JSON error body of the Distribution API.
#[derive(Debug, serde::Deserialize)]
pub struct RegistryErrorBody {
    #[serde(default)]
    pub errors: Vec<RegistryError>,
}

#[derive(Debug, serde::Deserialize)]
pub struct RegistryError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
    /// Free-form; shown when it is a string (e.g. "manifest schema v1 unsupported").
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

/// Passes a success through; maps anything else to an error about `what`.
pub async fn check(resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    check_as(resp, what, false).await
}

/// Marks a 401 answered to a request that carried a user's password: its error says
/// whose credentials were refused and how to store others.
#[derive(Clone)]
pub struct RefusedCredentials {
    pub username: String,
    pub registry: String,
}

impl std::fmt::Display for RefusedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the credentials for {} were refused: run `scry login {}`",
            self.username, self.registry
        )
    }
}

/// [`check`] for a manifest GET or HEAD: a 404 whose error code is MANIFEST_UNKNOWN or
/// NAME_UNKNOWN (or a body-less 404 to a HEAD) is [`Error::ImageNotFound`], which
/// exits 2; any other 404 stays [`Error::NotFound`].
pub async fn check_manifest(resp: reqwest::Response, what: &str) -> Result<reqwest::Response> {
    check_as(resp, what, true).await
}

async fn check_as(
    resp: reqwest::Response,
    what: &str,
    manifest: bool,
) -> Result<reqwest::Response> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let refused = resp.extensions().get::<RefusedCredentials>().cloned();
    let (text, codes) = error_parts(resp).await;
    let image_gone = manifest
        && status == StatusCode::NOT_FOUND
        && (codes
            .iter()
            .any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN")
            || (codes.is_empty() && text.is_empty()));
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    // `what` names a thing ("manifest 1 in …") or an action ("writing manifest …").
    let action = [
        "writing",
        "uploading",
        "starting",
        "finishing",
        "deleting",
        "logging",
    ]
    .iter()
    .any(|verb| what.starts_with(verb));
    let msg = if action {
        format!("{what}: {detail}")
    } else {
        format!("reading {what}: {detail}")
    };
    Err(match status {
        StatusCode::NOT_FOUND if image_gone => Error::ImageNotFound(msg),
        StatusCode::NOT_FOUND => Error::NotFound(msg),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => match refused {
            Some(r) => Error::Unauthorized(format!("{msg}; {r}")),
            None => Error::Unauthorized(msg),
        },
        StatusCode::METHOD_NOT_ALLOWED => Error::Unsupported(msg),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Error::Network(format!("{msg} (HTTP {})", s.as_u16()))
        }
        s => Error::Other(format!("{msg} (HTTP {})", s.as_u16())),
    })
}

/// The registry's error text: `code: message` pairs, or a short plain body.
pub async fn error_text(resp: reqwest::Response) -> String {
    error_parts(resp).await.0
}

/// The error text and the registry's error codes (`MANIFEST_UNKNOWN`, …).
async fn error_parts(resp: reqwest::Response) -> (String, Vec<String>) {
    let body = read_limited(resp, 64 * 1024, "error body")
        .await
        .unwrap_or_default();
    let codes = serde_json::from_slice::<RegistryErrorBody>(&body)
        .map(|b| {
            b.errors
                .into_iter()
                .map(|e| e.code.to_uppercase())
                .collect()
        })
        .unwrap_or_default();
    (body_text(&body), codes)
}

/// `code: message` pairs of a Distribution error body, or a short plain body.
fn body_text(body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<RegistryErrorBody>(body) {
        let parts: Vec<String> = parsed
            .errors
            .iter()
            .map(|e| {
                let text = error_code_text(e);
                match e.detail.as_ref().and_then(|d| d.as_str()) {
                    Some(d) if !d.is_empty() && !text.contains(d) => format!("{text}: {d}"),
                    _ => text,
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.len() > 200 || s.starts_with('<') {
        String::new()
    } else {
        s.to_string()
    }
}

/// `code: message` of one registry error (said once when both say the same).
fn error_code_text(e: &RegistryError) -> String {
    let code = e.code.to_lowercase().replace('_', " ");
    if e.message.is_empty() {
        code
    } else if e.message.eq_ignore_ascii_case(&code) {
        e.message.clone()
    } else {
        format!("{code}: {}", e.message)
    }
}

/// Reads a whole body, failing once it passes `limit` bytes.
pub async fn read_limited(mut resp: reqwest::Response, limit: u64, what: &str) -> Result<Bytes> {
    if let Some(len) = resp.content_length() {
        if len > limit {
            return Err(Error::InvalidInput(format!(
                "reading {what}: {len} bytes is more than the limit of {limit}"
            )));
        }
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| Error::Network(format!("reading {what}: {}", describe_reqwest(&e))))?
    {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Err(Error::InvalidInput(format!(
                "reading {what}: body is more than the limit of {limit} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The path and query of a `Link: <…>; rel="next"` header, relative to the registry.
pub fn next_link(h: &HeaderMap) -> Option<String> {
    for v in h.get_all(reqwest::header::LINK).iter() {
        let v = v.to_str().ok()?;
        for part in v.split(',') {
            let part = part.trim();
            if !part.contains("rel=\"next\"") && !part.contains("rel=next") {
                continue;
            }
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            let target = &part[start..end];
            if target.starts_with('/') {
                return Some(target.to_string());
            }
            // Absolute URL: keep path and query; the registry is the same one.
            let u = url::Url::parse(target).ok()?;
            let mut p = u.path().to_string();
            if let Some(q) = u.query() {
                p.push('?');
                p.push_str(q);
            }
            return Some(p);
        }
    }
    None
}

/// Whether a request failed in the TLS handshake (a plain-HTTP server, a certificate
/// refused): not a passing fault, so not worth retrying.
pub fn is_tls_failure(e: &reqwest::Error) -> bool {
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = src {
        if c.is::<openssl::ssl::Error>() || c.is::<openssl::error::ErrorStack>() {
            return true;
        }
        let t = c.to_string().to_ascii_lowercase();
        if [
            "wrong version number",
            "handshake",
            "certificate verify failed",
        ]
        .iter()
        .any(|m| t.contains(m))
        {
            return true;
        }
        src = c.source();
    }
    false
}

/// A reqwest error with its causes, without the URL's credentials.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "reading the response body failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut seen = Vec::new();
    while let Some(c) = src {
        let t = c.to_string();
        if !seen.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
            seen.push(t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_header() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("</v2/a/tags/list?last=x&n=100>; rel=\"next\""),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/a/tags/list?last=x&n=100")
        );
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://r.example/v2/_catalog?last=b>; rel=\"next\""),
        );
        assert_eq!(next_link(&h).as_deref(), Some("/v2/_catalog?last=b"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
