//! The host's own settings (addresses, limits, plugin paths, logging) and the
//! configuration sources they come from: the process environment and an
//! optional TOML file.
//!
//! Backend settings are *not* read here: they go to the translator plugin as
//! part of the deployment context. Names, defaults and value syntax come from
//! the shared catalogue in `orbit-config-syntax`, so the host and the
//! plugins agree. Every error names the variable (or TOML key), the offending
//! value (never for secrets) and what is accepted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orbit_config_syntax::{self as syntax, Setting, ValueKind};
use orbit_plugin_runtime::grants::{self, GrantItem};
use orbit_plugin_runtime::signature::PublicKey;
use orbit_plugin_runtime::{
    Grants, PluginLimits, PluginSource, PluginSpec, Role, StoreAccessLimits,
};

/// Text placed instead of secret values in anything a plugin sees.
pub const WITHHELD: &str = "<withheld>";

/// A configuration problem, ready to print.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read configuration file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// The TOML configuration file.
#[derive(Clone, Debug)]
pub struct TomlFile {
    pub path: PathBuf,
    pub table: toml::Table,
}

/// Environment plus optional TOML file: everything configuration is read from.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    pub env: BTreeMap<String, String>,
    pub toml: Option<TomlFile>,
}

impl ConfigSource {
    /// The process environment, and the TOML file from `--config` or
    /// `ORBIT_CONFIG_FILE`.
    pub fn from_process(config: Option<&Path>) -> Result<Self, SettingsError> {
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::new(env, config)
    }

    pub fn new(
        env: BTreeMap<String, String>,
        config: Option<&Path>,
    ) -> Result<Self, SettingsError> {
        let path = config
            .map(Path::to_path_buf)
            .or_else(|| env.get("ORBIT_CONFIG_FILE").map(PathBuf::from));
        let toml = match path {
            None => None,
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| SettingsError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
                let table = text
                    .parse::<toml::Table>()
                    .map_err(|e| SettingsError::Toml {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                Some(TomlFile { path, table })
            }
        };
        Ok(ConfigSource { env, toml })
    }

    /// The value of `setting` and where it came from (env wins over TOML).
    pub fn raw(&self, setting: &Setting) -> Option<(String, String)> {
        if let Some(v) = self.env.get(setting.env) {
            return Some((setting.env.to_string(), v.clone()));
        }
        let toml = self.toml.as_ref()?;
        if setting.toml.is_empty() {
            return None;
        }
        let value = lookup_path(&toml.table, setting.toml)?;
        Some((
            format!("{} in {}", setting.toml, toml.path.display()),
            toml_scalar(value)?,
        ))
    }

    /// The TOML text as plugins see it: values of secret keys replaced by
    /// [`WITHHELD`].
    pub fn redacted_toml(&self) -> Option<String> {
        let toml = self.toml.as_ref()?;
        let mut table = toml.table.clone();
        redact(&mut table);
        Some(toml::to_string(&table).unwrap_or_default())
    }
}

pub(crate) fn lookup_path<'a>(table: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut current = table.get(parts.next()?)?;
    for part in parts {
        current = current.as_table()?.get(part)?;
    }
    Some(current)
}

/// TOML scalars as the text an environment variable would hold.
fn toml_scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn redact(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        match value {
            toml::Value::Table(t) => redact(t),
            _ if syntax::is_secret_name(key) => *value = toml::Value::String(WITHHELD.into()),
            _ => {}
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the host itself is configured with.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub http_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    /// Bearer token for `/v1/*`. `Debug` shows only whether it is set.
    pub api_token: Option<ApiToken>,
    pub log_format: LogFormat,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub shutdown_timeout: Duration,
    pub ttl_purge_interval: Duration,
    pub data_dir: PathBuf,
    /// Where the precompiled-plugin cache lives, if anywhere.
    pub plugin_cache_dir: PluginCacheDir,
    /// If set, plugin files need a detached ed25519 signature by this key.
    pub plugin_public_key: Option<PublicKey>,
    /// How often the health plugin's file is checked (`None`: never).
    pub plugin_reload_interval: Option<Duration>,
    plugins: [RolePlugin; 3],
}

/// How one role's plugin is configured.
#[derive(Clone, Debug)]
struct RolePlugin {
    path: Option<PathBuf>,
    limits: PluginLimits,
    pinned_sha256: Option<String>,
    grants: Grants,
}

/// The API token; never printed.
#[derive(Clone)]
pub struct ApiToken(pub String);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<withheld>)")
    }
}

impl ServerSettings {
    /// Reads and validates every host setting, collecting all errors.
    pub fn from_source(src: &ConfigSource) -> Result<Self, SettingsError> {
        let mut errors = Vec::new();
        let mut r = Reader {
            src,
            errors: &mut errors,
        };
        let http_addr = r.socket_addr("ORBIT_HTTP_ADDR");
        let metrics_addr = r.socket_addr("ORBIT_METRICS_ADDR");
        let api_token = r.secret("ORBIT_API_TOKEN").map(ApiToken);
        let log_format = match r.text("ORBIT_LOG_FORMAT").as_str() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let max_key_bytes = r.size("ORBIT_MAX_KEY_BYTES") as usize;
        let max_value_bytes = r.size("ORBIT_MAX_VALUE_BYTES") as usize;
        let shutdown_timeout = Duration::from_secs(r.secs("ORBIT_SHUTDOWN_TIMEOUT"));
        let ttl_purge_interval = Duration::from_secs(r.secs("ORBIT_TTL_PURGE_INTERVAL").max(1));
        let data_dir = r.text("ORBIT_DATA_DIR");
        let timeout = Duration::from_millis(r.millis("ORBIT_PLUGIN_TIMEOUT").max(1));
        let memory_bytes = r.size("ORBIT_PLUGIN_MEMORY_LIMIT") as usize;
        let plugins = Role::ALL.map(|role| {
            let upper = role.name().to_ascii_uppercase();
            let timeout = r
                .optional(
                    &format!("ORBIT_PLUGIN_{upper}_TIMEOUT"),
                    syntax::parse_duration_ms,
                )
                .map_or(timeout, |ms| Duration::from_millis(ms.max(1)));
            let memory_bytes = r
                .optional(
                    &format!("ORBIT_PLUGIN_{upper}_MEMORY_LIMIT"),
                    syntax::parse_byte_size,
                )
                .map_or(memory_bytes, |b| b as usize);
            let pinned_sha256 = r.optional(&format!("ORBIT_PLUGIN_{upper}_SHA256"), parse_sha256);
            let grants = r.grants(&format!("ORBIT_PLUGIN_{upper}_GRANTS"), role);
            RolePlugin {
                path: r.path(&format!("ORBIT_PLUGIN_{upper}")),
                limits: PluginLimits {
                    timeout,
                    memory_bytes,
                },
                pinned_sha256,
                grants,
            }
        });
        let plugin_public_key = r.optional("ORBIT_PLUGIN_PUBLIC_KEY", |v| {
            PublicKey::parse_hex(v).map_err(|accepted| syntax::ValueError { accepted })
        });
        let plugin_cache_dir = match r.path("ORBIT_PLUGIN_CACHE_DIR") {
            Some(p) if p.as_os_str() == "off" => PluginCacheDir::Off,
            Some(p) => PluginCacheDir::Configured(p),
            None => PluginCacheDir::InDataDir(Path::new(&data_dir).join(".plugin-cache")),
        };
        let reload_ms = r.millis("ORBIT_PLUGIN_RELOAD_INTERVAL");
        let plugin_reload_interval = (reload_ms > 0).then(|| Duration::from_millis(reload_ms));
        if max_key_bytes == 0 || max_key_bytes > orbit_storage::MAX_KEY_LEN {
            errors.push(format!(
                "ORBIT_MAX_KEY_BYTES={max_key_bytes}: expected a byte size from 1 to {}",
                orbit_storage::MAX_KEY_LEN
            ));
        }
        for (role, p) in Role::ALL.iter().zip(&plugins) {
            if p.limits.memory_bytes < (1 << 20) {
                errors.push(format!(
                    "memory limit of the {role} plugin is {} bytes: expected at least 1MiB (a component needs a few pages)",
                    p.limits.memory_bytes
                ));
            }
        }
        if !errors.is_empty() {
            return Err(SettingsError::Invalid(errors.join("\n")));
        }
        Ok(ServerSettings {
            http_addr,
            metrics_addr,
            api_token,
            log_format,
            max_key_bytes,
            max_value_bytes,
            shutdown_timeout,
            ttl_purge_interval,
            data_dir: PathBuf::from(data_dir),
            plugin_cache_dir,
            plugin_public_key,
            plugin_reload_interval,
            plugins,
        })
    }

    fn role(&self, role: Role) -> &RolePlugin {
        &self.plugins[Role::ALL.iter().position(|r| *r == role).unwrap_or(0)]
    }

    /// The operator's component for `role`, if one is configured.
    pub fn plugin_path(&self, role: Role) -> Option<&Path> {
        self.role(role).path.as_deref()
    }

    /// How to load `role`'s plugin: the operator's file or the embedded default.
    pub fn plugin_spec(&self, role: Role) -> PluginSpec {
        let p = self.role(role);
        PluginSpec {
            source: match &p.path {
                Some(path) => PluginSource::File(path.clone()),
                None => orbit_plugin_runtime::embedded::default_source(role),
            },
            limits: p.limits,
            pinned_sha256: p.pinned_sha256.clone(),
            grants: p.grants.clone(),
            public_key: self.plugin_public_key,
        }
    }

    /// The largest memory cap of any plugin (sizes the instance pool).
    pub fn max_plugin_memory(&self) -> usize {
        self.plugins
            .iter()
            .map(|p| p.limits.memory_bytes)
            .max()
            .unwrap_or(64 << 20)
    }

    pub fn store_access_limits(&self) -> StoreAccessLimits {
        StoreAccessLimits {
            max_key_bytes: self.max_key_bytes,
            max_value_bytes: self.max_value_bytes,
        }
    }
}

/// Where the precompiled-plugin cache lives. Whichever directory it is, the
/// cache is used only if this host owns it (see
/// [`orbit_plugin_runtime::cache`]); there is no fallback to a shared
/// directory such as the temp dir.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PluginCacheDir {
    /// `ORBIT_PLUGIN_CACHE_DIR=off`: compile in memory.
    Off,
    /// `ORBIT_PLUGIN_CACHE_DIR=<dir>`.
    Configured(PathBuf),
    /// The default, `<data dir>/.plugin-cache`: used if it (and the data
    /// dir, when missing) can be created, else no cache.
    InDataDir(PathBuf),
}

fn parse_sha256(v: &str) -> Result<String, syntax::ValueError> {
    let v = v.trim().to_ascii_lowercase();
    if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(syntax::ValueError {
            accepted: "a sha256 digest: 64 hexadecimal characters".into(),
        })
    }
}

/// Reads catalogue settings from a source, recording errors instead of
/// stopping at the first.
struct Reader<'a> {
    src: &'a ConfigSource,
    errors: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn setting(&self, env: &str) -> &'static Setting {
        syntax::lookup(env)
            .unwrap_or_else(|| panic!("{env} is missing from the settings catalogue"))
    }

    /// The raw value or the default, and where it came from.
    fn value(&self, env: &str) -> (String, String) {
        let s = self.setting(env);
        self.src
            .raw(s)
            .unwrap_or_else(|| (s.env.to_string(), s.default.to_string()))
    }

    fn parse<T>(
        &mut self,
        env: &str,
        f: impl Fn(&str) -> Result<T, syntax::ValueError>,
        fallback: T,
    ) -> T {
        let (origin, value) = self.value(env);
        match f(&value) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(format!("{origin}={value:?}: {e}"));
                fallback
            }
        }
    }

    /// A setting without a default: `None` when unset or empty.
    fn optional<T>(
        &mut self,
        env: &str,
        f: impl Fn(&str) -> Result<T, syntax::ValueError>,
    ) -> Option<T> {
        let (origin, value) = self.value(env);
        if value.is_empty() {
            return None;
        }
        match f(&value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(format!("{origin}={value:?}: {e}"));
                None
            }
        }
    }

    fn text(&mut self, env: &str) -> String {
        let s = self.setting(env);
        let (origin, value) = self.value(env);
        if let ValueKind::Choice(choices) = s.kind
            && !choices.contains(&value.as_str())
        {
            self.errors.push(format!(
                "{origin}={value:?}: expected one of {}",
                choices.join(", ")
            ));
        }
        value
    }

    /// A plugin's grant list (see `orbit_plugin_runtime::grants`), resolved:
    /// granted variables get their values from the same source as every
    /// other setting, granted directories must exist. Secrets are refused.
    fn grants(&mut self, env: &str, role: Role) -> Grants {
        let (origin, value) = self.value(env);
        let items = match grants::parse_grants(&value) {
            Ok(items) => items,
            Err(e) => {
                self.errors.push(format!("{origin}: {e}"));
                return Grants::default();
            }
        };
        let secrets = crate::secrets::bindings(self.src);
        let mut g = Grants::default();
        for item in items {
            match item {
                GrantItem::KeyValue(_) if role != Role::Health => self.errors.push(format!(
                    "{origin}: keyvalue grants apply to the health plugin only (the {role} runs before the backend opens)"
                )),
                GrantItem::KeyValue(bucket) => g.keyvalue_buckets.push(bucket),
                GrantItem::Env(name) if syntax::is_secret_name(&name) => self.errors.push(format!(
                    "{origin}: env:{name} names a secret; plugins never see secrets"
                )),
                GrantItem::Env(name) => match self.src.env.get(&name) {
                    Some(v) => g.env.push((name, v.clone())),
                    None => self.errors.push(format!(
                        "{origin}: env:{name} is granted but {name} is not set"
                    )),
                },
                GrantItem::Dir(dir) if dir.is_dir() => {
                    let files = secrets.files().map(|(s, f)| (s, Path::new(f)));
                    match grants::dir_grant_refusal(&dir, files) {
                        Some(why) => self.errors.push(format!(
                            "{origin}: dir:{} is refused: {why}",
                            dir.display()
                        )),
                        None => g.dirs.push(dir),
                    }
                }
                GrantItem::Dir(dir) => self.errors.push(format!(
                    "{origin}: dir:{} is not a directory this process can see",
                    dir.display()
                )),
                GrantItem::Network => g.network = true,
            }
        }
        g
    }

    fn path(&mut self, env: &str) -> Option<PathBuf> {
        let (_, value) = self.value(env);
        (!value.is_empty()).then(|| PathBuf::from(value))
    }

    fn size(&mut self, env: &str) -> u64 {
        self.parse(env, syntax::parse_byte_size, 0)
    }

    fn secs(&mut self, env: &str) -> u64 {
        self.parse(env, syntax::parse_duration_secs, 1)
    }

    fn millis(&mut self, env: &str) -> u64 {
        self.parse(env, syntax::parse_duration_ms, 1)
    }

    fn socket_addr(&mut self, env: &str) -> SocketAddr {
        let fallback = SocketAddr::from(([127, 0, 0, 1], 0));
        self.parse(
            env,
            |v| {
                v.parse::<SocketAddr>().map_err(|_| syntax::ValueError {
                    accepted:
                        "an address to listen on, IP:PORT, e.g. 0.0.0.0:8080 or 127.0.0.1:8080"
                            .into(),
                })
            },
            fallback,
        )
    }

    /// A secret token from `NAME` or the file `NAME_FILE` (newlines ending
    /// the file are dropped); refused in TOML. Unset means `None`;
    /// set but empty, whitespace-only or not sendable in an HTTP header is
    /// an error naming the variable (and file), never the value, so a blank
    /// secret can never quietly switch a protection off.
    fn secret(&mut self, env: &str) -> Option<String> {
        let file_var = format!("{env}_FILE");
        if self.src.env.contains_key(env) && self.src.env.contains_key(&file_var) {
            self.errors.push(format!(
                "{env} and {file_var} are both set: expected only one of them"
            ));
            return None;
        }
        let (origin, value) = if let Some(v) = self.src.env.get(env) {
            (env.to_string(), v.clone())
        } else if let Some(path) = self.src.env.get(&file_var) {
            if path.is_empty() {
                self.errors.push(format!(
                    "{file_var} is set but empty: expected the path of a file holding {env}"
                ));
                return None;
            }
            match std::fs::read_to_string(path) {
                Ok(s) => (
                    format!("{file_var}={path:?}"),
                    s.trim_end_matches(['\n', '\r']).to_string(),
                ),
                Err(e) => {
                    self.errors.push(format!(
                        "{file_var}={path:?}: cannot read the secret file: {e}"
                    ));
                    return None;
                }
            }
        } else {
            self.refuse_toml_secret(env, &file_var);
            return None;
        };
        let problem = if value.trim().is_empty() {
            Some("the secret is empty or only whitespace")
        } else if value.trim() != value {
            Some("the secret starts or ends with whitespace")
        } else if !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            Some("the secret holds characters other than printable ASCII")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.errors.push(format!(
                "{origin}: {problem}; expected a non-empty token of printable ASCII characters \
                 without leading or trailing whitespace (newlines ending a file are ignored); \
                 unset {env} and {file_var} to run without it"
            ));
            return None;
        }
        Some(value)
    }

    /// Secrets in the TOML file are an error (they belong in the environment).
    fn refuse_toml_secret(&mut self, env: &str, file_var: &str) {
        let s = self.setting(env);
        if let Some(toml) = &self.src.toml
            && lookup_path(&toml.table, s.toml).is_some()
        {
            self.errors.push(format!(
                "{} in {}: secrets are not accepted in the TOML file; set {env} from a Kubernetes Secret, or {file_var}",
                s.toml,
                toml.path.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(env: &[(&str, &str)]) -> ConfigSource {
        ConfigSource {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            toml: None,
        }
    }

    #[test]
    fn defaults() {
        let s = ServerSettings::from_source(&source(&[])).unwrap();
        assert_eq!(s.http_addr.port(), 8080);
        assert_eq!(s.metrics_addr.port(), 9090);
        assert_eq!(s.max_value_bytes, 4 << 20);
        assert!(s.api_token.is_none());
    }

    #[test]
    fn errors_name_variable_value_and_form() {
        let err = ServerSettings::from_source(&source(&[
            ("ORBIT_HTTP_ADDR", "8080"),
            ("ORBIT_MAX_VALUE_BYTES", "lots"),
            ("ORBIT_LOG_FORMAT", "xml"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ORBIT_HTTP_ADDR=\"8080\": expected an address"),
            "{err}"
        );
        assert!(
            err.contains("ORBIT_MAX_VALUE_BYTES=\"lots\": expected a byte size"),
            "{err}"
        );
        assert!(
            err.contains("ORBIT_LOG_FORMAT=\"xml\": expected one of text, json"),
            "{err}"
        );
    }

    #[test]
    fn token_is_never_printed() {
        let s = ServerSettings::from_source(&source(&[("ORBIT_API_TOKEN", "hunter2")])).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn blank_or_unsendable_tokens_are_start_up_errors() {
        for value in ["", " ", "  \t ", "\n"] {
            let err = ServerSettings::from_source(&source(&[("ORBIT_API_TOKEN", value)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("ORBIT_API_TOKEN: the secret is empty or only whitespace")
                    && err.contains("expected a non-empty token"),
                "{value:?}: {err}"
            );
        }
        for value in [" hunter2", "hunter2 ", "hunter2\u{e9}", "hun\nter2"] {
            let err = ServerSettings::from_source(&source(&[("ORBIT_API_TOKEN", value)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("ORBIT_API_TOKEN: ") && !err.contains("hunter2"),
                "{value:?}: {err}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in [("empty", ""), ("blank", "  \n"), ("crlf", "\r\n")] {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let path = path.to_str().unwrap();
            let err = ServerSettings::from_source(&source(&[("ORBIT_API_TOKEN_FILE", path)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!(
                    "ORBIT_API_TOKEN_FILE={path:?}: the secret is empty"
                )),
                "{name}: {err}"
            );
        }
        let err = ServerSettings::from_source(&source(&[("ORBIT_API_TOKEN_FILE", "")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ORBIT_API_TOKEN_FILE is set but empty"),
            "{err}"
        );
        let err = ServerSettings::from_source(&source(&[
            ("ORBIT_API_TOKEN", "hunter2"),
            ("ORBIT_API_TOKEN_FILE", "/nonexistent"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ORBIT_API_TOKEN and ORBIT_API_TOKEN_FILE are both set")
                && !err.contains("hunter2"),
            "{err}"
        );
    }

    #[test]
    fn token_file_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\r\n").unwrap();
        let s = ServerSettings::from_source(&source(&[(
            "ORBIT_API_TOKEN_FILE",
            path.to_str().unwrap(),
        )]))
        .unwrap();
        assert_eq!(s.api_token.unwrap().0, "s3cret-token");
    }

    #[test]
    fn toml_secrets_are_redacted_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orbit.toml");
        std::fs::write(
            &path,
            "[server]\napi_token = \"hunter2\"\n[persistence.s3]\nsecret_access_key = \"abc\"\nbucket = \"b\"\n",
        )
        .unwrap();
        let src = ConfigSource::new(BTreeMap::new(), Some(&path)).unwrap();
        let redacted = src.redacted_toml().unwrap();
        assert!(
            !redacted.contains("hunter2") && !redacted.contains("abc"),
            "{redacted}"
        );
        assert!(redacted.contains("bucket = \"b\""));
        let err = ServerSettings::from_source(&src).unwrap_err().to_string();
        assert!(
            err.contains("secrets are not accepted in the TOML file") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
