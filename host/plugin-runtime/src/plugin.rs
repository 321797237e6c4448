//! Loading a plugin: read, hash, compile, check it targets its role's world at
//! a compatible contract version, link, and pre-instantiate. After this, a
//! call only has to instantiate (about a third of a millisecond for the
//! default plugins) and run.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};

use crate::cache::{CacheOutcome, ComponentCache};
use crate::error::PluginError;
use crate::limits::PluginLimits;
use crate::state::CallState;

/// The contract version this host speaks; components built against any
/// `0.2.x` of `orbit:storage` are accepted.
pub const CONTRACT_VERSION: &str = "0.2.0";
const CONTRACT_PACKAGE: &str = "orbit:storage";

/// The three policy roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Selector,
    Translator,
    Health,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Selector, Role::Translator, Role::Health];

    /// `selector`, `translator`, `health`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Selector => "selector",
            Role::Translator => "translator",
            Role::Health => "health",
        }
    }

    /// The WIT world a plugin of this role targets.
    pub fn world(self) -> &'static str {
        match self {
            Role::Selector => "selector",
            Role::Translator => "translator",
            Role::Health => "health-policy",
        }
    }

    /// The interface the plugin must export (without version).
    fn export(self) -> &'static str {
        match self {
            Role::Selector => "orbit:storage/selection",
            Role::Translator => "orbit:storage/translation",
            Role::Health => "orbit:storage/health",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a plugin's bytes come from.
#[derive(Clone, Debug)]
pub enum PluginSource {
    /// Shipped inside the binary.
    Embedded {
        name: &'static str,
        bytes: &'static [u8],
    },
    /// A component file given by the operator.
    File(PathBuf),
}

impl PluginSource {
    fn describe(&self) -> String {
        match self {
            PluginSource::Embedded { name, .. } => format!("embedded:{name}"),
            PluginSource::File(p) => p.display().to_string(),
        }
    }
}

/// How to load one plugin.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    pub source: PluginSource,
    pub limits: PluginLimits,
    /// If set, a component with another sha256 (hex) is refused.
    pub pinned_sha256: Option<String>,
    /// What the plugin may reach beyond the deny-by-default sandbox.
    pub grants: crate::grants::Grants,
    /// If set, a plugin file needs a detached signature by this key.
    pub public_key: Option<crate::signature::PublicKey>,
}

/// What is known about a loaded plugin (shown in `/health/ready` and logs).
#[derive(Clone, Debug)]
pub struct PluginInfo {
    pub role: Role,
    /// `embedded:<name>` or the file path.
    pub source: String,
    /// sha256 of the component bytes, hex.
    pub sha256: String,
    pub size_bytes: usize,
    /// Whether the precompiled cache was used.
    pub cache: CacheOutcome,
    /// Time to read, compile (or deserialize) and check the component.
    pub load_time: std::time::Duration,
    pub limits: PluginLimits,
}

/// Reads and compiles (or takes from `cache`) a component, checks its pin and
/// its exports against `role`.
pub(crate) fn compile(
    engine: &wasmtime::Engine,
    role: Role,
    spec: &PluginSpec,
    cache: Option<&ComponentCache>,
) -> Result<(Component, PluginInfo), PluginError> {
    let started = std::time::Instant::now();
    let source = &spec.source;
    let source_name = source.describe();
    let plugin = role.name().to_string();
    let bytes: std::borrow::Cow<'_, [u8]> = match source {
        PluginSource::Embedded { bytes, .. } => (*bytes).into(),
        PluginSource::File(path) => std::fs::read(path)
            .map_err(|e| PluginError::Load {
                plugin: plugin.clone(),
                source_name: source_name.clone(),
                reason: format!("cannot read the file: {e}"),
            })?
            .into(),
    };
    if let (PluginSource::File(path), Some(key)) = (source, spec.public_key) {
        crate::signature::verify(path, &bytes, key).map_err(|reason| PluginError::Signature {
            plugin: plugin.clone(),
            source_name: source_name.clone(),
            reason,
        })?;
    }
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    let sha256 = hex::encode(digest);
    if let Some(pin) = &spec.pinned_sha256
        && !pin.eq_ignore_ascii_case(&sha256)
    {
        return Err(PluginError::Pinned {
            plugin,
            source_name,
            expected: pin.clone(),
            actual: sha256,
        });
    }
    if is_core_module(&bytes) {
        return Err(PluginError::Load {
            plugin,
            source_name,
            reason: "this is a core WebAssembly module, not a component; turn it into a component \
                     (`wasm-tools component new`, or build it with `cargo run --bin orbit-plugin-build -- --crate DIR`)"
                .into(),
        });
    }
    let invalid = |e: wasmtime::Error| PluginError::Load {
        plugin: plugin.clone(),
        source_name: source_name.clone(),
        reason: format!("not a valid WebAssembly component: {}", root_cause(&e)),
    };
    let (component, cache_outcome) = match cache {
        Some(cache) => cache.load(engine, &bytes, &digest).map_err(invalid)?,
        None => (
            Component::new(engine, &bytes).map_err(invalid)?,
            CacheOutcome::Disabled,
        ),
    };
    let info = PluginInfo {
        role,
        source: source_name.clone(),
        sha256,
        size_bytes: bytes.len(),
        cache: cache_outcome,
        load_time: started.elapsed(),
        limits: spec.limits,
    };
    check_exports(engine, role, &component).map_err(|reason| PluginError::WrongWorld {
        plugin,
        source_name,
        role: role.name(),
        reason,
    })?;
    Ok((component, info))
}

/// Links `component` and pre-instantiates it.
pub(crate) fn link(
    linker: &Linker<CallState>,
    component: &Component,
    info: &PluginInfo,
) -> Result<wasmtime::component::InstancePre<CallState>, PluginError> {
    linker
        .instantiate_pre(component)
        .map_err(|e| PluginError::Link {
            plugin: info.role.name().to_string(),
            source_name: info.source.clone(),
            reason: format!(
                "{}; a {} plugin may import only orbit:storage@{CONTRACT_VERSION} interfaces ({}) and WASI 0.2",
                root_cause(&e),
                info.role,
                match info.role {
                    Role::Health => "types, log, store, and wasi:keyvalue@0.2.0-draft2",
                    Role::Translator => "types, config, log",
                    Role::Selector => "types, log",
                }
            ),
        })
}

fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// The exported interface must be `<package>/<iface>@0.2.x`.
fn check_exports(
    engine: &wasmtime::Engine,
    role: Role,
    component: &Component,
) -> Result<(), String> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let wanted = role.export();
    for name in &exports {
        let (iface, version) = name.split_once('@').unwrap_or((name.as_str(), ""));
        if iface == wanted {
            return if compatible(version) {
                Ok(())
            } else {
                Err(format!(
                    "it exports {name}, but this host speaks {CONTRACT_PACKAGE}@{CONTRACT_VERSION} \
                     (components built against 0.2.x are accepted); rebuild it against this host's wit/"
                ))
            };
        }
    }
    let other_role = Role::ALL
        .into_iter()
        .find(|r| exports.iter().any(|e| e.starts_with(r.export())));
    let hint = match other_role {
        Some(r) => format!(" It looks like a {r} plugin: load it in the {r} slot."),
        None => String::new(),
    };
    Err(format!(
        "it must export {wanted}@{CONTRACT_VERSION} (world {}), but it exports [{}].{hint}",
        role.world(),
        exports.join(", "),
    ))
}

/// True if export `name` is `role`'s interface, at any version.
pub(crate) fn exports_role(name: &str, role: Role) -> bool {
    name.split_once('@').map_or(name, |(i, _)| i) == role.export()
}

fn compatible(version: &str) -> bool {
    // Semver for 0.x: the minor version is the compatibility boundary.
    let mut ours = CONTRACT_VERSION.split('.');
    let mut theirs = version.split('.');
    ours.next() == theirs.next() && ours.next() == theirs.next() && theirs.next().is_some()
}

/// The innermost message of an error chain (wasmtime wraps generously).
pub(crate) fn root_cause(e: &wasmtime::Error) -> String {
    e.root_cause().to_string()
}

/// A loaded plugin, ready to be called.
pub struct Plugin<P> {
    pub(crate) info: PluginInfo,
    pub(crate) limits: PluginLimits,
    /// `role source`, tagging the plugin's log lines.
    pub(crate) label: std::sync::Arc<str>,
    pub(crate) pre: P,
    pub(crate) shared: Arc<crate::runtime::Shared>,
    pub(crate) grants: Arc<crate::grants::Grants>,
}

impl<P> Plugin<P> {
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_compatibility() {
        assert!(compatible("0.2.0"));
        assert!(compatible("0.2.7"));
        assert!(!compatible("0.1.0"));
        assert!(!compatible("0.3.0"));
        assert!(!compatible("1.1.0"));
        assert!(!compatible(""));
    }
}
