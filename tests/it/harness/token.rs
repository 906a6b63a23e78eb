//! A small Bearer-token server for the registry's `auth: token` mode.
//!
//! Speaks just enough HTTP/1.1 (one request per connection, `Connection: close`):
//! `GET /token?service=S&scope=repository:NAME:pull,push[&scope=…]` with optional Basic
//! credentials, and the OAuth2 `POST /token` password grant. Tokens are RS256 JWTs whose
//! `x5c` header carries the signing certificate, which the registry trusts through its
//! `rootcertbundle`; claims are `iss`, `sub`, `aud` (the service), `exp`/`nbf`/`iat`, `jti`
//! and `access` (type/name/actions), as distribution 2.8 verifies them.
//!
//! Policy: with no credentials configured everyone gets what they ask for; with
//! credentials, a correct Basic login gets everything asked for, an anonymous client
//! gets `pull` only if anonymous pull is allowed (else 401), a wrong login gets 401.
//! Every request is recorded so tests can assert on the scopes clients asked for.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use serde_json::json;

use super::tls::KeyPair;

/// How the token server decides and signs.
#[derive(Clone)]
pub struct TokenConfig {
    /// The registry's `service` name; tokens carry it as `aud`.
    pub service: String,
    /// The registry's `issuer`; tokens carry it as `iss`.
    pub issuer: String,
    /// Basic credentials required for anything beyond anonymous pull; `None` = open.
    pub credentials: Option<(String, String)>,
    /// Whether clients without credentials get `pull` access.
    pub anonymous_pull: bool,
    /// Lifetime of issued tokens (`expires_in`, and `exp` = now + this).
    pub expires_in: u64,
    pub signer: KeyPair,
}

/// One request the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: String,
    pub service: Option<String>,
    /// The `scope` parameters as sent, e.g. `repository:small:pull`.
    pub scopes: Vec<String>,
    /// The `account` parameter, if any.
    pub account: Option<String>,
    /// The user whose Basic credentials were accepted; `None` if anonymous or rejected.
    pub user: Option<String>,
    /// Whether an `Authorization` header (or password grant) was presented at all.
    pub presented_credentials: bool,
    /// HTTP status of the answer (200, 400, 401, 404).
    pub status: u16,
    /// Granted access, one `type:name:action,action` string per resource.
    pub granted: Vec<String>,
}

struct State {
    cfg: TokenConfig,
    requests: Mutex<Vec<TokenRequest>>,
    serial: AtomicU64,
}

/// A running token server on 127.0.0.1; stopped (and its thread joined) on drop.
pub struct TokenServer {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    pub fn start(cfg: TokenConfig) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            cfg,
            requests: Mutex::new(Vec::new()),
            serial: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("token-server".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = conn else { continue };
                        let state = state.clone();
                        std::thread::spawn(move || serve(stream, &state));
                    }
                })
                .expect("spawn token server thread")
        };
        TokenServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/token`, the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn config(&self) -> &TokenConfig {
        &self.state.cfg
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Mints a token directly (as the server would for `user`), e.g. to hand a client
    /// a token it did not fetch itself.
    pub fn mint(&self, user: Option<&str>, access: &[(&str, &str, &[&str])]) -> String {
        let access: Vec<Access> = access
            .iter()
            .map(|(t, n, a)| Access {
                kind: t.to_string(),
                name: n.to_string(),
                actions: a.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        sign_token(&self.state, user.unwrap_or(""), &access, now_secs())
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Debug)]
struct Access {
    kind: String,
    name: String,
    actions: Vec<String>,
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn serve(stream: TcpStream, state: &State) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&stream) else {
        return;
    };
    let (status, body) = answer(&req, state);
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 401 {
        head.push_str("WWW-Authenticate: Basic realm=\"scry-token\"\r\n");
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let raw = super::http::read_request(&mut BufReader::new(stream), 1 << 20)?;
    let (path, query) = raw.path_and_query();
    Some(Request {
        path: path.to_string(),
        query: form_pairs(query.as_bytes()),
        method: raw.method,
        headers: raw.headers,
        body: raw.body,
    })
}

fn form_pairs(s: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn answer(req: &Request, state: &State) -> (u16, Vec<u8>) {
    let cfg = &state.cfg;
    let params = if req.method == "POST" {
        form_pairs(&req.body)
    } else {
        req.query.clone()
    };
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = params
        .iter()
        .filter(|(n, _)| n == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let mut record = TokenRequest {
        method: req.method.clone(),
        service: get("service"),
        scopes: scopes.clone(),
        account: get("account"),
        user: None,
        presented_credentials: false,
        status: 200,
        granted: Vec::new(),
    };

    // Who is asking: Basic header on GET, password grant on POST.
    let presented: Option<(String, String)> = if req.method == "POST" {
        match get("grant_type").as_deref() {
            Some("password") => Some((
                get("username").unwrap_or_default(),
                get("password").unwrap_or_default(),
            )),
            _ => None,
        }
    } else {
        req.headers
            .get("authorization")
            .and_then(|v| {
                v.strip_prefix("Basic ")
                    .or_else(|| v.strip_prefix("basic "))
            })
            .and_then(|b| STANDARD.decode(b.trim()).ok())
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
    };
    record.presented_credentials = presented.is_some();

    let status;
    let mut body = Vec::new();
    if req.path != "/token" || !(req.method == "GET" || req.method == "POST") {
        status = 404;
    } else if (req.method == "POST" && presented.is_none())
        || record.service.as_deref() != Some(cfg.service.as_str())
    {
        // Unsupported grant, or a token for some other service.
        status = 400;
    } else {
        let authenticated = match (&cfg.credentials, &presented) {
            (None, _) => Some(true),
            (Some((u, p)), Some((pu, pp))) => {
                if u == pu && p == pp {
                    record.user = Some(pu.clone());
                    Some(true)
                } else {
                    None
                }
            }
            (Some(_), None) => Some(false),
        };
        match authenticated {
            None => status = 401,
            Some(false) if !cfg.anonymous_pull => status = 401,
            Some(full) => {
                let access = grant(&scopes, full);
                record.granted = access
                    .iter()
                    .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
                    .collect();
                let now = now_secs();
                let token = sign_token(state, record.user.as_deref().unwrap_or(""), &access, now);
                let issued_at = chrono::DateTime::from_timestamp(now as i64, 0)
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                body = serde_json::to_vec(&json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": cfg.expires_in,
                    "issued_at": issued_at,
                }))
                .unwrap();
                status = 200;
            }
        }
    }
    if status != 200 {
        body = serde_json::to_vec(&json!({"details": format!("token request refused ({status})")}))
            .unwrap();
    }
    record.status = status;
    state.requests.lock().unwrap().push(record);
    (status, body)
}

/// Grants the requested actions (`pull` only for anonymous clients).
fn grant(scopes: &[String], full: bool) -> Vec<Access> {
    let mut out = Vec::new();
    for scope in scopes {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        let actions: Vec<String> = actions
            .split(',')
            .filter(|a| full || *a == "pull")
            .map(str::to_string)
            .collect();
        if actions.is_empty() {
            continue;
        }
        out.push(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions,
        });
    }
    out
}

fn sign_token(state: &State, subject: &str, access: &[Access], now: u64) -> String {
    let cfg = &state.cfg;
    let header = json!({
        "typ": "JWT",
        "alg": "RS256",
        "x5c": [STANDARD.encode(cfg.signer.cert_der())],
    });
    let access: Vec<serde_json::Value> = access
        .iter()
        .map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions}))
        .collect();
    let serial = state.serial.fetch_add(1, Ordering::SeqCst);
    let claims = json!({
        "iss": cfg.issuer,
        "sub": subject,
        "aud": cfg.service,
        "exp": now + cfg.expires_in,
        "nbf": now.saturating_sub(1),
        "iat": now,
        "jti": format!("scry-test-{now}-{serial}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let mut signer = Signer::new(MessageDigest::sha256(), &cfg.signer.key).unwrap();
    signer.update(signing_input.as_bytes()).unwrap();
    let sig = signer.sign_to_vec().unwrap();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
