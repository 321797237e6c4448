//! A small harness for the client's process tests: the real `orbit-server`
//! binary (built by `cargo build --release --workspace`) on free ports, and
//! SeaweedFS for the `s3` backend (`ORBIT_WEED_BIN`, else
//! `.tools/py/bin/weed` from `scripts/install-stand-ins.sh`).
//! To be replaced by `orbit-test-support` once that crate lands.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const S3_ACCESS_KEY: &str = "orbit-client-key";
pub const S3_SECRET_KEY: &str = "orbit-client-secret-0123456789";
pub const BUCKET: &str = "orbit";

/// `target/<profile>/`, found from this test executable
/// (`target/<profile>/deps/<test>-<hash>`).
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf()
}

/// The server binary: `ORBIT_SERVER_BIN`, else next to this test's profile.
pub fn server_bin() -> PathBuf {
    let bin = std::env::var_os("ORBIT_SERVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_profile_dir().join("orbit-server"));
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --release --workspace --locked) or set ORBIT_SERVER_BIN",
        bin.display()
    );
    bin
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `orbit-server`, killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with `ORBIT_DATA_DIR=data_dir` and `env` on free
    /// ports; waits until it listens.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(server_bin());
        for (k, _) in std::env::vars() {
            if k.starts_with("ORBIT_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "warn")
            .env("ORBIT_HTTP_ADDR", &addr)
            .env("ORBIT_METRICS_ADDR", &metrics)
            .env("ORBIT_DATA_DIR", data_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start orbit-server");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(&addr).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "orbit-server exited ({status}) before listening:\n{}",
                    log.lock().unwrap()
                );
            }
            assert!(
                Instant::now() < deadline,
                "orbit-server did not listen in 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            url: format!("http://{addr}"),
            log,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SeaweedFS (`weed mini`) with S3 credentials enforced and the bucket
/// [`BUCKET`]; killed on drop.
pub struct Weed {
    child: Child,
    pub s3_port: u16,
}

fn weed_bin() -> PathBuf {
    let bin = std::env::var_os("ORBIT_WEED_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/py/bin/weed"));
    assert!(
        bin.exists(),
        "SeaweedFS not found at {} (set ORBIT_WEED_BIN or run scripts/install-stand-ins.sh)",
        bin.display()
    );
    bin
}

/// A port `p` with `p + 10000` free too (SeaweedFS puts gRPC there).
fn port_pair(taken: &[u16]) -> u16 {
    loop {
        let p = free_port();
        if p < 55_000 && !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok()
        {
            return p;
        }
    }
}

impl Weed {
    pub fn start(dir: &Path) -> Weed {
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"orbit","credentials":[{{"accessKey":"{S3_ACCESS_KEY}","secretKey":"{S3_SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        let data = dir.join("weed");
        std::fs::create_dir_all(&data).unwrap();
        let mut ports = Vec::new();
        for _ in 0..5 {
            ports.push(port_pair(&ports));
        }
        let mut child = Command::new(weed_bin())
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={}", ports[0]))
            .arg(format!("-volume.port={}", ports[1]))
            .arg(format!("-filer.port={}", ports[2]))
            .arg(format!("-s3.port={}", ports[3]))
            .arg(format!("-admin.port={}", ports[4]))
            .arg(format!("-s3.config={}", config.display()))
            .arg(format!("-bucket={BUCKET}"))
            .args([
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start SeaweedFS");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", ports[3])).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "SeaweedFS exited");
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not listen in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Weed {
            child,
            s3_port: ports[3],
        }
    }

    /// The server environment of the `s3` backend on this SeaweedFS.
    pub fn server_env(&self, prefix: &str) -> Vec<(String, String)> {
        [
            ("ORBIT_PERSISTENCE_BACKEND", "s3".to_string()),
            (
                "ORBIT_S3_ENDPOINT",
                format!("http://127.0.0.1:{}", self.s3_port),
            ),
            ("ORBIT_S3_BUCKET", BUCKET.to_string()),
            ("ORBIT_S3_PREFIX", prefix.to_string()),
            ("ORBIT_S3_ENABLE_SSL", "false".to_string()),
            ("ORBIT_S3_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
            ("ORBIT_S3_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment of a backend by name: `memory` (no snapshot),
/// `lsm_tree`, `cow_btree`, `rocksdb` under the data dir.
pub fn local_env(backend: &str) -> Vec<(&'static str, &'static str)> {
    match backend {
        "memory" => vec![
            ("ORBIT_PERSISTENCE_BACKEND", "memory"),
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
        ],
        "lsm_tree" => vec![("ORBIT_PERSISTENCE_BACKEND", "lsm_tree")],
        "cow_btree" => vec![("ORBIT_PERSISTENCE_BACKEND", "cow_btree")],
        "rocksdb" => vec![("ORBIT_PERSISTENCE_BACKEND", "rocksdb")],
        other => panic!("not a local backend: {other}"),
    }
}
