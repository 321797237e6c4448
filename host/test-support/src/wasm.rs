//! Plugin components built from source for tests: the fixtures under
//! `host/server/tests/fixtures/` (hostile and misbehaving plugins) and the
//! examples under `examples/`. Each is built once per test binary, into one
//! shared target directory, so the wasm32 standard library (built from
//! source) and wit-bindgen are compiled once for all of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Where the test fixtures' sources live, relative to the repository.
pub const FIXTURES: &str = "host/server/tests/fixtures";

/// One target directory for every plugin built by the tests.
pub fn shared_wasm_target() -> PathBuf {
    orbit_plugin_build::repo_root().join("target/wasm-test-plugins")
}

/// The path `make` returns for `key`, made once per test binary (plugins
/// built from source are shared by every test that loads them).
pub fn made_once(key: &str, make: impl FnOnce() -> PathBuf) -> &'static Path {
    static MADE: Mutex<BTreeMap<String, &'static Path>> = Mutex::new(BTreeMap::new());
    let mut made = MADE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = made.get(key) {
        return path;
    }
    let path: &'static Path = Box::leak(make().into_boxed_path());
    made.insert(key.to_string(), path);
    path
}

/// Builds the component of the plugin crate at `dir` (relative to the
/// repository) into the shared wasm target, as `<last part of dir>.wasm`,
/// once per test binary.
pub fn built(dir: &str) -> &'static Path {
    made_once(dir, || {
        let src = orbit_plugin_build::repo_root().join(dir);
        let bytes = orbit_plugin_build::build_component(&src, Some(&shared_wasm_target()))
            .unwrap_or_else(|e| panic!("building {dir}: {e:#}"));
        let name = src.file_name().unwrap().to_string_lossy();
        let out = shared_wasm_target().join(format!("{name}.wasm"));
        std::fs::create_dir_all(shared_wasm_target()).unwrap();
        // Several test binaries may build the same fixture at once: write
        // aside, then rename into place.
        let staged = out.with_extension(format!("wasm.{}", std::process::id()));
        std::fs::write(&staged, bytes).unwrap();
        std::fs::rename(&staged, &out).unwrap();
        out
    })
}

/// The test fixture `name` (a directory of [`FIXTURES`]), built.
pub fn fixture(name: &str) -> &'static Path {
    built(&format!("{FIXTURES}/{name}"))
}

/// Runs `examples/<name>/build.sh` (once per test binary) and returns its
/// `dist/<name>.wasm`.
pub fn built_by_script(name: &str) -> &'static Path {
    made_once(&format!("examples/{name}/build.sh"), || {
        let dir = orbit_plugin_build::repo_root().join("examples").join(name);
        let out = std::process::Command::new("bash")
            .arg(dir.join("build.sh"))
            .output()
            .expect("run build.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join(format!("dist/{name}.wasm"))
    })
}

/// A file of the committed default plugins (`plugins/dist/<name>.wasm`).
pub fn dist(name: &str) -> PathBuf {
    orbit_plugin_build::dist_dir().join(format!("{name}.wasm"))
}
