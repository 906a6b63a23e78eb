//! `standalone-sign` / `standalone-verify` against skopeo's: each verifies what the
//! other signed, with a throw-away GnuPG keyring; wrong references, altered manifests
//! and other keys are refused.

use std::path::Path;
use std::process::Command;

use crate::harness::{run, scry, skopeo, CmdOutput, Fixtures};

/// A GnuPG home with one signing key (no passphrase); the agent is stopped on drop.
struct Keyring {
    dir: tempfile::TempDir,
    fingerprint: String,
}

impl Keyring {
    fn new(name: &str) -> Keyring {
        // Short path: gpg-agent's socket name must fit in a sockaddr_un.
        let dir = tempfile::Builder::new()
            .prefix("g")
            .tempdir_in("/tmp")
            .unwrap();
        let gpg = |args: &[&str]| {
            let out = Command::new("gpg")
                .env("GNUPGHOME", dir.path())
                .args(["--batch", "--no-tty"])
                .args(args)
                .output()
                .expect("gpg runs");
            assert!(
                out.status.success(),
                "gpg {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        gpg(&[
            "--passphrase",
            "",
            "--quick-gen-key",
            &format!("{name} <{name}@example.org>"),
            "ed25519",
            "sign",
            "never",
        ]);
        let listing = gpg(&["--list-keys", "--with-colons"]);
        let fingerprint = listing
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("a fingerprint");
        Keyring { dir, fingerprint }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.dir.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

fn with_keys(mut cmd: Command, k: &Keyring, args: &[&str]) -> CmdOutput {
    run(cmd.env("GNUPGHOME", k.path()).args(args))
}

#[test]
fn each_verifies_what_the_other_signed() {
    let k = Keyring::new("signer");
    let other = Keyring::new("other");
    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("manifest.json");
    std::fs::write(&manifest, &Fixtures::get().small.image.manifest).unwrap();
    let m = manifest.to_str().unwrap();
    let digest = &Fixtures::get().small.image.digest;
    let reference = "registry.example:5000/team/app:1";
    let fpr = k.fingerprint.as_str();
    let ours = work.path().join("scry.sig");
    let theirs = work.path().join("skopeo.sig");
    with_keys(
        scry(),
        &k,
        &[
            "standalone-sign",
            m,
            reference,
            fpr,
            "-o",
            ours.to_str().unwrap(),
        ],
    )
    .assert_success();
    with_keys(
        skopeo(),
        &k,
        &[
            "standalone-sign",
            m,
            reference,
            fpr,
            "-o",
            theirs.to_str().unwrap(),
        ],
    )
    .assert_success();
    for sig in [&ours, &theirs] {
        let sig = sig.to_str().unwrap();
        for tool in [scry(), skopeo()] {
            let out = with_keys(tool, &k, &["standalone-verify", m, reference, fpr, sig]);
            out.assert_success();
            assert_eq!(
                out.stdout.trim(),
                format!("Signature verified, digest {digest}"),
                "{sig}"
            );
        }
        // Another reference, another key, an altered manifest: refused, by both tools.
        let altered = work.path().join("altered.json");
        let mut bytes = Fixtures::get().small.image.manifest.clone();
        bytes.push(b'\n');
        std::fs::write(&altered, bytes).unwrap();
        let cases: [(&[&str], &str); 3] = [
            (
                &[m, "registry.example:5000/team/app:2", fpr, sig],
                "does not match",
            ),
            (
                &[m, reference, other.fingerprint.as_str(), sig],
                "not accepted",
            ),
            (&[altered.to_str().unwrap(), reference, fpr, sig], "digest"),
        ];
        for (args, why) in cases {
            let mut full = vec!["standalone-verify"];
            full.extend_from_slice(args);
            let out = with_keys(scry(), &k, &full);
            out.assert_code(1);
            assert!(out.stderr.contains(why), "{args:?}: {out}");
            with_keys(skopeo(), &k, &full).assert_code(1);
        }
    }
    // A keyring without the signer's key cannot verify at all.
    let out = with_keys(
        scry(),
        &other,
        &[
            "standalone-verify",
            m,
            reference,
            fpr,
            ours.to_str().unwrap(),
        ],
    );
    out.assert_code(1);
    assert!(out.stderr.contains("Invalid GPG signature"), "{out}");
}
