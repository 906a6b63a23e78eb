//! registries.conf, as skopeo reads it: `insecure` lets a plain-HTTP registry be used
//! without `--tls-verify=false` (a flag still wins), `blocked` refuses it; through
//! `--registries-conf` and `$CONTAINERS_REGISTRIES_CONF`, in both file formats.

use crate::harness::{run, scry, shared_registry, skopeo};

#[test]
fn insecure_and_blocked_registries_as_skopeo_reads_them() {
    let (reg, _) = shared_registry();
    let dir = tempfile::tempdir().unwrap();
    let image = reg.docker_ref("small:latest");
    let conf = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let insecure = conf(
        "insecure.conf",
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            reg.url()
        ),
    );
    let v1 = conf(
        "v1.conf",
        format!("[registries.insecure]\nregistries = ['{}']\n", reg.url()),
    );
    let blocked = conf(
        "blocked.conf",
        format!(
            "[[registry]]\nprefix = \"{}/small\"\nlocation = \"{}/small\"\nblocked = true\n",
            reg.url(),
            reg.url()
        ),
    );

    // Without configuration a plain-HTTP registry needs the flag, as in skopeo.
    let plain = run(scry().args(["inspect", "--raw"]).arg(&image));
    plain.assert_code(1);

    for file in [&insecure, &v1] {
        for tool in [scry(), skopeo()] {
            let mut cmd = tool;
            let out = run(cmd
                .arg("--registries-conf")
                .arg(file)
                .args(["inspect", "--raw"])
                .arg(&image));
            out.assert_success();
        }
        // The environment variable names the file just as well.
        let out = run(scry()
            .env("CONTAINERS_REGISTRIES_CONF", file)
            .args(["inspect", "--raw"])
            .arg(&image));
        out.assert_success();
        // A flag wins over the file.
        let out = run(scry()
            .arg("--registries-conf")
            .arg(file)
            .args(["inspect", "--raw", "--tls-verify=true"])
            .arg(&image));
        out.assert_code(1);
    }

    // Blocked: refused with the file named, by skopeo too; other repositories of the
    // registry are not.
    let out = run(scry()
        .arg("--registries-conf")
        .arg(&blocked)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&image));
    out.assert_code(1);
    assert!(
        out.stderr.contains("blocked") && out.stderr.contains("blocked.conf"),
        "{out}"
    );
    run(skopeo()
        .arg("--registries-conf")
        .arg(&blocked)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(&image))
    .assert_code(1);
    run(scry()
        .arg("--registries-conf")
        .arg(&blocked)
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(reg.docker_ref("multilayer:latest")))
    .assert_success();

    // A file that does not parse is named.
    let bad = conf("bad.conf", "[[registry]\n".into());
    let out = run(scry()
        .arg("--registries-conf")
        .arg(&bad)
        .args(["inspect", "--raw"])
        .arg(&image));
    out.assert_code(1);
    assert!(out.stderr.contains("bad.conf"), "{out}");
}

/// Reading follows `location` remapping and mirrors, as skopeo does: a name whose
/// primary location is unreachable is read from its mirror; a mirror lacking the
/// image falls through to the primary location; inspect still names the image as
/// written.
#[test]
fn mirrors_and_remapping_as_skopeo_reads_them() {
    let (reg, fx) = shared_registry();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mirrors.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"mirrored.example/team\"\nlocation = \"127.0.0.1:1/team\"\n\n\
             [[registry.mirror]]\nlocation = \"{url}\"\ninsecure = true\n\n\
             [[registry]]\nprefix = \"fallback.example\"\nlocation = \"{url}\"\ninsecure = true\n\n\
             [[registry.mirror]]\nlocation = \"{url}/no-such-namespace\"\ninsecure = true\n",
            url = reg.url()
        ),
    )
    .unwrap();
    for image in [
        "docker://mirrored.example/team/small:latest",
        "docker://fallback.example/small:latest",
    ] {
        let mut outputs = Vec::new();
        for tool in [scry(), skopeo()] {
            let mut cmd = tool;
            let out = run(cmd
                .arg("--registries-conf")
                .arg(&conf)
                .args(["inspect", "--raw"])
                .arg(image));
            out.assert_success();
            outputs.push(out.stdout_bytes.clone());
        }
        assert_eq!(outputs[0], fx.small.image.manifest, "{image}");
        assert_eq!(outputs[0], outputs[1], "{image}");
    }
    let out = run(scry()
        .arg("--registries-conf")
        .arg(&conf)
        .args(["inspect", "--no-tags"])
        .arg("docker://mirrored.example/team/small:latest"));
    out.assert_success();
    assert_eq!(out.json()["Name"], "mirrored.example/team/small", "{out}");
    // Copies read from the mirror too.
    let to = format!("dir:{}", dir.path().join("copied").display());
    run(scry()
        .arg("--registries-conf")
        .arg(&conf)
        .arg("copy")
        .arg("docker://mirrored.example/team/small:latest")
        .arg(&to))
    .assert_success();
}
