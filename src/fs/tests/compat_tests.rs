//! `inspect.json` against what skopeo 1.9.3 printed for the same images (captured in
//! `src/manifest/testdata`, see its README): equal but for `RepoTags`, which the mount
//! leaves empty so that the file never changes, and `LayersData`, which scry adds as
//! current skopeo does.

use super::*;
use crate::manifest::media_types::{DOCKER_V2S1_SIGNED, DOCKER_V2S2, OCI_MANIFEST};

#[tokio::test]
async fn inspect_json_matches_skopeo_for_oci_docker_and_schema1() {
    let t = setup();
    let reg = "127.0.0.1:5077";
    for (case, repo, media_type) in [
        ("oci-umoci", "x", OCI_MANIFEST),
        ("docker2-umoci", "d2", DOCKER_V2S2),
        ("schema1-signed", "s1", DOCKER_V2S1_SIGNED),
    ] {
        let manifest = crate::manifest::testdata(case, "manifest.json");
        let digest = t.mock.add_manifest(reg, repo, &manifest, media_type);
        if media_type != DOCKER_V2S1_SIGNED {
            t.mock
                .add_blob(reg, repo, &crate::manifest::testdata(case, "config.json"));
        }
        t.mock.set_tag(reg, repo, case, &digest);
        // The tag list of `x` is reread once the tag TTL has passed.
        t.clock.advance(Duration::from_secs(60));
        let dir = format!("{reg}/{repo}/{case}");
        let mut ours = t.json(&format!("{dir}/inspect.json")).await;
        let mut theirs: serde_json::Value =
            serde_json::from_slice(&crate::manifest::testdata(case, "inspect.json")).unwrap();
        assert!(ours.as_object_mut().unwrap().remove("LayersData").is_some());
        // The tags are this mock repository's (the recorded output saw another's).
        let tags = ours["RepoTags"].as_array().unwrap();
        assert!(tags.iter().any(|t| t == case), "{case}: {tags:?}");
        theirs["RepoTags"] = ours["RepoTags"].clone();
        assert_eq!(ours, theirs, "{case}");
        assert_eq!(
            t.cat(&format!("{dir}/manifest.json")).await.unwrap(),
            manifest
        );
        let created: chrono::DateTime<chrono::FixedOffset> =
            theirs["Created"].as_str().unwrap().parse().unwrap();
        let attr = t.walk(&dir).await.unwrap();
        assert_eq!(attr.mtime, std::time::SystemTime::from(created), "{case}");
        let names = t.ls(&dir).await.unwrap();
        if media_type == DOCKER_V2S1_SIGNED {
            // Schema 1 has no OCI layout form.
            assert_eq!(names, ["manifest.json", "inspect.json", "copy-to"]);
        } else {
            assert!(
                names.contains(&"index.json".to_string()),
                "{case}: {names:?}"
            );
        }
    }
}
