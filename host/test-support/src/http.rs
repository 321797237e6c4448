//! Talking HTTP to a server under test, whether it runs as a child process
//! ([`crate::server::Server`]) or in the test process ([`Loopback`]): the
//! same [`Client`] and [`Resp`] for both, so a test reads the same either
//! way.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A client for one server: its API base URL and its metrics base URL
/// (`/metrics` goes to the latter).
pub struct Client {
    /// `http://127.0.0.1:PORT` of the API.
    pub http: String,
    /// `http://127.0.0.1:PORT` of the metrics listener.
    pub metrics: String,
    client: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Client {
    pub fn new(http: String, metrics: String) -> Client {
        Client {
            http,
            metrics,
            client: HyperClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `host:port` of the API.
    pub fn addr(&self) -> &str {
        self.http.trim_start_matches("http://")
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Resp {
        self.try_call(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("request {path}: {e}"))
    }

    /// Like [`Self::call`], but a connection failure (the server was
    /// killed) is an error instead of a panic.
    pub async fn try_call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Resp, String> {
        let base = if path == "/metrics" {
            &self.metrics
        } else {
            &self.http
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .client
            .request(req.body(Full::new(body.into())).unwrap())
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn put(&self, path: &str, body: &str) -> Resp {
        self.call(Method::PUT, path, &[], body.to_string()).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, &[], Bytes::new()).await
    }
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends `METHOD path HTTP/1.1` on a fresh blocking connection to `addr`
/// (any method token, which an HTTP client library may refuse to send);
/// returns the status. Call it from a blocking thread
/// (`tokio::task::spawn_blocking`) when the server runs in the test process.
pub fn raw_request(addr: &str, method: &str, path: &str) -> u16 {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: not an HTTP answer: {answer:?}"))
}

/// Routers served from the test process on loopback ports, on the test's
/// own tokio runtime (no binary, no start-up wait). Stops serving when
/// dropped; [`Loopback::stop`] also waits for every connection to close.
pub struct Loopback {
    client: Client,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Loopback {
    /// Serves `api` and `metrics` on free loopback ports.
    pub async fn serve(api: axum::Router, metrics: axum::Router) -> Loopback {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let mut bases = Vec::new();
        for router in [api, metrics] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a loopback port");
            bases.push(format!("http://{}", listener.local_addr().unwrap()));
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
                    .expect("serve");
            }));
        }
        let metrics = bases.pop().unwrap();
        let http = bases.pop().unwrap();
        Loopback {
            client: Client::new(http, metrics),
            stop,
            tasks,
        }
    }

    /// Closes this side's connections, stops accepting, and waits until
    /// every connection has closed (so nothing of the routers' state is
    /// held by a connection any more).
    pub async fn stop(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        let _ = self.stop.send(true);
        drop(self);
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl std::ops::Deref for Loopback {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
