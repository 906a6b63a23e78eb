//! Tests of the credentials layer as a whole: search order, key matching, helpers and
//! file edits, each against a temporary home directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::*;
use crate::ErrorKind;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn basic(u: &str, p: &str) -> Auth {
    Auth::Basic(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

/// A temporary home with a runtime dir; nothing from the real environment.
struct Home {
    dir: tempfile::TempDir,
    env: AuthEnv,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let run = dir.path().join("run");
        fs::create_dir_all(&home).unwrap();
        fs::create_dir_all(&run).unwrap();
        let env = AuthEnv {
            home: Some(home),
            xdg_runtime_dir: Some(run),
            path: Some(dir.path().join("bin").into_os_string()),
            uid: 4242,
            ..Default::default()
        };
        Home { dir, env }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    /// Writes `{"auths": {key: {"auth": base64(user:pass)}}}` entries.
    fn auths(&self, rel: &str, entries: &[(&str, &str)]) -> PathBuf {
        let map: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|(k, up)| (k.to_string(), serde_json::json!({ "auth": b64(up) })))
            .collect();
        self.write(rel, &serde_json::json!({ "auths": map }).to_string())
    }

    /// Installs an executable `docker-credential-NAME` script in the env's PATH.
    fn helper(&self, name: &str, script: &str) {
        let p = self.write(&format!("bin/docker-credential-{name}"), script);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn lookup(&self, key: &str) -> Auth {
        lookup(&self.env, None, key).unwrap()
    }
}

#[test]
fn debug_redacts_secrets() {
    let c = Credentials {
        username: "u".into(),
        password: "hunter2".into(),
    };
    assert_eq!(
        format!("{c:?}"),
        "Credentials { username: \"u\", password: <redacted> }"
    );
    let b = format!("{:?}", Auth::Basic(c));
    assert!(b.contains("<redacted>") && !b.contains("hunter2"), "{b}");
    let t = format!(
        "{:?}",
        Auth::IdentityToken {
            username: "u".into(),
            token: "refresh-secret".into()
        }
    );
    assert!(
        t.contains("<redacted>") && !t.contains("refresh-secret"),
        "{t}"
    );
}

#[test]
fn parse_creds_as_skopeo() {
    let c = Credentials::parse_creds("user:pa:ss").unwrap();
    assert_eq!(
        (c.username.as_str(), c.password.as_str()),
        ("user", "pa:ss")
    );
    let c = Credentials::parse_creds("user").unwrap();
    assert_eq!((c.username.as_str(), c.password.as_str()), ("user", ""));
    let c = Credentials::parse_creds("user:").unwrap();
    assert_eq!(c.password, "");
    let e = Credentials::parse_creds("").unwrap_err();
    assert_eq!(e.to_string(), "credentials can't be empty");
    let e = Credentials::parse_creds(":pw").unwrap_err();
    assert_eq!(e.to_string(), "username can't be empty");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn registries_with_credentials_come_from_every_file_searched() {
    let h = Home::new();
    h.auths("run/containers/auth.json", &[("run.example/ns/app", "u:p")]);
    h.auths(
        "home/.docker/config.json",
        &[
            ("https://index.docker.io/v1/", "u:p"),
            ("r.example:5000", "u:p"),
        ],
    );
    h.write(
        "home/.config/containers/auth.json",
        r#"{"auths": {}, "credHelpers": {"h.example": "none"}}"#,
    );
    h.write("broken.json", "{not json");
    assert_eq!(
        registries_with_credentials(&h.env, None),
        ["docker.io", "h.example", "r.example:5000", "run.example"]
    );
    // --authfile takes the runtime file's place; unreadable, it is skipped and the
    // other files still count.
    assert_eq!(
        registries_with_credentials(&h.env, Some(&h.p("broken.json"))),
        ["docker.io", "h.example", "r.example:5000"]
    );
}

#[test]
fn search_order_first_file_with_credentials_wins() {
    let h = Home::new();
    h.auths("run/containers/auth.json", &[("r.example", "ur:pr")]);
    h.auths(
        "home/.config/containers/auth.json",
        &[("r.example", "shadowed:x"), ("a.example", "ua:pa")],
    );
    h.auths(
        "home/.docker/config.json",
        &[("a.example", "shadowed:x"), ("b.example", "ub:pb")],
    );
    h.write(
        "home/.dockercfg",
        &format!(
            r#"{{"c.example": {{"auth": "{}", "email": "e@x"}}}}"#,
            b64("uc:pc")
        ),
    );
    assert_eq!(h.lookup("r.example"), basic("ur", "pr"));
    assert_eq!(h.lookup("a.example"), basic("ua", "pa"));
    assert_eq!(h.lookup("b.example"), basic("ub", "pb"));
    assert_eq!(h.lookup("c.example/ns/repo"), basic("uc", "pc"));
    assert_eq!(h.lookup("z.example"), Auth::Anonymous);

    // --authfile replaces only the runtime file; the rest are still searched.
    let f = h.auths("f.json", &[("f.example", "uf:pf")]);
    assert_eq!(
        lookup(&h.env, Some(&f), "f.example").unwrap(),
        basic("uf", "pf")
    );
    assert_eq!(
        lookup(&h.env, Some(&f), "r.example").unwrap(),
        basic("shadowed", "x")
    );
    assert_eq!(
        lookup(&h.env, Some(&f), "a.example").unwrap(),
        basic("ua", "pa")
    );
    // $REGISTRY_AUTH_FILE is the default --authfile.
    let mut env = h.env.clone();
    env.registry_auth_file = Some(f.clone());
    assert_eq!(lookup(&env, None, "f.example").unwrap(), basic("uf", "pf"));
    assert_eq!(
        lookup(&env, None, "r.example").unwrap(),
        basic("shadowed", "x")
    );
}

#[test]
fn docker_config_and_xdg_config_home_overrides() {
    let h = Home::new();
    h.auths("home/.docker/config.json", &[("b.example", "ub:pb")]);
    h.auths("dc/config.json", &[("d.example", "ud:pd")]);
    h.auths("xch/containers/auth.json", &[("x.example", "ux:px")]);
    let mut env = h.env.clone();
    env.docker_config = Some(h.p("dc"));
    env.xdg_config_home = Some(h.p("xch"));
    assert_eq!(lookup(&env, None, "d.example").unwrap(), basic("ud", "pd"));
    assert_eq!(lookup(&env, None, "b.example").unwrap(), Auth::Anonymous);
    assert_eq!(lookup(&env, None, "x.example").unwrap(), basic("ux", "px"));
}

#[test]
fn longest_prefix_match() {
    let h = Home::new();
    h.auths(
        "run/containers/auth.json",
        &[
            ("q.example", "host:p"),
            ("q.example/ns", "ns:p"),
            ("q.example/ns/repo", "repo:p"),
            ("q.example/other/repo", "other:p"),
        ],
    );
    assert_eq!(h.lookup("q.example/ns/repo"), basic("repo", "p"));
    assert_eq!(h.lookup("q.example/ns/repo2"), basic("ns", "p"));
    assert_eq!(h.lookup("q.example/ns/deeper/repo"), basic("ns", "p"));
    assert_eq!(h.lookup("q.example/nsx"), basic("host", "p"));
    assert_eq!(h.lookup("q.example"), basic("host", "p"));
    // Namespaced keys are an auth.json extension; .dockercfg is looked up by host only.
    let h = Home::new();
    h.write(
        "home/.dockercfg",
        &format!(r#"{{"l.example/ns": {{"auth": "{}"}}}}"#, b64("u:p")),
    );
    assert_eq!(h.lookup("l.example/ns/repo"), basic("u", "p"));
    assert_eq!(h.lookup("l.example"), basic("u", "p"));
}

#[test]
fn docker_io_aliases_and_url_keys() {
    let h = Home::new();
    h.auths(
        "home/.docker/config.json",
        &[
            ("https://index.docker.io/v1/", "hub:p"),
            ("https://u.example/v2/", "url:p"),
            ("http://w.example:5000", "w:p"),
        ],
    );
    for key in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "docker.io/library/busybox",
    ] {
        assert_eq!(h.lookup(key), basic("hub", "p"), "{key}");
    }
    assert_eq!(h.lookup("u.example/ns/r"), basic("url", "p"));
    assert_eq!(h.lookup("w.example:5000"), basic("w", "p"));
    // An exact key in an earlier file wins over the alias.
    h.auths("run/containers/auth.json", &[("docker.io", "exact:p")]);
    assert_eq!(h.lookup("docker.io/library/busybox"), basic("exact", "p"));
}

#[test]
fn identity_tokens_and_empty_markers() {
    let h = Home::new();
    h.write(
        "run/containers/auth.json",
        &format!(
            r#"{{"auths": {{"t.example": {{"auth": "{}", "identitytoken": "refresh"}}, "m.example": {{}}}}}}"#,
            b64("tu:")
        ),
    );
    h.auths("home/.docker/config.json", &[("m.example", "later:p")]);
    assert_eq!(
        h.lookup("t.example"),
        Auth::IdentityToken {
            username: "tu".into(),
            token: "refresh".into()
        }
    );
    // An empty marker entry yields nothing, so the next file is searched.
    assert_eq!(h.lookup("m.example"), basic("later", "p"));
}

#[test]
fn corrupt_files_are_invalid_input_naming_the_file() {
    let h = Home::new();
    let bad = h.write("home/.config/containers/auth.json", "{bad");
    let e = lookup(&h.env, None, "a.example").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
    // Editing a corrupt file fails too, and leaves it as it was.
    let e = store(&bad, "a.example", &Credentials::parse_creds("u:p").unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(fs::read_to_string(&bad).unwrap(), "{bad");
    assert_eq!(
        remove(&bad, "a.example").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    h.write(
        "home/.config/containers/auth.json",
        r#"{"auths": {"a.example": {"auth": 7}}}"#,
    );
    let e = lookup(&h.env, None, "a.example").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("auth.json"), "{e}");
    h.write(
        "home/.config/containers/auth.json",
        r#"{"auths": {"a.example": {"auth": "%%%"}}}"#,
    );
    assert_eq!(
        lookup(&h.env, None, "a.example").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // An empty file is no credentials, not an error.
    h.write("home/.config/containers/auth.json", "");
    assert_eq!(h.lookup("a.example"), Auth::Anonymous);
}

#[test]
fn lookup_rejects_malformed_keys() {
    let h = Home::new();
    for key in [
        "https://a.example",
        "a.example/r:tag",
        "a.example/r@sha256:00",
    ] {
        assert_eq!(
            lookup(&h.env, None, key).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}

const HELPER: &str = r#"#!/bin/sh
[ "$1" = get ] || exit 3
srv=$(cat)
echo "$srv" >> "$(dirname "$0")/../helper.log"
case "$srv" in
  tok.example) echo '{"ServerURL":"tok.example","Username":"<token>","Secret":"rt"}';;
  none.example) echo 'credentials not found in native keychain'; exit 1;;
  bad.example) echo 'boom'; exit 1;;
  *) printf '{"ServerURL":"%s","Username":"hu-%s","Secret":"hp"}' "$srv" "$srv";;
esac
"#;

#[test]
fn cred_helpers_run_with_the_registry_on_stdin() {
    let h = Home::new();
    h.helper("test", HELPER);
    h.write(
        "run/containers/auth.json",
        r#"{"auths": {"u.example": {"auth": "dTpw"}}, "credHelpers": {"u.example": "test", "tok.example": "test", "none.example": "test", "bad.example": "test", "gone.example": "missing"}}"#,
    );
    h.auths("home/.docker/config.json", &[("none.example", "file:p")]);
    // credHelpers beats an auths entry in the same file; namespaced keys ask for the host.
    assert_eq!(h.lookup("u.example/ns/repo"), basic("hu-u.example", "hp"));
    assert_eq!(
        h.lookup("tok.example"),
        Auth::IdentityToken {
            username: String::new(),
            token: "rt".into()
        }
    );
    // "not found" from the helper moves on to the next file.
    assert_eq!(h.lookup("none.example"), basic("file", "p"));
    let e = lookup(&h.env, None, "bad.example").unwrap_err();
    assert!(
        e.to_string().contains("docker-credential-test") && e.to_string().contains("boom"),
        "{e}"
    );
    let e = lookup(&h.env, None, "gone.example").unwrap_err();
    assert!(e.to_string().contains("docker-credential-missing"), "{e}");
    let log = fs::read_to_string(h.p("helper.log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["u.example", "tok.example", "none.example", "bad.example"]
    );
}

#[test]
fn creds_store_is_the_fallback_and_never_fatal() {
    let h = Home::new();
    h.helper("desk", HELPER);
    h.write(
        "home/.docker/config.json",
        &format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{}}, "f.example": {{"auth": "{}"}}}}, "credsStore": "desk"}}"#,
            b64("fu:fp")
        ),
    );
    assert_eq!(h.lookup("f.example"), basic("fu", "fp"));
    // Docker Hub is asked for under docker's server URL.
    assert_eq!(
        h.lookup("docker.io/library/x"),
        basic("hu-https://index.docker.io/v1/", "hp")
    );
    assert_eq!(h.lookup("bad.example"), Auth::Anonymous);
    let mut env = h.env.clone();
    env.path = None;
    assert_eq!(lookup(&env, None, "s.example").unwrap(), Auth::Anonymous);
}

#[test]
fn get_login_uses_login_authfile_rules() {
    let h = Home::new();
    h.auths("run/containers/auth.json", &[("r.example", "ur:pr")]);
    h.auths("dc/config.json", &[("d.example", "ud:pd")]);
    h.write(
        "t.json",
        r#"{"auths": {"t.example": {"auth": "", "identitytoken": "x"}, "e.example": {"auth": "OnA="}}}"#,
    );
    assert_eq!(
        get_login(&h.env, None, "r.example").unwrap().as_deref(),
        Some("ur")
    );
    assert_eq!(get_login(&h.env, None, "x.example").unwrap(), None);
    assert_eq!(
        get_login(&h.env, Some(&h.p("t.json")), "t.example").unwrap(),
        None
    );
    // ":p" has a password but no user: not logged in, as skopeo reports it.
    assert_eq!(
        get_login(&h.env, Some(&h.p("t.json")), "e.example").unwrap(),
        None
    );
    let mut env = h.env.clone();
    env.docker_config = Some(h.p("dc"));
    // For login, $DOCKER_CONFIG/config.json takes the runtime file's place.
    assert_eq!(
        get_login(&env, None, "d.example").unwrap().as_deref(),
        Some("ud")
    );
    assert_eq!(get_login(&env, None, "r.example").unwrap(), None);
    // Image commands still read the runtime file.
    assert_eq!(lookup(&env, None, "r.example").unwrap(), basic("ur", "pr"));
}

#[test]
fn write_path_rules() {
    let h = Home::new();
    let run = h.env.xdg_runtime_dir.clone().unwrap();
    assert_eq!(
        default_write_path(&h.env, None),
        run.join("containers/auth.json")
    );
    let mut env = h.env.clone();
    env.xdg_runtime_dir = None;
    assert_eq!(
        default_write_path(&env, None),
        Path::new("/run/containers/4242/auth.json")
    );
    env.docker_config = Some("/dc".into());
    assert_eq!(default_write_path(&env, None), Path::new("/dc/config.json"));
    env.registry_auth_file = Some("/r.json".into());
    assert_eq!(default_write_path(&env, None), Path::new("/r.json"));
    assert_eq!(
        default_write_path(&env, Some(Path::new("/f.json"))),
        Path::new("/f.json")
    );

    let mut env = h.env.clone();
    env.xdg_runtime_dir = Some(h.p("missing"));
    let e = write_path(&env, None).unwrap_err();
    assert!(
        e.to_string().contains("$XDG_RUNTIME_DIR does not exist"),
        "{e}"
    );
    assert_eq!(
        write_path(&env, Some(Path::new("/f.json"))).unwrap(),
        Path::new("/f.json")
    );
    assert_eq!(
        write_path(&h.env, None).unwrap(),
        run.join("containers/auth.json")
    );
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn store_writes_skopeo_format_with_safe_modes() {
    let h = Home::new();
    let path = h.p("new/sub/auth.json");
    store(
        &path,
        "127.0.0.1:5000",
        &Credentials::parse_creds("user:pass").unwrap(),
    )
    .unwrap();
    // Byte-for-byte what skopeo 1.9.3 writes for the same login.
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\n\t\"auths\": {\n\t\t\"127.0.0.1:5000\": {\n\t\t\t\"auth\": \"dXNlcjpwYXNz\"\n\t\t}\n\t}\n}"
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&h.p("new/sub")), 0o700);
    assert_eq!(mode(&h.p("new")), 0o700);
    // No temporary files are left behind.
    assert_eq!(fs::read_dir(h.p("new/sub")).unwrap().count(), 1);
    // What was stored is found again.
    let env = AuthEnv::default();
    assert_eq!(
        lookup(&env, Some(&path), "127.0.0.1:5000/ns/r").unwrap(),
        basic("user", "pass")
    );
}

#[test]
fn store_and_remove_keep_everything_else() {
    let h = Home::new();
    let path = h.write(
        "cfg/config.json",
        &format!(
            r#"{{"psFormat": "table", "auths": {{"z.example": {{"auth": "{}", "email": "e@x"}}, "https://index.docker.io/v1/": {{}}}}, "credHelpers": {{"h.example": "ecr"}}, "credsStore": "desk"}}"#,
            b64("zu:zp")
        ),
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let creds = Credentials::parse_creds("nu:n:p").unwrap();
    store(&path, "a.example/ns", &creds).unwrap();
    assert_eq!(mode(&path), 0o600);
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["psFormat"], "table");
    assert_eq!(v["credsStore"], "desk");
    assert_eq!(v["credHelpers"]["h.example"], "ecr");
    assert_eq!(v["auths"]["z.example"]["email"], "e@x");
    assert_eq!(v["auths"]["a.example/ns"]["auth"], b64("nu:n:p"));
    let keys: Vec<&String> = v["auths"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["a.example/ns", "https://index.docker.io/v1/", "z.example"]
    );
    let env = AuthEnv::default();
    assert_eq!(
        lookup(&env, Some(&path), "a.example/ns/r").unwrap(),
        Auth::Basic(creds)
    );

    // Re-storing replaces the entry.
    store(
        &path,
        "z.example",
        &Credentials::parse_creds("z2:p2").unwrap(),
    )
    .unwrap();
    assert_eq!(
        lookup(&env, Some(&path), "z.example").unwrap(),
        basic("z2", "p2")
    );

    // Logout removes exactly the key given.
    assert!(remove(&path, "a.example/ns").unwrap());
    assert!(!remove(&path, "a.example/ns").unwrap());
    assert!(!remove(&path, "docker.io").unwrap());
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert!(v["auths"].get("a.example/ns").is_none());
    assert!(v["auths"].get("z.example").is_some());
    assert_eq!(v["psFormat"], "table");

    remove_all(&path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["auths"], serde_json::json!({}));
    assert_eq!(v["credHelpers"]["h.example"], "ecr");
    assert_eq!(v["psFormat"], "table");
}

#[test]
fn edits_of_missing_files_create_nothing() {
    let h = Home::new();
    let path = h.p("none/auth.json");
    assert!(!remove(&path, "a.example").unwrap());
    remove_all(&path).unwrap();
    assert!(!h.p("none").exists());
}

#[test]
fn store_refuses_keys_routed_to_a_helper() {
    let h = Home::new();
    let path = h.write("c.json", r#"{"credHelpers": {"h.example": "ecr"}}"#);
    let e = store(
        &path,
        "h.example",
        &Credentials::parse_creds("u:p").unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("docker-credential-ecr"), "{e}");
}
