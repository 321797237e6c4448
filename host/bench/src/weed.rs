//! SeaweedFS for the object-storage benchmarks (`cloud-bench`,
//! `cloud-idle-bench`): one launcher, one set of credentials.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::process::{Killed, free_port, wait_listening};

pub const ACCESS_KEY: &str = "orbit-bench-key";
pub const SECRET_KEY: &str = "orbit-bench-secret-0123456789";
pub const BUCKET: &str = "orbit";

/// A port `p` with `p + 10000` free too (SeaweedFS puts gRPC there).
fn port_pair() -> anyhow::Result<u16> {
    loop {
        let p = free_port()?;
        if p < 55_000 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return Ok(p);
        }
    }
}

/// Starts SeaweedFS (`weed mini`) in `dir` with S3 credentials enforced
/// ([`ACCESS_KEY`] / [`SECRET_KEY`]) and the bucket [`BUCKET`]; returns the
/// process (killed on drop) and the S3 port once it listens. `bin` defaults
/// to `.tools/py/bin/weed` (`bash scripts/install-stand-ins.sh`).
pub fn start_weed(bin: Option<&Path>, dir: &Path) -> anyhow::Result<(Killed, u16)> {
    let bin = bin.map_or_else(|| PathBuf::from(".tools/py/bin/weed"), Path::to_path_buf);
    let config = dir.join("s3.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"identities":[{{"name":"orbit","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
        ),
    )?;
    std::fs::create_dir_all(dir.join("data"))?;
    let ports: Vec<u16> = (0..5).map(|_| port_pair()).collect::<anyhow::Result<_>>()?;
    let child = Command::new(&bin)
        .arg("mini")
        .arg(format!("-dir={}", dir.join("data").display()))
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
        .with_context(|| {
            format!(
                "cannot start SeaweedFS at {} (bash scripts/install-stand-ins.sh)",
                bin.display()
            )
        })?;
    let child = Killed(child);
    wait_listening(ports[3])?;
    Ok((child, ports[3]))
}
