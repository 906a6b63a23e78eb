//! Choosing one image from an OCI index or Docker manifest list for a platform, with
//! the rules of containers/image as shipped in skopeo 1.9.3: the wanted OS and
//! architecture must match exactly; variants are tried from the wanted one down its
//! compatibility list (arm: v8 ⊇ v7 ⊇ v6 ⊇ v5; arm64: v8), then "no variant".
//! Without a wanted variant, "no variant" is tried first, then the whole list. In an
//! OCI index, an entry without a platform is taken when nothing matched.

use super::{Instance, Manifest};
use crate::error::{Error, Result};

/// The platform asked for with `--override-os`, `--override-arch` and
/// `--override-variant`; `None` means "as the host".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformChoice {
    pub os: Option<String>,
    pub arch: Option<String>,
    pub variant: Option<String>,
}

/// One candidate platform, most preferred first in [`PlatformChoice::wanted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPlatform {
    pub os: String,
    pub arch: String,
    pub variant: String,
}

/// Known variants per architecture, most capable first.
fn compatibility(arch: &str) -> Option<&'static [&'static str]> {
    match arch {
        "arm" => Some(&["v8", "v7", "v6", "v5"]),
        "arm64" => Some(&["v8"]),
        _ => None,
    }
}

/// The Go name (`GOOS`) of the host operating system.
pub fn host_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// The Go name (`GOARCH`) of the host architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The host CPU variant: for arm and arm64 on Linux, from `/proc/cpuinfo`; on
/// Windows and macOS the fixed variants of those systems; otherwise "".
pub fn host_variant() -> String {
    let (os, arch) = (host_os(), host_arch());
    if os == "windows" || os == "darwin" {
        return match arch {
            "arm64" => "v8",
            "arm" => "v7",
            _ => "",
        }
        .to_string();
    }
    if arch != "arm" && arch != "arm64" {
        return String::new();
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|text| variant_from_cpuinfo(&text))
        .unwrap_or_default()
}

fn cpuinfo_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The arm variant named by a `/proc/cpuinfo` text ("" when unknown).
pub fn variant_from_cpuinfo(text: &str) -> String {
    let Some(arch) = cpuinfo_field(text, "Cpu architecture") else {
        return String::new();
    };
    match arch.to_ascii_lowercase().as_str() {
        "8" | "aarch64" => "v8",
        "7" | "7m" | "?(12)" | "?(13)" | "?(14)" | "?(15)" | "?(16)" | "?(17)" => {
            // Some ARMv6 boards report architecture 7; their model name says otherwise.
            match cpuinfo_field(text, "model name") {
                Some(model) if model.to_ascii_lowercase().starts_with("armv6-compatible") => "v6",
                _ => "v7",
            }
        }
        "6" | "6tej" => "v6",
        "5" | "5t" | "5te" | "5tej" => "v5",
        "4" | "4t" => "v4",
        "3" => "v3",
        _ => "",
    }
    .to_string()
}

impl PlatformChoice {
    /// The candidates to try, in order, filling unset fields from the host. The host
    /// variant is used only when the architecture is not overridden.
    pub fn wanted(&self) -> Vec<WantedPlatform> {
        self.wanted_with_host(host_os(), host_arch(), &host_variant)
    }

    fn wanted_with_host(
        &self,
        host_os: &str,
        host_arch: &str,
        host_variant: &dyn Fn() -> String,
    ) -> Vec<WantedPlatform> {
        let set = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let (arch, mut variant) = match set(&self.arch) {
            Some(a) => (a, String::new()),
            None => (host_arch.to_string(), host_variant()),
        };
        if let Some(v) = set(&self.variant) {
            variant = v;
        }
        let os = set(&self.os).unwrap_or_else(|| host_os.to_string());
        let mut variants: Vec<String> = Vec::new();
        if !variant.is_empty() {
            match compatibility(&arch)
                .and_then(|l| l.iter().position(|v| *v == variant).map(|i| &l[i..]))
            {
                Some(tail) => variants.extend(tail.iter().map(|v| v.to_string())),
                None => variants.push(variant),
            }
            variants.push(String::new());
        } else {
            variants.push(String::new());
            variants.extend(
                compatibility(&arch)
                    .unwrap_or(&[])
                    .iter()
                    .map(|v| v.to_string()),
            );
        }
        variants
            .into_iter()
            .map(|variant| WantedPlatform {
                os: os.clone(),
                arch: arch.clone(),
                variant,
            })
            .collect()
    }
}

fn matches(instance: &Instance, want: &WantedPlatform) -> Option<bool> {
    let p = instance.platform.as_ref()?;
    Some(p.architecture == want.arch && p.os == want.os && p.variant == want.variant)
}

/// Picks the digest of the image in index/list `m` that suits `want`. Fails when `m`
/// is not an index or no entry fits, with skopeo's wording, e.g.
/// `no image found in manifest list for architecture amd64, variant "", OS linux`.
pub fn choose_instance(m: &Manifest, want: &PlatformChoice) -> Result<String> {
    choose_from(m, &want.wanted())
}

pub(crate) fn choose_from(m: &Manifest, wanted: &[WantedPlatform]) -> Result<String> {
    let (instances, what, oci) = match m {
        Manifest::OciIndex(_) => (m.instances(), "image index", true),
        Manifest::DockerList(_) => (m.instances(), "manifest list", false),
        _ => {
            return Err(Error::invalid(format!(
                "choosing an image for a platform needs a manifest list or image index, not {}",
                m.media_type()
            )))
        }
    };
    for want in wanted {
        for inst in &instances {
            // A Docker list entry always has a platform (empty when missing); an OCI
            // entry without one is only a fallback.
            let hit = match matches(inst, want) {
                Some(hit) => hit,
                None if oci => false,
                None => want.arch.is_empty() && want.os.is_empty() && want.variant.is_empty(),
            };
            if hit {
                return Ok(inst.digest.clone());
            }
        }
    }
    if oci {
        if let Some(inst) = instances.iter().find(|i| i.platform.is_none()) {
            return Ok(inst.digest.clone());
        }
    }
    let first = wanted.first().cloned().unwrap_or(WantedPlatform {
        os: String::new(),
        arch: String::new(),
        variant: String::new(),
    });
    Err(Error::Other(format!(
        "no image found in {what} for architecture {}, variant {:?}, OS {}",
        first.arch, first.variant, first.os
    )))
}

#[cfg(test)]
#[path = "platform_tests.rs"]
mod tests;
