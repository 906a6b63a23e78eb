//! Parsing and accessors of [`Manifest`], on captured fixtures and edge cases.

use super::media_types::*;
use super::*;
use crate::error::ErrorKind;

#[test]
fn garbage_is_invalid_input_with_media_type_and_cause() {
    let e = Manifest::parse(b"garbage", OCI_MANIFEST).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "parsing manifest (application/vnd.oci.image.manifest.v1+json): expected value at line 1 column 1"
    );
    let e = Manifest::parse(b"[]", DOCKER_LIST).unwrap_err();
    assert!(e.to_string().starts_with(
        "parsing manifest (application/vnd.docker.distribution.manifest.list.v2+json): "
    ));
    let e = Manifest::parse(b"{}", "text/html").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(
        e.to_string(),
        "unsupported manifest media type \"text/html\""
    );
}

#[test]
fn ambiguous_documents_are_rejected() {
    let both = br#"{"schemaVersion":2,"config":{},"layers":[],"manifests":[]}"#;
    let e = Manifest::parse(both, OCI_MANIFEST).unwrap_err();
    assert_eq!(
        e.to_string(),
        "parsing manifest (application/vnd.oci.image.manifest.v1+json): rejecting ambiguous manifest, \
         unexpected fields [\"manifests\"] in supposedly application/vnd.oci.image.manifest.v1+json"
    );
    let e = Manifest::parse(both, OCI_INDEX).unwrap_err();
    assert!(e.to_string().contains("[\"config\", \"layers\"]"), "{e}");
    // null members are as good as absent.
    Manifest::parse(
        br#"{"schemaVersion":2,"manifests":[],"Config":null}"#,
        OCI_INDEX,
    )
    .unwrap();
}

#[test]
fn size_limit() {
    let mut big = br#"{"schemaVersion":2,"annotations":{"a":""#.to_vec();
    big.resize(MAX_MANIFEST_SIZE + 1, b'x');
    let e = Manifest::parse(&big, OCI_MANIFEST).unwrap_err();
    assert!(
        e.to_string()
            .contains("exceeded maximum allowed size of 4194304 bytes"),
        "{e}"
    );
}

#[test]
fn oci_manifest_accessors() {
    let raw = crate::manifest::testdata("oci-rich", "manifest.json");
    assert_eq!(guess_media_type(&raw), OCI_MANIFEST);
    let m = Manifest::parse(&raw, OCI_MANIFEST).unwrap();
    assert_eq!(m.media_type(), OCI_MANIFEST);
    assert!(!m.is_index());
    let c = m.config().unwrap();
    assert_eq!(c.media_type, OCI_CONFIG);
    assert_eq!(
        c.digest,
        sha256_digest(&crate::manifest::testdata("oci-rich", "config.json"))
    );
    assert_eq!(
        c.size as usize,
        crate::manifest::testdata("oci-rich", "config.json").len()
    );
    let layers = m.layers();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0].digest, sha256_digest(b"layer-one"));
    assert_eq!(layers[0].annotations.as_ref().unwrap()["z"], "1");
    assert_eq!(layers[1].media_type, OCI_LAYER_NONDIST_GZIP);
    assert_eq!(layers[1].urls.as_deref().unwrap(), ["http://example.com/x"]);
    assert_eq!(layers[2].media_type, OCI_LAYER_ZSTD);
    assert_eq!(m.annotations().unwrap()["m"], "n");
    assert!(m.instances().is_empty());
}

#[test]
fn docker_manifest_accessors() {
    let raw = crate::manifest::testdata("docker2-full", "manifest.json");
    assert_eq!(guess_media_type(&raw), DOCKER_V2S2);
    let m = Manifest::parse(&raw, DOCKER_V2S2).unwrap();
    assert_eq!(m.media_type(), DOCKER_V2S2);
    assert_eq!(m.config().unwrap().media_type, DOCKER_CONFIG);
    let layers = m.layers();
    assert_eq!(layers[0].media_type, DOCKER_LAYER_GZIP);
    assert_eq!(layers[1].media_type, DOCKER_FOREIGN_LAYER);
    assert_eq!(layers[1].urls.as_deref().unwrap(), ["https://x/y"]);
}

#[test]
fn list_and_index_instances() {
    let raw = crate::manifest::testdata("list-dl", "manifest.json");
    assert_eq!(guess_media_type(&raw), DOCKER_LIST);
    let m = Manifest::parse(&raw, DOCKER_LIST).unwrap();
    assert!(m.is_index());
    assert!(m.config().is_none() && m.layers().is_empty());
    let inst = m.instances();
    assert_eq!(inst.len(), 6);
    let p = inst[1].platform.as_ref().unwrap();
    assert_eq!(
        (p.os.as_str(), p.architecture.as_str(), p.variant.as_str()),
        ("linux", "arm", "v6")
    );
    assert_eq!(inst[5].platform.as_ref().unwrap().os, "windows");
    assert!(inst
        .iter()
        .all(|i| i.media_type == DOCKER_V2S2 && i.size > 0));

    let raw = crate::manifest::testdata("list-oi", "manifest.json");
    assert_eq!(guess_media_type(&raw), OCI_INDEX);
    let m = Manifest::parse(&raw, OCI_INDEX).unwrap();
    let inst = m.instances();
    assert!(inst[0].platform.is_none());
    assert_eq!(inst[1].platform.as_ref().unwrap().variant, "v8");
}

#[test]
fn schema1_signed_fixture() {
    let raw = crate::manifest::testdata("schema1-signed", "manifest.json");
    assert_eq!(guess_media_type(&raw), DOCKER_V2S1_SIGNED);
    // The registry's digest for this manifest (from `skopeo inspect`).
    assert_eq!(
        manifest_digest(&raw).unwrap(),
        "sha256:90581b3b2d68fefa4e941a1336187136a1afd66e8e1e2dfb37974f008e8fa447"
    );
    assert_ne!(sha256_digest(&raw), manifest_digest(&raw).unwrap());
    let m = Manifest::parse(&raw, DOCKER_V2S1_SIGNED).unwrap();
    assert_eq!(m.media_type(), DOCKER_V2S1_SIGNED);
    assert!(m.config().is_none());
    let layers = m.layers();
    assert_eq!(layers.len(), 2);
    assert!(!layers[0].empty_layer && layers[1].empty_layer);
    assert!(layers
        .iter()
        .all(|l| l.size == -1 && l.media_type == DOCKER_LAYER_GZIP));
    let Manifest::Schema1(s) = &m else { panic!() };
    assert_eq!((s.name.as_str(), s.tag.as_str()), ("s1", "t"));
}

#[test]
fn schema1_unsigned_dir_fixture() {
    let raw = crate::manifest::testdata("s1new", "manifest.json");
    // `"signatures": null` counts as unsigned.
    assert_eq!(guess_media_type(&raw), DOCKER_V2S1);
    assert_eq!(manifest_digest(&raw).unwrap(), sha256_digest(&raw));
    let m = Manifest::parse(&raw, DOCKER_V2S1).unwrap();
    assert_eq!(m.media_type(), DOCKER_V2S1);
}

#[test]
fn schema1_rejects_schema2_members() {
    let doc = br#"{"schemaVersion":1,"fsLayers":[{"blobSum":"x"}],
        "history":[{"v1Compatibility":"{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"}],
        "layers":[]}"#;
    let e = Manifest::parse(doc, DOCKER_V2S1).unwrap_err();
    assert!(
        e.to_string().contains("unexpected fields [\"layers\"]"),
        "{e}"
    );
}

#[test]
fn image_config_needs_a_blob_except_for_schema1() {
    let raw = crate::manifest::testdata("oci-min", "manifest.json");
    let m = Manifest::parse(&raw, OCI_MANIFEST).unwrap();
    assert!(m.image_config(None).is_err());
    let list = Manifest::parse(
        &crate::manifest::testdata("list-oi", "manifest.json"),
        OCI_INDEX,
    )
    .unwrap();
    assert!(list
        .image_config(Some(b"{}"))
        .unwrap_err()
        .to_string()
        .contains("choose an instance"));
    let s1 = Manifest::parse(
        &crate::manifest::testdata("s1dir", "manifest.json"),
        DOCKER_V2S1,
    )
    .unwrap();
    let c = s1.image_config(None).unwrap();
    assert_eq!(
        (
            c.architecture.as_str(),
            c.variant.as_str(),
            c.docker_version.as_str()
        ),
        ("arm", "v6", "1.13.1")
    );
}

#[test]
fn oci_spec_conversion_of_fixture_layers() {
    let m = Manifest::parse(
        &crate::manifest::testdata("oci-rich", "manifest.json"),
        OCI_MANIFEST,
    )
    .unwrap();
    let Manifest::Oci(doc) = &m else { panic!() };
    for d in &doc.layers {
        let o = d.to_oci().unwrap();
        assert_eq!(o.digest().to_string(), d.digest);
    }
}

#[test]
fn oci_artifacts_have_no_image_config() {
    // skopeo 1.9.3 refuses `inspect` and `inspect --config` on these.
    let doc = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.example.thing+json","digest":"sha256:a","size":1},"layers":[]}"#;
    let m = Manifest::parse(doc, OCI_MANIFEST).unwrap();
    assert_eq!(
        m.artifact_type(),
        Some("application/vnd.example.thing+json")
    );
    for e in [
        m.image_config(Some(b"{}")).unwrap_err(),
        m.inspect_config_json(Some(b"{}")).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            "unsupported image-specific operation on artifact with type \"application/vnd.example.thing+json\""
        );
    }
    // A Docker schema 2 manifest is not checked that way.
    let d2 = String::from_utf8(doc.to_vec())
        .unwrap()
        .replace("vnd.example.thing", "vnd.oci.image.config.v1");
    let m = Manifest::parse(d2.as_bytes(), DOCKER_V2S2).unwrap();
    assert!(m.artifact_type().is_none());
    m.image_config(Some(b"{}")).unwrap();
}
