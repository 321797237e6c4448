//! Secrets of a backend configuration: which references the host allows
//! ([`SecretBindings`]) and reading one ([`resolve_secret`]).
//!
//! The typed configurations themselves are generated from the settings
//! catalogue (`orbit-config-syntax`, `backends.rs`) and re-exported here.
//! Secrets appear only as [`SecretRef`]s until [`resolve_secret`] reads them,
//! and `Debug` prints references, never values.

pub use orbit_config_syntax::{
    AzureConfig, BackendConfig, CowBtreeConfig, Durability, GcpConfig, LsmTreeConfig, MemoryConfig,
    RocksdbConfig, S3Config, SecretRef,
};

/// Reads the secret `reference` names. Errors name the variable or file,
/// never the value.
pub fn resolve_secret(reference: &SecretRef) -> Result<String, String> {
    match reference {
        SecretRef::Env(name) => std::env::var(name)
            .map_err(|_| format!("secret variable {name} is not set or not valid UTF-8")),
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| format!("cannot read secret file {path}: {e}")),
    }
}

/// Which references each secret field of a backend configuration may hold.
///
/// A configuration comes from the translator plugin, which the host does not
/// trust with secrets: left alone, a translator could point
/// `s3.access_key_id` at `env ORBIT_API_TOKEN` or at any readable file, and
/// the host would send that value to an endpoint the translator chose. So
/// the host binds every secret field to its own setting before anything is
/// resolved: the field of `ORBIT_S3_SECRET_ACCESS_KEY` accepts only
/// `env ORBIT_S3_SECRET_ACCESS_KEY`, or the file that the operator named in
/// `ORBIT_S3_SECRET_ACCESS_KEY_FILE` (or the TOML `..._file` key). The host
/// builds the allowed references from its own configuration sources.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretBindings {
    allowed: std::collections::BTreeMap<&'static str, Vec<SecretRef>>,
}

impl SecretBindings {
    /// Allows `reference` in the field of `setting` (an environment name).
    pub fn allow(&mut self, setting: &'static str, reference: SecretRef) {
        let refs = self.allowed.entry(setting).or_default();
        if !refs.contains(&reference) {
            refs.push(reference);
        }
    }

    /// Every file a secret may be read from, with its setting.
    pub fn files(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.allowed.iter().flat_map(|(setting, refs)| {
            refs.iter().filter_map(move |r| match r {
                SecretRef::File(path) => Some((*setting, path.as_str())),
                SecretRef::Env(_) => None,
            })
        })
    }

    /// The references allowed for `setting`.
    pub fn allowed(&self, setting: &str) -> &[SecretRef] {
        self.allowed.get(setting).map_or(&[], Vec::as_slice)
    }

    /// Checks every secret reference of `config`; the error names the field,
    /// the reference and what the field accepts (references are names and
    /// paths, never values).
    pub fn check(&self, config: &BackendConfig) -> Result<(), String> {
        let mut wrong = Vec::new();
        for (setting, reference) in config.secret_refs() {
            let allowed = self.allowed(setting);
            if allowed.contains(&reference) {
                continue;
            }
            let accepted = if allowed.is_empty() {
                "nothing: the operator configured no secret for it".to_string()
            } else {
                allowed
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            };
            wrong.push(format!(
                "the field of {setting} refers to {reference}, which it may not (it accepts {accepted})"
            ));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        }
    }
}
