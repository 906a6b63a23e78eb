//! `copy-to/` jobs: success, failure, running jobs, pending requests, names, reuse.

use std::time::Instant;

use super::*;

/// `copy-to/` of `REG/app/web/v1`.
async fn copy_dir(t: &T) -> u64 {
    t.ino(&format!("{REG}/app/web/v1/copy-to")).await
}

/// Creates job `name` and writes `text` in two pieces; returns (ino, fh).
async fn submit(t: &T, dir: u64, name: &str, text: &str) -> (u64, u64) {
    let (attr, open) = t.fs.create(dir, os(name), libc::O_WRONLY).await.unwrap();
    assert_eq!(
        (attr.kind, attr.perm, attr.size),
        (FileType::RegularFile, 0o644, 0)
    );
    assert_eq!(attr.ttl, Duration::ZERO);
    assert!(open.direct_io);
    // Without a final newline, so the copy starts at close (as tests here expect); a
    // write that ends a line starts it at once (see the test for that below).
    let text = text.trim_end_matches('\n');
    let mut mid = text.len() / 2;
    while mid > 0 && text.as_bytes()[mid - 1] == b'\n' {
        mid -= 1;
    }
    let (a, b) = text.split_at(mid);
    assert_eq!(
        t.fs.write(attr.ino, open.fh, 0, a.as_bytes())
            .await
            .unwrap(),
        a.len() as u32
    );
    t.fs.write(attr.ino, open.fh, a.len() as u64, b.as_bytes())
        .await
        .unwrap();
    (attr.ino, open.fh)
}

async fn status(t: &T, name: &str) -> serde_json::Value {
    t.json(&format!("{REG}/app/web/v1/copy-to/{name}.status"))
        .await
}

#[tokio::test]
async fn a_written_destination_is_copied_on_close() {
    let t = setup();
    let dir = copy_dir(&t).await;
    let text = "oci:/srv/out:web\n--format oci\n  --remove-signatures \n";
    let (ino, fh) = submit(&t, dir, "backup", text).await;
    assert!(t.mock.copies().is_empty(), "nothing starts before close");
    assert_eq!(status(&t, "backup").await["state"], "pending");
    t.fs.flush(ino, fh).await.unwrap();
    t.fs.release(ino, fh).await.unwrap();
    let copies = t.mock.copies();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].destination, "oci:/srv/out:web");
    assert_eq!(
        copies[0].options,
        ["--format", "oci", "--remove-signatures"]
    );
    assert_eq!(copies[0].source.digest, t.a.digest);
    assert_eq!(copies[0].source.repository, "app/web");
    assert_eq!(copies[0].source.tag.as_deref(), Some("v1"));
    let s = status(&t, "backup").await;
    assert_eq!(s["state"], "succeeded");
    assert_eq!(s["destination"], "oci:/srv/out:web");
    assert_eq!(s["bytes_total"], t.a.manifest.len());
    assert_eq!(s["bytes_done"], s["bytes_total"]);
    assert!(s["error"].is_null());
    assert_eq!(s["source"], format!("{REG}/app/web@{}", t.a.digest));
    assert_eq!(
        t.ls(&format!("{REG}/app/web/v1/copy-to")).await.unwrap(),
        ["backup", "backup.status"]
    );
    // The job file reads back the request.
    let request = t
        .cat(&format!("{REG}/app/web/v1/copy-to/backup"))
        .await
        .unwrap();
    let written = text.trim_end_matches('\n');
    assert_eq!(&request[..], written.as_bytes());
    assert_eq!(t.fs.getattr(ino).await.unwrap().size, written.len() as u64);
    // Finished jobs can be removed; then the names are gone.
    t.fs.unlink(dir, os("backup")).await.unwrap();
    assert!(t
        .ls(&format!("{REG}/app/web/v1/copy-to"))
        .await
        .unwrap()
        .is_empty());
    for gone in ["backup", "backup.status"] {
        let e = t.fs.lookup(dir, os(gone)).await.unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
    }
    assert_eq!(
        t.fs.unlink(dir, os("backup")).await.unwrap_err().errno(),
        libc::ENOENT
    );
}

#[tokio::test]
async fn a_failed_copy_fails_the_close_and_shows_why() {
    let t = setup();
    let dir = copy_dir(&t).await;
    let (ino, fh) = submit(&t, dir, "bad", "fail:/nowhere\n").await;
    let e = t.fs.flush(ino, fh).await.unwrap_err();
    assert_eq!(e.errno(), libc::EIO);
    assert!(e.message().contains("refused"), "{e:?}");
    // A second close of the same writer reports the same outcome.
    assert_eq!(t.fs.flush(ino, fh).await.unwrap_err().errno(), libc::EIO);
    t.fs.release(ino, fh).await.unwrap();
    let s = status(&t, "bad").await;
    assert_eq!(s["state"], "failed");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("fail:/nowhere") && error.contains("refused"),
        "{error}"
    );
    // Removing through the status name works too.
    t.fs.unlink(dir, os("bad.status")).await.unwrap();
    assert!(t
        .ls(&format!("{REG}/app/web/v1/copy-to"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_running_job_is_busy_until_it_ends() {
    let t = setup();
    let dir = copy_dir(&t).await;
    let (ino, fh) = submit(&t, dir, "slow", "hold:/later\n").await;
    let fs = t.fs.clone();
    let closing = tokio::spawn(async move { fs.flush(ino, fh).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&t, "slow").await["state"] != "running" {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::task::yield_now().await;
    }
    assert!(!closing.is_finished());
    assert_eq!(
        t.fs.unlink(dir, os("slow")).await.unwrap_err().errno(),
        libc::EBUSY
    );
    assert_eq!(
        t.fs.open(ino, libc::O_WRONLY, false)
            .await
            .unwrap_err()
            .errno(),
        libc::EBUSY
    );
    assert_eq!(
        t.fs.write(ino, fh, 0, b"x").await.unwrap_err().errno(),
        libc::EBUSY
    );
    // Readers may look at it meanwhile.
    let reader = t.fs.open(ino, libc::O_RDONLY, false).await.unwrap();
    assert_eq!(
        &t.fs.read(ino, reader.fh, 0, 5).await.unwrap()[..],
        b"hold:"
    );
    t.mock.release_copies();
    closing.await.unwrap().unwrap();
    assert_eq!(status(&t, "slow").await["state"], "succeeded");
    t.fs.unlink(dir, os("slow")).await.unwrap();
}

#[tokio::test]
async fn an_empty_request_stays_pending_and_release_starts_an_unflushed_one() {
    let t = setup();
    let dir = copy_dir(&t).await;
    let (ino, fh) = submit(&t, dir, "touched", "").await;
    t.fs.flush(ino, fh).await.unwrap();
    t.fs.release(ino, fh).await.unwrap();
    assert_eq!(status(&t, "touched").await["state"], "pending");
    assert!(t.mock.copies().is_empty());
    // Writing it later through open + truncate (as `>` does) starts it on close.
    let fh =
        t.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC, false)
            .await
            .unwrap()
            .fh;
    t.fs.setattr(ino, Some(0)).await.unwrap();
    t.fs.write(ino, fh, 0, b"dir:/tmp/x\n").await.unwrap();
    // No flush: release alone starts the copy.
    t.fs.release(ino, fh).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&t, "touched").await["state"] != "succeeded" {
        assert!(Instant::now() < deadline, "the job never finished");
        tokio::task::yield_now().await;
    }
    assert_eq!(t.mock.copies()[0].destination, "dir:/tmp/x");
}

#[tokio::test]
async fn a_finished_job_can_be_written_again() {
    let t = setup();
    let dir = copy_dir(&t).await;
    let (ino, fh) = submit(&t, dir, "again", "fail:first\n").await;
    assert!(t.fs.flush(ino, fh).await.is_err());
    t.fs.release(ino, fh).await.unwrap();
    let fh =
        t.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC, false)
            .await
            .unwrap()
            .fh;
    assert_eq!(status(&t, "again").await["state"], "pending");
    t.fs.write(ino, fh, 0, b"oci:/second\n").await.unwrap();
    t.fs.flush(ino, fh).await.unwrap();
    t.fs.release(ino, fh).await.unwrap();
    let s = status(&t, "again").await;
    assert_eq!(
        (s["state"].as_str(), s["destination"].as_str()),
        (Some("succeeded"), Some("oci:/second"))
    );
    assert_eq!(t.mock.copies().len(), 2);
}

#[tokio::test]
async fn job_names_and_limits() {
    let t = setup();
    let dir = copy_dir(&t).await;
    for bad in [".hidden", "x.status"] {
        let e = t.fs.create(dir, os(bad), libc::O_WRONLY).await.unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL, "{bad}");
    }
    let (ino, fh) = submit(&t, dir, "one", "").await;
    let e =
        t.fs.create(dir, os("one"), libc::O_WRONLY)
            .await
            .unwrap_err();
    assert_eq!(e.errno(), libc::EEXIST);
    let e = t.fs.write(ino, fh, 64 * 1024, b"x").await.unwrap_err();
    assert_eq!(e.errno(), libc::EFBIG);
    assert_eq!(t.fs.refusal(dir).errno(), libc::EPERM);
    // The status file is read-only, and a snapshot per open.
    let status_ino = t.fs.lookup(dir, os("one.status")).await.unwrap().ino;
    assert_eq!(
        t.fs.open(status_ino, libc::O_WRONLY, false)
            .await
            .unwrap_err()
            .errno(),
        libc::EROFS
    );
    let st = t.fs.open(status_ino, libc::O_RDONLY, false).await.unwrap();
    assert!(st.direct_io && !st.keep_cache);
    // Jobs belong to their copy-to directory.
    let other = t.ino(&format!("{REG}/app/web/v2/copy-to")).await;
    assert_eq!(
        t.fs.lookup(other, os("one")).await.unwrap_err().errno(),
        libc::ENOENT
    );
    // A new job under a removed name gets a new inode.
    t.fs.release(ino, fh).await.unwrap();
    t.fs.unlink(dir, os("one")).await.unwrap();
    let (again, _) = submit(&t, dir, "one", "").await;
    assert_ne!(again, ino);
}

#[tokio::test]
async fn copying_a_platform_dir_pins_the_child_digest() {
    let t = setup();
    let dir = t
        .ino(&format!("{REG}/tools/multi/1.0/linux-arm64-v8/copy-to"))
        .await;
    let (ino, fh) = submit(&t, dir, "arm", "oci:/out\n").await;
    t.fs.flush(ino, fh).await.unwrap();
    let c = &t.mock.copies()[0];
    assert_eq!(c.source.digest, t.arm.digest);
    assert_eq!(c.source.tag, None);
    let dir = t.ino(&format!("{REG}/tools/multi/1.0/copy-to")).await;
    let (ino, fh) = submit(&t, dir, "all", "oci:/out\n--all\n").await;
    t.fs.flush(ino, fh).await.unwrap();
    assert_eq!(t.mock.copies()[1].source.digest, t.index.0);
}

#[tokio::test]
async fn a_write_that_ends_a_line_checks_the_request_and_fails_when_refused() {
    let t = setup();
    let dir = copy_dir(&t).await;
    let (attr, open) = t.fs.create(dir, os("now"), libc::O_WRONLY).await.unwrap();
    let err =
        t.fs.write(attr.ino, open.fh, 0, b"refuse:/nowhere\n")
            .await
            .unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    let st = status(&t, "now").await;
    assert_eq!(
        st["state"], "pending",
        "a later line may still mend it: {st}"
    );
    assert!(
        st["error"].as_str().unwrap().contains("cannot be written"),
        "{st}"
    );
    // The close runs the copy, which fails for the same reason.
    assert_eq!(
        t.fs.flush(attr.ino, open.fh).await.unwrap_err().errno(),
        libc::EIO
    );
    assert_eq!(status(&t, "now").await["state"], "failed");

    // An accepted line does not copy yet: flags may follow in later writes, as shells
    // write them (one line per write), and cost no new look at the destination; the
    // close runs the copy with all of them.
    let checks = t.mock.destination_checks();
    let (attr, open) = t.fs.create(dir, os("ok"), libc::O_WRONLY).await.unwrap();
    let n =
        t.fs.write(attr.ino, open.fh, 0, b"oci:/srv/out:1\n")
            .await
            .unwrap();
    assert_eq!(n, 15);
    assert_eq!(status(&t, "ok").await["state"], "pending");
    t.fs.write(attr.ino, open.fh, 15, b"--format\n")
        .await
        .unwrap();
    t.fs.write(attr.ino, open.fh, 24, b"oci\n").await.unwrap();
    assert_eq!(t.mock.destination_checks(), checks + 1);
    let copies_before = t.mock.copies().len();
    t.fs.flush(attr.ino, open.fh).await.unwrap();
    assert_eq!(status(&t, "ok").await["state"], "succeeded");
    let copies = t.mock.copies();
    assert_eq!(copies.len(), copies_before + 1);
    let last = copies.last().unwrap();
    assert_eq!(last.destination, "oci:/srv/out:1");
    assert_eq!(last.options, ["--format", "oci"]);

    // A copy that fails after its check passed fails the close.
    let (attr, open) = t.fs.create(dir, os("late"), libc::O_WRONLY).await.unwrap();
    t.fs.write(attr.ino, open.fh, 0, b"fail:/x\n")
        .await
        .unwrap();
    assert_eq!(
        t.fs.flush(attr.ino, open.fh).await.unwrap_err().errno(),
        libc::EIO
    );
    assert_eq!(status(&t, "late").await["state"], "failed");
}
