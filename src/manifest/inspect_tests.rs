//! `skopeo inspect` and `skopeo inspect --config` output compared byte for byte with
//! what skopeo 1.9.3 printed for the images under `testdata/` (captured from a local
//! registry and from `dir:` images; see testdata/README.md).

use super::*;
use crate::manifest::{
    manifest_digest, normalize_media_type, to_go_json_indent, Manifest, PlatformChoice,
};
use std::path::PathBuf;

fn read(case: &str, file: &str) -> Vec<u8> {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "src/manifest/testdata",
        case,
        file,
    ]
    .iter()
    .collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn text(case: &str, file: &str) -> String {
    let s = String::from_utf8(read(case, file)).unwrap();
    // skopeo prints the JSON followed by one newline.
    s.strip_suffix('\n').expect("trailing newline").to_string()
}

/// The RepoTags skopeo listed (an input here: they come from the registry).
fn repo_tags(case: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(&read(case, "inspect.json")).unwrap();
    let tags: Vec<String> = v["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    (!tags.is_empty()).then_some(tags)
}

fn parse(bytes: &[u8]) -> Manifest {
    Manifest::parse(bytes, &normalize_media_type(None, bytes)).unwrap()
}

fn check_image(case: &str, name: &str) {
    let raw = read(case, "manifest.json");
    let m = parse(&raw);
    let config_blob = (!matches!(m, Manifest::Schema1(_))).then(|| read(case, "config.json"));
    let config = m.image_config(config_blob.as_deref()).unwrap();
    let out = build_inspect(
        name,
        &manifest_digest(&raw).unwrap(),
        &m,
        &config,
        repo_tags(case),
    );
    assert_eq!(
        to_go_json_indent(&out),
        text(case, "inspect.json"),
        "inspect {case}"
    );
    assert_eq!(
        m.inspect_config_json(config_blob.as_deref()).unwrap(),
        text(case, "config-inspect.json"),
        "inspect --config {case}"
    );
}

#[test]
fn oci_from_umoci() {
    check_image("oci-umoci", "127.0.0.1:5077/x");
}

#[test]
fn docker_schema2_converted_from_oci() {
    check_image("docker2-umoci", "127.0.0.1:5077/d2");
}

#[test]
fn schema1_signed_by_skopeo() {
    // Tag comes from the manifest; the config from v1Compatibility; the digest from
    // the JWS payload.
    check_image("schema1-signed", "127.0.0.1:5077/s1");
    assert!(read("schema1-signed", "config.json").is_empty());
}

#[test]
fn oci_minimal_config_gives_nulls() {
    check_image("oci-min", "127.0.0.1:5077/c");
}

#[test]
fn oci_full_config_offset_time_and_empty_collections() {
    check_image("oci-rich", "127.0.0.1:5077/c");
}

#[test]
fn docker_minimal_config_gives_zero_time() {
    check_image("docker2-min", "127.0.0.1:5077/c");
}

#[test]
fn docker_full_config_drops_docker_fields() {
    check_image("docker2-full", "127.0.0.1:5077/c");
}

#[test]
fn go_string_escaping_and_invalid_utf8() {
    check_image("oci-escapes", "127.0.0.1:5077/e");
}

#[test]
fn schema1_dir_images() {
    // Adjacent duplicate v1 IDs dropped; repeated blobs kept; no Name, empty RepoTags.
    check_image("s1dir", "");
    // Docker < 1.8.3: created is re-encoded as the zero time.
    check_image("s1old", "");
    check_image("s1new", "");
    // Docker-style pretty JWS: the digest covers the document without `signatures`.
    check_image("s1pretty", "");
}

#[test]
fn manifest_list_uses_list_digest_and_chosen_image() {
    let list_raw = read("list-dl", "manifest.json");
    let list = parse(&list_raw);
    let want = PlatformChoice {
        os: Some("linux".into()),
        arch: Some("amd64".into()),
        variant: None,
    };
    let chosen = crate::manifest::choose_instance(&list, &want).unwrap();
    let child_raw = read("list-dl", "child-amd64-manifest.json");
    assert_eq!(chosen, crate::manifest::sha256_digest(&child_raw));
    let child = parse(&child_raw);
    let config = child
        .image_config(Some(&read("list-dl", "child-amd64-config.json")))
        .unwrap();
    let out = build_inspect(
        "127.0.0.1:5077/l",
        &manifest_digest(&list_raw).unwrap(),
        &child,
        &config,
        repo_tags("list-dl"),
    );
    assert_eq!(to_go_json_indent(&out), text("list-dl", "inspect.json"));
}

#[test]
fn no_tags_prints_empty_array_and_tag_is_never_the_reference() {
    let raw = read("oci-umoci", "manifest.json");
    let m = parse(&raw);
    let config = m
        .image_config(Some(&read("oci-umoci", "config.json")))
        .unwrap();
    let out = build_inspect("r/x", "sha256:d", &m, &config, None);
    let json = to_go_json_indent(&out);
    assert!(json.contains("\"RepoTags\": [],"), "{json}");
    assert!(!json.contains("\"Tag\""), "{json}");
    let no_name = build_inspect("", "sha256:d", &m, &config, None);
    assert!(to_go_json_indent(&no_name).starts_with("{\n    \"Digest\""));
}

#[test]
fn layers_data_in_upstream_format() {
    let raw = read("oci-rich", "manifest.json");
    let m = parse(&raw);
    let config = m
        .image_config(Some(&read("oci-rich", "config.json")))
        .unwrap();
    let out = build_inspect("n", "sha256:d", &m, &config, None).with_layers_data(&m);
    let json = crate::manifest::to_go_json_compact(&out);
    let layers_at = json.find("\"Layers\":").unwrap();
    let data_at = json.find("\"LayersData\":").unwrap();
    let env_at = json.find("\"Env\":").unwrap();
    assert!(layers_at < data_at && data_at < env_at);
    assert!(json.contains(
        r#"{"MIMEType":"application/vnd.oci.image.layer.v1.tar+gzip","Digest":"sha256:0139c1c77468f75e6763a4612262743bd47a36b26cb2863d662756b3377bb029","Size":9,"Annotations":{"a":"2","z":"1"}}"#
    ), "{json}");
    assert!(json.contains(r#"tar+gzip","Digest":"sha256:4381142a944dccfafc4428f3b1d4469713054b918f3c97f2e7f1cac2c25e0cc4","Size":9,"Annotations":null}"#), "{json}");
}
