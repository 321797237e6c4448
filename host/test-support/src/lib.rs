//! Test support shared by the workspace's tests and benchmark programs.
//!
//! | module | what |
//! |---|---|
//! | [`standins`] | SeaweedFS (S3) and Azurite as child processes, the GCS test server, store configurations for them |
//! | [`gcs`] | the GCS XML-API test server (also the `orbit-gcs-test-server` binary) |
//! | [`http`] | an HTTP client with a small response type, and [`http::Loopback`]: routers served from the test process |
//! | [`server`] | the real `orbit-server` binary as a child process |
//! | [`wasm`] | plugin components built from source (test fixtures, examples), once per test binary |
//! | [`logs`] | the test process's `tracing` output, captured for assertions |

pub mod dates;
pub mod gcs;
pub mod http;
pub mod logs;
pub mod server;
pub mod standins;
pub mod wasm;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` at the
/// repository root).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// Scratch space for tests: `<target>/tmp`.
pub fn target_tmp() -> PathBuf {
    target_dir().join("tmp")
}
