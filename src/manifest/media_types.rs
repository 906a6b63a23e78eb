//! Media type names for manifests, configs and layers (OCI image-spec and Docker
//! distribution), and small predicates over them.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image configuration.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip-compressed tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd-compressed tar.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer, uncompressed tar.
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable layer, gzip-compressed tar.
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable layer, zstd-compressed tar.
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// The OCI "empty" descriptor content type (`{}`), used by artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Docker image manifest, schema 2.
pub const DOCKER_V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform), schema 2.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 1, unsigned.
pub const DOCKER_V2S1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker image manifest, schema 1, with JWS signatures.
pub const DOCKER_V2S1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image configuration (schema 2).
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip-compressed tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, zstd-compressed tar (as written by recent container tools).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker layer that registries do not serve; fetched from its `urls`.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker plugin configuration.
pub const DOCKER_PLUGIN_CONFIG: &str = "application/vnd.docker.plugin.v1+json";

/// Generic JSON; registries serving schema 1 may label it this way.
pub const APPLICATION_JSON: &str = "application/json";

/// Every manifest media type, for manifest GETs, in the order skopeo 1.9.3 sends
/// them (one `Accept` header line each).
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    DOCKER_V2S2,
    DOCKER_V2S1_SIGNED,
    DOCKER_V2S1,
    DOCKER_LIST,
    OCI_INDEX,
];

/// Whether `mt` names a manifest format scry understands (single image or index).
pub fn is_manifest(mt: &str) -> bool {
    MANIFEST_ACCEPT.contains(&mt)
}

/// Whether `mt` names a multi-image format (OCI index or Docker manifest list).
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_LIST
}

/// Whether `mt` names one of the two schema 1 variants.
pub fn is_schema1(mt: &str) -> bool {
    mt == DOCKER_V2S1 || mt == DOCKER_V2S1_SIGNED
}

/// Whether `mt` names a layer type that registries are not expected to hold
/// (Docker foreign layers and OCI non-distributable layers).
pub fn is_non_distributable_layer(mt: &str) -> bool {
    matches!(
        mt,
        DOCKER_FOREIGN_LAYER
            | OCI_LAYER_NONDIST_TAR
            | OCI_LAYER_NONDIST_GZIP
            | OCI_LAYER_NONDIST_ZSTD
    )
}

/// Layer compression implied by a layer media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression a layer media type announces, or `None` for a type that is not a
/// known layer type.
pub fn layer_compression(mt: &str) -> Option<Compression> {
    match mt {
        OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR => Some(Compression::None),
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER => {
            Some(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD | DOCKER_LAYER_ZSTD => Some(Compression::Zstd),
        _ => None,
    }
}

/// A `Content-Type` value reduced to its media type: parameters dropped, whitespace
/// trimmed, lowercased (media types are case-insensitive).
pub fn strip_parameters(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_list_covers_every_manifest_type_once() {
        for mt in [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_V2S2,
            DOCKER_LIST,
            DOCKER_V2S1,
            DOCKER_V2S1_SIGNED,
        ] {
            assert_eq!(
                MANIFEST_ACCEPT.iter().filter(|m| **m == mt).count(),
                1,
                "{mt}"
            );
            assert!(is_manifest(mt));
        }
        assert!(!is_manifest(OCI_CONFIG));
        assert!(!is_manifest(APPLICATION_JSON));
    }

    #[test]
    fn accept_order_as_skopeo_sends_it() {
        // Captured from skopeo 1.9.3's manifest GET.
        assert_eq!(
            MANIFEST_ACCEPT,
            [
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
                "application/vnd.docker.distribution.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.index.v1+json",
            ]
        );
    }

    #[test]
    fn predicates() {
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_LIST));
        assert!(!is_index(OCI_MANIFEST) && !is_index(DOCKER_V2S2));
        assert!(is_schema1(DOCKER_V2S1) && is_schema1(DOCKER_V2S1_SIGNED));
        assert!(!is_schema1(DOCKER_V2S2));
        assert!(is_non_distributable_layer(DOCKER_FOREIGN_LAYER));
        assert!(is_non_distributable_layer(OCI_LAYER_NONDIST_ZSTD));
        assert!(!is_non_distributable_layer(OCI_LAYER_GZIP));
    }

    #[test]
    fn compression_from_layer_type() {
        assert_eq!(layer_compression(OCI_LAYER_TAR), Some(Compression::None));
        assert_eq!(
            layer_compression(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            layer_compression(OCI_LAYER_NONDIST_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(layer_compression(OCI_LAYER_ZSTD), Some(Compression::Zstd));
        assert_eq!(layer_compression(OCI_CONFIG), None);
    }

    #[test]
    fn content_type_parameters_are_dropped() {
        assert_eq!(
            strip_parameters("Application/VND.oci.image.manifest.v1+json; charset=utf-8"),
            OCI_MANIFEST
        );
        assert_eq!(strip_parameters("  application/json "), APPLICATION_JSON);
        assert_eq!(strip_parameters(""), "");
    }
}
