//! Round trips: `dir → registry → dir` gives the identical tree, and `umoci unpack` of
//! scry's `oci:` output gives the fixture's root filesystem (whiteouts applied).

use std::process::Command;

use super::{assert_same_rootfs, assert_same_tree, scry_copy, unpacked_rootfs, Place, Transport};
use crate::harness::image::Image;
use crate::harness::{run, shared_registry};

#[test]
fn dir_to_registry_to_dir_gives_identical_trees() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    for (name, all) in [
        ("small", false),
        ("multilayer", false),
        ("docker", false),
        ("multiarch", true),
    ] {
        let flags: &[&str] = if all { &["--all"] } else { &[] };
        let (dir1, path1) = place.dir(&format!("{name}-1"));
        let (dir2, path2) = place.dir(&format!("{name}-2"));
        let pushed = place.reg.docker_ref(&format!("roundtrip/{name}:t"));
        for (from, to) in [
            (shared.docker_ref(&format!("{name}:latest")), dir1.clone()),
            (dir1.clone(), pushed.clone()),
            (pushed.clone(), dir2.clone()),
        ] {
            let mut args = flags.to_vec();
            args.extend([from.as_str(), to.as_str()]);
            scry_copy(&args).assert_success();
        }
        assert_same_tree(&path1, &path2);
    }
}

/// `umoci unpack --rootless` of `oci:LAYOUT:t` into a bundle under `place`.
fn umoci_rootfs(
    place: &Place,
    layout_ref: &str,
    bundle_name: &str,
) -> crate::harness::image::Rootfs {
    let image = layout_ref.strip_prefix("oci:").expect("an oci: name");
    let bundle = place.path().join(bundle_name);
    run(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        image,
        bundle.to_str().unwrap(),
    ]))
    .assert_success();
    unpacked_rootfs(&bundle.join("rootfs"))
}

#[test]
fn umoci_unpacks_scry_oci_output_to_the_source_rootfs() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let cases: [(&str, &Image); 3] = [
        ("small", &fx.small.image),
        ("multilayer", &fx.multilayer.image),
        ("docker", &fx.docker.image),
    ];
    for (name, image) in cases {
        let out = place.image(Transport::Oci, name);
        scry_copy(&[&shared.docker_ref(&format!("{name}:latest")), &out]).assert_success();
        let got = umoci_rootfs(&place, &out, &format!("{name}-bundle"));
        assert_same_rootfs(&got, &image.rootfs, &format!("umoci unpack of {out}"));
    }

    // Through docker-archive (uncompressed layers): recompressed by default, kept
    // as plain tar with --dest-oci-accept-uncompressed-layers; both unpack the same.
    let image = &fx.multilayer.image;
    let archive = place.image(Transport::DockerArchive, "multilayer-archive");
    scry_copy(&[&shared.docker_ref("multilayer:latest"), &archive]).assert_success();
    for (name, flags) in [
        ("from-archive", &[][..]),
        (
            "from-archive-plain",
            &["--dest-oci-accept-uncompressed-layers"][..],
        ),
    ] {
        let out = place.image(Transport::Oci, name);
        let mut args = flags.to_vec();
        args.extend([archive.as_str(), out.as_str()]);
        scry_copy(&args).assert_success();
        let got = umoci_rootfs(&place, &out, &format!("{name}-bundle"));
        assert_same_rootfs(&got, &image.rootfs, &format!("umoci unpack of {out}"));
    }
}
