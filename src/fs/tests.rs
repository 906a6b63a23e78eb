//! Tests of the filesystem core against the in-memory backend: helpers that walk paths
//! the way the kernel would (lookup per component, open/read/release), and fixtures.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::mock::{MockBackend, PushedImage};
use super::*;

mod compat_tests;
mod copy_tests;
mod image_tests;
mod namespace_tests;
mod oracle_tests;
mod rootfs_tests;

/// A registry with a catalog.
const REG: &str = "registry.test:5000";
/// A registry without one.
const NOCAT: &str = "nocat.example";

fn config_json(created: &str, arch: &str) -> String {
    format!(
        r#"{{"created":"{created}","architecture":"{arch}","os":"linux","config":{{"Env":["PATH=/bin"],"Labels":{{"k":"v"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    )
}

struct T {
    fs: Arc<Fs>,
    mock: Arc<MockBackend>,
    clock: Arc<ManualClock>,
    /// `REG/app/web:v1` (and `:latest`).
    a: PushedImage,
    /// `REG/app/web:v2`.
    b: PushedImage,
    /// `REG/tools/multi:1.0` children.
    amd: PushedImage,
    arm: PushedImage,
    index: (String, Bytes),
}

fn setup() -> T {
    let mock = MockBackend::new();
    mock.enable_catalog(REG);
    mock.add_known_registry("quay.io");
    let a = mock.push_image(
        REG,
        "app/web",
        Some("v1"),
        &config_json("2024-01-02T03:04:05Z", "amd64"),
        &[b"layer one bytes", b"layer two, a little longer"],
    );
    mock.set_tag(REG, "app/web", "latest", &a.digest);
    let b = mock.push_image(
        REG,
        "app/web",
        Some("v2"),
        &config_json("2024-05-06T07:08:09Z", "amd64"),
        &[b"layer one bytes", b"another top layer"],
    );
    let amd = mock.push_image(
        REG,
        "tools/multi",
        None,
        &config_json("2023-01-01T00:00:00Z", "amd64"),
        &[b"amd layer"],
    );
    let arm = mock.push_image(
        REG,
        "tools/multi",
        None,
        &config_json("2023-02-01T00:00:00Z", "arm64"),
        &[b"arm layer"],
    );
    let index = mock.push_index(
        REG,
        "tools/multi",
        Some("1.0"),
        &[(&amd, "linux", "amd64", ""), (&arm, "linux", "arm64", "v8")],
    );
    mock.push_image(
        NOCAT,
        "org/team/app",
        Some("1"),
        &config_json("2022-01-01T00:00:00Z", "amd64"),
        &[b"x"],
    );
    let clock = Arc::new(ManualClock::new());
    let config = FsConfig {
        tag_ttl: Duration::from_secs(60),
        uid: 1000,
        gid: 1000,
        platform: crate::manifest::PlatformChoice {
            os: Some("linux".into()),
            arch: Some("amd64".into()),
            variant: None,
        },
        clock: clock.clone(),
        ..FsConfig::default()
    };
    let fs = Arc::new(Fs::new(mock.clone(), config));
    T {
        fs,
        mock,
        clock,
        a,
        b,
        amd,
        arm,
        index,
    }
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn hex(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, h)| h)
}

impl T {
    /// Looks up every component of `path` from the root, as the kernel does.
    async fn walk(&self, path: &str) -> FsResult<Attr> {
        let mut attr = self.fs.getattr(ROOT_INO).await?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            attr = self.fs.lookup(attr.ino, os(part)).await?;
        }
        Ok(attr)
    }

    async fn ino(&self, path: &str) -> u64 {
        self.walk(path)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e:?}"))
            .ino
    }

    /// Names in a directory, without `.` and `..`.
    async fn ls(&self, path: &str) -> FsResult<Vec<String>> {
        let ino = self.walk(path).await?.ino;
        let entries = self.fs.readdir(ino).await?;
        assert_eq!(entries[0].name, ".");
        assert_eq!(entries[1].name, "..");
        Ok(entries.into_iter().skip(2).map(|e| e.name).collect())
    }

    /// The whole content of a file, read in 7-byte pieces.
    async fn cat(&self, path: &str) -> FsResult<Bytes> {
        let ino = self.walk(path).await?.ino;
        let fh = self.fs.open(ino, libc::O_RDONLY, false).await?.fh;
        let mut out = Vec::new();
        loop {
            let chunk = self.fs.read(ino, fh, out.len() as u64, 7).await?;
            if chunk.is_empty() {
                break;
            }
            out.extend_from_slice(&chunk);
        }
        self.fs.release(ino, fh).await?;
        Ok(Bytes::from(out))
    }

    async fn json(&self, path: &str) -> serde_json::Value {
        let bytes = self
            .cat(path)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e:?}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn blob_calls(&self) -> Vec<String> {
        self.mock
            .calls()
            .into_iter()
            .filter(|c| c.starts_with("blob "))
            .collect()
    }
}

#[test]
fn operations_are_send_and_fs_is_shareable() {
    fn send<F: Send>(_: &F) {}
    fn shareable<X: Send + Sync + 'static>() {}
    shareable::<Fs>();
    let t = setup();
    let fs = &t.fs;
    send(&fs.lookup(ROOT_INO, os("x")));
    send(&fs.readdir(ROOT_INO));
    send(&fs.read(ROOT_INO, 1, 0, 1));
    send(&fs.flush(ROOT_INO, 1));
    send(&fs.getattr(ROOT_INO));
    send(&fs.create(ROOT_INO, os("x"), 0));
}
