//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 (ephemeral port) in front of a real
//! plain-HTTP registry. Requests pass through unchanged (the `Host` header too, so the
//! registry's upload `Location`s point back at the proxy) unless a [`Rule`] matches:
//! then its [`Fault`] is applied to that request or to its answer — a body cut after N
//! bytes, a flipped byte, 5xx or 429 answers, a dropped connection, stalled headers or
//! body, a redirect to another host, a wrong `Content-Length`.
//!
//! Answers are read whole from the registry before they are sent on (test blobs are
//! tens of MiB at most). Every request is logged with the fault it met, so a test can
//! check that its fault really happened. Dropping the proxy stops it; stalls end early
//! when it stops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::http::read_request;

/// What a matching request meets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Send the answer's headers (full `Content-Length`), then this many body bytes,
    /// then close.
    CutAfter(usize),
    /// Flip (xor 0xff) the body byte at this offset of the answer.
    FlipByte(usize),
    /// Answer with this status and a small JSON error body; the registry is not asked.
    Status(u16),
    /// Answer 429 with this `Retry-After` value (none when `None`).
    TooMany(Option<String>),
    /// Close the connection without an answer.
    Drop,
    /// Wait this long before passing the request on.
    StallHeaders(Duration),
    /// Send the headers and `after` body bytes, wait `stall`, then send the rest.
    StallBody { after: usize, stall: Duration },
    /// Answer 307 with a `Location` on `host` (HOST:PORT), same path and query.
    Redirect(String),
    /// Announce a `Content-Length` that differs from the body by this many bytes (send
    /// the body, or as much of it as announced), then close.
    WrongLength(i64),
}

/// Which requests a fault applies to, and how often.
#[derive(Clone, Debug)]
pub struct Rule {
    method: Option<String>,
    path_contains: String,
    ranged_only: bool,
    skip: usize,
    times: usize,
    fault: Fault,
    matched: usize,
}

impl Rule {
    /// Requests whose path contains `part` (any method), every time, until narrowed.
    pub fn on(part: &str, fault: Fault) -> Rule {
        Rule {
            method: None,
            path_contains: part.to_string(),
            ranged_only: false,
            skip: 0,
            times: usize::MAX,
            fault,
            matched: 0,
        }
    }

    /// Only requests with this method.
    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(m.to_string());
        self
    }

    /// Only requests that carry a `Range` header.
    pub fn ranged(mut self) -> Rule {
        self.ranged_only = true;
        self
    }

    /// Lets the first `n` matching requests through untouched.
    pub fn skip(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }

    /// Applies the fault to at most `n` requests (after the skipped ones).
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    fn matches(&self, r: &Seen) -> bool {
        r.path.contains(&self.path_contains)
            && self.method.as_deref().is_none_or(|m| m == r.method)
            && (!self.ranged_only || r.range.is_some())
    }
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub range: Option<String>,
    pub authorization: bool,
    /// The fault it met, if any.
    pub fault: Option<Fault>,
}

struct Shared {
    upstream: String,
    stop: AtomicBool,
    rules: Mutex<Vec<Rule>>,
    log: Mutex<Vec<Seen>>,
    client: reqwest::blocking::Client,
}

pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy for the plain-HTTP registry at `upstream` (HOST:PORT).
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .no_proxy()
            .build()
            .expect("proxy client");
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            stop: AtomicBool::new(false),
            rules: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            client,
        });
        let sh = shared.clone();
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let sh = sh.clone();
                thread::spawn(move || serve(conn, &sh));
            }
        });
        FaultProxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// "127.0.0.1:PORT"
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn add(&self, rule: Rule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule: from now on requests pass through.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    /// The faults applied so far, in order.
    pub fn faults(&self) -> Vec<Fault> {
        self.requests()
            .into_iter()
            .filter_map(|s| s.fault)
            .collect()
    }

    /// Requests whose path contains `part`.
    pub fn count(&self, part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.contains(part))
            .count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Sleeps `d`, or less when the proxy stops.
fn pause(sh: &Shared, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !sh.stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
}

/// The body of a `Transfer-Encoding: chunked` request.
fn read_chunked(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t).ok()? == 0 || t.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).ok()?;
    }
}

/// The first rule that applies to `seen` now, counting the match.
fn pick(sh: &Shared, seen: &Seen) -> Option<Fault> {
    let mut rules = sh.rules.lock().unwrap();
    for rule in rules.iter_mut().filter(|r| r.matches(seen)) {
        let n = rule.matched;
        if n >= rule.skip.saturating_add(rule.times) {
            continue;
        }
        rule.matched += 1;
        if n >= rule.skip {
            return Some(rule.fault.clone());
        }
        return None;
    }
    None
}

const HOP: [&str; 5] = [
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "proxy-connection",
];

fn serve(conn: TcpStream, sh: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut out = conn;
    loop {
        let Some(mut raw) = read_request(&mut reader, usize::MAX) else {
            return;
        };
        if raw
            .headers
            .get("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            let Some(b) = read_chunked(&mut reader) else {
                return;
            };
            raw.body = b;
        }
        let mut seen = Seen {
            method: raw.method.clone(),
            path: raw.target.clone(),
            range: raw.headers.get("range").cloned(),
            authorization: raw.headers.contains_key("authorization"),
            fault: None,
        };
        let fault = pick(sh, &seen);
        seen.fault = fault.clone();
        sh.log.lock().unwrap().push(seen);
        let head_only = raw.method == "HEAD";
        let canned = |status: u16, extra: Vec<(String, String)>| {
            let body = format!(r#"{{"errors":[{{"code":"UNKNOWN","message":"fault {status}"}}]}}"#);
            let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
            headers.extend(extra);
            (status, headers, body.into_bytes())
        };
        let answer = match &fault {
            Some(Fault::Drop) => return,
            Some(Fault::Status(s)) => Some(canned(*s, Vec::new())),
            Some(Fault::TooMany(after)) => Some(canned(
                429,
                after
                    .iter()
                    .map(|a| ("Retry-After".to_string(), a.clone()))
                    .collect(),
            )),
            Some(Fault::Redirect(host)) => Some((
                307,
                vec![(
                    "Location".to_string(),
                    format!("http://{host}{}", raw.target),
                )],
                Vec::new(),
            )),
            _ => None,
        };
        let (status, headers, mut body) = match answer {
            Some(a) => a,
            None => {
                if let Some(Fault::StallHeaders(d)) = &fault {
                    pause(sh, *d);
                }
                match forward(sh, &raw) {
                    Ok(a) => a,
                    // The registry could not be asked: say why, as a gateway would.
                    Err(why) => canned(502, vec![("X-Proxy-Error".to_string(), why)]),
                }
            }
        };
        let announced = match &fault {
            Some(Fault::WrongLength(delta)) => (body.len() as i64 + delta).max(0) as usize,
            _ => body.len(),
        };
        if let Some(Fault::FlipByte(at)) = &fault {
            if let Some(b) = body.get_mut(*at) {
                *b ^= 0xff;
            }
        }
        let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {announced}\r\n");
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if head_only {
            continue;
        }
        let sent = match &fault {
            Some(Fault::CutAfter(n)) => {
                let _ = out.write_all(&body[..(*n).min(body.len())]);
                false
            }
            Some(Fault::StallBody { after, stall }) => {
                let cut = (*after).min(body.len());
                let _ = out.write_all(&body[..cut]);
                let _ = out.flush();
                pause(sh, *stall);
                out.write_all(&body[cut..]).is_ok()
            }
            Some(Fault::WrongLength(_)) => {
                let _ = out.write_all(&body[..announced.min(body.len())]);
                false
            }
            _ => out.write_all(&body).is_ok(),
        };
        let _ = out.flush();
        if !sent {
            return;
        }
    }
}

/// An answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// Passes `raw` on to the registry; its answer, or why there is none.
fn forward(sh: &Shared, raw: &super::http::RawRequest) -> Result<Answer, String> {
    let method = reqwest::Method::from_bytes(raw.method.as_bytes()).map_err(|e| e.to_string())?;
    let url = format!("http://{}{}", sh.upstream, raw.target);
    let mut req = sh.client.request(method, url);
    for (k, v) in &raw.headers {
        if !HOP.contains(&k.as_str()) {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    if !raw.body.is_empty() || raw.headers.contains_key("content-length") {
        req = req.body(raw.body.clone());
    }
    let resp = req
        .send()
        .map_err(|e| format!("{e:?}").replace(['\r', '\n'], " "))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(k, _)| !HOP.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = resp.bytes().map_err(|e| format!("{e:?}"))?.to_vec();
    Ok((status, headers, body))
}
