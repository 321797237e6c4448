//! Child processes of the benchmark programs: free ports, waiting for a
//! listener, killing on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until something accepts connections on `port` (30 s at most).
pub fn wait_listening(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on port {port} after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Starts a single-member etcd (`bin`, e.g. from `scripts/install-etcd.sh`)
/// with its data under `dir`, on free loopback ports; returns it and its
/// client URL once it listens.
pub fn start_etcd(bin: &Path, dir: &Path) -> anyhow::Result<(Killed, String)> {
    let client = free_port()?;
    let peer = free_port()?;
    let child = Command::new(bin)
        .arg("--data-dir")
        .arg(dir.join("etcd"))
        .args(["--name", "bench"])
        .arg(format!("--listen-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{client}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
        .arg(format!(
            "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
        ))
        .arg(format!("--initial-cluster=bench=http://127.0.0.1:{peer}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start {} (bash scripts/install-etcd.sh)",
                bin.display()
            )
        })?;
    let child = Killed(child);
    wait_listening(client)?;
    Ok((child, format!("http://127.0.0.1:{client}")))
}
