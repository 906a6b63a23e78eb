//! A scripted HTTP/1.1 server on 127.0.0.1 for faults a real registry cannot produce:
//! 5xx then success, dropped connections, endless 401s, oversized or wrong bodies.
//! Each request is answered by a handler that sees the request and how many requests
//! with the same path came before it.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path without the query.
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
}

pub enum Action {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Close the connection without answering.
    Close,
    /// Send headers promising `body.len()` bytes, then only `send` of them, then close.
    Truncate {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        send: usize,
    },
    /// Answer without Content-Length (`Connection: close`): the body ends when the
    /// connection does.
    Unsized {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Like `Truncate`, but then keep the connection open until the client closes it:
    /// a body that stalls part-way.
    Hang {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        send: usize,
    },
}

impl Action {
    pub fn json(status: u16, body: &str) -> Action {
        Action::Respond {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> Action {
        Action::Respond {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }
}

type Handler = dyn Fn(&Request, usize) -> Action + Send + Sync;

pub struct FakeServer {
    port: u16,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Request>>>,
    accept: Option<thread::JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(
        handler: impl Fn(&Request, usize) -> Action + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log: Arc<Mutex<Vec<Request>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, l) = (stop.clone(), log.clone());
        let accept = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (h, l) = (handler.clone(), l.clone());
                thread::spawn(move || serve(conn, &*h, &l));
            }
        });
        FakeServer {
            port,
            stop,
            log,
            accept: Some(accept),
        }
    }

    /// "127.0.0.1:PORT"
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, path_part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path.contains(path_part))
            .count()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone stream"));
    let mut out = conn;
    loop {
        let Some(raw) = crate::harness::http::read_request(&mut reader, usize::MAX) else {
            return;
        };
        let (path, query) = raw.path_and_query();
        let req = Request {
            path: path.to_string(),
            query: query.to_string(),
            method: raw.method,
            headers: raw.headers,
        };
        let seen = {
            let mut l = log.lock().unwrap();
            let n = l.iter().filter(|r| r.path == req.path).count();
            l.push(req.clone());
            n
        };
        let head_only = req.method == "HEAD";
        match handler(&req, seen) {
            Action::Close => return,
            Action::Respond {
                status,
                headers,
                body,
            } => {
                if write_head(&mut out, status, &headers, body.len()).is_err() {
                    return;
                }
                if !head_only && out.write_all(&body).is_err() {
                    return;
                }
            }
            Action::Unsized {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let _ = out.write_all(head.as_bytes());
                if !head_only {
                    let _ = out.write_all(&body);
                }
                let _ = out.flush();
                return;
            }
            Action::Truncate {
                status,
                headers,
                body,
                send,
            } => {
                let _ = write_head(&mut out, status, &headers, body.len());
                let _ = out.write_all(&body[..send.min(body.len())]);
                let _ = out.flush();
                return;
            }
            Action::Hang {
                status,
                headers,
                body,
                send,
            } => {
                let _ = write_head(&mut out, status, &headers, body.len());
                let _ = out.write_all(&body[..send.min(body.len())]);
                let _ = out.flush();
                // Wait for the client to go away (end of stream, error or read timeout).
                let mut sink = [0u8; 512];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
        }
    }
}

fn write_head(
    out: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    len: usize,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}
