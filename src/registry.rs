//! Distribution API v2 client: one [`Client`] per registry host.
//!
//! Owns the HTTP connection pool, TLS set-up (certs.d), the ping and the auth challenge
//! (Basic or Bearer with per-scope tokens cached until expiry), retries with backoff on
//! 5xx/429/connection errors, and size limits on what it reads into memory.
//!
//! Contract: every request that the registry refuses maps to a typed [`Error`]:
//! 404 → `NotFound` (`ImageNotFound` for an unknown manifest), 401/403 after authenticating → `Unauthorized`, others → `Network`
//! or `Other` with the registry's own error text. Secrets never appear in errors or logs.

mod body;
pub(crate) mod challenge;
mod response;
mod tls;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

pub use body::OpenedBlob;
pub use challenge::Challenge;
pub use response::RegistryErrorBody;
pub use upload::UploadStart;

/// Identity used against a registry.
#[derive(Clone, Default)]
pub enum Credential {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// OAuth2 refresh token ("identitytoken" in auth files).
    IdentityToken {
        username: String,
        token: String,
    },
    /// A bearer token given by the user (`--registry-token`), sent as is.
    BearerToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, <redacted>)")
            }
            Credential::BearerToken(_) => f.write_str("BearerToken(<redacted>)"),
        }
    }
}

/// How to talk to one registry.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Verify TLS certificates and refuse plain HTTP. When false, HTTPS is tried first
    /// and plain HTTP is used if the TLS attempt fails.
    pub tls_verify: bool,
    /// `--cert-dir`: replaces the certs.d lookup when given.
    pub cert_dir: Option<PathBuf>,
    /// certs.d roots searched for `ROOT/HOST[:PORT]/` when no `cert_dir` is given.
    pub certs_d_roots: Vec<PathBuf>,
    pub credential: Credential,
    /// Extra attempts after a retryable failure (5xx, 429, connection error).
    pub retry_times: u32,
    /// Fixed delay between attempts; exponential backoff from 1 s when `None`.
    pub retry_delay: Option<Duration>,
    pub user_agent: String,
    /// Deadline for connecting and for each response's headers.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            tls_verify: true,
            cert_dir: None,
            certs_d_roots: tls::default_certs_d_roots(),
            credential: Credential::Anonymous,
            retry_times: 0,
            retry_delay: None,
            user_agent: format!("scry/{}", env!("CARGO_PKG_VERSION")),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Largest manifest read into memory.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Largest image config read into memory.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;
/// Largest tag list / catalog page read into memory.
const MAX_LIST_BYTES: u64 = 16 * 1024 * 1024;

/// A client for one registry host. Cheap to clone; clones share the pool and tokens.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// The registry as written in references ("docker.io", "127.0.0.1:5000").
    registry: String,
    /// Host (and port) the API lives at.
    api_host: String,
    http: reqwest::Client,
    config: ClientConfig,
    /// Scheme and challenge as learnt so far.
    state: Mutex<State>,
    tokens: challenge::TokenCache,
}

/// What the client has learnt about the registry: the scheme that answered and the
/// auth challenge it sent (from a ping, or from any request's 401).
#[derive(Default)]
struct State {
    base: Option<String>,
    challenge: Option<Challenge>,
    /// A `GET /v2/` settled both.
    pinged: bool,
}

#[derive(Clone)]
struct Pinged {
    base: String,
    challenge: Option<Challenge>,
}

/// The action a request needs on a repository; decides the token scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Pull,
    PushPull,
    Delete,
    /// Registry-wide (catalog).
    Catalog,
}

/// A manifest as the registry served it.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    /// `Content-Type` as sent (may be empty or generic).
    pub content_type: Option<String>,
    /// `Docker-Content-Digest` as sent.
    pub digest_header: Option<String>,
}

/// What a HEAD on a manifest or blob told.
#[derive(Clone, Debug)]
pub struct HeadInfo {
    pub size: Option<u64>,
    pub content_type: Option<String>,
    pub digest: Option<String>,
}

impl Client {
    /// Builds a client for `registry` (a reference's registry part); `api_host` is where
    /// the API answers (differs for docker.io).
    pub fn new(registry: &str, api_host: &str, config: ClientConfig) -> Result<Client> {
        // certs.d is keyed by the registry as references name it (docker.io, not
        // registry-1.docker.io), as containers/image does.
        let http = tls::build_http_client(registry, &config)?;
        Ok(Client {
            inner: Arc::new(Inner {
                registry: registry.to_string(),
                api_host: api_host.to_string(),
                http,
                config,
                state: Mutex::new(State::default()),
                tokens: challenge::TokenCache::default(),
            }),
        })
    }

    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    /// `GET /v2/`: settles the scheme and the auth challenge. Ordinary requests do not
    /// need it (they learn both from their own answers); logins and streamed uploads do.
    pub async fn ping(&self) -> Result<()> {
        self.pinged().await.map(|_| ())
    }

    async fn pinged(&self) -> Result<Pinged> {
        if let Some(p) = self.known().await {
            return Ok(p);
        }
        let https = format!("https://{}", self.inner.api_host);
        let p = match self.ping_at(&https).await {
            Ok(p) => p,
            Err(e) if !self.inner.config.tls_verify && e.kind() == crate::ErrorKind::Network => {
                let http = format!("http://{}", self.inner.api_host);
                self.ping_at(&http).await.map_err(|e2| {
                    Error::Network(format!(
                        "pinging container registry {}: {e}; over plain HTTP: {e2}",
                        self.inner.registry
                    ))
                })?
            }
            Err(e) => {
                let what = format!("pinging container registry {}", self.inner.registry);
                return Err(match connection_hint(true, &e) {
                    "" => e.context(what),
                    hint => Error::Network(format!("{what}: {e}{hint}")),
                });
            }
        };
        let mut state = self.inner.state.lock().await;
        state.base = Some(p.base.clone());
        state.challenge = p.challenge.clone();
        state.pinged = true;
        Ok(p)
    }

    /// Scheme and challenge when a ping settled them.
    async fn known(&self) -> Option<Pinged> {
        let state = self.inner.state.lock().await;
        match (&state.base, state.pinged) {
            (Some(base), true) => Some(Pinged {
                base: base.clone(),
                challenge: state.challenge.clone(),
            }),
            _ => None,
        }
    }

    async fn ping_at(&self, base: &str) -> Result<Pinged> {
        let url = format!("{base}/v2/");
        let mut attempt = 0;
        let mut throttle = Throttle::default();
        loop {
            let res = self
                .inner
                .http
                .get(&url)
                .timeout(self.inner.config.timeout)
                .send()
                .await;
            match res {
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::OK || status == StatusCode::UNAUTHORIZED {
                        let challenge = challenge::from_headers(resp.headers());
                        return Ok(Pinged {
                            base: base.to_string(),
                            challenge,
                        });
                    }
                    if throttle.wait(&resp, &url).await {
                        continue;
                    }
                    if self.should_retry(status, attempt) {
                        attempt += 1;
                        self.backoff(attempt).await;
                        continue;
                    }
                    return Err(Error::Network(format!(
                        "GET {url}: unexpected status {status}"
                    )));
                }
                Err(e) => {
                    // A TLS handshake a plain-HTTP server answered is no passing fault.
                    if attempt < self.inner.config.retry_times && !response::is_tls_failure(&e) {
                        attempt += 1;
                        self.backoff(attempt).await;
                        continue;
                    }
                    return Err(Error::Network(response::describe_reqwest(&e)));
                }
            }
        }
    }

    fn should_retry(&self, status: StatusCode, attempt: u32) -> bool {
        attempt < self.inner.config.retry_times
            && (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
    }

    async fn backoff(&self, attempt: u32) {
        let d = self
            .inner
            .config
            .retry_delay
            .unwrap_or_else(|| Duration::from_secs(1u64 << (attempt - 1).min(5)));
        tracing::debug!("retrying in {:?} (attempt {attempt})", d);
        tokio::time::sleep(d).await;
    }

    /// Sends one request with auth and retries. `path` starts with `/v2/` or is an
    /// absolute URL on this registry (an upload location). Returns the response whatever
    /// its status once retries are exhausted; callers map errors.
    async fn send(
        &self,
        method: Method,
        path: &str,
        repo: Option<&str>,
        access: Access,
        headers: HeaderMap,
    ) -> Result<reqwest::Response> {
        self.send_req(Req {
            method,
            path,
            repo,
            access,
            headers,
            body: ReqBody::Empty,
            long: false,
            extra_scope: None,
        })
        .await
    }

    async fn send_req(&self, r: Req<'_>) -> Result<reqwest::Response> {
        let Req {
            method,
            path,
            repo,
            access,
            headers,
            mut body,
            long,
            extra_scope,
        } = r;
        // A stream can be sent once: settle scheme and challenge first.
        let learnt = if matches!(body, ReqBody::Stream(_)) {
            let p = self.pinged().await?;
            (Some(p.base), p.challenge)
        } else {
            let st = self.inner.state.lock().await;
            (st.base.clone(), st.challenge.clone())
        };
        let (known_base, mut challenge) = learnt;
        let mut probing_scheme = known_base.is_none() && !self.inner.config.tls_verify;
        let mut base = known_base
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.inner.api_host));
        let absolute = path.starts_with("http://") || path.starts_with("https://");
        let mut attempt = 0;
        let mut refreshed = false;
        let mut challenged = false;
        let mut throttle = Throttle::default();
        loop {
            let url = if absolute {
                path.to_string()
            } else {
                format!("{base}{path}")
            };
            let auth = self
                .authorization(
                    challenge.as_ref(),
                    repo,
                    access,
                    extra_scope.as_deref(),
                    refreshed,
                )
                .await?;
            let mut req = self
                .inner
                .http
                .request(method.clone(), &url)
                .headers(headers.clone());
            if !long {
                req = req.timeout(self.inner.config.timeout);
            }
            let retriable = match &mut body {
                ReqBody::Empty => true,
                ReqBody::Bytes(b) => {
                    req = req.body(b.clone());
                    true
                }
                ReqBody::Stream(s) => {
                    let Some(stream) = s.take() else {
                        return Err(Error::other(format!(
                            "{method} {url}: the request body was already sent"
                        )));
                    };
                    req = req.body(stream);
                    false
                }
            };
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a);
            }
            tracing::debug!("{method} {url}");
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    tracing::debug!("{method} {url} -> {status}");
                    if known_base.is_none() && !absolute {
                        self.inner.state.lock().await.base = Some(base.clone());
                    }
                    if retriable && status == StatusCode::UNAUTHORIZED {
                        // Learn (or change) the challenge from the answer, once.
                        let offered = challenge::from_headers(resp.headers());
                        if !challenged && offered.is_some() && offered != challenge {
                            challenged = true;
                            challenge = offered;
                            self.inner.state.lock().await.challenge = challenge.clone();
                            continue;
                        }
                        // A cached token may have been revoked: one fresh token, once.
                        if !refreshed && matches!(challenge, Some(Challenge::Bearer { .. })) {
                            refreshed = true;
                            continue;
                        }
                    }
                    let mut resp = resp;
                    if status == StatusCode::UNAUTHORIZED
                        && matches!(challenge, Some(Challenge::Basic { .. }))
                    {
                        if let Credential::Basic { username, .. } = &self.inner.config.credential {
                            resp.extensions_mut().insert(response::RefusedCredentials {
                                username: username.clone(),
                                registry: self.inner.registry.clone(),
                            });
                        }
                    }
                    if retriable && throttle.wait(&resp, &url).await {
                        continue;
                    }
                    if retriable && self.should_retry(status, attempt) {
                        attempt += 1;
                        match retry_after(resp.headers()) {
                            Some(d) => tokio::time::sleep(d.min(RETRY_AFTER_MAX)).await,
                            None => self.backoff(attempt).await,
                        }
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    if probing_scheme && !absolute && e.is_connect() {
                        // --tls-verify=false: a registry that does not speak TLS.
                        tracing::debug!(
                            "{url}: {}; trying plain HTTP",
                            response::describe_reqwest(&e)
                        );
                        probing_scheme = false;
                        base = format!("http://{}", self.inner.api_host);
                        continue;
                    }
                    if retriable
                        && attempt < self.inner.config.retry_times
                        && !e.is_builder()
                        && !response::is_tls_failure(&e)
                    {
                        attempt += 1;
                        tracing::debug!("{method} {url}: {}", response::describe_reqwest(&e));
                        self.backoff(attempt).await;
                        continue;
                    }
                    let err = Error::Network(format!(
                        "{method} {url}: {}",
                        response::describe_reqwest(&e)
                    ));
                    let hint = connection_hint(url.starts_with("https://"), &err);
                    return Err(Error::Network(format!(
                        "registry {}: {err}{hint}",
                        self.inner.registry
                    )));
                }
            }
        }
    }

    async fn authorization(
        &self,
        challenge: Option<&Challenge>,
        repo: Option<&str>,
        access: Access,
        extra_scope: Option<&str>,
        force_new: bool,
    ) -> Result<Option<HeaderValue>> {
        let cred = &self.inner.config.credential;
        if let Credential::BearerToken(t) = cred {
            return Ok(Some(challenge::header_value(&format!("Bearer {t}"))?));
        }
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic { .. }) => match cred {
                Credential::Basic { username, password } => {
                    Ok(Some(challenge::basic_header(username, password)?))
                }
                _ => Ok(None),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope: _,
            }) => {
                let mut scope = challenge::scope_for(repo, access);
                if let Some(extra) = extra_scope {
                    scope.push(' ');
                    scope.push_str(extra);
                }
                let token = self
                    .inner
                    .tokens
                    .get_or_fetch(
                        &self.inner.http,
                        realm,
                        service.as_deref(),
                        &scope,
                        cred,
                        self.inner.config.timeout,
                        force_new,
                    )
                    .await
                    .map_err(|e| {
                        let what = format!("requesting a token for {}", self.inner.registry);
                        match cred {
                            Credential::Basic { username, .. }
                                if e.kind() == crate::ErrorKind::Unauthorized =>
                            {
                                let refused = response::RefusedCredentials {
                                    username: username.clone(),
                                    registry: self.inner.registry.clone(),
                                };
                                Error::Unauthorized(format!("{what}: {e}; {refused}"))
                            }
                            _ => e.context(what),
                        }
                    })?;
                Ok(Some(challenge::header_value(&format!("Bearer {token}"))?))
            }
        }
    }

    /// GET a manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<FetchedManifest> {
        let (resp, what) = self
            .manifest_request(Method::GET, repo, reference, accept, Access::Pull)
            .await?;
        let content_type = header_string(resp.headers(), CONTENT_TYPE.as_str());
        let digest_header = header_string(resp.headers(), "docker-content-digest");
        let bytes = response::read_limited(resp, MAX_MANIFEST_BYTES, &what).await?;
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest_header,
        })
    }

    /// HEAD a manifest: its digest, size and type, without the body.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<HeadInfo> {
        self.head_manifest_as(repo, reference, accept, Access::Pull)
            .await
    }

    /// [`Client::head_manifest`] asking for `access` to the repository (a destination
    /// asks for push at once, so its later writes need no second token).
    pub async fn head_manifest_as(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
        access: Access,
    ) -> Result<HeadInfo> {
        let (resp, _) = self
            .manifest_request(Method::HEAD, repo, reference, accept, access)
            .await?;
        Ok(head_info(&resp))
    }

    /// A successful manifest answer, and a description of what was asked for errors.
    async fn manifest_request(
        &self,
        method: Method,
        repo: &str,
        reference: &str,
        accept: &[&str],
        access: Access,
    ) -> Result<(reqwest::Response, String)> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, accept_header(accept)?);
        let resp = self
            .send(method, &path, Some(repo), access, headers)
            .await?;
        let what = format!("manifest {reference} in {}/{repo}", self.inner.registry);
        let resp = response::check_manifest(resp, &what).await?;
        Ok((resp, what))
    }

    /// HEAD a blob: whether it exists, and its size.
    pub async fn head_blob(&self, repo: &str, digest: &str) -> Result<HeadInfo> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self
            .send(
                Method::HEAD,
                &path,
                Some(repo),
                Access::Pull,
                HeaderMap::new(),
            )
            .await?;
        let what = format!("blob {digest} in {}/{repo}", self.inner.registry);
        let resp = response::check(resp, &what).await?;
        Ok(head_info(&resp))
    }

    /// GET a blob as a stream of unverified bytes; callers check the digest.
    /// With `range`, asks for those bytes; the registry may still answer with the whole
    /// blob, which [`BlobResponse::partial`] tells.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BlobResponse> {
        let spec = range
            .filter(|r| r.end > r.start)
            .map(|r| format!("bytes={}-{}", r.start, r.end - 1));
        self.get_blob_spec(repo, digest, spec).await
    }

    /// GET blob bytes from `start` to `end` (to its end when `None`).
    pub(crate) async fn get_blob_from(
        &self,
        repo: &str,
        digest: &str,
        start: u64,
        end: Option<u64>,
    ) -> Result<BlobResponse> {
        let spec = match end {
            Some(e) => format!("bytes={start}-{}", e.saturating_sub(1)),
            None => format!("bytes={start}-"),
        };
        self.get_blob_spec(repo, digest, Some(spec)).await
    }

    async fn get_blob_spec(
        &self,
        repo: &str,
        digest: &str,
        range: Option<String>,
    ) -> Result<BlobResponse> {
        let path = format!("/v2/{repo}/blobs/{digest}");
        let mut headers = HeaderMap::new();
        if let Some(v) = &range {
            headers.insert(RANGE, challenge::header_value(v)?);
        }
        let resp = self
            .send(Method::GET, &path, Some(repo), Access::Pull, headers)
            .await?;
        let what = format!("blob {digest} in {}/{repo}", self.inner.registry);
        let resp = response::check(resp, &what).await?;
        let partial = resp.status() == StatusCode::PARTIAL_CONTENT;
        Ok(BlobResponse {
            size: resp.content_length(),
            partial,
            response: resp,
        })
    }

    /// GET a small blob (a config) into memory, refusing more than `limit` bytes.
    pub async fn get_blob_bytes(&self, repo: &str, digest: &str, limit: u64) -> Result<Bytes> {
        let blob = self.get_blob(repo, digest, None).await?;
        let what = format!("blob {digest} in {}/{repo}", self.inner.registry);
        response::read_limited(blob.response, limit, &what).await
    }

    /// All tags of a repository, following `Link` pagination.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let what = format!("tags of {}/{repo}", self.inner.registry);
        let path = format!("/v2/{repo}/tags/list");
        self.paginate(path, Some(repo), Access::Pull, "tags", &what)
            .await
    }

    /// Repositories from `_catalog`, following pagination.
    pub async fn catalog(&self) -> Result<Vec<String>> {
        let what = format!("catalog of {}", self.inner.registry);
        self.paginate(
            "/v2/_catalog".into(),
            None,
            Access::Catalog,
            "repositories",
            &what,
        )
        .await
    }

    /// Collects the string list `field` of every page, following `Link` headers.
    async fn paginate(
        &self,
        mut path: String,
        repo: Option<&str>,
        access: Access,
        field: &str,
        what: &str,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            if !seen.insert(path.clone()) {
                return Err(Error::InvalidInput(format!(
                    "reading {what}: the registry's Link header leads back to {path}, \
                     a page already read"
                )));
            }
            let resp = self
                .send(Method::GET, &path, repo, access, HeaderMap::new())
                .await?;
            let resp = response::check(resp, what).await?;
            let next = response::next_link(resp.headers());
            let body = response::read_limited(resp, MAX_LIST_BYTES, what).await?;
            let page: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| Error::InvalidInput(format!("reading {what}: invalid JSON: {e}")))?;
            match page.get(field) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Array(items)) => {
                    for item in items {
                        let s = item.as_str().ok_or_else(|| {
                            Error::InvalidInput(format!(
                                "reading {what}: {field} holds a non-string"
                            ))
                        })?;
                        out.push(s.to_string());
                    }
                }
                Some(_) => {
                    return Err(Error::InvalidInput(format!(
                        "reading {what}: {field} is not a list"
                    )))
                }
            }
            match next {
                Some(n) => path = n,
                None => return Ok(out),
            }
        }
        Err(Error::other(format!("reading {what}: too many pages")))
    }

    /// DELETE a manifest by digest.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<()> {
        let path = format!("/v2/{repo}/manifests/{digest}");
        let resp = self
            .send(
                Method::DELETE,
                &path,
                Some(repo),
                Access::Delete,
                HeaderMap::new(),
            )
            .await?;
        let what = format!(
            "deleting manifest {digest} in {}/{repo}",
            self.inner.registry
        );
        response::check(resp, &what).await?;
        Ok(())
    }

    /// Checks that the configured credential is accepted (for `login`).
    pub async fn check_login(&self) -> Result<()> {
        let pinged = self.pinged().await?;
        let Some(ch) = &pinged.challenge else {
            return Ok(());
        };
        match ch {
            Challenge::Bearer { realm, service, .. } => {
                self.inner
                    .tokens
                    .get_or_fetch(
                        &self.inner.http,
                        realm,
                        service.as_deref(),
                        "",
                        &self.inner.config.credential,
                        self.inner.config.timeout,
                        true,
                    )
                    .await?;
                Ok(())
            }
            Challenge::Basic { .. } => {
                let resp = self
                    .send(Method::GET, "/v2/", None, Access::Pull, HeaderMap::new())
                    .await?;
                response::check(resp, &format!("logging in to {}", self.inner.registry))
                    .await
                    .map(|_| ())
            }
        }
    }
}

/// A hint for a request that failed below HTTP (`https`: over TLS): a registry
/// speaking plain HTTP to a TLS client, or one that closed the TLS connection before
/// answering — what a registry that requires client certificates does when it gets
/// none it accepts (with TLS 1.3 the client learns of it only then, not during the
/// handshake).
/// Attempts a request gets while the registry answers 429 Too Many Requests, whatever
/// `--retry-times` says (as containers/image does).
const THROTTLED_ATTEMPTS: u32 = 5;
/// First wait after a 429 without `Retry-After`; doubled after each further one.
const THROTTLED_FIRST_DELAY: Duration = Duration::from_secs(2);
/// Longest wait honoured, whatever `Retry-After` asks.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// The 429 answers one request met so far.
#[derive(Default)]
struct Throttle {
    seen: u32,
    delay: Option<Duration>,
}

impl Throttle {
    /// After a 429 with attempts left: waits as `Retry-After` asks (capped), or backs
    /// off exponentially, and says to try again.
    async fn wait(&mut self, resp: &reqwest::Response, url: &str) -> bool {
        if resp.status() != StatusCode::TOO_MANY_REQUESTS {
            return false;
        }
        self.seen += 1;
        if self.seen >= THROTTLED_ATTEMPTS {
            return false;
        }
        let fallback = self.delay.unwrap_or(THROTTLED_FIRST_DELAY);
        let d = retry_after(resp.headers())
            .unwrap_or(fallback)
            .min(RETRY_AFTER_MAX);
        self.delay = Some((fallback * 2).min(RETRY_AFTER_MAX));
        tracing::info!(
            "too many requests to {url}: waiting {:.1}s before attempt {}",
            d.as_secs_f64(),
            self.seen + 1
        );
        tokio::time::sleep(d).await;
        true
    }
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date (a date in the
/// past is no wait).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let left = when.signed_duration_since(chrono::Utc::now());
    Some(left.to_std().unwrap_or(Duration::ZERO))
}

fn connection_hint(https: bool, e: &Error) -> &'static str {
    let text = e.to_string().to_lowercase();
    if text.contains("wrong version number") {
        "; it seems to speak plain HTTP: use --tls-verify=false (or list it as insecure in registries.conf)"
    } else if https
        && [
            "connection closed",
            "connection was not ready",
            "connection reset",
            "broken pipe",
            "unexpected eof",
            "certificate required",
        ]
        .iter()
        .any(|m| text.contains(m))
    {
        "; it closed the TLS connection before answering: if it requires a client certificate, put NAME.cert and NAME.key in --cert-dir or certs.d"
    } else {
        ""
    }
}

/// One request for [`Client::send_req`].
struct Req<'a> {
    method: Method,
    path: &'a str,
    repo: Option<&'a str>,
    access: Access,
    headers: HeaderMap,
    body: ReqBody,
    /// A blob transfer: no total deadline, only the per-read one.
    long: bool,
    /// A second token scope (pull on the repository a blob is mounted from).
    extra_scope: Option<String>,
}

enum ReqBody {
    Empty,
    /// Resent as is on retries.
    Bytes(Bytes),
    /// Sent once; no retry.
    Stream(Option<reqwest::Body>),
}

/// A blob body as it arrives.
pub struct BlobResponse {
    /// Bytes the registry says it will send.
    pub size: Option<u64>,
    /// True when the registry honoured `Range`.
    pub partial: bool,
    pub response: reqwest::Response,
}

impl BlobResponse {
    /// The next piece of the body, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.response.chunk().await.map_err(|e| {
            Error::Network(format!(
                "reading blob body: {}",
                response::describe_reqwest(&e)
            ))
        })
    }
}

fn accept_header(accept: &[&str]) -> Result<HeaderValue> {
    challenge::header_value(&accept.join(", "))
}

fn header_string(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_string())
}

fn head_info(resp: &reqwest::Response) -> HeadInfo {
    let h = resp.headers();
    HeadInfo {
        size: header_string(h, "content-length").and_then(|s| s.parse().ok()),
        content_type: header_string(h, CONTENT_TYPE.as_str()),
        digest: header_string(h, "docker-content-digest"),
    }
}

#[cfg(test)]
mod retry_after_tests {
    use super::*;

    fn after(v: &str) -> Option<Duration> {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_str(v).unwrap(),
        );
        retry_after(&h)
    }

    #[test]
    fn seconds_and_http_dates() {
        assert_eq!(after("3"), Some(Duration::from_secs(3)));
        assert_eq!(after(" 0 "), Some(Duration::ZERO));
        assert_eq!(after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(after("soon"), None);
        assert_eq!(after("-5"), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }
}

#[cfg(test)]
mod hint_tests {
    use super::*;

    #[test]
    fn connection_hints() {
        let net = |s: &str| Error::Network(s.to_string());
        assert!(connection_hint(
            true,
            &net("GET https://r:5000/v2/: connection failed: wrong version number")
        )
        .contains("--tls-verify=false"));
        let closed = connection_hint(true, &net(
            "GET https://r:5000/v2/a/manifests/1: request failed: client error (Canceled): operation was canceled: connection was not ready",
        ));
        assert!(closed.contains("client certificate"), "{closed}");
        // Plain HTTP, or another failure: no hint.
        assert_eq!(
            connection_hint(
                false,
                &net("GET http://r:5000/v2/: request failed: connection closed before message completed")
            ),
            ""
        );
        assert_eq!(
            connection_hint(true, &net("GET https://r:5000/v2/: timed out")),
            ""
        );
    }
}
