//! Platform choice checked against what skopeo 1.9.3 picked (`skopeo --override-arch …
//! --override-variant … --override-os … inspect`) from lists built the same way.

use super::*;
use crate::manifest::media_types::{DOCKER_LIST, OCI_INDEX};
use serde_json::json;

/// (os, architecture, variant) of an entry; `None` for no platform.
type Plat = Option<(&'static str, &'static str, &'static str)>;

/// A list whose entry digests are the entry names, for readable assertions.
fn list(media_type: &str, entries: &[(&str, Plat)]) -> Manifest {
    let manifests: Vec<_> = entries
        .iter()
        .map(|(id, p)| {
            let mut d = json!({"mediaType": "m", "digest": id, "size": 1});
            if let Some((os, arch, variant)) = p {
                let mut plat = json!({"os": os, "architecture": arch});
                if !variant.is_empty() {
                    plat["variant"] = json!(variant);
                }
                d["platform"] = plat;
            }
            d
        })
        .collect();
    let doc = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
    Manifest::parse(&serde_json::to_vec(&doc).unwrap(), media_type).unwrap()
}

fn linux(
    arch: &'static str,
    variant: &'static str,
) -> Option<(&'static str, &'static str, &'static str)> {
    Some(("linux", arch, variant))
}

/// Chooses as skopeo on an amd64 Linux host would with these overrides.
fn pick(m: &Manifest, os: &str, arch: &str, variant: &str) -> std::result::Result<String, String> {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let choice = PlatformChoice {
        os: opt(os),
        arch: opt(arch),
        variant: opt(variant),
    };
    choose_from(m, &choice.wanted_with_host("linux", "amd64", &String::new))
        .map_err(|e| e.to_string())
}

#[test]
fn docker_list_matches_skopeo() {
    let dl = list(
        DOCKER_LIST,
        &[
            ("arm64nov", linux("arm64", "")),
            ("armv6", linux("arm", "v6")),
            ("armv7", linux("arm", "v7")),
            ("armnov", linux("arm", "")),
            ("amd64", linux("amd64", "")),
            ("win", Some(("windows", "amd64", ""))),
        ],
    );
    let ok = |s: &str| Ok(s.to_string());
    assert_eq!(pick(&dl, "", "", ""), ok("amd64"));
    assert_eq!(pick(&dl, "", "arm64", ""), ok("arm64nov"));
    assert_eq!(pick(&dl, "", "arm64", "v8"), ok("arm64nov"));
    assert_eq!(pick(&dl, "", "arm", ""), ok("armnov"));
    assert_eq!(pick(&dl, "", "arm", "v7"), ok("armv7"));
    assert_eq!(pick(&dl, "", "arm", "v6"), ok("armv6"));
    assert_eq!(pick(&dl, "", "arm", "v5"), ok("armnov"));
    assert_eq!(pick(&dl, "", "arm", "v9"), ok("armnov"));
    assert_eq!(pick(&dl, "windows", "", ""), ok("win"));
    assert_eq!(pick(&dl, "", "", "v3"), ok("amd64"));
    assert_eq!(
        pick(&dl, "", "s390x", ""),
        Err(
            "no image found in manifest list for architecture s390x, variant \"\", OS linux".into()
        )
    );
    assert_eq!(
        pick(&dl, "windows", "arm", "v7"),
        Err(
            "no image found in manifest list for architecture arm, variant \"v7\", OS windows"
                .into()
        )
    );
}

#[test]
fn variant_fallbacks_match_skopeo() {
    let dl2 = list(
        DOCKER_LIST,
        &[
            ("arm64v8", linux("arm64", "v8")),
            ("armv5", linux("arm", "v5")),
        ],
    );
    let ok = |s: &str| Ok(s.to_string());
    assert_eq!(
        pick(&dl2, "", "", ""),
        Err(
            "no image found in manifest list for architecture amd64, variant \"\", OS linux".into()
        )
    );
    assert_eq!(pick(&dl2, "", "arm64", ""), ok("arm64v8"));
    assert_eq!(pick(&dl2, "", "arm64", "v8"), ok("arm64v8"));
    assert_eq!(pick(&dl2, "", "arm", ""), ok("armv5"));
    assert_eq!(pick(&dl2, "", "arm", "v7"), ok("armv5"));
    assert_eq!(pick(&dl2, "", "arm", "v6"), ok("armv5"));
    assert!(pick(&dl2, "", "arm", "v9")
        .unwrap_err()
        .contains("variant \"v9\""));
    assert!(pick(&dl2, "", "", "v3")
        .unwrap_err()
        .contains("amd64, variant \"v3\", OS linux"));

    let dl3 = list(
        DOCKER_LIST,
        &[
            ("armv7x", linux("arm", "v7")),
            ("armv8x", linux("arm", "v8")),
        ],
    );
    assert_eq!(pick(&dl3, "", "arm", ""), ok("armv8x"));
    assert_eq!(pick(&dl3, "", "arm", "v8"), ok("armv8x"));
    assert!(pick(&dl3, "", "arm", "v6").is_err());

    let dl4 = list(
        DOCKER_LIST,
        &[
            ("armv5y", linux("arm", "v5")),
            ("armv7y", linux("arm", "v7")),
        ],
    );
    assert_eq!(pick(&dl4, "", "arm", ""), ok("armv7y"));
    assert_eq!(pick(&dl4, "", "arm", "v8"), ok("armv7y"));
    assert_eq!(pick(&dl4, "", "arm", "v6"), ok("armv5y"));
}

#[test]
fn oci_index_falls_back_to_entry_without_platform() {
    let oi = list(
        OCI_INDEX,
        &[
            ("noplat", None),
            ("arm64v8b", linux("arm64", "v8")),
            ("armv5b", linux("arm", "v5")),
        ],
    );
    let ok = |s: &str| Ok(s.to_string());
    assert_eq!(pick(&oi, "", "", ""), ok("noplat"));
    assert_eq!(pick(&oi, "", "arm64", ""), ok("arm64v8b"));
    assert_eq!(pick(&oi, "", "arm", "v7"), ok("armv5b"));
    assert_eq!(pick(&oi, "", "arm", "v9"), ok("noplat"));
    assert_eq!(pick(&oi, "windows", "", ""), ok("noplat"));
    assert_eq!(pick(&oi, "", "s390x", ""), ok("noplat"));

    let oi2 = list(OCI_INDEX, &[("arm64v8c", linux("arm64", "v8"))]);
    assert_eq!(
        pick(&oi2, "", "", ""),
        Err("no image found in image index for architecture amd64, variant \"\", OS linux".into())
    );
    assert_eq!(pick(&oi2, "", "arm64", ""), ok("arm64v8c"));
}

#[test]
fn docker_list_entry_without_platform_never_matches_a_real_platform() {
    let dl = list(DOCKER_LIST, &[("bare", None)]);
    assert!(pick(&dl, "", "", "").is_err());
}

#[test]
fn host_variant_only_without_arch_override() {
    let none = PlatformChoice::default();
    let arm_host = || "v7".to_string();
    let w = none.wanted_with_host("linux", "arm", &arm_host);
    let variants: Vec<_> = w.iter().map(|w| w.variant.as_str()).collect();
    assert_eq!(variants, ["v7", "v6", "v5", ""]);
    let arm64 = PlatformChoice {
        arch: Some("arm64".into()),
        ..Default::default()
    };
    let w = arm64.wanted_with_host("linux", "arm", &arm_host);
    let variants: Vec<_> = w.iter().map(|w| w.variant.as_str()).collect();
    assert_eq!(variants, ["", "v8"]);
    let v8host = || "v8".to_string();
    let w = none.wanted_with_host("linux", "arm64", &v8host);
    let variants: Vec<_> = w.iter().map(|w| w.variant.as_str()).collect();
    assert_eq!(variants, ["v8", ""]);
    assert!(w.iter().all(|w| w.os == "linux" && w.arch == "arm64"));
}

#[test]
fn image_manifest_is_not_a_list() {
    let m = Manifest::parse(
        br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"}}"#,
        crate::manifest::media_types::OCI_MANIFEST,
    )
    .unwrap();
    let e = choose_instance(&m, &PlatformChoice::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("needs a manifest list or image index"),
        "{e}"
    );
}

#[test]
fn cpuinfo_variants() {
    assert_eq!(
        variant_from_cpuinfo("processor\t: 0\nCPU architecture: 8\n"),
        "v8"
    );
    assert_eq!(variant_from_cpuinfo("CPU architecture: AArch64\n"), "v8");
    assert_eq!(
        variant_from_cpuinfo("model name\t: ARMv7 Processor rev 4 (v7l)\nCPU architecture: 7\n"),
        "v7"
    );
    assert_eq!(
        variant_from_cpuinfo(
            "model name\t: ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n"
        ),
        "v6"
    );
    assert_eq!(variant_from_cpuinfo("CPU architecture: 5TEJ\n"), "v5");
    assert_eq!(variant_from_cpuinfo("flags: fpu\n"), "");
    assert_eq!(variant_from_cpuinfo("CPU architecture: 9\n"), "");
}

#[test]
fn host_names_are_go_names() {
    if cfg!(target_arch = "x86_64") {
        assert_eq!(host_arch(), "amd64");
        assert_eq!(host_variant(), "");
    }
    if cfg!(target_arch = "aarch64") {
        assert_eq!(host_arch(), "arm64");
    }
    if cfg!(target_os = "linux") {
        assert_eq!(host_os(), "linux");
    }
}
