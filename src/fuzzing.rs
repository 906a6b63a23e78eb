//! Entry points for the fuzz targets in `fuzz/` (run by `scripts/fuzz.sh`) and for the
//! regression tests that replay their seeds and every crasher found: each takes
//! arbitrary bytes, feeds them to one parser (and what naturally follows it: a parsed
//! manifest is converted, a parsed template is rendered), and must return — an error
//! is fine, a panic, a hang or unbounded memory is a bug.
//!
//! Not part of the stable API: the functions change with the parsers they reach.

use std::path::Path;

use crate::manifest::{self, Manifest};

/// Bytes as text the way a parser taking `&str` would get them (invalid UTF-8 is cut).
fn text(data: &[u8]) -> &str {
    match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// Docker references and `transport:reference` names.
pub fn reference(data: &[u8]) {
    let s = text(data);
    if let Ok(r) = crate::reference::DockerReference::parse(s) {
        let _ = r.to_string();
        let _ = r.with_default_tag();
    }
    if let Ok(n) = crate::reference::ImageName::parse(s) {
        let _ = n.to_string();
    }
}

const MEDIA_TYPES: [&str; 7] = [
    manifest::media_types::OCI_MANIFEST,
    manifest::media_types::OCI_INDEX,
    manifest::media_types::DOCKER_V2S2,
    manifest::media_types::DOCKER_LIST,
    manifest::media_types::DOCKER_V2S1_SIGNED,
    "application/json",
    "",
];

/// Manifests, indexes and schema 1 manifests, each as every media type, then what
/// copies and inspect do with them: descriptors, platforms, configs, format rewrites.
pub fn manifest(data: &[u8]) {
    for mt in MEDIA_TYPES {
        let Ok(m) = Manifest::parse(data, mt) else {
            continue;
        };
        let _ = m.media_type();
        let _ = m.instances();
        let _ = m.annotations();
        let layers = m.layers();
        if let Some(config) = m.config() {
            let _ = m.image_config(None);
            for f in [
                crate::copy::convert::ManifestFormat::Oci,
                crate::copy::convert::ManifestFormat::DockerV2S2,
            ] {
                let _ = crate::copy::convert::write_manifest(f, &m, &config, &layers);
            }
        }
    }
}

/// Image configs: parsed, converted to OCI, rendered for inspect.
pub fn config(data: &[u8]) {
    if let Ok(c) = manifest::parse_config(data) {
        let _ = c.to_oci_json_compact();
    }
    let _ = crate::copy::convert::docker_config_to_oci(data);
}

/// `WWW-Authenticate` header values.
pub fn www_authenticate(data: &[u8]) {
    let _ = crate::registry::challenge::parse(text(data));
}

/// Go templates: parsed, then rendered against a small inspect-like document.
pub fn template(data: &[u8]) {
    let Ok(t) = crate::template::Template::parse(text(data)) else {
        return;
    };
    let doc = serde_json::json!({
        "Name": "r.example/app",
        "Digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "RepoTags": ["1", "latest"],
        "Created": crate::template::go_time("2024-01-02T03:04:05Z"),
        "Labels": {"a": "b"},
        "Layers": ["x", "y"],
        "Env": null,
        "Size": 12,
    });
    let _ = t.render(&doc);
}

/// Go RFC 3339 times (config `created` fields).
pub fn go_time(data: &[u8]) {
    if let Ok(t) = manifest::GoTime::parse_rfc3339(text(data)) {
        let _ = t.to_rfc3339_nano();
        let _ = t.to_datetime();
    }
}

/// registries.conf, policy.json and auth.json text (`dir`: a scratch directory, where
/// the auth file is written first).
pub fn config_files(data: &[u8], dir: &Path) {
    let s = text(data);
    let mut conf = crate::registries_conf::RegistriesConf::default();
    if conf.add_file(Path::new("fuzz/registries.conf"), s).is_ok() {
        let _ = conf.pull_locations("r.example/app", false);
        let _ = conf.registry_hosts();
    }
    if let Ok(p) = crate::policy::Policy::parse(data, Path::new("fuzz/policy.json")) {
        let _ = format!("{p:?}");
    }
    let auth = dir.join("auth.json");
    if std::fs::write(&auth, data).is_ok() {
        let _ = crate::auth::check_file(&auth);
    }
}

/// A docker-archive (`docker save`) or an OCI archive: opened, its manifest and config
/// read. `dir` is a scratch directory (the archive is written there first).
pub fn archive(data: &[u8], dir: &Path) {
    let path = dir.join("fuzz.tar");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        use crate::transport::ImageSource;
        if let Ok(src) = crate::transport::docker_archive::DockerArchiveSource::open(
            path.clone(),
            None,
            None,
            Some(dir.to_path_buf()),
        )
        .await
        {
            let _ = src.manifest(None).await;
        }
        if let Ok(src) =
            crate::transport::oci_archive::OciArchiveSource::open(&path, None, None, Some(dir))
                .await
        {
            let _ = src.manifest(None).await;
        }
    });
}

#[cfg(test)]
mod tests;
