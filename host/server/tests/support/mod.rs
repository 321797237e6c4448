//! Test support: run the real `orbit-server` binary as a child process with a
//! given environment, talk to it over HTTP, stop it with SIGTERM or SIGKILL.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub const BIN: &str = env!("CARGO_BIN_EXE_orbit-server");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running server.
pub struct Server {
    pub child: Child,
    pub http: String,
    pub metrics: String,
    pub data_dir: PathBuf,
    client: Client<HttpConnector, Full<Bytes>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// The command line a test runs the binary with (no inherited ORBIT_* variables).
pub fn command(env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("ORBIT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary to completion; returns (success, stdout, stderr).
pub fn run_to_end(env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let out = command(env, args).output().expect("run orbit-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

impl Server {
    /// Starts the server on free ports with `ORBIT_DATA_DIR=data_dir` and
    /// `env`, and waits until it answers. Panics with its stderr if it exits.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Self::try_start(data_dir, env)
            .unwrap_or_else(|stderr| panic!("server did not start:\n{stderr}"))
    }

    /// Like [`start`], but returns the stderr if the process exits first.
    pub fn try_start(data_dir: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
        let http_port = free_port();
        let metrics_port = free_port();
        let http_addr = format!("127.0.0.1:{http_port}");
        let metrics_addr = format!("127.0.0.1:{metrics_port}");
        let data = data_dir.display().to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("ORBIT_HTTP_ADDR", &http_addr),
            ("ORBIT_METRICS_ADDR", &metrics_addr),
            ("ORBIT_DATA_DIR", &data),
        ];
        all.extend_from_slice(env);
        let mut child = command(&all, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Generous: a cold start compiles every plugin (the Python one is
        // tens of megabytes of wasm), and CI runs a test binary's servers in
        // parallel on two cores.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(_status) = child.try_wait().unwrap() {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return Err(err);
            }
            if std::net::TcpStream::connect(&http_addr).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "server did not listen within 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Keep draining stderr so the child never blocks on a full pipe.
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Ok(Server {
            child,
            http: format!("http://{http_addr}"),
            metrics: format!("http://{metrics_addr}"),
            data_dir: data_dir.to_path_buf(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            stderr: log,
        })
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

    /// Like [`call`], but a connection failure (the server was killed) is an
    /// error instead of a panic.
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

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to 5 s for `needle` to appear in the log (the log is read
    /// from the child's stderr by another thread, so a line written just now
    /// may not be here yet).
    #[allow(dead_code)]
    pub async fn log_shows(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.log().contains(needle) {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn put(&self, path: &str, body: &str) -> Resp {
        self.call(Method::PUT, path, &[], body.to_string()).await
    }

    /// SIGTERM, then wait for exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        wait_exit(&mut self.child)
    }

    /// SIGKILL now, while other tasks may still be sending requests.
    pub fn kill9_now(&self) {
        unsafe { libc_kill(self.child.id() as i32, 9) };
    }

    /// SIGKILL (no chance to flush anything).
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.success();
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
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

/// One target directory for every plugin built by the tests, so the wasm32
/// standard library (built from source) and wit-bindgen are compiled once.
#[allow(dead_code)]
pub fn shared_wasm_target() -> std::path::PathBuf {
    orbit_plugin_build::repo_root().join("target/wasm-test-plugins")
}

/// The path `make` returns for `key`, made once per test binary (plugins
/// built from source are shared by every test that loads them).
#[allow(dead_code)]
pub fn made_once(key: &str, make: impl FnOnce() -> std::path::PathBuf) -> &'static std::path::Path {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, PoisonError};
    static MADE: Mutex<BTreeMap<String, &'static std::path::Path>> = Mutex::new(BTreeMap::new());
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = made.get(key) {
        return path;
    }
    let path: &'static std::path::Path = Box::leak(make().into_boxed_path());
    made.insert(key.to_string(), path);
    path
}

/// Builds the component of the plugin crate at `dir` (relative to the
/// repository) into the shared wasm target, as `<last part of dir>.wasm`,
/// once per test binary.
#[allow(dead_code)]
pub fn built(dir: &str) -> &'static std::path::Path {
    made_once(dir, || {
        let src = orbit_plugin_build::repo_root().join(dir);
        let bytes = orbit_plugin_build::build_component(&src, Some(&shared_wasm_target()))
            .unwrap_or_else(|e| panic!("building {dir}: {e:#}"));
        let name = src.file_name().unwrap().to_string_lossy();
        let out = shared_wasm_target().join(format!("{name}.wasm"));
        std::fs::create_dir_all(shared_wasm_target()).unwrap();
        std::fs::write(&out, bytes).unwrap();
        out
    })
}

/// Writes the memory backend's snapshot at `path` holding `entries`, with
/// the backend's own code (so a test can plant keys no client may write,
/// such as the host's private ones, which start with byte 0xFF).
pub async fn plant_memory_snapshot(path: &Path, entries: &[(&[u8], &[u8])]) {
    use orbit_memory::MemoryStorage;
    use orbit_storage::{MemoryConfig, PutOptions, Storage};
    let store = MemoryStorage::open(&MemoryConfig {
        max_entries: 1_000,
        disk_backup: true,
        backup_path: path.display().to_string(),
        backup_interval: std::time::Duration::from_secs(3600),
    })
    .expect("open the memory backend");
    for (k, v) in entries {
        store
            .put(k, Bytes::copy_from_slice(v), PutOptions::default())
            .await
            .expect("plant an entry");
    }
    store.flush().await.expect("write the snapshot");
}
