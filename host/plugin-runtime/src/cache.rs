//! The precompiled-component cache.
//!
//! Compiling a component costs tens of milliseconds for a small Rust plugin
//! and seconds for a Python one; loading its precompiled artifact costs a
//! few milliseconds. The cache keeps one artifact per (component sha256,
//! engine configuration) in a directory:
//!
//! ```text
//! key                                      32 random bytes, mode 0600: this cache's MAC key
//! <component-sha256>-<engine-hash>.cwasm   the artifact, exactly as precompile_component wrote it
//! <component-sha256>-<engine-hash>.meta    magic "ORBITCW3" | engine hash u64 LE | component sha256 (32)
//!                                          | artifact length u64 LE | HMAC-SHA256 (32)
//! ```
//!
//! # Trust model
//!
//! An artifact is native code: `Component::deserialize` runs whatever it
//! holds with the host's privileges. The plugin's sha256 pin and signature do
//! not cover it (an entry is *found* by the component's digest, it is not
//! derived from it), so an entry is used only if this host wrote it:
//!
//! - **The directory is the host's own.** [`ComponentCache::new`] creates it
//!   with mode 0700 (missing parents get the default mode), or accepts an
//!   existing one only if it is a real directory (opened with `O_NOFOLLOW`,
//!   so not a symlink), owned by the effective uid and not writable by group
//!   or others. One that group or others may only read or list (0755, as
//!   older versions created it) is tightened to 0700. Anything else is a
//!   [`CacheError`] and the caller runs without a cache. Every later file
//!   operation goes through the directory's open descriptor (`openat`,
//!   `renameat`), so replacing the path afterwards redirects nothing.
//! - **Entries are authenticated.** `key` is created once from the system
//!   CSPRNG (0600, `O_CREAT|O_EXCL|O_NOFOLLOW`, published with `linkat` so a
//!   concurrent start never reads half a key) and is checked for type, owner
//!   and mode whenever it is read. Each header carries HMAC-SHA256 over (the
//!   entry name, the engine hash, the component digest, the artifact). Only
//!   a process that can read the key (this uid, or root) can make an entry
//!   that loads: a file copied in from elsewhere, even a genuine artifact of
//!   other code built by the same engine, fails the MAC.
//! - **Entry files are opened with `O_NOFOLLOW`** and must be regular files
//!   owned by the effective uid that group and others cannot write.
//! - **The bytes checked are the bytes loaded**: the artifact is read once,
//!   its MAC verified, and that buffer is handed to `Component::deserialize`;
//!   nothing is re-read by path between the check and the use.
//! - **Writes never follow a link**: each file is written to a fresh temp
//!   file (`O_CREAT|O_EXCL|O_NOFOLLOW`, 0600) in the directory and renamed
//!   over the entry. Nothing is fsynced: an entry lost or torn by a crash
//!   fails its MAC, which is a miss.
//!
//! On load, no entry is [`CacheOutcome::Miss`]; an entry that fails any check
//! (symlink, owner, mode, header, length, MAC) or that wasmtime rejects is
//! [`CacheOutcome::Invalid`], logged as a warning naming the file. Either
//! way the file is not loaded: the component is compiled in memory and the
//! entry rewritten. The cost of the MAC is one HMAC-SHA256 pass over the
//! artifact per load.
//!
//! Out of scope: the host's own uid and root, who can read the key (and
//! could as well replace the binary or attach a debugger).

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"ORBITCW3";
const MAC_LEN: usize = 32;
const META_LEN: usize = 8 + 8 + 32 + 8 + MAC_LEN;
const KEY_FILE: &str = "key";
const KEY_LEN: usize = 32;
/// Domain separation for the MAC input.
const MAC_CONTEXT: &[u8] = b"orbit precompiled plugin v3\0";

/// What the cache did for one load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// A valid artifact was found and deserialized.
    Hit,
    /// No artifact yet: compiled and stored.
    Miss,
    /// An artifact was found but not trusted or unusable (reason): not
    /// loaded; compiled and rewritten.
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

/// Why a directory cannot hold the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The directory (or a parent) does not exist and cannot be created.
    #[error("cannot create {}: {source}", dir.display())]
    Create { dir: PathBuf, source: io::Error },
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{} is a symbolic link; the cache must be a real directory", path.display())]
    Symlink { path: PathBuf },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} is owned by uid {owner}, not by this process (euid {euid})", path.display())]
    ForeignOwner {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    #[error(
        "{} has mode {mode:04o}: group or others may write it (expected 0700)",
        path.display()
    )]
    OpenToOthers { path: PathBuf, mode: u32 },
    #[error("cache key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
}

/// A directory of precompiled components that only this host can fill (see
/// the module docs).
#[derive(Clone)]
pub struct ComponentCache {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The directory, opened with `O_NOFOLLOW`; every file is reached
    /// relative to it.
    fd: File,
    key: hmac::Key,
    euid: u32,
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

fn engine_hash(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

impl ComponentCache {
    /// Uses `dir`, creating it (mode 0700, missing parents included) if
    /// needed, and its key. Fails, so that the caller runs without a cache,
    /// if `dir` cannot be created, or is a symlink, not a directory, not
    /// owned by the effective uid or writable by group or others, or if its
    /// key file is unusable.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        let euid = euid();
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(CacheError::Symlink { path: dir });
            }
            Ok(_) => {}
            // Missing, or a parent is missing, not a directory or not
            // searchable: creating it says which.
            Err(_) => create_dir(&dir)?,
        }
        let fd = open_dir(&dir)?;
        let meta = fd.metadata().map_err(|source| CacheError::Open {
            path: dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(CacheError::NotADirectory { path: dir });
        }
        if meta.uid() != euid {
            return Err(CacheError::ForeignOwner {
                path: dir,
                owner: meta.uid(),
                euid,
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(CacheError::OpenToOthers { path: dir, mode });
        }
        if mode & 0o077 != 0 {
            fd.set_permissions(std::fs::Permissions::from_mode(0o700))
                .map_err(|source| CacheError::Open {
                    path: dir.clone(),
                    source,
                })?;
            tracing::info!(dir = %dir.display(), old_mode = format!("{mode:04o}"), "precompiled-plugin cache directory tightened to mode 0700");
        }
        let key = load_or_create_key(&fd, &dir, euid)?;
        Ok(ComponentCache {
            inner: Arc::new(Inner {
                dir,
                fd,
                key: hmac::Key::new(hmac::HMAC_SHA256, &key),
                euid,
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn stem(engine_hash: u64, sha256: &[u8; 32]) -> String {
        format!("{}-{engine_hash:016x}", hex::encode(sha256))
    }

    /// The component for `bytes` (whose sha256 is `sha`, computed once by the
    /// caller), from the cache if an entry this host wrote is there, else
    /// compiled (and stored; a failure to store is logged, not fatal).
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha: &[u8; 32],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let eh = engine_hash(engine);
        let stem = Self::stem(eh, sha);
        let outcome = match self.read_verified(&stem, eh, sha) {
            Ok(artifact) => {
                // SAFETY: the artifact carries a valid MAC under this
                // cache's key, so this host wrote it from the output of
                // `precompile_component` on an engine with the same
                // compatibility hash (see the module docs for who can read
                // the key); these are the very bytes that were verified.
                match unsafe { Component::deserialize(engine, &artifact) } {
                    Ok(c) => return Ok((c, CacheOutcome::Hit)),
                    Err(e) => {
                        let reason = format!("deserialize failed: {e}");
                        self.warn_unusable(&format!("{stem}.cwasm"), &reason);
                        CacheOutcome::Invalid(reason)
                    }
                }
            }
            Err(Unusable::Missing) => CacheOutcome::Miss,
            Err(Unusable::Invalid { file, reason }) => {
                self.warn_unusable(&file, &reason);
                CacheOutcome::Invalid(reason)
            }
        };
        let artifact = engine.precompile_component(bytes)?;
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact)? };
        if let Err(e) = self.store(&stem, eh, sha, &artifact) {
            tracing::warn!(dir = %self.inner.dir.display(), entry = %stem, error = %e, "cannot write the precompiled plugin cache");
        }
        Ok((component, outcome))
    }

    fn warn_unusable(&self, file: &str, reason: &str) {
        tracing::warn!(
            path = %self.inner.dir.join(file).display(),
            %reason,
            "precompiled plugin cache entry not used (not loaded); recompiling and rewriting it"
        );
    }

    fn mac(&self, stem: &str, engine_hash: u64, sha: &[u8; 32], artifact: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.inner.key);
        ctx.update(MAC_CONTEXT);
        ctx.update(&(stem.len() as u64).to_le_bytes());
        ctx.update(stem.as_bytes());
        ctx.update(&engine_hash.to_le_bytes());
        ctx.update(sha);
        ctx.update(&(artifact.len() as u64).to_le_bytes());
        ctx.update(artifact);
        ctx.sign()
    }

    /// Opens `name` in the cache without following a symlink and checks that
    /// it is a regular file of ours that group and others cannot write.
    fn open_entry(&self, name: &str) -> Result<(File, Metadata), Unusable> {
        let invalid = |reason: String| Unusable::Invalid {
            file: name.to_string(),
            reason,
        };
        let f = match open_at(&self.inner.fd, name, libc::O_RDONLY, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unusable::Missing),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(invalid("is a symbolic link".into()));
            }
            Err(e) => return Err(invalid(format!("cannot open: {e}"))),
        };
        let meta = f
            .metadata()
            .map_err(|e| invalid(format!("cannot stat: {e}")))?;
        check_file(&meta, self.inner.euid, 0o022).map_err(invalid)?;
        Ok((f, meta))
    }

    /// The artifact of entry `stem`, if its header matches and its MAC
    /// verifies.
    fn read_verified(
        &self,
        stem: &str,
        engine_hash: u64,
        sha: &[u8; 32],
    ) -> Result<Vec<u8>, Unusable> {
        let meta_name = format!("{stem}.meta");
        let artifact_name = format!("{stem}.cwasm");
        let invalid = |file: &str, reason: &str| Unusable::Invalid {
            file: file.to_string(),
            reason: reason.to_string(),
        };
        let (meta_file, _) = self.open_entry(&meta_name)?;
        let mut meta = Vec::with_capacity(META_LEN + 1);
        meta_file
            .take(META_LEN as u64 + 1)
            .read_to_end(&mut meta)
            .map_err(|e| invalid(&meta_name, &format!("cannot read: {e}")))?;
        if meta.len() != META_LEN || &meta[..8] != MAGIC {
            return Err(invalid(
                &meta_name,
                "not an Orbit precompiled-plugin header (bad magic or length)",
            ));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&meta[at..at + 8]);
            u64::from_le_bytes(b)
        };
        if u64_at(8) != engine_hash {
            return Err(invalid(
                &meta_name,
                "built by a different engine configuration",
            ));
        }
        if meta[16..48] != sha[..] {
            return Err(invalid(&meta_name, "holds a different component"));
        }
        let expected_len = u64_at(48);
        let (file, file_meta) = match self.open_entry(&artifact_name) {
            Err(Unusable::Missing) => {
                return Err(invalid(&artifact_name, "header without an artifact"));
            }
            other => other?,
        };
        if file_meta.len() != expected_len {
            return Err(invalid(
                &artifact_name,
                "artifact length mismatch (truncated or overwritten)",
            ));
        }
        let mut artifact = Vec::with_capacity(usize::try_from(expected_len).unwrap_or(0));
        file.take(expected_len.saturating_add(1))
            .read_to_end(&mut artifact)
            .map_err(|e| invalid(&artifact_name, &format!("cannot read: {e}")))?;
        if artifact.len() as u64 != expected_len {
            return Err(invalid(
                &artifact_name,
                "artifact length mismatch (truncated or overwritten)",
            ));
        }
        let tag = self.mac(stem, engine_hash, sha, &artifact);
        if !tags_equal(tag.as_ref(), &meta[META_LEN - MAC_LEN..]) {
            return Err(invalid(
                &artifact_name,
                "MAC mismatch: not written by this host with this cache key (planted, corrupt or stale)",
            ));
        }
        Ok(artifact)
    }

    /// Writes the artifact, then its header, each to a fresh temp file
    /// renamed over the entry. A crash in between leaves an artifact without
    /// a header (a miss), or an old header whose MAC does not match (invalid,
    /// rewritten).
    fn store(
        &self,
        stem: &str,
        engine_hash: u64,
        sha: &[u8; 32],
        artifact: &[u8],
    ) -> io::Result<()> {
        let tag = self.mac(stem, engine_hash, sha, artifact);
        let mut meta = Vec::with_capacity(META_LEN);
        meta.extend_from_slice(MAGIC);
        meta.extend_from_slice(&engine_hash.to_le_bytes());
        meta.extend_from_slice(sha);
        meta.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
        meta.extend_from_slice(tag.as_ref());
        write_replacing(&self.inner.fd, &format!("{stem}.cwasm"), artifact)?;
        write_replacing(&self.inner.fd, &format!("{stem}.meta"), &meta)
    }
}

enum Unusable {
    Missing,
    Invalid { file: String, reason: String },
}

/// Compares two MACs in time independent of where they differ.
fn tags_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// `Ok` if `meta` is a regular file owned by `euid` with none of
/// `forbidden_mode` bits set; else why not.
fn check_file(meta: &Metadata, euid: u32, forbidden_mode: u32) -> Result<(), String> {
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    if meta.uid() != euid {
        return Err(format!(
            "owned by uid {}, not by this process (euid {euid})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden_mode != 0 {
        return Err(format!(
            "mode {mode:04o} gives group or others access it must not have"
        ));
    }
    Ok(())
}

/// Creates `dir` with mode 0700 (and its missing parents with the default
/// mode). Another process creating it at the same time is fine: the caller
/// checks what is there.
fn create_dir(dir: &Path) -> Result<(), CacheError> {
    let create = |source| CacheError::Create {
        dir: dir.to_path_buf(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(create)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(create(e)),
    }
}

fn open_dir(dir: &Path) -> Result<File, CacheError> {
    let path = CString::new(dir.as_os_str().as_bytes()).map_err(|_| CacheError::Open {
        path: dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"),
    })?;
    // SAFETY: `path` is a valid NUL-terminated string; the returned
    // descriptor, if any, is owned by the `File` made from it.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => CacheError::Symlink {
                path: dir.to_path_buf(),
            },
            Some(libc::ENOTDIR) => CacheError::NotADirectory {
                path: dir.to_path_buf(),
            },
            _ => CacheError::Open {
                path: dir.to_path_buf(),
                source: e,
            },
        });
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn c_name(name: &str) -> io::Result<CString> {
    if name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a cache file name has no '/'",
        ));
    }
    CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a file name"))
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC, mode)`.
fn open_at(dir: &File, name: &str, flags: libc::c_int, mode: libc::c_uint) -> io::Result<File> {
    let name = c_name(name)?;
    // SAFETY: `dir` is an open descriptor, `name` a valid NUL-terminated
    // string; the returned descriptor, if any, is owned by the `File`.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn unlink_at(dir: &File, name: &str) -> io::Result<()> {
    let name = c_name(name)?;
    // SAFETY: valid descriptor and NUL-terminated string.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn rename_at(dir: &File, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: valid descriptor and NUL-terminated strings.
    if unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `linkat(dir, from, dir, to)`: fails with `AlreadyExists` instead of
/// replacing `to`.
fn link_at(dir: &File, from: &str, to: &str) -> io::Result<()> {
    let (from, to) = (c_name(from)?, c_name(to)?);
    // SAFETY: valid descriptor and NUL-terminated strings.
    if unsafe {
        libc::linkat(
            dir.as_raw_fd(),
            from.as_ptr(),
            dir.as_raw_fd(),
            to.as_ptr(),
            0,
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A fresh temp file in `dir` (0600, `O_EXCL|O_NOFOLLOW`) holding `bytes`;
/// returns its name.
fn write_temp(dir: &File, label: &str, bytes: &[u8], sync: bool) -> io::Result<String> {
    let mut nonce = [0u8; 8];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| io::Error::other("the system random generator failed"))?;
    let tmp = format!(".{label}.{}.{}.tmp", std::process::id(), hex::encode(nonce));
    let mut f = open_at(
        dir,
        &tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o600,
    )?;
    let written = f
        .write_all(bytes)
        .and_then(|()| if sync { f.sync_all() } else { Ok(()) });
    if let Err(e) = written {
        let _ = unlink_at(dir, &tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// Writes `bytes` to a temp file and renames it over `name` (which, if it is
/// a symlink, is replaced, not followed).
fn write_replacing(dir: &File, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_temp(dir, name, bytes, false)?;
    rename_at(dir, &tmp, name).inspect_err(|_| {
        let _ = unlink_at(dir, &tmp);
    })
}

/// Reads the cache key, creating it if there is none. A key that is a
/// symlink, not a regular file, not ours, or that group or others may read
/// fails (the cache is then off); one of the wrong length (a crash while it
/// was first written) is replaced.
fn load_or_create_key(dir: &File, dir_path: &Path, euid: u32) -> Result<[u8; KEY_LEN], CacheError> {
    let path = dir_path.join(KEY_FILE);
    let fail = |reason: String| CacheError::Key {
        path: path.clone(),
        reason,
    };
    for _ in 0..3 {
        let (f, meta) = match open_at(dir, KEY_FILE, libc::O_RDONLY, 0) {
            Ok(f) => {
                let meta = f
                    .metadata()
                    .map_err(|e| fail(format!("cannot stat: {e}")))?;
                (f, meta)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let key = new_key().map_err(&fail)?;
                let tmp = write_temp(dir, KEY_FILE, &key, true)
                    .map_err(|e| fail(format!("cannot write: {e}")))?;
                let linked = link_at(dir, &tmp, KEY_FILE);
                let _ = unlink_at(dir, &tmp);
                match linked {
                    Ok(()) => return Ok(key),
                    // Another process made one first: read theirs.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(fail(format!("cannot create: {e}"))),
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(fail("is a symbolic link".into()));
            }
            Err(e) => return Err(fail(format!("cannot open: {e}"))),
        };
        check_file(&meta, euid, 0o077).map_err(&fail)?;
        let mut key = Vec::with_capacity(KEY_LEN + 1);
        f.take(KEY_LEN as u64 + 1)
            .read_to_end(&mut key)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if let Ok(key) = <[u8; KEY_LEN]>::try_from(key.as_slice()) {
            return Ok(key);
        }
        tracing::warn!(path = %path.display(), bytes = key.len(), "precompiled-plugin cache key has the wrong length; replacing it (every entry will be recompiled)");
        let key = new_key().map_err(&fail)?;
        let tmp = write_temp(dir, KEY_FILE, &key, true)
            .map_err(|e| fail(format!("cannot write: {e}")))?;
        rename_at(dir, &tmp, KEY_FILE)
            .inspect_err(|_| {
                let _ = unlink_at(dir, &tmp);
            })
            .map_err(|e| fail(format!("cannot replace: {e}")))?;
        return Ok(key);
    }
    Err(fail("created and removed concurrently; giving up".into()))
}

fn new_key() -> Result<[u8; KEY_LEN], String> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| "the system random generator failed".to_string())?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    // A minimal component in the text format would need the `wat` feature;
    // the smallest valid binary component is the 8-byte preamble.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn digest(bytes: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(bytes).into()
    }

    fn file(dir: &Path, ext: &str) -> PathBuf {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .unwrap()
    }

    fn invalid(outcome: CacheOutcome, needle: &str) {
        match outcome {
            CacheOutcome::Invalid(r) => assert!(r.contains(needle), "{r}"),
            other => panic!("expected invalid ({needle}), got {other:?}"),
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn miss_then_hit_then_corruption_is_detected() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(dir.path()).unwrap();
        let digest = digest(EMPTY_COMPONENT);
        let load = || cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1;
        assert_eq!(load(), CacheOutcome::Miss);
        assert_eq!(load(), CacheOutcome::Hit);
        let artifact = file(dir.path(), "cwasm");
        assert_eq!(mode(&artifact), 0o600);
        assert_eq!(mode(&dir.path().join(KEY_FILE)), 0o600);
        let mut bytes = std::fs::read(&artifact).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        std::fs::write(&artifact, &bytes).unwrap();
        invalid(load(), "MAC");
        assert_eq!(load(), CacheOutcome::Hit, "rewritten");
        std::fs::write(&artifact, b"garbage").unwrap();
        invalid(load(), "length");
        std::fs::write(file(dir.path(), "meta"), b"garbage").unwrap();
        invalid(load(), "header");
        std::fs::remove_file(file(dir.path(), "meta")).unwrap();
        assert_eq!(load(), CacheOutcome::Miss, "an artifact without a header");
        assert_eq!(load(), CacheOutcome::Hit);
        // A new process with the same directory reads the same key.
        let again = ComponentCache::new(dir.path()).unwrap();
        assert_eq!(
            again.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            CacheOutcome::Hit
        );
    }

    #[test]
    fn a_mac_under_another_key_is_a_miss() {
        let engine = Engine::default();
        let digest = digest(EMPTY_COMPONENT);
        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(dir.path()).unwrap();
        assert_eq!(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            CacheOutcome::Miss
        );
        // The same directory with a new key: every entry fails its MAC.
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let rekeyed = ComponentCache::new(dir.path()).unwrap();
        invalid(
            rekeyed.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            "MAC mismatch",
        );
        assert_eq!(
            rekeyed.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            CacheOutcome::Hit
        );
        // A key of the wrong length (a crash while writing it) is replaced.
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        let replaced = ComponentCache::new(dir.path()).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(KEY_FILE)).unwrap().len(),
            KEY_LEN
        );
        invalid(
            replaced.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            "MAC mismatch",
        );
    }

    /// Someone who can write the directory copies in a genuine artifact of
    /// other code, built by the same engine, with a header that is right in
    /// every field but the MAC: not loaded, and replaced by our own.
    #[test]
    fn a_planted_artifact_without_a_valid_mac_is_not_loaded_and_is_replaced() {
        let engine = Engine::default();
        let ours = EMPTY_COMPONENT;
        let ours_digest = digest(ours);
        // Other code: a component with a custom section.
        let mut other = EMPTY_COMPONENT.to_vec();
        other.extend_from_slice(&[0, 5, 4, b'e', b'v', b'i', b'l']);
        let other_digest = digest(&other);
        assert_ne!(ours_digest, other_digest);

        let dir = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(dir.path()).unwrap();
        assert_eq!(
            cache.load(&engine, ours, &ours_digest).unwrap().1,
            CacheOutcome::Miss
        );
        let eh = engine_hash(&engine);
        let stem = ComponentCache::stem(eh, &ours_digest);
        let artifact_path = dir.path().join(format!("{stem}.cwasm"));
        let meta_path = dir.path().join(format!("{stem}.meta"));
        let genuine_meta = std::fs::read(&meta_path).unwrap();

        let planted = engine.precompile_component(&other).unwrap();
        let mut meta = genuine_meta[..META_LEN - MAC_LEN].to_vec();
        meta[48..56].copy_from_slice(&(planted.len() as u64).to_le_bytes());
        // A MAC under some other key (the attacker's guess).
        let guess = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
        meta.extend_from_slice(hmac::sign(&guess, &planted).as_ref());
        std::fs::write(&artifact_path, &planted).unwrap();
        std::fs::write(&meta_path, &meta).unwrap();
        invalid(
            cache.load(&engine, ours, &ours_digest).unwrap().1,
            "MAC mismatch",
        );
        assert_ne!(std::fs::read(&meta_path).unwrap(), meta, "rewritten");
        assert_eq!(
            cache.load(&engine, ours, &ours_digest).unwrap().1,
            CacheOutcome::Hit
        );

        // Our own valid entry for the other component, renamed to be ours:
        // the MAC covers the entry name and digest.
        assert_eq!(
            cache.load(&engine, &other, &other_digest).unwrap().1,
            CacheOutcome::Miss
        );
        let other_stem = ComponentCache::stem(eh, &other_digest);
        let mut other_meta = std::fs::read(dir.path().join(format!("{other_stem}.meta"))).unwrap();
        other_meta[16..48].copy_from_slice(&ours_digest);
        std::fs::copy(
            dir.path().join(format!("{other_stem}.cwasm")),
            &artifact_path,
        )
        .unwrap();
        std::fs::write(&meta_path, &other_meta).unwrap();
        invalid(
            cache.load(&engine, ours, &ours_digest).unwrap().1,
            "MAC mismatch",
        );
        assert_eq!(
            cache.load(&engine, ours, &ours_digest).unwrap().1,
            CacheOutcome::Hit
        );
    }

    #[test]
    fn symlinked_entries_key_and_directory_are_refused() {
        let engine = Engine::default();
        let digest = digest(EMPTY_COMPONENT);
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        let cache = ComponentCache::new(&cache_dir).unwrap();
        assert_eq!(mode(&cache_dir), 0o700);
        assert_eq!(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            CacheOutcome::Miss
        );

        // An artifact that is a symlink to a genuine artifact elsewhere.
        let artifact = file(&cache_dir, "cwasm");
        let elsewhere = dir.path().join("elsewhere.cwasm");
        std::fs::rename(&artifact, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &artifact).unwrap();
        invalid(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            "symbolic link",
        );
        // Replaced by a regular file, and the link's target is untouched.
        assert!(
            std::fs::symlink_metadata(&artifact)
                .unwrap()
                .file_type()
                .is_file()
        );
        assert_eq!(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            CacheOutcome::Hit
        );

        // A header that is a symlink.
        let meta = file(&cache_dir, "meta");
        let meta_elsewhere = dir.path().join("elsewhere.meta");
        std::fs::copy(&meta, &meta_elsewhere).unwrap();
        std::fs::remove_file(&meta).unwrap();
        std::os::unix::fs::symlink(&meta_elsewhere, &meta).unwrap();
        invalid(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            "symbolic link",
        );

        // The directory itself as a symlink to a good cache.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&cache_dir, &link).unwrap();
        let e = ComponentCache::new(&link).unwrap_err();
        assert!(matches!(e, CacheError::Symlink { .. }), "{e}");

        // A symlinked key.
        let key = cache_dir.join(KEY_FILE);
        let key_elsewhere = dir.path().join("key");
        std::fs::rename(&key, &key_elsewhere).unwrap();
        std::os::unix::fs::symlink(&key_elsewhere, &key).unwrap();
        let e = ComponentCache::new(&cache_dir).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }

    #[test]
    fn a_directory_others_may_write_or_that_is_not_ours_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let set_mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        for m in [0o777, 0o1777, 0o770, 0o702] {
            let d = dir.path().join(format!("open-{m:o}"));
            std::fs::create_dir(&d).unwrap();
            set_mode(&d, m);
            let e = ComponentCache::new(&d).unwrap_err();
            assert!(matches!(e, CacheError::OpenToOthers { .. }), "{m:o}: {e}");
            assert!(e.to_string().contains(&d.display().to_string()), "{e}");
            assert!(!d.join(KEY_FILE).exists(), "nothing written into {m:o}");
        }
        // Readable by others only (what older versions created): tightened.
        let d = dir.path().join("readable");
        std::fs::create_dir(&d).unwrap();
        set_mode(&d, 0o755);
        ComponentCache::new(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        // A regular file is not a directory.
        let f = dir.path().join("file");
        std::fs::write(&f, b"").unwrap();
        let e = ComponentCache::new(&f).unwrap_err();
        assert!(matches!(e, CacheError::NotADirectory { .. }), "{e}");
        // A parent that cannot be created.
        let e = ComponentCache::new(f.join("cache")).unwrap_err();
        assert!(matches!(e, CacheError::Create { .. }), "{e}");
        // A key that others may read.
        let d = dir.path().join("leaky-key");
        ComponentCache::new(&d).unwrap();
        set_mode(&d.join(KEY_FILE), 0o644);
        let e = ComponentCache::new(&d).unwrap_err();
        assert!(e.to_string().contains("mode 0644"), "{e}");
    }

    /// Another owner can only be set up as root (the tests run as root in
    /// CI); otherwise this checks nothing.
    #[test]
    fn a_directory_or_entry_owned_by_another_user_is_refused() {
        if euid() != 0 {
            eprintln!("not root: cannot chown, skipping the owner checks");
            return;
        }
        let chown = |p: &Path| {
            std::os::unix::fs::lchown(p, Some(65534), Some(65534)).unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("theirs");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown(&d);
        let e = ComponentCache::new(&d).unwrap_err();
        assert!(
            matches!(e, CacheError::ForeignOwner { owner: 65534, .. }),
            "{e}"
        );

        let engine = Engine::default();
        let digest = digest(EMPTY_COMPONENT);
        let d = dir.path().join("ours");
        let cache = ComponentCache::new(&d).unwrap();
        assert_eq!(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            CacheOutcome::Miss
        );
        chown(&file(&d, "cwasm"));
        invalid(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            "owned by uid 65534",
        );
        assert_eq!(
            cache.load(&engine, EMPTY_COMPONENT, &digest).unwrap().1,
            CacheOutcome::Hit
        );
        chown(&d.join(KEY_FILE));
        let e = ComponentCache::new(&d).unwrap_err();
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
    }
}
