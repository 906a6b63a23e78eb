//! Replays the fuzz seeds and the hostile inputs every target must survive: each entry
//! point returns (an error inside is fine) instead of panicking or hanging.

use super::*;

/// Inputs every text target gets.
fn hostile_texts() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "",
        ":",
        "docker://",
        "oci:",
        "a:b:c:d@sha256:",
        "sha256:../../x",
        "registry.example:99999999999999999999/x",
        "Bearer realm=\"",
        "Bearer realm=\"x\",scope=\"a,b\",,,,=",
        "Basic",
        "{{",
        "{{end}}",
        "{{range .Layers}}{{.}}{{else}}{{end}}",
        "{{index .Labels}}",
        "{{printf \"%*d\" 99999999 1}}",
        "{{define \"x\"}}{{template \"x\"}}{{end}}{{template \"x\"}}",
        "2020-01-02T03:04:05+24:00",
        "9999-12-31T23:59:59.9999999999999Z",
        "[[registry]]\nprefix = \"\"\n",
        "unqualified-search-registries = [1]",
        "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"\":[]}}}",
        "{\"auths\":{\"\":{\"auth\":\"%%%\"}}}",
        "\u{feff}{}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // Deep nesting: parsers must refuse it, not overflow the stack.
    v.push("[".repeat(100_000).into_bytes());
    v.push("{\"a\":".repeat(50_000).into_bytes());
    v.push(format!("{}{}", "{{(".repeat(20_000), ")}}".repeat(20_000)).into_bytes());
    v
}

/// Manifests with hostile fields.
fn hostile_manifests() -> Vec<Vec<u8>> {
    let oci = manifest::media_types::OCI_MANIFEST;
    [
        format!(r#"{{"schemaVersion":2,"mediaType":"{oci}","config":{{"mediaType":"x","digest":"sha256:../../x","size":-1}},"layers":[]}}"#),
        format!(r#"{{"schemaVersion":2,"mediaType":"{oci}","config":{{"mediaType":"x","digest":"md5:00","size":1}},"layers":[{{"digest":"sha512:00","size":18446744073709551615}}]}}"#),
        r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:00","size":1,"platform":{"os":"","architecture":""}}]}"#.to_string(),
        r#"{"schemaVersion":1,"fsLayers":[{"blobSum":"sha256:../x"}],"history":[{"v1Compatibility":"{"}]}"#.to_string(),
        r#"{"schemaVersion":1,"fsLayers":[],"history":[],"signatures":[{"protected":"!!!"}]}"#.to_string(),
        r#"{"schemaVersion":-1}"#.to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// Every file under `dir` (recursively).
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// The committed corpus of `target`: seeds and crashers found by `scripts/fuzz.sh`.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    files(&dir)
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

#[test]
fn text_targets_survive_hostile_input_and_their_corpora() {
    let scratch = tempfile::tempdir().unwrap();
    for t in hostile_texts() {
        reference(&t);
        www_authenticate(&t);
        template(&t);
        go_time(&t);
        config_files(&t, scratch.path());
        manifest(&t);
        config(&t);
    }
    for (name, f) in [
        ("reference", reference as fn(&[u8])),
        ("www_authenticate", www_authenticate),
        ("template", template),
        ("go_time", go_time),
        ("manifest", manifest),
        ("config", config),
    ] {
        for t in corpus(name) {
            f(&t);
        }
    }
    for t in corpus("config_files") {
        config_files(&t, scratch.path());
    }
}

#[test]
fn manifest_targets_survive_hostile_fields() {
    for m in hostile_manifests() {
        manifest(&m);
        config(&m);
    }
}

#[test]
fn archive_target_survives_its_corpus_and_garbage() {
    let scratch = tempfile::tempdir().unwrap();
    archive(b"", scratch.path());
    archive(&[0u8; 1024], scratch.path());
    archive(b"not a tar at all", scratch.path());
    for t in corpus("archive") {
        archive(&t, scratch.path());
    }
}
