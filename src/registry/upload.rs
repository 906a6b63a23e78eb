//! Pushing: blob existence checks, uploads (monolithic, or chunked when the digest is
//! known only at the end), cross-repository mounts, and manifest PUTs.

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};

use super::{challenge, response, Access, Client, Req, ReqBody};
use crate::error::{Error, ErrorKind, Result};

/// How an upload began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadStart {
    /// The registry mounted the blob from another repository; nothing to send.
    Mounted,
    /// Send the bytes to this location.
    Location(String),
}

impl Client {
    /// Size of a blob in `repo`, or `None` when it is not there.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<Option<u64>> {
        match self.head_blob(repo, digest).await {
            Ok(h) => Ok(Some(h.size.unwrap_or(0))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v2/REPO/blobs/uploads/`, asking to mount `digest` from `from_repo` when given.
    pub async fn start_upload(
        &self,
        repo: &str,
        mount: Option<(&str, &str)>,
    ) -> Result<UploadStart> {
        let mut path = format!("/v2/{repo}/blobs/uploads/");
        if let Some((digest, from)) = mount {
            path.push_str(&format!("?mount={digest}&from={from}"));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, challenge::header_value("0")?);
        let resp = self
            .send_req(Req {
                method: Method::POST,
                path: &path,
                repo: Some(repo),
                access: Access::PushPull,
                headers,
                body: ReqBody::Empty,
                long: false,
                extra_scope: mount.map(|(_, from)| format!("repository:{from}:pull")),
            })
            .await?;
        let what = format!("starting an upload to {}/{repo}", self.registry());
        let resp = response::check(resp, &what).await?;
        if resp.status() == StatusCode::CREATED && mount.is_some() {
            return Ok(UploadStart::Mounted);
        }
        location_of(&resp, &what).map(UploadStart::Location)
    }

    /// Sends blob bytes to an upload location (sent once: a stream cannot be retried).
    async fn send_blob_body(
        &self,
        method: Method,
        repo: &str,
        url: &str,
        size: Option<u64>,
        body: reqwest::Body,
    ) -> Result<reqwest::Response> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            challenge::header_value("application/octet-stream")?,
        );
        if let Some(n) = size {
            headers.insert(CONTENT_LENGTH, challenge::header_value(&n.to_string())?);
        }
        self.send_req(Req {
            method,
            path: url,
            repo: Some(repo),
            access: Access::PushPull,
            headers,
            body: ReqBody::Stream(Some(body)),
            long: true,
            extra_scope: None,
        })
        .await
    }

    /// Sends the whole blob in one PUT; `digest` and `size` must describe `body`.
    pub async fn upload_monolithic(
        &self,
        repo: &str,
        location: &str,
        digest: &str,
        size: u64,
        body: reqwest::Body,
    ) -> Result<()> {
        let url = with_query(location, "digest", digest);
        let resp = self
            .send_blob_body(Method::PUT, repo, &url, Some(size), body)
            .await?;
        let what = format!("uploading blob {digest} to {}/{repo}", self.registry());
        response::check(resp, &what).await?;
        Ok(())
    }

    /// Sends the blob read from `reader` as a chunked upload — PATCH requests of at most
    /// `chunk` bytes, each naming its range in `Content-Range` and resent as is when a
    /// retry is due — then closes the upload with the digest `digest()` gives once
    /// `reader` has ended. For blobs whose digest is known only at the end (recompressed
    /// layers). Returns that digest.
    pub async fn upload_chunked(
        &self,
        repo: &str,
        location: &str,
        mut reader: impl tokio::io::AsyncRead + Unpin + Send,
        chunk: usize,
        digest: impl FnOnce() -> Result<String>,
    ) -> Result<String> {
        use tokio::io::AsyncReadExt;
        let what = format!("uploading a blob to {}/{repo}", self.registry());
        let mut next = location.to_string();
        let mut offset: u64 = 0;
        loop {
            let mut buf = Vec::with_capacity(chunk);
            (&mut reader)
                .take(chunk as u64)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| Error::from(e).context(what.clone()))?;
            if buf.is_empty() {
                break;
            }
            let len = buf.len() as u64;
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                challenge::header_value("application/octet-stream")?,
            );
            headers.insert(CONTENT_LENGTH, challenge::header_value(&len.to_string())?);
            headers.insert(
                CONTENT_RANGE,
                challenge::header_value(&format!("{offset}-{}", offset + len - 1))?,
            );
            let resp = self
                .send_req(Req {
                    method: Method::PATCH,
                    path: &next,
                    repo: Some(repo),
                    access: Access::PushPull,
                    headers,
                    body: ReqBody::Bytes(Bytes::from(buf)),
                    long: true,
                    extra_scope: None,
                })
                .await?;
            let resp = response::check(resp, &what).await?;
            next = location_of(&resp, &what)?;
            offset += len;
            if len < chunk as u64 {
                break;
            }
        }
        // Closing the upload is a monolithic PUT of what is left: nothing.
        let digest = digest()?;
        self.upload_monolithic(repo, &next, &digest, 0, reqwest::Body::from(Vec::new()))
            .await?;
        Ok(digest)
    }

    /// `PUT /v2/REPO/manifests/REFERENCE`.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<()> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, challenge::header_value(media_type)?);
        let resp = self
            .send_req(Req {
                method: Method::PUT,
                path: &path,
                repo: Some(repo),
                access: Access::PushPull,
                headers,
                body: ReqBody::Bytes(bytes),
                long: false,
                extra_scope: None,
            })
            .await?;
        let what = format!("writing manifest {reference} to {}/{repo}", self.registry());
        response::check(resp, &what)
            .await
            .map_err(|e| match e.kind() {
                // A registry answers "manifest blob unknown" etc. with 400; keep it an error
                // about the manifest, not a missing image.
                ErrorKind::NotFound => Error::other(e.to_string()),
                _ => e,
            })?;
        Ok(())
    }
}

fn location_of(resp: &reqwest::Response, what: &str) -> Result<String> {
    let loc = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::Network(format!("{what}: the registry sent no upload location")))?;
    if loc.starts_with("http://") || loc.starts_with("https://") || loc.starts_with('/') {
        return Ok(loc.to_string());
    }
    Ok(format!("/{loc}"))
}

/// Adds `key=value` to a URL or path that may already have a query.
fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_joins() {
        assert_eq!(
            with_query("/v2/a/blobs/uploads/u1", "digest", "sha256:x"),
            "/v2/a/blobs/uploads/u1?digest=sha256:x"
        );
        assert_eq!(
            with_query(
                "http://h/v2/a/blobs/uploads/u1?_state=abc",
                "digest",
                "sha256:x"
            ),
            "http://h/v2/a/blobs/uploads/u1?_state=abc&digest=sha256:x"
        );
    }
}
