//! The precompiled-component cache.
//!
//! Compiling a component costs tens of milliseconds for a small Rust plugin
//! and seconds for a Python one; deserializing its precompiled artifact costs
//! well under a millisecond. The cache keeps one artifact per (component
//! sha256, engine configuration) in a directory.
//!
//! File: `<component-sha256>-<engine-hash>.cwasm`, holding a header and the
//! artifact:
//!
//! ```text
//! magic "ORBITCW1" | engine hash u64 LE | component sha256 (32) | artifact sha256 (32) | artifact
//! ```
//!
//! `Component::deserialize` is `unsafe`: it trusts its input to be an artifact
//! this engine produced. So the header is checked first (engine hash,
//! component digest) and the artifact's own sha256 is verified before the
//! bytes are handed to wasmtime; any mismatch, truncation or error means
//! "recompile and rewrite". This detects corruption and stale files, not a
//! deliberate forgery by someone who can write the cache directory; that
//! directory must be as trusted as the binary.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"ORBITCW1";
const HEADER_LEN: usize = 8 + 8 + 32 + 32;

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

    fn path(&self, engine_hash: u64, sha256: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}-{engine_hash:016x}.cwasm", hex::encode(sha256)))
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
        let sha = *sha;
        let eh = engine_hash(engine);
        let path = self.path(eh, &sha);
        let outcome = match std::fs::read(&path) {
            Ok(file) => match verify(&file, eh, &sha) {
                Ok(artifact) => {
                    // SAFETY: the artifact was produced by `precompile_component`
                    // on an engine with the same compatibility hash, and its
                    // sha256 matches what was written (see the module docs for
                    // the trust placed in the cache directory).
                    match unsafe { Component::deserialize(engine, artifact) } {
                        Ok(c) => return Ok((c, CacheOutcome::Hit)),
                        Err(e) => CacheOutcome::Invalid(format!("deserialize failed: {e}")),
                    }
                }
                Err(reason) => CacheOutcome::Invalid(reason),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CacheOutcome::Miss,
            Err(e) => CacheOutcome::Invalid(format!("cannot read {}: {e}", path.display())),
        };
        if let CacheOutcome::Invalid(reason) = &outcome {
            tracing::warn!(path = %path.display(), %reason, "precompiled plugin unusable; recompiling");
        }
        let artifact = engine.precompile_component(bytes)?;
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        if let Err(e) = store(&path, eh, &sha, &artifact) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the precompiled plugin cache");
        }
        Ok((component, outcome))
    }
}

fn verify<'a>(file: &'a [u8], engine_hash: u64, sha: &[u8; 32]) -> Result<&'a [u8], String> {
    if file.len() < HEADER_LEN || &file[..8] != MAGIC {
        return Err("not an Orbit precompiled-plugin file (bad magic or truncated header)".into());
    }
    if file[8..16] != engine_hash.to_le_bytes() {
        return Err("built by a different engine configuration".into());
    }
    if file[16..48] != sha[..] {
        return Err("holds a different component".into());
    }
    let artifact = &file[HEADER_LEN..];
    let actual: [u8; 32] = Sha256::digest(artifact).into();
    if file[48..80] != actual[..] {
        return Err("artifact checksum mismatch (corrupt or truncated)".into());
    }
    Ok(artifact)
}

/// Writes atomically: temp file, fsync, rename.
fn store(path: &Path, engine_hash: u64, sha: &[u8; 32], artifact: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(MAGIC)?;
    f.write_all(&engine_hash.to_le_bytes())?;
    f.write_all(sha)?;
    f.write_all(&Sha256::digest(artifact))?;
    f.write_all(artifact)?;
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
        let digest: [u8; 32] = Sha256::digest(EMPTY_COMPONENT).into();
        let load = || cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1;
        assert_eq!(load(), CacheOutcome::Miss);
        assert_eq!(load(), CacheOutcome::Hit);
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        std::fs::write(&file, &bytes).unwrap();
        match load() {
            CacheOutcome::Invalid(r) => assert!(r.contains("checksum"), "{r}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(load(), CacheOutcome::Hit, "rewritten");
        std::fs::write(&file, b"garbage").unwrap();
        assert!(matches!(load(), CacheOutcome::Invalid(_)));
    }
}
