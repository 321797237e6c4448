//! The real `orbit-server` binary as a child process, for the tests where
//! the process is the point: start-up and refusal to start, signals and
//! `kill -9`, durability across restarts, the command line, deployment.
//! Everything else talks to the server in the test process (see
//! [`crate::http::Loopback`]).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::http::Client;

/// The `orbit-server` binary: `CARGO_BIN_EXE_orbit-server` or
/// `ORBIT_SERVER_BIN` if set, else next to the running test binary's
/// directory (`target/<profile>/orbit-server`, which Cargo builds for the
/// server's integration tests).
pub fn bin() -> PathBuf {
    if let Some(path) = ["CARGO_BIN_EXE_orbit-server", "ORBIT_SERVER_BIN"]
        .iter()
        .find_map(std::env::var_os)
    {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("orbit-server");
    assert!(
        path.exists(),
        "{} not found; run the server's tests with cargo test, or set ORBIT_SERVER_BIN",
        path.display()
    );
    path
}

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
    pub data_dir: PathBuf,
    client: Client,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The command line a test runs the binary with (no inherited ORBIT_* variables).
pub fn command(env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
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

    /// Like [`Self::start`], but returns the stderr if the process exits first.
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
            data_dir: data_dir.to_path_buf(),
            client: Client::new(
                format!("http://{http_addr}"),
                format!("http://{metrics_addr}"),
            ),
            stderr: log,
        })
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to 5 s for `needle` to appear in the log (the log is read
    /// from the child's stderr by another thread, so a line written just now
    /// may not be here yet).
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

    /// SIGTERM, then wait for exit; returns whether it exited successfully.
    pub fn terminate(mut self) -> bool {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        wait_exit(&mut self.child)
    }

    /// SIGKILL now, while other tasks may still be sending requests.
    pub fn kill9_now(&self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
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

/// Writes the memory backend's snapshot at `path` holding `entries`, with
/// the backend's own code (so a test can plant keys no client may write,
/// such as the host's private ones, which start with byte 0xFF).
pub async fn plant_memory_snapshot(path: &Path, entries: &[(&[u8], &[u8])]) {
    use orbit_memory::MemoryStorage;
    use orbit_storage::{MemoryConfig, PutOptions, Storage};
    let store = MemoryStorage::open(&MemoryConfig {
        disk_backup: true,
        backup_path: path.display().to_string(),
        ..MemoryConfig::defaults("/nonexistent").expect("the memory defaults")
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
