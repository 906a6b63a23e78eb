//! FUSE passthrough: once a blob is complete in the cache, a new open hands the kernel
//! the cache file and reads no longer pass through scry. The kernel refuses an inode
//! open both ways at once, so handles opened while the blob was read through scry keep
//! that mode, and opens made meanwhile must still work. `--passthrough=false` keeps
//! every read in scry.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

use super::fakereg::{FakeRegistry, Mode};
use super::{hex_of, jq, wait_until, Mount};

const MIB: usize = 1 << 20;

/// Whether this kernel and user should be able to use passthrough: Linux 6.9 or
/// later, and root (registering a backing file needs CAP_SYS_ADMIN).
fn kernel_offers_passthrough() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    version >= (6, 9) && unsafe { libc::geteuid() } == 0
}

/// `(enabled, opens)` from the mount's `.scry/stats.json`.
fn passthrough_stats(m: &Mount) -> (bool, u64) {
    let stats = m.path(".scry/stats.json");
    let enabled = jq(".passthrough.enabled", &stats) == "true";
    let opens = jq(".passthrough.opens", &stats).parse().unwrap();
    (enabled, opens)
}

fn open_handles(m: &Mount) -> u64 {
    jq(".fs.open_handles", &m.path(".scry/stats.json"))
        .parse()
        .unwrap()
}

fn read_all(f: &mut File) -> Vec<u8> {
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

#[test]
fn complete_blobs_are_read_from_the_cache_file_by_the_kernel() {
    let fake = FakeRegistry::start(&[6 * MIB]);
    let m = Mount::start(&["--tls-verify=false"]);
    let blob = m.path(&format!(
        "{}/big/latest/blobs/sha256/{}",
        fake.host(),
        hex_of(&fake.layer_digests[0])
    ));
    let want = &fake.layers[0];

    // Opened before anything is cached: read through scry, which fills the cache.
    let mut a = File::open(&blob).unwrap();
    assert!(read_all(&mut a) == *want, "first read returned wrong bytes");
    // The blob is complete now, but `a` still reads through scry: a new open must not
    // ask the kernel for the other mode (it would fail with EIO).
    let mut b = File::open(&blob).unwrap();
    assert!(
        read_all(&mut b) == *want,
        "an open beside a cached-mode handle returned wrong bytes\n{}",
        m.log()
    );
    let (enabled, opens) = passthrough_stats(&m);
    assert_eq!(opens, 0, "passthrough while a cached-mode handle was open");
    drop((a, b));
    wait_until(
        Duration::from_secs(10),
        "the handles to be released",
        || open_handles(&m) == 0,
    );
    // The last chunk may have reached the reader before the whole blob was verified
    // and moved into place.
    wait_until(Duration::from_secs(30), "the blob to be complete", || {
        jq(".backend.partial_blobs", &m.path(".scry/stats.json")) == "0"
    });

    // Two handles at once, both passthrough (one backing file for the inode), and the
    // registry gone: every byte comes from the cache file.
    fake.set_mode(Mode::Down);
    let fetched = fake.layer_bytes();
    let mut c = File::open(&blob).unwrap();
    let mut d = File::open(&blob).unwrap();
    assert!(
        read_all(&mut c) == *want,
        "passthrough read returned wrong bytes"
    );
    assert!(
        read_all(&mut d) == *want,
        "second passthrough handle read wrong bytes"
    );
    drop((c, d));
    assert_eq!(fake.layer_bytes(), fetched);
    let (enabled_after, opens_after) = passthrough_stats(&m);
    assert_eq!(enabled, enabled_after);
    // A kernel built without passthrough says so in the FUSE handshake; the mount
    // then reports that reason. Any other reason on such a kernel is a failure.
    let off_because = jq(
        ".passthrough.off_because // \"\"",
        &m.path(".scry/stats.json"),
    );
    let not_built_in = off_because.contains("does not offer");
    if kernel_offers_passthrough() && !not_built_in {
        assert!(
            enabled,
            "passthrough is off on a kernel that offers it ({off_because})\n{}",
            m.log()
        );
        assert_eq!(
            opens_after, 2,
            "both opens of the complete blob use passthrough"
        );
    } else {
        assert_eq!(opens_after, 0);
    }
    // And once more after those closed: a new backing file registration.
    wait_until(
        Duration::from_secs(10),
        "the handles to be released",
        || open_handles(&m) == 0,
    );
    let mut e = File::open(&blob).unwrap();
    assert!(
        read_all(&mut e) == *want,
        "reopened passthrough read wrong bytes"
    );
    drop(e);
    m.unmount();
}

#[test]
fn passthrough_false_keeps_reads_in_scry() {
    let fake = FakeRegistry::start(&[2 * MIB]);
    let m = Mount::start(&["--tls-verify=false", "--passthrough=false"]);
    let blob = m.path(&format!(
        "{}/big/latest/blobs/sha256/{}",
        fake.host(),
        hex_of(&fake.layer_digests[0])
    ));
    for _ in 0..2 {
        let mut f = File::open(&blob).unwrap();
        assert!(read_all(&mut f) == fake.layers[0]);
    }
    assert_eq!(passthrough_stats(&m), (false, 0));
    assert!(
        jq(".passthrough.off_because", &m.path(".scry/stats.json")).contains("--passthrough"),
        "stats do not say why passthrough is off"
    );
    m.unmount();
}
