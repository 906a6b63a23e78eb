//! `scry inspect` against the skopeo oracle on every fixture of the shared registry:
//! default JSON, `--raw`, `--config`, `--config --raw`, `--no-tags` and `--format`
//! templates must produce the same bytes as skopeo given the same flags. The submodules
//! cover errors and references, `list-tags` and `manifest-digest`.
//!
//! Each test walks all cases of one fixture and reports every difference at once.

mod errors;
mod list_tags;
mod local;
mod manifest_digest;
mod registries_conf;

use serde_json::Value;

use crate::harness::{run, scry, shared_registry, skopeo, CmdOutput, Image};

/// Runs `TOOL GLOBAL… SUB… --tls-verify=false IMAGE` with both tools (shared home).
pub fn run_both(global: &[&str], sub: &[&str], image: &str) -> (CmdOutput, CmdOutput) {
    let go = |mut cmd: std::process::Command| {
        run(cmd
            .args(global)
            .args(sub)
            .arg("--tls-verify=false")
            .arg(image))
    };
    (go(scry()), go(skopeo()))
}

/// Collects differences so one run reports all of them.
#[derive(Default)]
pub struct Mismatches(Vec<String>);

impl Mismatches {
    pub fn note(&mut self, msg: String) {
        self.0.push(msg);
    }

    /// Both succeeded; returns false (and notes why) otherwise.
    pub fn both_ok(&mut self, what: &str, s: &CmdOutput, k: &CmdOutput) -> bool {
        if !k.success() {
            self.note(format!("{what}: skopeo (the oracle) failed: {k}"));
            return false;
        }
        if !s.success() {
            self.note(format!("{what}: scry failed where skopeo succeeded: {s}"));
            return false;
        }
        true
    }

    /// Both succeeded with byte-identical stdout.
    pub fn same_stdout(&mut self, what: &str, s: &CmdOutput, k: &CmdOutput) {
        if self.both_ok(what, s, k) {
            self.same_bytes(what, &s.stdout_bytes, &k.stdout_bytes);
        }
    }

    pub fn same_bytes(&mut self, what: &str, scry: &[u8], skopeo: &[u8]) {
        if scry != skopeo {
            self.note(format!(
                "{what}: stdout differs\n{}",
                diff(
                    &String::from_utf8_lossy(scry),
                    &String::from_utf8_lossy(skopeo)
                )
            ));
        }
    }

    #[track_caller]
    pub fn finish(self) {
        if !self.0.is_empty() {
            panic!(
                "{} mismatch(es):\n\n{}",
                self.0.len(),
                self.0.join("\n\n----------\n\n")
            );
        }
    }
}

/// The first differing line with a little context, plus both lengths.
pub fn diff(scry: &str, skopeo: &str) -> String {
    let a: Vec<&str> = scry.split_inclusive('\n').collect();
    let b: Vec<&str> = skopeo.split_inclusive('\n').collect();
    let first = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap_or(0);
    let from = first.saturating_sub(2);
    let show = |v: &[&str]| -> String {
        v.iter()
            .skip(from)
            .take(6)
            .map(|l| format!("    |{l:?}\n"))
            .collect()
    };
    format!(
        "scry ({} bytes), from line {}:\n{}skopeo ({} bytes), from line {}:\n{}",
        scry.len(),
        from + 1,
        show(&a),
        skopeo.len(),
        from + 1,
        show(&b)
    )
}

/// Removes one top-level field from 4-space-indented JSON text (Go's
/// `json.MarshalIndent` layout), keeping every other byte. Returns the remaining text
/// and whether the field was there.
pub fn strip_top_level_field(text: &str, key: &str) -> (String, bool) {
    let head = format!("    \"{key}\": ");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(start) = lines.iter().position(|l| l.starts_with(&head)) else {
        return (text.to_string(), false);
    };
    let opener = lines[start].trim_end();
    let mut end = start; // inclusive
    if opener.ends_with('[') || opener.ends_with('{') {
        while end + 1 < lines.len() {
            end += 1;
            let l = lines[end].trim_end();
            if matches!(l, "    ]" | "    ]," | "    }" | "    },") {
                break;
            }
        }
    }
    let was_last = !lines[end].trim_end().ends_with(',');
    let mut kept: Vec<String> = lines[..start].iter().map(|s| s.to_string()).collect();
    if was_last {
        if let Some(prev) = kept.last_mut() {
            if let Some(stripped) = prev.trim_end().strip_suffix(',') {
                *prev = format!("{stripped}\n");
            }
        }
    }
    kept.extend(lines[end + 1..].iter().map(|s| s.to_string()));
    (kept.concat(), true)
}

/// One image as `inspect` sees it: the reference, global flags, and what the fixture
/// says the chosen single-platform image is.
pub struct Case<'a> {
    pub label: String,
    pub global: Vec<&'static str>,
    pub image: String,
    pub top_manifest: &'a [u8],
    pub chosen: &'a Image,
}

/// Templates compared byte for byte with skopeo 1.9.3.
const FORMATS: &[&str] = &[
    "{{.Name}} {{.Digest}}",
    "{{range .RepoTags}}{{.}} {{end}}",
    "{{index .Labels \"com.example.scry.fixture\"}}",
    "{{.Architecture}}/{{.Os}} layers={{len .Layers}} tags={{len .RepoTags}}",
    "Name: {{.Name}}\nDigest: {{.Digest}}\n",
    "{{range $i, $l := .Layers}}{{$i}}={{$l}};{{end}}",
];

/// Every comparison for one case.
pub fn compare_case(m: &mut Mismatches, c: &Case) {
    let g = &c.global;
    let what = |flags: &str| format!("[{}] inspect {flags}", c.label);

    // Default JSON.
    let (s, k) = run_both(g, &["inspect"], &c.image);
    if m.both_ok(&what(""), &s, &k) {
        compare_default_json(m, &what(""), &s, &k, c.chosen);
    }

    // --no-tags: skopeo prints the same document with `RepoTags: []`.
    let (s, k) = run_both(g, &["inspect", "--no-tags"], &c.image);
    if m.both_ok(&what("--no-tags"), &s, &k) {
        compare_default_json(m, &what("--no-tags"), &s, &k, c.chosen);
    }

    // --raw: the top-level manifest exactly as stored.
    let (s, k) = run_both(g, &["inspect", "--raw"], &c.image);
    m.same_stdout(&what("--raw"), &s, &k);
    if s.success() && s.stdout_bytes != c.top_manifest {
        m.note(format!(
            "{}: scry's bytes are not the stored manifest",
            what("--raw")
        ));
    }

    // --config: the chosen image's config as skopeo formats it (OCI form).
    let (s, k) = run_both(g, &["inspect", "--config"], &c.image);
    m.same_stdout(&what("--config"), &s, &k);

    // --config --raw: the config blob exactly as stored.
    let (s, k) = run_both(g, &["inspect", "--config", "--raw"], &c.image);
    m.same_stdout(&what("--config --raw"), &s, &k);
    if s.success() && s.stdout_bytes != c.chosen.config.data {
        m.note(format!(
            "{}: scry's bytes are not the chosen image's config blob",
            what("--config --raw")
        ));
    }

    for f in FORMATS {
        let (s, k) = run_both(g, &["inspect", "--format", f], &c.image);
        m.same_stdout(&what(&format!("--format {f:?}")), &s, &k);
    }

    // `json` is a template function of current skopeo (containers/common's report
    // package); skopeo 1.9.3 uses a bare text/template without it, so the oracle here
    // is the config's labels encoded as Go's JSON encoder does (sorted keys, compact).
    let labels = serde_json::to_string(&c.chosen.labels).unwrap();
    let s = run(scry()
        .args(g)
        .args([
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{json .Labels}}",
        ])
        .arg(&c.image));
    if !s.success() {
        m.note(format!("{}: {s}", what("--format '{{json .Labels}}'")));
    } else if s.stdout != format!("{labels}\n") {
        m.note(format!(
            "{}: expected {labels:?} + newline, got {:?}",
            what("--format '{{json .Labels}}'"),
            s.stdout
        ));
    }
}

/// Default inspect JSON: byte-equal to skopeo 1.9.3 except for `LayersData`.
///
/// `LayersData` (MIMEType/Digest/Size/Annotations per layer) is printed by current
/// skopeo but not by 1.9.3. If scry prints it, it is cut out of scry's text (every
/// other byte must still match) and checked against the fixture instead.
fn compare_default_json(m: &mut Mismatches, what: &str, s: &CmdOutput, k: &CmdOutput, img: &Image) {
    let (skopeo_text, skopeo_has) = strip_top_level_field(&k.stdout, "LayersData");
    assert!(
        !skopeo_has,
        "the oracle is expected to be skopeo 1.9.3 (no LayersData); update this test"
    );
    let (scry_text, scry_has) = strip_top_level_field(&s.stdout, "LayersData");
    m.same_bytes(what, scry_text.as_bytes(), skopeo_text.as_bytes());
    if scry_has {
        let v: Value = match serde_json::from_str(&s.stdout) {
            Ok(v) => v,
            Err(e) => return m.note(format!("{what}: scry's output is not JSON: {e}")),
        };
        let want: Vec<Value> = img
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "MIMEType": l.blob.media_type,
                    "Digest": l.blob.digest,
                    "Size": l.blob.size,
                    "Annotations": null,
                })
            })
            .collect();
        if v["LayersData"] != Value::Array(want.clone()) {
            m.note(format!(
                "{what}: LayersData {} != expected {}",
                v["LayersData"],
                Value::Array(want)
            ));
        }
    }
}

#[test]
fn strip_top_level_field_keeps_other_bytes() {
    let text = "{\n    \"A\": 1,\n    \"L\": [\n        {\n            \"x\": 1\n        }\n    ],\n    \"B\": [\n        \"b\"\n    ]\n}\n";
    let (out, had) = strip_top_level_field(text, "L");
    assert!(had);
    assert_eq!(
        out,
        "{\n    \"A\": 1,\n    \"B\": [\n        \"b\"\n    ]\n}\n"
    );
    let (out, had) = strip_top_level_field(text, "B");
    assert!(had);
    assert_eq!(
        out,
        "{\n    \"A\": 1,\n    \"L\": [\n        {\n            \"x\": 1\n        }\n    ]\n}\n"
    );
    let (out, had) = strip_top_level_field(text, "Z");
    assert!(!had);
    assert_eq!(out, text);
    let (out, _) = strip_top_level_field("{\n    \"A\": 1,\n    \"N\": null\n}\n", "N");
    assert_eq!(out, "{\n    \"A\": 1\n}\n");
}

#[test]
fn inspect_small_by_tag_and_digest_matches_skopeo() {
    let (reg, f) = shared_registry();
    let mut m = Mismatches::default();
    for (label, image) in [
        ("small:latest", reg.docker_ref("small:latest")),
        ("small:1.0", reg.docker_ref("small:1.0")),
        (
            "small@digest",
            format!("docker://{}", f.small.by_digest(reg)),
        ),
        // No tag: both default to `latest`.
        ("small", reg.docker_ref("small")),
    ] {
        compare_case(
            &mut m,
            &Case {
                label: label.into(),
                global: vec![],
                image,
                top_manifest: &f.small.manifest,
                chosen: &f.small.image,
            },
        );
    }
    m.finish();
}

#[test]
fn inspect_multilayer_docker_and_manytags_match_skopeo() {
    let (reg, f) = shared_registry();
    let mut m = Mismatches::default();
    // manytags: RepoTags holds all 260 tags, in the registry's order.
    for (fx, tag) in [
        (&f.multilayer, "latest"),
        (&f.docker, "latest"),
        (&f.manytags, "tag-000"),
        (&f.manytags, "tag-259"),
    ] {
        compare_case(
            &mut m,
            &Case {
                label: format!("{}:{tag}", fx.repo),
                global: vec![],
                image: reg.docker_ref(&format!("{}:{tag}", fx.repo)),
                top_manifest: &fx.manifest,
                chosen: &fx.image,
            },
        );
    }
    m.finish();
}

/// `(global flags, architecture, variant)` of the child each platform choice selects.
type PlatformCase = (&'static [&'static str], &'static str, Option<&'static str>);

fn compare_index(repo: &str, platforms: &[PlatformCase]) {
    let (reg, f) = shared_registry();
    let index = if repo == "multiarch" {
        &f.multiarch
    } else {
        &f.dockerlist
    };
    let mut m = Mismatches::default();
    for (flags, arch, variant) in platforms {
        let chosen = index.child(arch, *variant);
        for (how, image) in [
            ("latest", reg.docker_ref(&format!("{repo}:latest"))),
            ("digest", format!("docker://{}", index.by_digest(reg))),
        ] {
            compare_case(
                &mut m,
                &Case {
                    label: format!("{repo} by {how} {}", flags.join(" ")),
                    global: flags.to_vec(),
                    image,
                    top_manifest: &index.manifest,
                    chosen,
                },
            );
        }
    }
    m.finish();
}

#[test]
fn inspect_multiarch_index_matches_skopeo_for_every_platform() {
    // The default platform is the test machine's (these machines are linux/amd64).
    compare_index(
        "multiarch",
        &[
            (&[], "amd64", None),
            (&["--override-arch", "amd64"], "amd64", None),
            (&["--override-arch", "arm64"], "arm64", Some("v8")),
            (
                &["--override-arch", "arm64", "--override-variant", "v8"],
                "arm64",
                Some("v8"),
            ),
            (
                &[
                    "--override-os",
                    "linux",
                    "--override-arch",
                    "arm",
                    "--override-variant",
                    "v7",
                ],
                "arm",
                Some("v7"),
            ),
            (&["--override-arch", "arm"], "arm", Some("v7")),
        ],
    );
}

#[test]
fn inspect_docker_manifest_list_matches_skopeo_for_every_platform() {
    compare_index(
        "dockerlist",
        &[
            (&[], "amd64", None),
            (&["--override-arch", "arm64"], "arm64", Some("v8")),
            (
                &["--override-arch", "arm64", "--override-variant", "v8"],
                "arm64",
                Some("v8"),
            ),
        ],
    );
}

/// Go's text/template prints times, slices and maps with `fmt`; scripts that use
/// `{{.Created}}` or `{{.Env}}` get exactly those strings from skopeo.
#[test]
fn format_prints_values_as_go_does() {
    let (reg, _) = shared_registry();
    let mut m = Mismatches::default();
    for image in [
        reg.docker_ref("small:latest"),
        reg.docker_ref("docker:latest"),
    ] {
        for f in [
            "{{.Created}}",
            "{{.Env}}",
            "{{.Labels}}",
            "{{.RepoTags}}",
            "{{.Layers}}",
            "{{.DockerVersion}}|{{.Os}}",
            "{{if .Labels}}labelled{{else}}bare{{end}}",
            "{{.Labels.nokey}}|{{index .Labels \"nokey\"}}",
            "{{printf \"%s=%d\" .Os (len .Layers)}}",
            // Method calls on the time.
            "{{.Created.Format \"2006-01-02T15:04:05Z07:00\"}}|{{.Created.Format \"Jan _2 3:04PM .000 MST\"}}",
            "{{.Created.Year}} {{.Created.Month}} {{.Created.Day}} {{.Created.Unix}} {{.Created.UTC}}",
        ] {
            let (s, k) = run_both(&[], &["inspect", "--format", f], &image);
            m.same_stdout(&format!("{image} --format {f:?}"), &s, &k);
        }
    }
    m.finish();
}

/// `inspect --config --format` renders over the OCI config with the Go field names of
/// skopeo's `v1.Image`, byte for byte as skopeo 1.9.3 prints them.
#[test]
fn config_format_matches_skopeo() {
    let (reg, _) = shared_registry();
    let mut m = Mismatches::default();
    for (global, image) in [
        (&[][..], reg.docker_ref("small:latest")),
        (&[], reg.docker_ref("docker:latest")),
        (&[], reg.docker_ref("multilayer:latest")),
        (
            &["--override-arch", "arm"][..],
            reg.docker_ref("multiarch:latest"),
        ),
    ] {
        for f in [
            "{{.Architecture}}",
            "{{.OS}}/{{.Config.Env}}",
            "{{.Created}}|{{.Author}}|{{.Variant}}|{{.OSVersion}}|{{.OSFeatures}}",
            "{{.Config.User}}|{{.Config.ExposedPorts}}|{{.Config.Entrypoint}}|{{.Config.Cmd}}",
            "{{.Config.Volumes}}|{{.Config.WorkingDir}}|{{.Config.Labels}}|{{.Config.StopSignal}}",
            "{{.RootFS.Type}} {{.RootFS.DiffIDs}} {{len .RootFS.DiffIDs}}",
            "{{range .History}}{{.Created}};{{.CreatedBy}};{{.EmptyLayer}}\n{{end}}",
            "{{index .Config.Labels \"com.example.scry.fixture\"}}",
            "{{.Config}}",
            "{{.RootFS}} {{.History}}",
            "{{.}}",
            "{{.Created.Format \"2006-01-02\"}} {{range .History}}{{.Created.Unix}} {{end}}",
        ] {
            let (s, k) = run_both(global, &["inspect", "--config", "--format", f], &image);
            m.same_stdout(
                &format!("{image} {global:?} --config --format {f:?}"),
                &s,
                &k,
            );
        }
    }
    m.finish();
}
