//! No unverified byte reaches a reader that reads a blob to its end: a byte flipped in
//! one ranged answer (by the fault proxy in front of the real registry) makes the read
//! that reaches the end fail with EIO, with passthrough on or off, direct or buffered;
//! the kernel's cached pages are dropped, so the next read fetches again and verifies.

use super::fakereg::RawImage;
use super::{hex_of, sha256sum, Mount};
use crate::harness::faultproxy::{Fault, FaultProxy, Rule};
use crate::harness::{run_with_timeout, Registry};

/// `bash -c 'set -o pipefail; SCRIPT'`.
fn pipeline(script: &str) -> crate::harness::CmdOutput {
    run_with_timeout(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; {script}")),
        super::TOOL_TIMEOUT,
    )
}

/// A 45 MiB layer behind a proxy that flips one byte in one ranged answer, after
/// `skip` good ones.
fn flipped_blob(
    skip: usize,
    args: &[&str],
) -> (Registry, FaultProxy, RawImage, Mount, std::path::PathBuf) {
    let reg = Registry::plain();
    let image = RawImage::new(&[45 << 20]);
    image.push(&reg.client(), "big", "latest");
    let proxy = FaultProxy::start(&reg.url());
    let layer = hex_of(&image.layer_digests[0]).to_string();
    proxy.add(
        Rule::on(&layer, Fault::FlipByte(12345))
            .method("GET")
            .ranged()
            .skip(skip)
            .times(1),
    );
    let mut all = vec!["--tls-verify=false", "--timeout", "20s"];
    all.extend_from_slice(args);
    let m = Mount::start(&all);
    let blob = m.path(&format!("{}/big/latest/blobs/sha256/{layer}", proxy.host()));
    (reg, proxy, image, m, blob)
}

#[track_caller]
fn assert_read_failed(out: &crate::harness::CmdOutput, proxy: &FaultProxy, m: &Mount) {
    assert_eq!(
        proxy.faults(),
        [Fault::FlipByte(12345)],
        "the fault was not applied once: {:?}",
        proxy.requests()
    );
    assert!(
        !out.success(),
        "a read of a blob with a flipped byte succeeded: {out}\n{}",
        m.log()
    );
    assert!(out.stderr.contains("Input/output error"), "{out}");
    assert!(
        m.log().contains("did not match its digest"),
        "the reason is not logged\n{}",
        m.log()
    );
}

#[test]
fn a_flipped_byte_fails_a_direct_read_to_the_end() {
    let (_reg, proxy, image, m, blob) = flipped_blob(2, &[]);
    let out = pipeline(&format!(
        "dd if='{}' bs=1M iflag=direct status=none | sha256sum",
        blob.display()
    ));
    assert_read_failed(&out, &proxy, &m);
    // The registry's bytes are right again: the next read fetches and verifies.
    assert_eq!(sha256sum(&blob), image.layer_digests[0]);
    m.unmount();
}

#[test]
fn a_flipped_byte_fails_a_buffered_read_and_its_pages_are_dropped() {
    for passthrough in ["--passthrough=true", "--passthrough=false"] {
        let (_reg, proxy, image, m, blob) = flipped_blob(2, &[passthrough]);
        let out = pipeline(&format!("cat '{}' | sha256sum", blob.display()));
        assert_read_failed(&out, &proxy, &m);
        // Pages read before the failure (some of them wrong) are not served again:
        // the same file read again, buffered, has the right digest.
        assert_eq!(sha256sum(&blob), image.layer_digests[0], "{passthrough}");
        assert_eq!(sha256sum(&blob), image.layer_digests[0], "{passthrough}");
        m.unmount();
    }
}

#[test]
fn verify_complete_serves_no_byte_of_a_flipped_blob() {
    // The whole blob is fetched at once: its one answer has the flipped byte.
    let (_reg, proxy, image, m, blob) = flipped_blob(0, &["--verify=complete"]);
    // The first 4 KiB only: with --verify=complete even that waits for the whole blob.
    let out = pipeline(&format!(
        "dd if='{}' bs=4096 count=1 status=none | wc -c",
        blob.display()
    ));
    assert_read_failed(&out, &proxy, &m);
    assert_eq!(sha256sum(&blob), image.layer_digests[0]);
    m.unmount();
}
