//! `scry standalone-sign` and `scry standalone-verify`: "simple signing" signatures of a
//! manifest file, made and checked with the user's GnuPG keyring.

use std::path::PathBuf;

use clap::Args;

use super::output::write_stdout;
use crate::error::{Error, Result};
use crate::reference::DockerReference;
use crate::signing;

/// What a signature is about: the same three arguments for signing and verifying.
#[derive(Args, Debug)]
pub struct Subject {
    /// The manifest file
    #[arg(value_name = "MANIFEST")]
    manifest: PathBuf,
    /// The docker reference the signature names (e.g. registry.example/app:1)
    #[arg(value_name = "DOCKER-REFERENCE")]
    reference: String,
    /// Fingerprint of the GnuPG key (for verifying: accepted keys, comma-separated)
    #[arg(value_name = "KEY-FINGERPRINT")]
    fingerprint: String,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    subject: Subject,
    /// output the signature to SIGNATURE
    #[arg(short = 'o', long, value_name = "SIGNATURE")]
    output: PathBuf,
    /// file that contains a passphrase for the --sign-by key
    #[arg(long, value_name = "PATH")]
    passphrase_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    subject: Subject,
    /// The signature file
    #[arg(value_name = "SIGNATURE")]
    signature: PathBuf,
}

/// The manifest's bytes and digest.
fn manifest_digest(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::other(format!("reading manifest {}: {e}", path.display())))?;
    crate::manifest::manifest_digest(&bytes)
        .map_err(|e| e.context(format!("computing the digest of {}", path.display())))
}

fn reference(s: &str) -> Result<DockerReference> {
    DockerReference::parse(s).map_err(|e| e.context(format!("parsing docker reference {s:?}")))
}

pub fn sign(a: SignArgs) -> Result<()> {
    let Subject {
        manifest,
        reference: name,
        fingerprint,
    } = &a.subject;
    let digest = manifest_digest(manifest)?;
    reference(name)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let payload = signing::payload(name, &digest, now);
    let sig = signing::sign(&payload, fingerprint, a.passphrase_file.as_deref())
        .map_err(|e| e.context("Error creating signature"))?;
    std::fs::write(&a.output, sig)
        .map_err(|e| Error::other(format!("writing signature to {}: {e}", a.output.display())))
}

pub fn verify(a: VerifyArgs) -> Result<()> {
    let digest = manifest_digest(&a.subject.manifest)?;
    let expected = reference(&a.subject.reference)?;
    let sig = std::fs::read(&a.signature)
        .map_err(|e| Error::other(format!("reading signature {}: {e}", a.signature.display())))?;
    let what = "Error verifying signature";
    let v = signing::verify(&sig).map_err(|e| e.context(what))?;
    let accepted: Vec<String> = a
        .subject
        .fingerprint
        .split(',')
        .map(|f| f.trim().to_ascii_uppercase())
        .filter(|f| !f.is_empty())
        .collect();
    if !v
        .fingerprints
        .iter()
        .any(|f| accepted.contains(&f.to_ascii_uppercase()))
    {
        return Err(Error::invalid(format!(
            "{what}: Signature by key {} is not accepted (expected {})",
            v.fingerprints[0], a.subject.fingerprint
        )));
    }
    signing::check_payload(&v.payload, &expected, &digest).map_err(|e| e.context(what))?;
    write_stdout(format!("Signature verified, digest {digest}\n").as_bytes())
}
