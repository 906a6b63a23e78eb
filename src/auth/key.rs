//! Credential keys: the `login`/`logout` argument ([`validate_key`]) and the checks every
//! key gets before a lookup ([`check_key`]).
//!
//! A key is a registry host (`host[:port]`), or a repository or namespace inside one
//! (`host/ns/repo`), never a tag or digest. The small docker-name grammar needed to check
//! `host/…` keys lives here so the credentials layer stands on its own.

use crate::{Error, Result};

/// Longest repository name the docker grammar allows.
const NAME_MAX: usize = 255;

/// Checks a `login`/`logout` argument and returns the credential key for it, as skopeo does:
/// a leading `http://` or `https://` URL is replaced by its `host[:port]` (path dropped);
/// `host/repo` forms must be lowercase, valid repository names, with no tag or digest.
pub fn validate_key(arg: &str) -> Result<String> {
    let key = strip_url(arg);
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "invalid registry {arg:?}: no host name"
        )));
    }
    let Some((registry, _)) = key.split_once('/') else {
        check_key(&key)?;
        return Ok(key);
    };
    let parsed = parse_name(&key)
        .map_err(|why| Error::invalid(format!("parse reference from {key:?}: {why}")))?;
    if parsed.has_tag_or_digest {
        return Err(Error::invalid(format!(
            "reference {key:?} contains tag or digest"
        )));
    }
    match parsed.domain {
        Some(domain) if domain == registry => {}
        Some(_) => {
            return Err(Error::invalid(format!(
                "invalid key {key:?}: use \"docker.io/…\" for Docker Hub repositories"
            )))
        }
        None => {
            return Err(Error::invalid(format!(
                "invalid key {key:?}: {registry:?} is not a registry host name (a registry host contains \".\" or \":\", or is \"localhost\")"
            )))
        }
    }
    check_key(&key)?;
    Ok(key)
}

/// The checks containers/image applies to every credential key: no URL scheme, no `@`,
/// no `:` after `host[:port]/`.
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.starts_with("http://") || key.starts_with("https://") {
        return Err(Error::invalid(format!(
            "key {key} contains http[s]:// prefix"
        )));
    }
    if key.contains('@') {
        return Err(Error::invalid(format!(
            "key {key} contains a '@' character"
        )));
    }
    if let Some((_, rest)) = key.split_once('/') {
        if rest.contains(':') {
            return Err(Error::invalid(format!(
                "key {key} contains a ':' character after host[:port]"
            )));
        }
    }
    Ok(())
}

/// The registry part of a key: everything before the first `/`.
pub(crate) fn registry_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(host, _)| host)
}

/// `https://user@host:port/path?q` → `host:port`; anything else unchanged.
pub(crate) fn strip_url(arg: &str) -> String {
    let Some(rest) = arg
        .strip_prefix("https://")
        .or_else(|| arg.strip_prefix("http://"))
    else {
        return arg.to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.to_string()
}

struct ParsedName<'a> {
    /// `None` when the first component is not a registry host (Docker Hub shorthand).
    domain: Option<&'a str>,
    has_tag_or_digest: bool,
}

/// Parses `s` as the docker reference grammar does after normalisation, for the
/// `host/…` keys only. Errors are the grammar's own wording.
fn parse_name(s: &str) -> std::result::Result<ParsedName<'_>, &'static str> {
    const BAD: &str = "invalid reference format";
    let (first, rest) = s.split_once('/').unwrap_or((s, ""));
    let names_registry = first.contains(['.', ':']) || first == "localhost";
    // Docker Hub shorthand (`vendor/repo`) and its legacy host both normalise to docker.io.
    let (domain, remainder) = match (names_registry, first) {
        (false, _) => (None, s),
        (true, "index.docker.io") => (Some("docker.io"), rest),
        (true, _) => (Some(first), rest),
    };
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return Err("invalid reference format: repository name must be lowercase");
    }

    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        if !valid_digest(d) {
            return Err(BAD);
        }
    }
    let (name, tag) = match name_tag.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(BAD);
        }
    }
    // The grammar takes the first component as a domain when it can; otherwise the whole
    // name must be a path.
    let parsed_domain = match name.split_once('/') {
        Some((d, path)) if valid_domain(d) && valid_path(path) => Some(d),
        _ if valid_path(name) => None,
        _ => return Err(BAD),
    };
    if name.len() > NAME_MAX {
        return Err("repository name must not be more than 255 characters");
    }
    let domain = match (domain, parsed_domain) {
        (Some("docker.io"), Some("index.docker.io")) => Some("docker.io"),
        (Some(d), Some(p)) if d == p => Some(d),
        _ => None,
    };
    Ok(ParsedName {
        domain,
        has_tag_or_digest: tag.is_some() || digest.is_some(),
    })
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// `host` or `host:port`; `host` is dot-separated labels of letters, digits and inner
/// hyphens, or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(after) = d.strip_prefix('[') {
        let Some((addr, tail)) = after.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        match tail {
            "" => return true,
            t => match t.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if d.starts_with('[') {
        return true;
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && is_alnum(b[0])
            && is_alnum(b[b.len() - 1])
            && b.iter().all(|&c| is_alnum(c) || c == b'-')
    })
}

/// `component(/component)*`.
fn valid_path(p: &str) -> bool {
    p.split('/').all(valid_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex`, with the exact length for sha256/sha512.
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|c| c.is_ascii_hexdigit());
    let len_ok = match alg {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128,
        _ => true,
    };
    alg_ok && hex_ok && len_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn accepted_keys() {
        for (arg, key) in [
            ("reg.example", "reg.example"),
            ("reg.example/ns/repo", "reg.example/ns/repo"),
            ("localhost:5000", "localhost:5000"),
            ("localhost:5000/foo", "localhost:5000/foo"),
            ("localhost/foo", "localhost/foo"),
            ("foo", "foo"),
            ("Reg.Example", "Reg.Example"),
            ("docker.io/foo", "docker.io/foo"),
            ("https://reg.example/v1/", "reg.example"),
            ("http://reg.example:5000/foo", "reg.example:5000"),
            ("https://user@reg.example/x", "reg.example"),
            ("https://reg.example:5000", "reg.example:5000"),
            ("reg.example/a_b/c__d/e-f.g", "reg.example/a_b/c__d/e-f.g"),
            ("reg.example/a---b", "reg.example/a---b"),
            ("[::1]:5000/foo", "[::1]:5000/foo"),
        ] {
            assert_eq!(validate_key(arg).unwrap(), key, "{arg}");
        }
    }

    #[test]
    fn rejected_keys_with_skopeo_wording() {
        let long = format!("reg.example/{}", "a".repeat(260));
        for (arg, msg) in [
            ("reg.example/repo:tag", "reference \"reg.example/repo:tag\" contains tag or digest"),
            ("foo/bar:tag", "reference \"foo/bar:tag\" contains tag or digest"),
            ("a.b/c:UPPER", "contains tag or digest"),
            ("reg.example/Foo", "parse reference from \"reg.example/Foo\": invalid reference format: repository name must be lowercase"),
            ("Foo/bar", "repository name must be lowercase"),
            ("reg.example/", "parse reference from \"reg.example/\": invalid reference format"),
            ("reg.example/foo/", "invalid reference format"),
            ("reg.example/-foo", "invalid reference format"),
            ("reg.example/a___b", "invalid reference format"),
            ("reg.example/a//b", "invalid reference format"),
            ("reg.example/foo:", "invalid reference format"),
            ("reg.example/foo@sha256:00", "invalid reference format"),
            ("reg.example:abc/foo", "invalid reference format"),
            ("HTTPS://reg.example", "invalid reference format"),
            (long.as_str(), "repository name must not be more than 255 characters"),
            ("foo/bar", "\"foo\" is not a registry host name"),
            ("reg_x.example/foo", "\"reg_x.example\" is not a registry host name"),
            ("index.docker.io/foo", "use \"docker.io/…\""),
            ("https://", "invalid registry \"https://\": no host name"),
            ("", "no host name"),
            ("reg@x", "key reg@x contains a '@' character"),
        ] {
            let err = validate_key(arg).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(msg), "{arg}: {err}");
        }
        let digested = format!("reg.example/foo@{D}");
        assert!(validate_key(&digested)
            .unwrap_err()
            .to_string()
            .contains("contains tag or digest"));
        let both = format!("reg.example/foo:tag@{D}");
        assert!(validate_key(&both)
            .unwrap_err()
            .to_string()
            .contains("contains tag or digest"));
    }

    #[test]
    fn lookup_key_checks() {
        assert!(check_key("reg.example/ns/repo").is_ok());
        assert!(check_key("localhost:5000/x").is_ok());
        assert!(check_key("https://reg.example").is_err());
        assert!(check_key("reg.example/x@sha256:ab").is_err());
        assert!(check_key("reg.example/x:tag").is_err());
        assert_eq!(registry_of("reg.example:5000/a/b"), "reg.example:5000");
        assert_eq!(registry_of("reg.example"), "reg.example");
    }
}
