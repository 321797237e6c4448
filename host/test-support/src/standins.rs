//! The real stand-ins of the object stores, started as child processes:
//! SeaweedFS for S3 (credentials enforced) and Azurite for Azure Blob
//! Storage; and the in-process GCS XML-API server of [`crate::gcs`]. One
//! launcher each, for the cloud crate's tests, the server's readiness test
//! and the benchmarks.
//!
//! Binaries come from `ORBIT_WEED_BIN` / `ORBIT_AZURITE_BIN`, or else from
//! `.tools/` at the repository root, where `scripts/install-stand-ins.sh`
//! puts them. A missing binary fails with a message naming that script: no
//! silent skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use orbit_storage::{AzureConfig, GcpConfig, S3Config, SecretRef};
use sha2::{Digest, Sha256};

use crate::dates::http_date;
use crate::gcs;

pub const S3_ACCESS_KEY: &str = "orbit-test-key";
pub const S3_SECRET_KEY: &str = "orbit-test-secret-0123456789";
pub const S3_BUCKET: &str = "orbit";
pub const AZURE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, not a secret).
pub const AZURE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const AZURE_CONTAINER: &str = "orbit";
pub const GCS_BUCKET: &str = "orbit";

/// The stand-in binary named by `env`, else `default` under the repository
/// root; an error naming the install script if it is not there.
pub fn tool(env: &str, default: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join(default));
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "stand-in binary {} not found (set {env} or run scripts/install-stand-ins.sh)",
            path.display()
        ))
    }
}

/// A port `p` with `p` and `p + 10000` free (SeaweedFS puts gRPC there).
pub fn free_port_pair() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = 20_000 + (std::process::id() % 400) * 20;
    loop {
        let candidate = base + NEXT.fetch_add(1, Ordering::Relaxed) % 8000;
        let port = (20_000 + candidate % 9_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
}

/// A fresh directory `<target>/tmp/orbit-stand-ins/<name>-<pid>`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = crate::target_tmp()
        .join("orbit-stand-ins")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A child process killed when the process that started it exits
/// (PR_SET_PDEATHSIG, set from a thread that lives as long as the process),
/// or when dropped.
pub struct StandIn {
    pub name: &'static str,
    command: Vec<String>,
    child: Mutex<Option<Child>>,
    log: PathBuf,
}

fn spawn_from_keeper(command: Vec<String>, log: PathBuf) -> std::io::Result<Child> {
    // Children die with the thread that forked them; fork from one thread
    // that never exits.
    type Request = (
        Vec<String>,
        PathBuf,
        std::sync::mpsc::Sender<std::io::Result<Child>>,
    );
    static KEEPER: OnceLock<Mutex<std::sync::mpsc::Sender<Request>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Request>();
        std::thread::spawn(move || {
            for (command, log, reply) in rx {
                let spawn = || -> std::io::Result<Child> {
                    let out = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)?;
                    let err = out.try_clone()?;
                    let mut cmd = Command::new(&command[0]);
                    cmd.args(&command[1..])
                        .stdin(Stdio::null())
                        .stdout(out)
                        .stderr(err);
                    unsafe {
                        cmd.pre_exec(|| {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                    cmd.spawn()
                };
                let _ = reply.send(spawn());
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = std::sync::mpsc::channel();
    keeper
        .lock()
        .unwrap()
        .send((command, log, tx))
        .expect("the stand-in keeper thread is gone");
    rx.recv().expect("the stand-in keeper thread is gone")
}

impl StandIn {
    /// Starts `command` (program first), its output appended to `log`.
    pub fn start(name: &'static str, command: Vec<String>, log: PathBuf) -> Result<Self, String> {
        let child = spawn_from_keeper(command.clone(), log.clone())
            .map_err(|e| format!("start {name} ({}): {e}", command[0]))?;
        Ok(StandIn {
            name,
            command,
            child: Mutex::new(Some(child)),
            log,
        })
    }

    /// SIGKILLs the stand-in (fault injection).
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 15 s: a graceful stop (Azurite writes
    /// its metadata database only on a clean shutdown, so a SIGKILL would
    /// lose the emulator's own data, not ours).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same command line (same ports and data);
    /// call after `kill` or `stop`.
    pub fn restart(&self) {
        self.kill();
        let child = spawn_from_keeper(self.command.clone(), self.log.clone())
            .unwrap_or_else(|e| panic!("restart {}: {e}", self.name));
        *self.child.lock().unwrap() = Some(child);
    }

    /// Whether the process has exited (or was killed).
    pub fn exited(&self) -> bool {
        match self.child.lock().unwrap().as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text[text.floor_char_boundary(start)..].to_string()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits up to 60 s for `what` to accept connections on `port`; an error
/// with its log tail if it does not (or exits first).
pub fn wait_for_port(port: u16, what: &StandIn) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if what.exited() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{} did not listen on {port} within 60 s; log:\n{}",
        what.name,
        what.log_tail()
    ))
}

// ---- SeaweedFS -------------------------------------------------------------

/// SeaweedFS (`weed mini`) with S3 credentials enforced ([`S3_ACCESS_KEY`] /
/// [`S3_SECRET_KEY`]) and the bucket [`S3_BUCKET`].
pub struct Weed {
    pub process: StandIn,
    pub s3_port: u16,
}

impl Weed {
    /// A new SeaweedFS with its own scratch directory and ports; panics if it
    /// does not start.
    pub fn start(name: &str) -> Weed {
        Self::start_in(None, &scratch(name)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// SeaweedFS keeping its data and log in `dir`, from `bin` (default:
    /// `ORBIT_WEED_BIN`, else `.tools/py/bin/weed`); returns once its S3 port
    /// listens.
    pub fn start_in(bin: Option<&Path>, dir: &Path) -> Result<Weed, String> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => tool("ORBIT_WEED_BIN", ".tools/py/bin/weed")?,
        };
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"orbit","credentials":[{{"accessKey":"{S3_ACCESS_KEY}","secretKey":"{S3_SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .map_err(|e| format!("write {}: {e}", config.display()))?;
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
        let mut ports: Vec<u16> = Vec::new();
        while ports.len() < 5 {
            let p = free_port_pair();
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let command = vec![
            bin.display().to_string(),
            "mini".into(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", ports[0]),
            format!("-volume.port={}", ports[1]),
            format!("-filer.port={}", ports[2]),
            format!("-s3.port={}", ports[3]),
            format!("-admin.port={}", ports[4]),
            format!("-s3.config={}", config.display()),
            format!("-bucket={S3_BUCKET}"),
            "-webdav=false".into(),
            "-admin.ui=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
        ];
        let process = StandIn::start("seaweedfs", command, dir.join("weed.log"))?;
        wait_for_port(ports[3], &process)?;
        Ok(Weed {
            process,
            s3_port: ports[3],
        })
    }

    pub fn wait_ready(&self) {
        wait_for_port(self.s3_port, &self.process).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            endpoint: Some(self.endpoint()),
            region: "us-east-1".into(),
            bucket: S3_BUCKET.into(),
            access_key_id: Some(secret_env("ORBIT_TEST_S3_KEY", S3_ACCESS_KEY)),
            secret_access_key: Some(secret_env("ORBIT_TEST_S3_SECRET", S3_SECRET_KEY)),
            prefix: prefix.into(),
            enable_ssl: false,
            connection_timeout: Duration::from_secs(5),
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            retry_count: 3,
        }
    }
}

static NEXT_SECRET_FILE: AtomicU32 = AtomicU32::new(0);

/// A secret passed the way deployments pass it: a file (a mounted Secret).
pub fn secret_env(name: &str, value: &str) -> SecretRef {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| scratch("secrets"));
    let path = dir.join(name);
    // Tests run in parallel and re-create the same secret files while other
    // stores read them: write a temporary file and rename it into place, so
    // a reader sees the old or the new content, never a truncated file.
    let unique = NEXT_SECRET_FILE.fetch_add(1, Ordering::Relaxed);
    let temporary = dir.join(format!(".{name}.{unique}"));
    std::fs::write(&temporary, format!("{value}\n")).unwrap();
    std::fs::rename(&temporary, &path).unwrap();
    SecretRef::File(path.display().to_string())
}

/// The process-wide SeaweedFS.
pub fn weed() -> &'static Weed {
    static WEED: OnceLock<Weed> = OnceLock::new();
    WEED.get_or_init(|| Weed::start("weed-shared"))
}

// ---- Azurite ---------------------------------------------------------------

pub struct Azurite {
    pub process: StandIn,
    pub port: u16,
}

impl Azurite {
    /// An Azurite keeping its data in its own directory (so a restart keeps it).
    pub fn start(name: &str) -> Azurite {
        let bin = tool(
            "ORBIT_AZURITE_BIN",
            ".tools/npm/node_modules/.bin/azurite-blob",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let dir = scratch(name);
        let port = free_port_pair();
        let command = vec![
            bin.display().to_string(),
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            port.to_string(),
            "--location".into(),
            dir.join("data").display().to_string(),
            "--disableTelemetry".into(),
            "--skipApiVersionCheck".into(),
            "--silent".into(),
        ];
        let process = StandIn::start("azurite", command, dir.join("azurite.log"))
            .unwrap_or_else(|e| panic!("{e}"));
        wait_for_port(port, &process).unwrap_or_else(|e| panic!("{e}"));
        let azurite = Azurite { process, port };
        azurite.create_container(AZURE_CONTAINER);
        azurite
    }

    pub fn wait_ready(&self) {
        wait_for_port(self.port, &self.process).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURE_ACCOUNT}", self.port)
    }

    pub fn config(&self, prefix: &str) -> AzureConfig {
        AzureConfig {
            account_name: AZURE_ACCOUNT.into(),
            account_key: Some(secret_env("ORBIT_TEST_AZURE_KEY", AZURE_KEY)),
            container_name: AZURE_CONTAINER.into(),
            endpoint: Some(self.endpoint()),
            prefix: prefix.into(),
            connection_timeout: Duration::from_secs(5),
            retry_count: 3,
        }
    }

    /// `PUT ?restype=container`, signed with SharedKey (object_store does
    /// not create containers).
    pub fn create_container(&self, name: &str) {
        let date = http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        let path = format!("/{AZURE_ACCOUNT}/{name}");
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURE_ACCOUNT}{path}\nrestype:container"
        );
        let key = base64_decode(AZURE_KEY);
        let signature = base64_encode(&hmac_sha256(&key, to_sign.as_bytes()));
        let request = format!(
            "PUT {path}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\nx-ms-version: {version}\r\nAuthorization: SharedKey {AZURE_ACCOUNT}:{signature}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let response = raw_http(self.port, &request);
            if response.starts_with("HTTP/1.1 201") || response.contains("ContainerAlreadyExists") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "create Azure container {name}: {response}\nlog:\n{}",
                self.process.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The process-wide Azurite.
pub fn azurite() -> &'static Azurite {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    AZURITE.get_or_init(|| Azurite::start("azurite-shared"))
}

fn raw_http(port: u16, request: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return "connection refused".into();
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    if stream.write_all(request.as_bytes()).is_err() {
        return "write failed".into();
    }
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

// ---- GCS -------------------------------------------------------------------

/// The process-wide GCS XML-API test server.
pub fn gcs() -> &'static gcs::Server {
    static GCS: OnceLock<gcs::Server> = OnceLock::new();
    GCS.get_or_init(gcs::Server::start)
}

pub fn gcp_config(server: &gcs::Server, prefix: &str) -> GcpConfig {
    let key = format!(
        r#"{{"gcs_base_url": "http://127.0.0.1:{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
        server.port
    );
    GcpConfig {
        project_id: Some("orbit-test".into()),
        bucket_name: GCS_BUCKET.into(),
        credentials_path: Some(secret_env("credentials.json", &key)),
        service_account_key: None,
        prefix: prefix.into(),
        connection_timeout: Duration::from_secs(5),
        retry_count: 3,
    }
}

// ---- small crypto and formatting helpers (tests only) ----------------------

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
