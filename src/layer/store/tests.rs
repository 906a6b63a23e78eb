use super::*;
use crate::layer::index::{build, DEFAULT_SPAN};

fn index() -> (String, LayerIndex) {
    let mut b = ::tar::Builder::new(Vec::new());
    let mut h = ::tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, "f", &b"hi"[..]).unwrap();
    let ix = build(&b.into_inner().unwrap()[..], DEFAULT_SPAN).unwrap();
    (ix.blob_digest.clone(), ix)
}

#[test]
fn indexes_are_kept_by_digest_and_unsound_files_are_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let store = IndexStore::new(&tmp.path().join("index"));
    let (digest, ix) = index();
    assert!(store.load(&digest).is_none());
    store.save(&digest, &ix).unwrap();
    assert_eq!(store.load(&digest), Some(ix.clone()));
    // No temporary file is left.
    let names: Vec<_> = fs::read_dir(tmp.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec![format!("{}.v{FORMAT_VERSION}", &digest[7..])]);
    // A damaged file is removed and reads as absent.
    let path = tmp.path().join("index").join(&names[0]);
    let mut data = fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 1;
    fs::write(&path, &data).unwrap();
    assert!(store.load(&digest).is_none());
    assert!(!path.exists());
    // An index of another blob is neither kept nor served under this digest.
    let other = format!("sha256:{}", "0".repeat(64));
    assert!(store.save(&other, &ix).is_err());
    store.save(&digest, &ix).unwrap();
    fs::rename(
        &path,
        tmp.path()
            .join("index")
            .join(format!("{}.v{FORMAT_VERSION}", "0".repeat(64))),
    )
    .unwrap();
    assert!(store.load(&other).is_none());
    // Names that are not digests are refused.
    assert!(store.save("sha256:../../x", &ix).is_err());
    assert!(store.load("latest").is_none());
    // Temporary files of writers that died go; a live writer's stay.
    let dir = tmp.path().join("index");
    let dead = dir.join(".tmp-999999999-abc.v1");
    let live = dir.join(format!(".tmp-{}-abc.v1", std::process::id()));
    fs::write(&dead, b"half").unwrap();
    fs::write(&live, b"being written").unwrap();
    store.sweep();
    assert!(!dead.exists() && live.exists());
}
