//! Builds Orbit's WebAssembly plugins from source and checks the committed
//! artifacts.
//!
//! The host embeds `plugins/dist/*.wasm` with `include_bytes!`, so those files
//! are committed; this crate is how they are made and how CI proves they
//! match the source: a plugin crate is compiled for `wasm32-unknown-unknown`
//! with Debian's Rust toolchain (`/usr/bin/cargo`, std built from source with
//! `-Zbuild-std`), and the core module is encoded as a component with
//! `wit-component`.
//!
//! Reproducibility: the build must give the same bytes on a clean clone at
//! any path. Cargo's `trim-paths` (`-Ztrim-paths`) rewrites every source path
//! the compiler could embed: the standard library's to `/rustc/<commit>`,
//! registry crates' to `<registry>/<crate>-<version>`, and the workspace's
//! and path dependencies' to relative paths, so neither the checkout
//! location, `CARGO_HOME` nor the target directory reaches the output. The
//! environment of the build is cleared down to an allow-list so that stray
//! `RUSTFLAGS`, rustup overrides or a `CARGO_TARGET_DIR` cannot change it,
//! and the lock file is enforced (`--locked`) when there is one.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Debian's Rust toolchain: the only one here that can build std for wasm32.
pub const CARGO: &str = "/usr/bin/cargo";
pub const RUSTC: &str = "/usr/bin/rustc";
/// Where `rust-web-src` puts the standard library's sources.
pub const RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library";
pub const TARGET: &str = "wasm32-unknown-unknown";
/// The packages that provide the toolchain.
pub const APT_INSTALL: &str = "apt-get install -y rustc-web cargo-web rust-web-src lld";

/// The names under `plugins/dist/` and the crate each is built from.
pub fn default_plugins() -> [(&'static str, PathBuf); 3] {
    let plugins = repo_root().join("plugins");
    [
        ("selector", plugins.join("selector")),
        ("translator", plugins.join("translator")),
        ("health", plugins.join("health")),
    ]
}

/// The repository this crate belongs to.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .and_then(Path::parent)
        .unwrap_or(here)
        .to_path_buf()
}

/// Where the committed components live.
pub fn dist_dir() -> PathBuf {
    repo_root().join("plugins").join("dist")
}

/// Builds the plugin crate in `crate_dir` (a workspace member or a
/// standalone project) and returns its component's bytes.
///
/// `target_dir` overrides Cargo's target directory; by default it is
/// `<workspace root>/target`. The output does not depend on it.
pub fn build_component(crate_dir: &Path, target_dir: Option<&Path>) -> Result<Vec<u8>> {
    let toolchain = Toolchain::find()?;
    let crate_dir = crate_dir
        .canonicalize()
        .with_context(|| format!("plugin crate directory {}", crate_dir.display()))?;
    if !crate_dir.join("Cargo.toml").is_file() {
        bail!("{} has no Cargo.toml", crate_dir.display());
    }
    let workspace_root = toolchain.workspace_root(&crate_dir)?;
    let target_dir = target_dir.map_or_else(|| workspace_root.join("target"), Path::to_path_buf);

    let mut cmd = toolchain.cargo(&crate_dir, &target_dir);
    cmd.args(["build", "--release", "--target", TARGET])
        .args(["-Zbuild-std=std,panic_abort", "-Ztrim-paths"])
        .args(["--config", "profile.release.trim-paths=\"all\""])
        .arg("--message-format=json-render-diagnostics")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if workspace_root.join("Cargo.lock").is_file() {
        cmd.arg("--locked");
    }
    let output = cmd
        .output()
        .with_context(|| format!("running {CARGO} build in {}", crate_dir.display()))?;
    if !output.status.success() {
        bail!(
            "{CARGO} build failed in {} ({})",
            crate_dir.display(),
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wasm = find_wasm_artifact(&stdout).with_context(|| {
        format!(
            "finding the .wasm that {CARGO} built in {}",
            crate_dir.display()
        )
    })?;
    let module = fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    encode_component(&module).with_context(|| format!("encoding {} as a component", wasm.display()))
}

/// Turns a core module carrying its `component-type` custom section (as
/// `wit-bindgen` emits it) into a validated component.
pub fn encode_component(module: &[u8]) -> Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .module(module)?
        .validate(true)
        .encode()
}

/// Generates wit-bindgen's C bindings (`wit-bindgen-c`, the library behind
/// `wit-bindgen c`) for `world` of the WIT package in `wit_dir` into
/// `out_dir`: `<world>.h`, `<world>.c` and `<world>_component_type.o`, the
/// object that carries the world's component type into the linked module.
/// Returns the files written.
pub fn c_bindings(wit_dir: &Path, world: &str, out_dir: &Path) -> Result<Vec<PathBuf>> {
    use wit_bindgen_core::wit_parser::Resolve;
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_dir(wit_dir)
        .with_context(|| format!("reading the WIT package in {}", wit_dir.display()))?;
    let world_id = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("world {world} in {}", wit_dir.display()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&resolve, world_id, &mut files)
        .with_context(|| format!("generating C bindings for world {world}"))?;
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut written = Vec::new();
    for (name, contents) in files.iter() {
        let path = out_dir.join(name);
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Encodes the core module in `input` (which must carry its component type,
/// as a module linked with wit-bindgen's bindings does) as a component in
/// `output`, like `wasm-tools component new`. Returns the component's size.
pub fn componentize_file(input: &Path, output: &Path) -> Result<usize> {
    let module = fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let bytes = encode_component(&module)
        .with_context(|| format!("encoding {} as a component", input.display()))?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    Ok(bytes.len())
}

/// One built component.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: &'static str,
    pub path: PathBuf,
    pub size: usize,
    pub sha256: String,
}

/// Builds the three default plugins into `dist` (normally [`dist_dir`]).
pub fn build_default_plugins(dist: &Path) -> Result<Vec<Built>> {
    fs::create_dir_all(dist).with_context(|| format!("creating {}", dist.display()))?;
    let mut built = Vec::new();
    for (name, dir) in default_plugins() {
        let bytes = build_component(&dir, None)?;
        let path = dist.join(format!("{name}.wasm"));
        fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        built.push(Built {
            name,
            path,
            size: bytes.len(),
            sha256: sha256_hex(&bytes),
        });
    }
    Ok(built)
}

/// The outcome of comparing one committed component with a fresh build.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub name: &'static str,
    pub committed: PathBuf,
    /// `None` when the committed file is missing.
    pub committed_sha256: Option<String>,
    pub rebuilt_sha256: String,
    pub rebuilt_size: usize,
}

impl Comparison {
    pub fn matches(&self) -> bool {
        self.committed_sha256.as_deref() == Some(self.rebuilt_sha256.as_str())
    }

    /// One line for humans.
    pub fn describe(&self) -> String {
        match &self.committed_sha256 {
            Some(c) if self.matches() => {
                format!(
                    "{}: ok, {} bytes, sha256 {c}",
                    self.committed.display(),
                    self.rebuilt_size
                )
            }
            Some(c) => format!(
                "{}: MISMATCH: committed sha256 {c}, rebuilt sha256 {} ({} bytes)",
                self.committed.display(),
                self.rebuilt_sha256,
                self.rebuilt_size
            ),
            None => format!(
                "{}: MISSING: rebuilt sha256 {} ({} bytes)",
                self.committed.display(),
                self.rebuilt_sha256,
                self.rebuilt_size
            ),
        }
    }
}

/// Rebuilds the default plugins in a fresh temporary target directory and
/// compares them byte for byte with the files in `dist`.
pub fn check(dist: &Path) -> Result<Vec<Comparison>> {
    let temp = TempDir::new("orbit-plugin-check")?;
    let mut out = Vec::new();
    for (name, dir) in default_plugins() {
        let rebuilt = build_component(&dir, Some(temp.path()))?;
        let committed = dist.join(format!("{name}.wasm"));
        let committed_sha256 = fs::read(&committed).ok().map(|b| sha256_hex(&b));
        out.push(Comparison {
            name,
            committed,
            committed_sha256,
            rebuilt_sha256: sha256_hex(&rebuilt),
            rebuilt_size: rebuilt.len(),
        });
    }
    Ok(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The toolchain, checked to be installed.
struct Toolchain {
    wasm_ld: PathBuf,
}

impl Toolchain {
    fn find() -> Result<Self> {
        let missing = |what: &str| {
            anyhow::anyhow!(
                "{what} is missing; the plugins are built with Debian's Rust toolchain and LLVM's wasm linker. Install them with:\n    {APT_INSTALL}"
            )
        };
        for (path, what) in [(CARGO, "/usr/bin/cargo"), (RUSTC, "/usr/bin/rustc")] {
            if !Path::new(path).is_file() {
                return Err(missing(what));
            }
        }
        if !Path::new(RUST_SRC).is_dir() {
            return Err(missing(&format!(
                "the standard library's source ({RUST_SRC})"
            )));
        }
        let wasm_ld = search_path("wasm-ld").ok_or_else(|| missing("wasm-ld"))?;
        Ok(Toolchain { wasm_ld })
    }

    /// A `/usr/bin/cargo` command with a controlled environment.
    fn cargo(&self, dir: &Path, target_dir: &Path) -> Command {
        let mut cmd = Command::new(CARGO);
        cmd.current_dir(dir).env_clear();
        for (key, value) in std::env::vars_os() {
            if passes_through(&key) {
                cmd.env(key, value);
            }
        }
        let mut path = OsString::from("/usr/bin");
        if let Some(rest) = std::env::var_os("PATH") {
            path.push(":");
            path.push(rest);
        }
        cmd.env("PATH", path)
            .env("RUSTC", RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", &self.wasm_ld)
            .env("CARGO_TARGET_DIR", target_dir)
            .env("CARGO_INCREMENTAL", "0");
        cmd
    }

    /// The root of the workspace `dir` belongs to (itself for a standalone project).
    fn workspace_root(&self, dir: &Path) -> Result<PathBuf> {
        let out = self
            .cargo(dir, &dir.join("target"))
            .args(["locate-project", "--workspace", "--message-format", "plain"])
            .stderr(Stdio::inherit())
            .output()
            .context("running cargo locate-project")?;
        if !out.status.success() {
            bail!(
                "cargo locate-project failed in {} ({})",
                dir.display(),
                out.status
            );
        }
        let manifest = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        manifest
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| anyhow::anyhow!("cargo locate-project printed {}", manifest.display()))
    }
}

/// Variables the build may see: home, temp, terminal, network and registry
/// settings. Nothing that changes what the compiler produces.
fn passes_through(key: &std::ffi::OsStr) -> bool {
    let Some(key) = key.to_str() else {
        return false;
    };
    matches!(
        key,
        "HOME"
            | "USER"
            | "TMPDIR"
            | "TERM"
            | "CARGO_HOME"
            | "CARGO_TERM_COLOR"
            | "CARGO_TERM_PROGRESS_WHEN"
            | "SSL_CERT_FILE"
            | "SSL_CERT_DIR"
    ) || key.eq_ignore_ascii_case("http_proxy")
        || key.eq_ignore_ascii_case("https_proxy")
        || key.eq_ignore_ascii_case("no_proxy")
        || key.eq_ignore_ascii_case("all_proxy")
        || [
            "CARGO_NET_",
            "CARGO_HTTP_",
            "CARGO_REGISTRIES_",
            "CARGO_REGISTRY_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
}

fn search_path(program: &str) -> Option<PathBuf> {
    let mut dirs = vec![PathBuf::from("/usr/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The `.wasm` among the `compiler-artifact` messages of
/// `cargo build --message-format=json`.
fn find_wasm_artifact(json_lines: &str) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    for line in json_lines.lines() {
        if !line.contains("\"reason\":\"compiler-artifact\"") {
            continue;
        }
        let Some(start) = line.find("\"filenames\":[") else {
            continue;
        };
        let mut rest = &line[start + "\"filenames\":[".len()..];
        while let Some((name, after)) = json_string(rest) {
            if name.ends_with(".wasm") && !found.iter().any(|f| f.as_os_str() == name.as_str()) {
                found.push(PathBuf::from(name));
            }
            rest = after.trim_start_matches([',', ' ']);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "the build produced no .wasm; is the crate a `crate-type = [\"cdylib\"]` library?"
        ),
        _ => bail!(
            "the build produced several .wasm files ({found:?}); build one plugin crate at a time"
        ),
    }
}

/// Reads one JSON string at the start of `s`; returns it and the rest.
fn json_string(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'u' => {
                        let hex: String = (0..4)
                            .filter_map(|_| chars.next().map(|(_, h)| h))
                            .collect();
                        out.push(
                            char::from_u32(u32::from_str_radix(&hex, 16).ok()?)
                                .unwrap_or('\u{fffd}'),
                        );
                    }
                    other => out.push(other),
                }
            }
            c => out.push(c),
        }
    }
    None
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interfaces a component imports and exports, as `ns:pkg/iface@ver`.
    fn world_of(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
        let decoded = wit_component::decode(bytes).expect("decodes as a component");
        let wit_component::DecodedWasm::Component(resolve, world) = decoded else {
            panic!("a WIT package, not a component")
        };
        let w = &resolve.worlds[world];
        let names = |items: Vec<&_>| -> Vec<String> {
            items
                .into_iter()
                .map(|k| resolve.name_world_key(k))
                .collect()
        };
        (
            names(w.imports.keys().collect()),
            names(w.exports.keys().collect()),
        )
    }

    #[test]
    fn committed_components_target_their_worlds() {
        let expected = [
            (
                "selector",
                "orbit:storage/selection@0.2.0",
                &["orbit:storage/types@0.2.0"][..],
            ),
            (
                "translator",
                "orbit:storage/translation@0.2.0",
                &["orbit:storage/types@0.2.0", "orbit:storage/config@0.2.0"][..],
            ),
            (
                "health",
                "orbit:storage/health@0.2.0",
                &["orbit:storage/types@0.2.0", "orbit:storage/store@0.2.0"][..],
            ),
        ];
        for (name, export, allowed_imports) in expected {
            let path = dist_dir().join(format!("{name}.wasm"));
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (imports, exports) = world_of(&bytes);
            assert_eq!(exports, [export], "{name} exports");
            for import in &imports {
                assert!(
                    allowed_imports.contains(&import.as_str()),
                    "{name} imports {import}"
                );
            }
            prints_as_wit(&bytes);
        }
    }

    /// Printing the component's WIT proves its type information is complete.
    fn prints_as_wit(bytes: &[u8]) {
        let decoded = wit_component::decode(bytes).unwrap();
        wit_component::WitPrinter::default()
            .print(decoded.resolve(), decoded.package(), &[])
            .unwrap();
    }

    #[test]
    fn json_artifact_lines() {
        let lines = concat!(
            r#"{"reason":"compiler-artifact","filenames":["/t/a.rlib","/t/x\"y\\z.rmeta"]}"#,
            "\n",
            r#"{"reason":"compiler-artifact","filenames":["/t/wasm32-unknown-unknown/release/orbit_selector.wasm"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            find_wasm_artifact(lines).unwrap(),
            PathBuf::from("/t/wasm32-unknown-unknown/release/orbit_selector.wasm")
        );
        assert_eq!(
            json_string(r#""a\"b\u00e9" rest"#),
            Some(("a\"bé".to_string(), " rest"))
        );
        assert!(find_wasm_artifact("").is_err());
    }

    #[test]
    fn c_bindings_of_the_health_world() {
        let out = TempDir::new("orbit-c-bindings").unwrap();
        let mut names: Vec<String> =
            c_bindings(&repo_root().join("wit"), "health-policy", out.path())
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "health_policy.c",
                "health_policy.h",
                "health_policy_component_type.o"
            ]
        );
        let header = fs::read_to_string(out.path().join("health_policy.h")).unwrap();
        assert!(header.contains("void exports_orbit_storage_health_evaluate("));
        assert!(header.contains("bool orbit_storage_store_get("));
        let object = fs::read(out.path().join("health_policy_component_type.o")).unwrap();
        assert!(object.starts_with(b"\0asm"), "a wasm object file");
        assert!(c_bindings(&repo_root().join("wit"), "no-such-world", out.path()).is_err());
    }

    #[test]
    fn default_plugins_exist() {
        for (name, dir) in default_plugins() {
            assert!(
                dir.join("Cargo.toml").is_file(),
                "{name}: {}",
                dir.display()
            );
        }
    }
}
