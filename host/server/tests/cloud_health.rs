//! Readiness of an object-storage backend follows its store: the server on
//! the `s3` backend against a real SeaweedFS (credentials enforced) is
//! ready; when SeaweedFS is killed, `/health/ready` turns false with the
//! reason and the request counters; when it comes back on the same data,
//! readiness returns by itself and the acknowledged write is still there.
//! SeaweedFS comes from `scripts/install-stand-ins.sh`.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Resp, Server};

const ACCESS_KEY: &str = "orbit-health-key";
const SECRET_KEY: &str = "orbit-health-secret-0123456789";
const BUCKET: &str = "orbit";

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

/// A port `p` with `p + 10000` also free (SeaweedFS puts gRPC there).
fn port_pair(taken: &[u16]) -> u16 {
    loop {
        let p = support::free_port();
        if p < 55_000 && !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok()
        {
            return p;
        }
    }
}

struct Weed {
    child: Child,
    args: Vec<String>,
    s3_port: u16,
}

impl Weed {
    fn start(dir: &Path) -> Weed {
        let config = dir.join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"orbit","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let mut ports = Vec::new();
        for _ in 0..5 {
            ports.push(port_pair(&ports));
        }
        let args = vec![
            "mini".to_string(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", ports[0]),
            format!("-volume.port={}", ports[1]),
            format!("-filer.port={}", ports[2]),
            format!("-s3.port={}", ports[3]),
            format!("-admin.port={}", ports[4]),
            format!("-s3.config={}", config.display()),
            format!("-bucket={BUCKET}"),
            "-webdav=false".into(),
            "-admin.ui=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
        ];
        let mut weed = Weed {
            child: spawn(&args),
            args,
            s3_port: ports[3],
        };
        weed.wait_listening();
        weed
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(self.child.try_wait().unwrap().is_none(), "SeaweedFS exited");
            assert!(
                Instant::now() < deadline,
                "SeaweedFS did not listen in 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = spawn(&self.args);
        self.wait_listening();
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new(weed_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start SeaweedFS")
}

/// Polls `/health/ready` until `want(response)` or the deadline.
async fn ready_until(s: &Server, secs: u64, what: &str, want: impl Fn(&Resp) -> bool) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = s.get("/health/ready").await;
        if want(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s; last answer {}: {}\nserver log:\n{}",
            r.status,
            r.text(),
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_object_store_down_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut weed = Weed::start(dir.path());
    let endpoint = format!("http://127.0.0.1:{}", weed.s3_port);
    let env = [
        ("ORBIT_PERSISTENCE_BACKEND", "s3"),
        ("ORBIT_S3_ENDPOINT", endpoint.as_str()),
        ("ORBIT_S3_BUCKET", BUCKET),
        ("ORBIT_S3_PREFIX", "health-test"),
        ("ORBIT_S3_ENABLE_SSL", "false"),
        ("ORBIT_S3_ACCESS_KEY_ID", ACCESS_KEY),
        ("ORBIT_S3_SECRET_ACCESS_KEY", SECRET_KEY),
        ("ORBIT_S3_RETRY_COUNT", "1"),
        ("ORBIT_S3_CONNECTION_TIMEOUT", "2"),
        ("ORBIT_S3_READ_TIMEOUT", "3"),
        ("ORBIT_S3_WRITE_TIMEOUT", "3"),
    ];
    let s = Server::start(dir.path(), &env);
    let up = ready_until(&s, 60, "ready with SeaweedFS up", |r| r.status == 200).await;
    // Object storage does not count keys on readiness checks: unknown, not 0.
    let j = up.json();
    assert!(
        j["backend"]["keys"].is_null() && j["backend"]["bytes"].is_null(),
        "keys and bytes are reported as unknown: {j}"
    );
    let put = s.put("/v1/kv/leases/actor-1", "node-a").await;
    assert_eq!(put.status, 200, "{}", put.text());

    weed.kill();
    let down = ready_until(&s, 60, "not ready with SeaweedFS down", |r| r.status == 503).await;
    let j = down.json();
    assert_eq!(j["ready"], false);
    assert!(
        !j["reasons"].as_array().unwrap().is_empty(),
        "a reason is given: {j}"
    );
    assert_eq!(j["canary"]["ok"], false, "{j}");
    let remote = &j["backend"]["remote"];
    assert!(
        remote["requests"].as_u64().unwrap() > 0 && remote["failures"].as_u64().unwrap() > 0,
        "request counters in the report: {j}"
    );
    assert!(
        !down.text().contains(SECRET_KEY),
        "no secret in /health/ready"
    );
    // Data requests fail with a clear error, not a hang.
    let failed = s.get("/v1/kv/leases/actor-1").await;
    assert_eq!(failed.status, 503, "{}", failed.text());

    weed.restart();
    ready_until(&s, 90, "ready again after SeaweedFS restarted", |r| {
        r.status == 200
    })
    .await;
    let got = s.get("/v1/kv/leases/actor-1").await;
    assert_eq!(
        (got.status, got.text()),
        (200, "node-a".to_string()),
        "the acknowledged write survived the outage"
    );
    assert!(!s.log().contains(SECRET_KEY), "no secret in the server log");
}
