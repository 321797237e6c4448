//! The precompiled-component cache.
//!
//! Compiling a component costs tens of milliseconds for a small Rust plugin
//! and seconds for a Python one; mapping its precompiled artifact costs well
//! under a millisecond. The cache keeps one artifact per (component sha256,
//! engine configuration) in a directory, as two files:
//!
//! ```text
//! <component-sha256>-<engine-hash>.cwasm   the artifact, exactly as precompile_component wrote it
//! <component-sha256>-<engine-hash>.meta    magic "ORBITCW2" | engine hash u64 LE | component sha256 (32)
//!                                          | artifact length u64 LE | artifact xxh3-64 u64 LE
//! ```
//!
//! `Component::deserialize_file` is `unsafe`: it trusts its input to be an
//! artifact this engine produced. So the header is checked first (engine
//! hash, component digest), then the artifact's length and checksum, and only
//! then is the file handed to wasmtime, which maps it instead of copying it.
//! Any mismatch, truncation or error means "recompile and rewrite". The
//! checksum detects corruption and stale files (xxh3: a 40 MB Python artifact
//! is checked in a few milliseconds, where sha256 took tens); it cannot stop a
//! deliberate forgery by someone who can write the cache directory, and
//! neither could a cryptographic hash stored next to the file: that
//! directory must be as trusted as the binary.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"ORBITCW2";
const META_LEN: usize = 8 + 8 + 32 + 8 + 8;

/// What the cache did for one load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// A valid artifact was found and deserialized.
    Hit,
    /// No artifact yet: compiled and stored.
    Miss,
    /// An artifact was found but unusable (reason); compiled and rewritten.
    Invalid(String),
    /// No cache configured: compiled in memory.
    Disabled,
}

impl CacheOutcome {
    /// Metrics label: `hit`, `miss`, `invalid`, `disabled`.
    pub fn label(&self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Invalid(_) => "invalid",
            CacheOutcome::Disabled => "disabled",
        }
    }
}

/// A directory of precompiled components.
#[derive(Clone, Debug)]
pub struct ComponentCache {
    dir: PathBuf,
}

fn engine_hash(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

impl ComponentCache {
    /// Uses `dir`, creating it if needed.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(ComponentCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, engine_hash: u64, sha256: &[u8; 32]) -> (PathBuf, PathBuf) {
        let stem = format!("{}-{engine_hash:016x}", hex::encode(sha256));
        (
            self.dir.join(format!("{stem}.cwasm")),
            self.dir.join(format!("{stem}.meta")),
        )
    }

    /// The component for `bytes` (whose sha256 is `sha`, computed once by the
    /// caller), from the cache if a valid artifact is there, else compiled
    /// (and stored; a failure to store is logged, not fatal).
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha: &[u8; 32],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let eh = engine_hash(engine);
        let (artifact_path, meta_path) = self.paths(eh, sha);
        let outcome = match verify(&artifact_path, &meta_path, eh, sha) {
            Ok(()) => {
                // SAFETY: the artifact was produced by `precompile_component`
                // on an engine with the same compatibility hash, and its
                // length and checksum match what was written (see the module
                // docs for the trust placed in the cache directory).
                match unsafe { Component::deserialize_file(engine, &artifact_path) } {
                    Ok(c) => return Ok((c, CacheOutcome::Hit)),
                    Err(e) => CacheOutcome::Invalid(format!("deserialize failed: {e}")),
                }
            }
            Err(Unusable::Missing) => CacheOutcome::Miss,
            Err(Unusable::Invalid(reason)) => CacheOutcome::Invalid(reason),
        };
        if let CacheOutcome::Invalid(reason) = &outcome {
            tracing::warn!(path = %artifact_path.display(), %reason, "precompiled plugin unusable; recompiling");
        }
        let artifact = engine.precompile_component(bytes)?;
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        if let Err(e) = store(&artifact_path, &meta_path, eh, sha, &artifact) {
            tracing::warn!(path = %artifact_path.display(), error = %e, "cannot write the precompiled plugin cache");
        }
        Ok((component, outcome))
    }
}

enum Unusable {
    Missing,
    Invalid(String),
}

fn verify(
    artifact_path: &Path,
    meta_path: &Path,
    engine_hash: u64,
    sha: &[u8; 32],
) -> Result<(), Unusable> {
    let meta = match std::fs::read(meta_path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) => {
            return Err(Unusable::Invalid(format!(
                "cannot read {}: {e}",
                meta_path.display()
            )));
        }
    };
    let invalid = |m: &str| Err(Unusable::Invalid(m.to_string()));
    if meta.len() != META_LEN || &meta[..8] != MAGIC {
        return invalid("not an Orbit precompiled-plugin header (bad magic or length)");
    }
    let u64_at = |at: usize| u64::from_le_bytes(meta[at..at + 8].try_into().expect("8 bytes"));
    if u64_at(8) != engine_hash {
        return invalid("built by a different engine configuration");
    }
    if meta[16..48] != sha[..] {
        return invalid("holds a different component");
    }
    let artifact = std::fs::read(artifact_path)
        .map_err(|e| Unusable::Invalid(format!("cannot read {}: {e}", artifact_path.display())))?;
    if artifact.len() as u64 != u64_at(48) {
        return invalid("artifact length mismatch (truncated or overwritten)");
    }
    if xxh3_64(&artifact) != u64_at(56) {
        return invalid("artifact checksum mismatch (corrupt)");
    }
    Ok(())
}

/// Writes atomically: the artifact (temp file, fsync, rename), then its
/// header the same way. A crash in between leaves an artifact without a
/// header, or an old header whose checksum no longer matches: both read as
/// unusable and are rewritten.
fn store(
    artifact_path: &Path,
    meta_path: &Path,
    engine_hash: u64,
    sha: &[u8; 32],
    artifact: &[u8],
) -> std::io::Result<()> {
    let mut meta = Vec::with_capacity(META_LEN);
    meta.extend_from_slice(MAGIC);
    meta.extend_from_slice(&engine_hash.to_le_bytes());
    meta.extend_from_slice(sha);
    meta.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
    meta.extend_from_slice(&xxh3_64(artifact).to_le_bytes());
    write_atomically(artifact_path, artifact)?;
    write_atomically(meta_path, &meta)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A minimal component in the text format would need the `wat` feature;
    // the smallest valid binary component is the 8-byte preamble.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    #[test]
    fn miss_then_hit_then_corruption_is_detected() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(dir.path()).unwrap();
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(EMPTY_COMPONENT).into();
        let load = || cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1;
        assert_eq!(load(), CacheOutcome::Miss);
        assert_eq!(load(), CacheOutcome::Hit);
        let file = |ext: &str| {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == ext))
                .unwrap()
        };
        let artifact = file("cwasm");
        let mut bytes = std::fs::read(&artifact).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        std::fs::write(&artifact, &bytes).unwrap();
        match load() {
            CacheOutcome::Invalid(r) => assert!(r.contains("checksum"), "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(load(), CacheOutcome::Hit, "rewritten");
        std::fs::write(&artifact, b"garbage").unwrap();
        match load() {
            CacheOutcome::Invalid(r) => assert!(r.contains("length"), "{r}"),
            other => panic!("{other:?}"),
        }
        std::fs::write(file("meta"), b"garbage").unwrap();
        match load() {
            CacheOutcome::Invalid(r) => assert!(r.contains("header"), "{r}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(file("meta")).unwrap();
        assert_eq!(load(), CacheOutcome::Miss, "an artifact without a header");
        assert_eq!(load(), CacheOutcome::Hit);
    }
}
