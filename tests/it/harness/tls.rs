//! Test-time X.509 material: a CA with a server certificate it signs, a self-signed
//! `CA:TRUE` certificate used directly as the server certificate (the common
//! `openssl req -x509` setup), and a self-signed token-signing certificate.
//!
//! Every certificate names `127.0.0.1` (IP SAN) and `localhost` (DNS SAN) where it is
//! meant for a server. Keys are RSA 2048; validity starts a day in the past.

use std::fs;
use std::path::Path;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Name, X509NameBuilder, X509};

/// A private key with its certificate.
#[derive(Clone)]
pub struct KeyPair {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl KeyPair {
    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().expect("encode certificate as PEM")
    }

    pub fn cert_der(&self) -> Vec<u8> {
        self.cert.to_der().expect("encode certificate as DER")
    }

    pub fn key_pem(&self) -> Vec<u8> {
        self.key
            .private_key_to_pem_pkcs8()
            .expect("encode private key as PEM")
    }

    /// Writes `cert` and `key` as PEM files (the key 0600).
    pub fn write_pem(&self, cert_path: &Path, key_path: &Path) {
        fs::write(cert_path, self.cert_pem()).expect("write certificate");
        write_private(key_path, &self.key_pem());
    }
}

/// The server-side TLS material of one registry.
pub struct ServerTls {
    /// What clients must trust: the CA, or the self-signed server certificate itself.
    pub trust_anchor: X509,
    /// The certificate and key the server presents.
    pub server: KeyPair,
}

/// A CA (`CA:TRUE`, keyCertSign) plus a server certificate (`CA:FALSE`, serverAuth)
/// for `127.0.0.1` and `localhost` signed by it.
pub fn ca_signed(common_name: &str) -> ServerTls {
    let ca_key = new_key();
    let ca_name = name(&format!("{common_name} test CA"));
    let mut b = base_builder(&ca_name, &ca_name, &ca_key);
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .digital_signature()
            .build()
            .unwrap(),
    )
    .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca_cert = b.build();

    let server_key = new_key();
    let mut b = base_builder(&name("127.0.0.1"), ca_cert.subject_name(), &server_key);
    b.append_extension(BasicConstraints::new().critical().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .unwrap();
    b.append_extension(san).unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .unwrap();
    b.append_extension(ski).unwrap();
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(&ca_cert), None))
        .unwrap();
    b.append_extension(aki).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    ServerTls {
        trust_anchor: ca_cert,
        server: KeyPair {
            key: server_key,
            cert: b.build(),
        },
    }
}

/// A self-signed certificate with `CA:TRUE` and the server's SANs, used directly as
/// the server certificate — what `openssl req -x509 -addext subjectAltName=…` makes.
pub fn self_signed_ca_server() -> ServerTls {
    let key = new_key();
    let subject = name("127.0.0.1");
    let mut b = base_builder(&subject, &subject, &key);
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    ServerTls {
        trust_anchor: cert.clone(),
        server: KeyPair { key, cert },
    }
}

/// A CA for client certificates (the registry's `http.tls.clientcas`).
pub fn client_ca() -> KeyPair {
    self_signed_ca("scry test client CA")
}

/// A client certificate (clientAuth) for `key`, signed by `ca`.
pub fn client_cert(ca: &KeyPair, key: PKey<Private>) -> KeyPair {
    let mut b = base_builder(&name("scry test client"), ca.cert.subject_name(), &key);
    b.append_extension(BasicConstraints::new().critical().build().unwrap())
        .unwrap();
    b.append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
        .unwrap();
    b.sign(&ca.key, MessageDigest::sha256()).unwrap();
    KeyPair {
        key,
        cert: b.build(),
    }
}

/// A new RSA 2048 key.
pub fn rsa_key() -> PKey<Private> {
    new_key()
}

/// A new EC P-256 key.
pub fn ec_key() -> PKey<Private> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
}

/// A self-signed certificate for signing tokens; the registry trusts it through its
/// `rootcertbundle`, and tokens carry it in their `x5c` header.
pub fn token_signer() -> KeyPair {
    self_signed_ca("scry test token issuer")
}

/// A self-signed CA certificate (signing certificates and digital signatures) with a
/// new key.
fn self_signed_ca(cn: &str) -> KeyPair {
    let key = new_key();
    let subject = name(cn);
    let mut b = base_builder(&subject, &subject, &key);
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .digital_signature()
            .build()
            .unwrap(),
    )
    .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    KeyPair {
        key,
        cert: b.build(),
    }
}

fn new_key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).expect("generate RSA key")).unwrap()
}

fn name(cn: &str) -> X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_text("O", "scry integration tests")
        .unwrap();
    n.append_entry_by_text("CN", cn).unwrap();
    n.build()
}

fn base_builder(
    subject: &openssl::x509::X509NameRef,
    issuer: &openssl::x509::X509NameRef,
    key: &PKey<Private>,
) -> X509Builder {
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&random_serial()).unwrap();
    b.set_subject_name(subject).unwrap();
    b.set_issuer_name(issuer).unwrap();
    b.set_pubkey(key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    b.set_not_before(&Asn1Time::from_unix(now - 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b
}

fn random_serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(127, MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

/// Writes a secret file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(bytes).expect("write private file");
}
