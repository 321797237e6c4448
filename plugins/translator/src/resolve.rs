//! From environment and TOML to the values of one backend's settings.
//!
//! For every catalogue setting of the selected backend: the environment
//! variable if set, else the TOML key (or one of its aliases), else the
//! default, parsed strictly by its value kind. Anything wrong becomes a
//! diagnostic naming the variable or TOML path, the offending value and what
//! is accepted; nothing here panics, whatever the input.

use orbit_config_syntax::{
    BackendConfig, BackendKind, DATA_DIR_PLACEHOLDER, Scope, SecretRef, Setting, Value, ValueKind,
    Values,
};
use orbit_plugin_common::setting::toml_paths;
use orbit_plugin_common::toml_doc::{TomlScalar, scalar};
use orbit_plugin_common::{Diag, Env, EnvValue, Found, Raw, Source, TomlDoc, find};

use crate::unknown;

/// What the host writes in place of a secret's value in the TOML text.
const WITHHELD_MARKER: &str = "<withheld>";
const DEFAULT_DATA_DIR: &str = "/app/data";

/// The outcome of a translation.
#[derive(Debug)]
pub struct Resolution {
    pub values: Values,
    pub diagnostics: Vec<Diag>,
}

impl Resolution {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diag::is_error)
    }
}

/// Resolves every setting of `backend`.
pub fn resolve(backend: BackendKind, env: &Env, toml: Option<&str>) -> Resolution {
    let mut r = Resolver {
        env,
        doc: None,
        diags: Vec::new(),
        failed: Vec::new(),
        sources: Vec::new(),
    };
    let doc = match toml.map(TomlDoc::parse) {
        Some(Ok(doc)) => Some(doc),
        Some(Err(d)) => {
            r.diags.push(d);
            None
        }
        None => None,
    };
    r.doc = doc.as_ref();
    let mut data_dir = DataDir::new(env, r.doc);

    let mut values = Values::default();
    for setting in BackendConfig::settings(backend) {
        let value = match setting.kind {
            ValueKind::Secret => r.secret(setting),
            _ => r.plain(setting, &mut data_dir),
        };
        values.set(setting.env, value);
    }
    if data_dir.used
        && let Some(d) = data_dir.problem.take()
    {
        r.diags.push(d);
    }
    r.gcp_credentials(backend, &mut values);
    r.cross_checks(backend, &values);
    unknown::warn(backend, env, r.doc, &mut r.diags);
    Resolution {
        values,
        diagnostics: r.diags,
    }
}

/// The data root that `{data_dir}` in defaults stands for.
struct DataDir {
    path: String,
    /// A reason the configured data root could not be used (reported only if
    /// a default needs it).
    problem: Option<Diag>,
    used: bool,
}

impl DataDir {
    fn new(env: &Env, doc: Option<&TomlDoc<'_>>) -> Self {
        let mut dir = DataDir {
            path: DEFAULT_DATA_DIR.to_string(),
            problem: None,
            used: false,
        };
        let Some(setting) = orbit_config_syntax::lookup("ORBIT_DATA_DIR") else {
            return dir;
        };
        let found = find(setting, env, doc);
        let variable = found.source.variable(setting);
        match found.raw {
            Raw::Text(t) if !t.trim().is_empty() => dir.path = t.trim().to_string(),
            Raw::Unset => {}
            Raw::Text(t) => {
                dir.problem = Some(Diag::error(
                    variable,
                    Some(t.clone()),
                    "a non-empty directory path",
                    format!(
                        "{}: expected a non-empty directory path",
                        found.source.show(setting, &t)
                    ),
                ))
            }
            Raw::NotScalar(ty) => {
                dir.problem = Some(Diag::error(
                    variable.clone(),
                    None,
                    "a non-empty directory path",
                    format!("{variable} in the TOML file is a {ty}; expected a directory path"),
                ))
            }
            Raw::Withheld => {
                dir.problem = Some(Diag::error(
                    variable,
                    None,
                    "a non-empty directory path",
                    "the host withheld the value of ORBIT_DATA_DIR, so the default directories cannot be derived",
                ))
            }
        }
        dir
    }

    /// `default` with `{data_dir}` replaced.
    fn expand(&mut self, default: &str) -> String {
        if !default.contains(DATA_DIR_PLACEHOLDER) {
            return default.to_string();
        }
        self.used = true;
        let root = self.path.trim_end_matches('/');
        default.replace(DATA_DIR_PLACEHOLDER, root)
    }
}

struct Resolver<'a, 'd> {
    env: &'a Env,
    doc: Option<&'a TomlDoc<'d>>,
    diags: Vec<Diag>,
    /// Settings that already have an error (cross checks skip them).
    failed: Vec<&'static str>,
    /// Where each value came from, for cross-check messages.
    sources: Vec<(&'static str, Source)>,
}

impl Resolver<'_, '_> {
    fn error(&mut self, setting: &Setting, diag: Diag) {
        self.failed.push(setting.env);
        self.diags.push(diag);
    }

    fn source(&self, name: &str) -> Source {
        self.sources
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(Source::Default, |(_, s)| s.clone())
    }

    /// A setting that is not a secret.
    fn plain(&mut self, setting: &'static Setting, data_dir: &mut DataDir) -> Value {
        let found = find(setting, self.env, self.doc);
        self.warn_shadowed(setting, &found);
        self.warn_old_name(setting, &found);
        let source = found.source.clone();
        self.sources.push((setting.env, source.clone()));
        let variable = source.variable(setting);
        let text = match found.raw {
            Raw::Unset if setting.default.is_empty() => {
                if setting.required {
                    let diag = missing(setting);
                    self.error(setting, diag);
                }
                return Value::Absent;
            }
            Raw::Unset => data_dir.expand(setting.default),
            Raw::Withheld => {
                let diag = Diag::error(
                    variable,
                    None,
                    setting.accepted(),
                    format!(
                        "the host withheld the value of {} (it treats the name as a secret), so it cannot be read",
                        setting.env
                    ),
                );
                self.error(setting, diag);
                return Value::Absent;
            }
            Raw::NotScalar(ty) => {
                let diag = Diag::error(
                    variable.clone(),
                    None,
                    setting.accepted(),
                    format!(
                        "{variable} in the TOML file is a {ty}; expected {}",
                        setting.accepted()
                    ),
                );
                self.error(setting, diag);
                return Value::Absent;
            }
            Raw::Text(t) if t == WITHHELD_MARKER && matches!(source, Source::Toml(_)) => {
                let diag = Diag::error(
                    variable.clone(),
                    None,
                    setting.accepted(),
                    format!(
                        "the host withheld the value of {variable} in the TOML file (it treats the name as a secret), so it cannot be read; set {} instead",
                        setting.env
                    ),
                );
                self.error(setting, diag);
                return Value::Absent;
            }
            Raw::Text(t) => t,
        };
        if setting.required && text.trim().is_empty() {
            let diag = Diag::error(
                variable,
                Some(text.clone()),
                setting.accepted(),
                format!(
                    "{}: {} is required and must not be empty",
                    source.show(setting, &text),
                    setting.env
                ),
            );
            self.error(setting, diag);
            return Value::Absent;
        }
        match setting.parse(&text) {
            Ok(value) => value,
            Err(accepted) => {
                let message = format!("{}: expected {accepted}", source.show(setting, &text));
                let diag = Diag::error(variable, Some(text), accepted, message);
                self.error(setting, diag);
                Value::Absent
            }
        }
    }

    /// A secret: a reference to the variable or to a file, never a value.
    fn secret(&mut self, setting: &'static Setting) -> Value {
        let name = setting.env;
        let file_var = format!("{name}_FILE");
        let key = setting.toml_key();
        let file_key_path = format!("{}_file", setting.toml);
        let accepted = format!(
            "{name} from a Kubernetes Secret, {file_var} naming a file, or {key}_file in the TOML file"
        );

        // The secret itself written in the TOML file: refused, whatever else is set.
        if let Some(doc) = self.doc {
            for path in toml_paths(setting) {
                if doc.get(&path).is_some() {
                    let diag = Diag::error(
                        path.clone(),
                        None,
                        accepted.clone(),
                        format!(
                            "{path}: secrets are not accepted in the TOML file; use {name} from a Kubernetes Secret or {key}_file"
                        ),
                    );
                    self.error(setting, diag);
                }
            }
        }

        let in_env = match self.env.get(name) {
            Some(EnvValue::Withheld) => true,
            Some(EnvValue::Plain(v)) => !v.trim().is_empty(),
            None => false,
        };
        let file_env = match self.env.get(&file_var) {
            Some(EnvValue::Plain(p)) if !p.trim().is_empty() => Some(p.trim().to_string()),
            Some(EnvValue::Withheld) => {
                let diag = Diag::error(
                    file_var.clone(),
                    None,
                    "a file path",
                    format!(
                        "the host withheld the value of {file_var}, so the file cannot be named"
                    ),
                );
                self.error(setting, diag);
                None
            }
            _ => None,
        };
        let file_toml = match self.doc.and_then(|d| d.get(&file_key_path)).map(scalar) {
            Some(TomlScalar::Text(p)) if !p.trim().is_empty() => Some(p.trim().to_string()),
            Some(TomlScalar::Other(ty)) => {
                let diag = Diag::error(
                    file_key_path.clone(),
                    None,
                    "a file path",
                    format!("{file_key_path} in the TOML file is a {ty}; expected a file path"),
                );
                self.error(setting, diag);
                None
            }
            _ => None,
        };
        let (value, source) = match (in_env, file_env, file_toml) {
            (true, Some(path), _) => {
                let diag = Diag::error(
                    name,
                    None,
                    accepted.clone(),
                    format!("both {name} and {file_var}={path} are set; set only one of them"),
                );
                self.error(setting, diag);
                (Value::Absent, Source::Env(name.to_string()))
            }
            (true, None, _) => (
                Value::Secret(SecretRef::Env(name.to_string())),
                Source::Env(name.to_string()),
            ),
            (false, Some(path), _) => (Value::Secret(SecretRef::File(path)), Source::Env(file_var)),
            (false, None, Some(path)) => (
                Value::Secret(SecretRef::File(path)),
                Source::Toml(file_key_path),
            ),
            (false, None, None) => (Value::Absent, Source::Default),
        };
        self.sources.push((setting.env, source));
        value
    }

    /// A setting read under an older environment name still works; say
    /// which name replaces it.
    fn warn_old_name(&mut self, setting: &Setting, found: &Found) {
        if let Source::Env(name) = &found.source
            && name != setting.env
        {
            self.diags.push(Diag::warning(
                name.clone(),
                None,
                setting.env,
                format!(
                    "{name} is the old name of {}; it is still read, but rename it",
                    setting.env
                ),
            ));
        }
    }

    fn warn_shadowed(&mut self, setting: &Setting, found: &Found) {
        let winner = found.source.variable(setting);
        for path in &found.shadowed {
            self.diags.push(Diag::warning(
                path.clone(),
                None,
                format!("one of {}", toml_paths(setting).join(", ")),
                format!(
                    "{path} is ignored: {winner} sets the same setting ({})",
                    setting.env
                ),
            ));
        }
    }

    /// GCP: the default credentials file applies only when no inline
    /// service-account key is given.
    fn gcp_credentials(&mut self, backend: BackendKind, values: &mut Values) {
        if backend == BackendKind::Gcp
            && self.source("ORBIT_GCP_CREDENTIALS_PATH") == Source::Default
            && matches!(
                values.get("ORBIT_GCP_SERVICE_ACCOUNT_KEY"),
                Value::Secret(_)
            )
        {
            values.set("ORBIT_GCP_CREDENTIALS_PATH", Value::Absent);
        }
    }

    /// Checks that involve more than one setting.
    fn cross_checks(&mut self, backend: BackendKind, values: &Values) {
        if backend != BackendKind::S3 {
            return;
        }
        let ok = |r: &Self, names: &[&str]| names.iter().all(|n| !r.failed.contains(n));

        if ok(self, &["ORBIT_S3_ENDPOINT", "ORBIT_S3_ENABLE_SSL"])
            && let (Value::Text(url), Value::Bool(true)) = (
                values.get("ORBIT_S3_ENDPOINT"),
                values.get("ORBIT_S3_ENABLE_SSL"),
            )
            && url.to_ascii_lowercase().starts_with("http://")
            && let (Some(endpoint), Some(ssl)) = (
                orbit_config_syntax::lookup("ORBIT_S3_ENDPOINT"),
                orbit_config_syntax::lookup("ORBIT_S3_ENABLE_SSL"),
            )
        {
            let endpoint_source = self.source("ORBIT_S3_ENDPOINT");
            let ssl_shown = self.source("ORBIT_S3_ENABLE_SSL").show(ssl, "true");
            self.diags.push(Diag::error(
                endpoint_source.variable(endpoint),
                Some(url.clone()),
                "an https:// endpoint, or ORBIT_S3_ENABLE_SSL=false for a plain-http one",
                format!(
                    "{} is plain http but {ssl_shown}: set ORBIT_S3_ENABLE_SSL=false to allow plain http, or use an https:// endpoint",
                    endpoint_source.show(endpoint, url)
                ),
            ));
        }

        let id = "ORBIT_S3_ACCESS_KEY_ID";
        let secret = "ORBIT_S3_SECRET_ACCESS_KEY";
        if ok(self, &[id, secret]) {
            let has = |n: &str| matches!(values.get(n), Value::Secret(_));
            let missing = match (has(id), has(secret)) {
                (true, false) => Some((secret, id)),
                (false, true) => Some((id, secret)),
                _ => None,
            };
            if let Some((missing, given)) = missing {
                self.diags.push(Diag::error(
                    missing,
                    None,
                    format!("{missing} from a Kubernetes Secret or {missing}_FILE, together with {given}"),
                    format!(
                        "{given} is given but {missing} is not: give both (or neither, to use the pod's ambient credentials)"
                    ),
                ));
            }
        }
    }
}

/// A required setting that nobody set.
fn missing(setting: &Setting) -> Diag {
    let backend = match setting.scope {
        Scope::Backend(b) => b.name(),
        _ => "selected",
    };
    let (table, key) = setting.toml.rsplit_once('.').unwrap_or(("", setting.toml));
    Diag::error(
        setting.env,
        None,
        setting.accepted(),
        format!(
            "{} is required for the {backend} backend: set {} or `{key}` in the [{table}] table of the TOML file",
            setting.env, setting.env
        ),
    )
}
