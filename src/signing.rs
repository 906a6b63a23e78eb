//! "Simple signing" signatures (the format `standalone-sign` writes and
//! `standalone-verify` checks): an OpenPGP signed message whose content is a small JSON
//! document naming a docker reference and a manifest digest. The OpenPGP part is done
//! by the `gpg` program with the user's keyring (`$GNUPGHOME`), as skopeo uses it
//! through gpgme; scry only writes and checks the JSON.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::reference::DockerReference;

/// The payload's `type`.
const SIGNATURE_TYPE: &str = "atomic container signature";

/// The JSON document a signature signs.
pub fn payload(reference: &str, digest: &str, timestamp: i64) -> Vec<u8> {
    // Keys in the order skopeo writes them (sorted), so the bytes look alike.
    let doc = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": {
            "creator": format!("scry {}", env!("CARGO_PKG_VERSION")),
            "timestamp": timestamp,
        },
    });
    serde_json::to_vec(&doc).expect("a JSON value serializes")
}

fn gpg() -> Command {
    let mut c = Command::new("gpg");
    c.args(["--batch", "--no-tty"]);
    c
}

fn run_gpg(mut cmd: Command, input: &[u8], what: &str) -> Result<std::process::Output> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        Error::Unsupported(format!(
            "{what} needs gpg (GnuPG), which could not be started: {e}"
        ))
    })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child
        .wait_with_output()
        .map_err(|e| Error::other(format!("{what}: waiting for gpg: {e}")))?;
    let _ = writer.join();
    Ok(out)
}

/// Signs `payload` with the key `fingerprint` of the user's keyring.
pub fn sign(payload: &[u8], fingerprint: &str, passphrase_file: Option<&Path>) -> Result<Vec<u8>> {
    let mut cmd = gpg();
    if let Some(p) = passphrase_file {
        cmd.args(["--pinentry-mode", "loopback", "--passphrase-file"])
            .arg(p);
    }
    cmd.args(["--local-user", fingerprint, "--sign", "--output", "-"]);
    let out = run_gpg(cmd, payload, "signing")?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(Error::other(format!(
            "signing with key {fingerprint}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// A signature gpg found good, made by a key of the keyring.
pub struct Verified {
    /// Fingerprints of the signing key and of its primary key.
    pub fingerprints: Vec<String>,
    pub payload: Vec<u8>,
}

/// Checks the OpenPGP signature and returns what it signs.
pub fn verify(signature: &[u8]) -> Result<Verified> {
    let mut cmd = gpg();
    cmd.args(["--status-fd", "2", "--output", "-", "--decrypt"]);
    let out = run_gpg(cmd, signature, "verifying")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status: Vec<Vec<&str>> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] "))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let bad = [
        "BADSIG",
        "ERRSIG",
        "EXPSIG",
        "EXPKEYSIG",
        "REVKEYSIG",
        "NO_PUBKEY",
    ];
    let refused = status.iter().find(|s| bad.contains(&s[0]));
    let valid = status.iter().find(|s| s[0] == "VALIDSIG" && s.len() >= 2);
    match (out.status.success(), refused, valid) {
        (true, None, Some(v)) => Ok(Verified {
            fingerprints: vec![v[1].to_string(), v[v.len() - 1].to_string()],
            payload: out.stdout,
        }),
        (_, Some(s), _) => Err(Error::invalid(format!(
            "Invalid GPG signature: {}",
            s.join(" ")
        ))),
        _ => Err(Error::invalid(format!(
            "Invalid GPG signature: {}",
            stderr
                .lines()
                .filter(|l| !l.starts_with("[GNUPG:]"))
                .collect::<Vec<_>>()
                .join("; ")
        ))),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    critical: Critical,
    #[allow(dead_code)]
    optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
    identity: Identity,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    reference: String,
}

/// Checks a verified payload against the expected reference and manifest digest.
pub fn check_payload(payload: &[u8], reference: &DockerReference, digest: &str) -> Result<()> {
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| Error::invalid(format!("invalid signature payload: {e}")))?;
    if p.critical.kind != SIGNATURE_TYPE {
        return Err(Error::invalid(format!(
            "unrecognized signature type {:?}",
            p.critical.kind
        )));
    }
    if p.critical.image.digest != digest {
        return Err(Error::invalid(format!(
            "Signature for docker digest {:?} does not match {digest}",
            p.critical.image.digest
        )));
    }
    let signed = DockerReference::parse(&p.critical.identity.reference).map_err(|e| {
        e.context(format!(
            "the signature's docker reference {:?}",
            p.critical.identity.reference
        ))
    })?;
    if signed.to_string() != reference.to_string() {
        return Err(Error::invalid(format!(
            "Docker reference {} does not match {}",
            p.critical.identity.reference, reference
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_mismatches_are_named() {
        let r = DockerReference::parse("quay.io/a/b:1").unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        let p = payload("quay.io/a/b:1", &d, 1_700_000_000);
        let text = String::from_utf8(p.clone()).unwrap();
        assert!(text.starts_with(r#"{"critical":{"identity":{"docker-reference":"quay.io/a/b:1"}"#));
        check_payload(&p, &r, &d).unwrap();
        let other = DockerReference::parse("quay.io/a/b:2").unwrap();
        let e = check_payload(&p, &other, &d).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let e = check_payload(&p, &r, &format!("sha256:{}", "b".repeat(64))).unwrap_err();
        assert!(e.to_string().contains("digest"), "{e}");
        // Short names compare in their normalized form.
        let p = payload("busybox:latest", &d, 1);
        let full = DockerReference::parse("docker.io/library/busybox:latest").unwrap();
        check_payload(&p, &full, &d).unwrap();
        // Unknown fields in the critical section are refused.
        let bad = br#"{"critical":{"identity":{"docker-reference":"quay.io/a/b:1"},"image":{"docker-manifest-digest":"x"},"type":"atomic container signature","extra":1},"optional":{}}"#;
        assert!(check_payload(bad, &r, "x").is_err());
    }
}
