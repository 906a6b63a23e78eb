//! An independent Distribution API v2 client (reqwest::blocking) used to seed and
//! inspect test registries: blob uploads (POST then monolithic PUT), manifest
//! put/get/delete, tags (following `Link` pagination) and catalog.
//!
//! Authentication follows the registry's challenge: Basic is answered with the
//! configured credentials; Bearer triggers a token request to the realm (with Basic
//! credentials if any) for the challenge's scope, cached per scope.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

/// Every manifest media type a GET accepts.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws";

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A manifest fetched from the registry.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    /// `Docker-Content-Digest` as the registry reported it.
    pub digest: String,
}

/// Blocking Distribution API client bound to one registry.
pub struct Client {
    base: String,
    http: Http,
    creds: Option<(String, String)>,
    /// Authorization header value per scope (or "basic" for Basic auth).
    auth: Mutex<HashMap<String, String>>,
}

impl Client {
    /// `base` is `http(s)://127.0.0.1:PORT`; `ca_pem` is trusted in addition to nothing
    /// else (the system store is not consulted for 127.0.0.1 anyway).
    pub fn new(base: &str, ca_pem: Option<&[u8]>, creds: Option<(String, String)>) -> Client {
        let mut b = Http::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(5));
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(
                reqwest::Certificate::from_pem(pem).expect("parse CA certificate"),
            );
        }
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: b.build().expect("build HTTP client"),
            creds,
            auth: Mutex::new(HashMap::new()),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends a request built by `build` (called again for the retry), answering one
    /// auth challenge. `scope` is the token scope the request needs; tokens are cached
    /// per scope.
    pub fn send(&self, scope: &str, build: impl Fn(&Http) -> RequestBuilder) -> Response {
        let cached = self.auth.lock().unwrap().get(scope).cloned();
        let first = self.with_auth(build(&self.http), cached.as_deref());
        let resp = first.send().expect("send request to test registry");
        if resp.status() != StatusCode::UNAUTHORIZED {
            return resp;
        }
        let Some(header) = self.answer_challenge(resp.headers(), scope) else {
            return resp;
        };
        self.auth
            .lock()
            .unwrap()
            .insert(scope.to_string(), header.clone());
        self.with_auth(build(&self.http), Some(&header))
            .send()
            .expect("send request to test registry")
    }

    fn with_auth(&self, rb: RequestBuilder, header: Option<&str>) -> RequestBuilder {
        match header {
            Some(h) => rb.header(AUTHORIZATION, h),
            None => rb,
        }
    }

    fn basic_header(&self) -> Option<String> {
        self.creds
            .as_ref()
            .map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))))
    }

    fn answer_challenge(&self, headers: &HeaderMap, scope: &str) -> Option<String> {
        let challenge = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => self.basic_header(),
            "bearer" => {
                let realm = params.get("realm")?;
                let mut url = reqwest::Url::parse(realm).ok()?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = params.get("service") {
                        q.append_pair("service", service);
                    }
                    // Ask for what the caller needs (cached under that key) and for
                    // what the registry named, if it differs.
                    q.append_pair("scope", scope);
                    if let Some(named) = params.get("scope").filter(|s| *s != scope) {
                        q.append_pair("scope", named);
                    }
                }
                let mut rb = self.http.get(url);
                if let Some(b) = self.basic_header() {
                    rb = rb.header(AUTHORIZATION, b);
                }
                let resp = rb.send().ok()?;
                if !resp.status().is_success() {
                    return None;
                }
                let v: serde_json::Value = serde_json::from_slice(&resp.bytes().ok()?).ok()?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))?
                    .as_str()?
                    .to_string();
                Some(format!("Bearer {token}"))
            }
            _ => None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn repo_scope(repo: &str) -> String {
        format!("repository:{repo}:pull,push")
    }

    pub fn blob_exists(&self, repo: &str, digest: &str) -> bool {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(&Self::repo_scope(repo), |h| h.head(&url));
        match resp.status() {
            StatusCode::OK => true,
            StatusCode::NOT_FOUND => false,
            s => panic!("HEAD {url}: unexpected status {s}"),
        }
    }

    /// Uploads `data` unless the registry already has it; returns its digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        if self.blob_exists(repo, &digest) {
            return digest;
        }
        let scope = Self::repo_scope(repo);
        let start = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let resp = self.send(&scope, |h| h.post(&start).header("Content-Length", "0"));
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "POST {start}: {}",
            resp.text().unwrap_or_default()
        );
        let location = resp
            .headers()
            .get(LOCATION)
            .expect("upload Location header")
            .to_str()
            .unwrap()
            .to_string();
        let mut put = reqwest::Url::parse(&self.base)
            .unwrap()
            .join(&location)
            .expect("upload location is a URL");
        put.query_pairs_mut().append_pair("digest", &digest);
        let resp = self.send(&scope, |h| {
            h.put(put.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(data.to_vec())
        });
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "PUT blob {digest} to {repo}: {}",
            resp.text().unwrap_or_default()
        );
        digest
    }

    /// PUTs a manifest under `reference` (tag or digest); returns the registry's digest,
    /// which must equal the digest of `bytes`.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send(&Self::repo_scope(repo), |h| {
            h.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(bytes.to_vec())
        });
        let status = resp.status();
        let digest = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        assert_eq!(
            status,
            StatusCode::CREATED,
            "PUT {url}: {}",
            resp.text().unwrap_or_default()
        );
        let digest = digest.expect("Docker-Content-Digest on manifest PUT");
        assert_eq!(digest, sha256_digest(bytes), "registry digest for {url}");
        digest
    }

    /// GET a manifest by tag or digest; `None` on 404.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Option<FetchedManifest> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send(&format!("repository:{repo}:pull"), |h| {
            h.get(&url).header(ACCEPT, ACCEPT_MANIFESTS)
        });
        if resp.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        let media_type = header("Content-Type");
        let digest = header("Docker-Content-Digest");
        Some(FetchedManifest {
            bytes: resp.bytes().unwrap().to_vec(),
            media_type,
            digest,
        })
    }

    /// GET a blob's bytes; `None` on 404.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(&format!("repository:{repo}:pull"), |h| h.get(&url));
        if resp.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
        Some(resp.bytes().unwrap().to_vec())
    }

    /// DELETE a manifest by digest; returns the HTTP status.
    pub fn delete_manifest(&self, repo: &str, digest: &str) -> StatusCode {
        let url = self.url(&format!("/v2/{repo}/manifests/{digest}"));
        self.send(&format!("repository:{repo}:delete"), |h| h.delete(&url))
            .status()
    }

    /// All tags of `repo` (empty if the repository is unknown), following pagination.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        self.paginated(
            &format!("/v2/{repo}/tags/list?n=100"),
            &format!("repository:{repo}:pull"),
            "tags",
        )
    }

    /// The catalog (all repository names), following pagination.
    pub fn catalog(&self) -> Vec<String> {
        self.paginated("/v2/_catalog?n=100", "registry:catalog:*", "repositories")
    }

    fn paginated(&self, first: &str, scope: &str, field: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = Some(self.url(first));
        while let Some(url) = next.take() {
            let resp = self.send(scope, |h| h.get(&url));
            if resp.status() == StatusCode::NOT_FOUND {
                break;
            }
            assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
            if let Some(link) = resp.headers().get("Link").and_then(|v| v.to_str().ok()) {
                if let Some(target) = link
                    .split(';')
                    .next()
                    .map(|s| s.trim().trim_start_matches('<').trim_end_matches('>'))
                {
                    next = Some(
                        reqwest::Url::parse(&self.base)
                            .unwrap()
                            .join(target)
                            .unwrap()
                            .to_string(),
                    );
                }
            }
            let v: serde_json::Value =
                serde_json::from_slice(&resp.bytes().unwrap()).expect("JSON list body");
            if let Some(items) = v.get(field).and_then(|t| t.as_array()) {
                out.extend(items.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
        }
        out
    }

    /// A raw request with auth handled, for tests that need odd methods or headers.
    pub fn raw(&self, method: Method, path: &str, scope: &str) -> Response {
        let url = self.url(path);
        self.send(scope, |h| h.request(method.clone(), &url))
    }
}

/// Splits `Scheme k="v",k2=v2` into the scheme and its parameters.
pub fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    (scheme.to_string(), params)
}
