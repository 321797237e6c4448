//! The macro that declares a backend's settings once, and the typed
//! configuration it generates.
//!
//! One line per setting in [`crate::backends`] gives its field name, value
//! kind, environment name, default and description. From it come: the
//! catalogue entry (TOML key `persistence.<table>.<field>`, aliases), the
//! field of the backend's typed configuration (its Rust type follows from
//! the kind), and the conversions between that struct and [`Values`], which
//! is what crosses the WIT boundary. Adding a setting is adding a line there
//! and reading the field in the backend; nothing else is written by hand.

use crate::value_types::{FromValue, Value, Values};
use crate::{BackendKind, Setting};

/// What is wrong with a backend configuration a plugin returned or a caller
/// built. Names the setting and what it accepts; never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting's environment name (or the unknown name given).
    pub setting: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The value of `setting` in `values`, as the field's type.
pub(crate) fn field<T: FromValue>(
    values: &Values,
    env: &'static str,
    settings: &'static [Setting],
) -> Result<T, ConfigError> {
    T::from_value(values.get(env)).ok_or_else(|| ConfigError {
        setting: env.to_string(),
        message: match settings.iter().find(|s| s.env == env) {
            Some(setting) => format!("expected {}", setting.accepted()),
            None => "has no value".into(),
        },
    })
}

/// `Setting` for a declared backend field (const: the catalogue is static).
#[allow(clippy::too_many_arguments)]
pub(crate) const fn declared(
    kind: BackendKind,
    env: &'static str,
    toml: &'static str,
    value_kind: crate::ValueKind,
    default: &'static str,
    required: bool,
    doc: &'static str,
    toml_aliases: &'static [&'static str],
    env_aliases: &'static [&'static str],
) -> Setting {
    Setting {
        env,
        env_aliases,
        toml,
        toml_aliases,
        scope: crate::Scope::Backend(kind),
        kind: value_kind,
        default,
        required,
        doc,
    }
}

/// Fills in what a plugin left out and checks what it gave, then builds the
/// typed configuration: unknown names, values of the wrong form or out of
/// bounds, and missing required settings are errors naming the setting.
/// A setting left out takes its catalogue default (`{data_dir}` expanded to
/// `data_dir`), so a translator written before a setting existed keeps
/// working after it is added.
pub(crate) fn complete(
    kind: BackendKind,
    settings: &'static [Setting],
    given: impl IntoIterator<Item = (String, Value)>,
    data_dir: &str,
) -> Result<Values, Vec<ConfigError>> {
    let mut values = Values::default();
    let mut errors = Vec::new();
    for (name, value) in given {
        let Some(setting) = settings.iter().find(|s| s.env == name) else {
            errors.push(ConfigError {
                message: format!(
                    "not a setting of the {kind} backend (its settings: {})",
                    settings
                        .iter()
                        .map(|s| s.env)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                setting: name,
            });
            continue;
        };
        if values.contains(setting.env) {
            errors.push(ConfigError {
                setting: name,
                message: "given twice".into(),
            });
            continue;
        }
        match setting.check(&value) {
            Ok(()) => values.set(setting.env, value),
            Err(accepted) => errors.push(ConfigError {
                setting: name,
                message: format!("expected {accepted}"),
            }),
        }
    }
    let missing: Vec<&Setting> = settings
        .iter()
        .filter(|s| !values.contains(s.env))
        .collect();
    for setting in missing {
        let default = setting
            .default
            .replace(crate::DATA_DIR_PLACEHOLDER, data_dir.trim_end_matches('/'));
        if setting.required && default.is_empty() {
            errors.push(ConfigError {
                setting: setting.env.to_string(),
                message: format!("is required for the {kind} backend and was not given"),
            });
            continue;
        }
        match setting.parse(&default) {
            Ok(value) => values.set(setting.env, value),
            Err(accepted) => errors.push(ConfigError {
                setting: setting.env.to_string(),
                message: format!("its default {default:?} is not {accepted}"),
            }),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The Rust type of a field of kind `$kind`.
macro_rules! field_type {
    (Bool) => {
        bool
    };
    (ByteSize) => {
        u64
    };
    ((Count $($bounds:tt)*)) => {
        u64
    };
    (DurationSecs) => {
        ::std::time::Duration
    };
    (DurationMs) => {
        ::std::time::Duration
    };
    (Fraction) => {
        f64
    };
    (Text) => {
        String
    };
    (Path) => {
        String
    };
    (Url) => {
        String
    };
    (Durability) => {
        $crate::Durability
    };
    (Secret) => {
        $crate::SecretRef
    };
    (SecretFile) => {
        $crate::SecretRef
    };
}

/// `Option<T>` for `optional` settings, `T` otherwise.
macro_rules! presence_type {
    (optional, $t:ty) => { Option<$t> };
    (value, $t:ty) => { $t };
    (required, $t:ty) => { $t };
}

macro_rules! is_required {
    (required) => {
        true
    };
    ($other:ident) => {
        false
    };
}

macro_rules! kind_expr {
    (($($k:tt)*)) => { $crate::ValueKind::$($k)* };
    ($k:ident) => { $crate::ValueKind::$k };
}

/// Declares every backend's settings and generates the typed
/// configurations and [`BackendConfig`](crate::BackendConfig). Per setting:
///
/// `field: presence Kind = "ENV_NAME", "default", "what it does" [, toml_aliases [..]] [, env_aliases [..]];`
///
/// `presence` is `value` (has a default), `required` (must be given) or
/// `optional` (may be absent: the field is an `Option`).
macro_rules! backend_settings {
    ($(
        $(#[doc = $sdoc:literal])*
        $variant:ident($config:ident) in $table:literal {
            $(
                $field:ident: $presence:ident $kind:tt = $env:literal, $default:literal, $doc:literal
                    $(, toml_aliases [$($talias:literal),*])?
                    $(, env_aliases [$($ealias:literal),*])?
                ;
            )*
        }
    )*) => {
        $(
            $(#[doc = $sdoc])*
            #[derive(Clone, Debug, PartialEq)]
            pub struct $config {
                $(
                    #[doc = $doc]
                    pub $field: presence_type!($presence, field_type!($kind)),
                )*
            }

            impl $config {
                /// This backend's settings, in declaration order.
                pub const SETTINGS: &'static [$crate::Setting] = &[$(
                    $crate::declare::declared(
                        $crate::BackendKind::$variant,
                        $env,
                        concat!("persistence.", $table, ".", stringify!($field)),
                        kind_expr!($kind),
                        $default,
                        is_required!($presence),
                        $doc,
                        &[$($($talias),*)?],
                        &[$($($ealias),*)?],
                    ),
                )*];

                /// The configuration from complete, checked values.
                pub fn from_values(values: &$crate::Values) -> Result<Self, $crate::ConfigError> {
                    Ok(Self {
                        $( $field: $crate::declare::field(values, $env, Self::SETTINGS)?, )*
                    })
                }

                /// Every setting at its catalogue default (`{data_dir}` standing
                /// for `data_dir`); fails only if the backend has required
                /// settings. Tests build configurations as
                /// `Config { field: .., ..Config::defaults(dir)? }`, so a new
                /// setting does not touch them.
                pub fn defaults(data_dir: &str) -> Result<Self, Vec<$crate::ConfigError>> {
                    let values = $crate::declare::complete(
                        $crate::BackendKind::$variant,
                        Self::SETTINGS,
                        Vec::new(),
                        data_dir,
                    )?;
                    Self::from_values(&values).map_err(|e| vec![e])
                }

                /// Every setting's value, keyed by environment name.
                pub fn values(&self) -> $crate::Values {
                    let mut values = $crate::Values::default();
                    $( values.set($env, $crate::FromValue::to_value(&self.$field)); )*
                    values
                }
            }
        )*

        /// The configuration of one backend.
        #[derive(Clone, Debug, PartialEq)]
        pub enum BackendConfig {
            $( $variant($config), )*
        }

        impl BackendConfig {
            pub fn kind(&self) -> $crate::BackendKind {
                match self {
                    $( BackendConfig::$variant(_) => $crate::BackendKind::$variant, )*
                }
            }

            /// Every setting's value, keyed by environment name.
            pub fn values(&self) -> $crate::Values {
                match self {
                    $( BackendConfig::$variant(c) => c.values(), )*
                }
            }

            /// The settings of `kind`'s configuration.
            pub fn settings(kind: $crate::BackendKind) -> &'static [$crate::Setting] {
                match kind {
                    $( $crate::BackendKind::$variant => $config::SETTINGS, )*
                }
            }

            /// The configuration of `kind` from values a plugin gave (by
            /// environment name): checked against the catalogue, defaults
            /// filled in for what is left out.
            pub fn from_plugin(
                kind: $crate::BackendKind,
                given: impl IntoIterator<Item = (String, $crate::Value)>,
                data_dir: &str,
            ) -> Result<Self, Vec<$crate::ConfigError>> {
                let values = $crate::declare::complete(kind, Self::settings(kind), given, data_dir)?;
                let config = match kind {
                    $( $crate::BackendKind::$variant => $config::from_values(&values).map(BackendConfig::$variant), )*
                };
                config.map_err(|e| vec![e])
            }
        }

        /// Every backend setting, in declaration order.
        pub(crate) const BACKEND_SETTINGS: &[&[$crate::Setting]] = &[$( $config::SETTINGS, )*];
    };
}

pub(crate) use {backend_settings, field_type, is_required, kind_expr, presence_type};

impl crate::BackendConfig {
    /// Every secret reference this configuration holds, with the setting
    /// (its environment name) whose field it fills.
    pub fn secret_refs(&self) -> Vec<(&'static str, crate::SecretRef)> {
        self.values()
            .iter()
            .filter_map(|(name, v)| match v {
                Value::Secret(r) => Some((name, r.clone())),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{BackendConfig, BackendKind, Durability, LsmTreeConfig, SecretRef, Value};

    fn given(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn left_out_settings_take_their_defaults() {
        let c = BackendConfig::from_plugin(
            BackendKind::LsmTree,
            given(&[("ORBIT_LSM_MAX_MEMTABLES", Value::Int(3))]),
            "/data/",
        )
        .unwrap();
        let BackendConfig::LsmTree(c) = c else {
            panic!("{c:?}")
        };
        assert_eq!(c.max_memtables, 3);
        assert_eq!(c.data_dir, "/data/lsm_tree");
        assert_eq!(c.memtable_size, 64 << 20);
        assert_eq!(c.sync_interval, Duration::from_secs(1));
        assert_eq!(c.durability, Durability::Sync);
        // The values round-trip.
        let again = LsmTreeConfig::from_values(&c.values()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn what_a_plugin_gives_is_checked_against_the_catalogue() {
        let cases: &[(&str, Value, &str)] = &[
            (
                "ORBIT_API_TOKEN",
                Value::Text("x".into()),
                "not a setting of the s3 backend",
            ),
            (
                "ORBIT_S3_RETRY_COUNT",
                Value::Int(101),
                "an integer from 0 to 100",
            ),
            (
                "ORBIT_S3_RETRY_COUNT",
                Value::Text("3".into()),
                "an integer from 0 to 100",
            ),
            (
                "ORBIT_S3_ENDPOINT",
                Value::Text("ftp://x".into()),
                "http://",
            ),
            ("ORBIT_S3_BUCKET", Value::Text(" ".into()), "non-empty"),
            ("ORBIT_S3_BUCKET", Value::Absent, "a value"),
            (
                "ORBIT_S3_CONNECTION_TIMEOUT",
                Value::Millis(1500),
                "a duration",
            ),
        ];
        for (name, value, expected) in cases {
            let mut g = given(&[("ORBIT_S3_BUCKET", Value::Text("b".into()))]);
            g.retain(|(n, _)| n != name);
            g.push((name.to_string(), value.clone()));
            let errors = BackendConfig::from_plugin(BackendKind::S3, g, "/d").unwrap_err();
            let text = errors.iter().map(ToString::to_string).collect::<String>();
            assert!(
                text.contains(name) && text.contains(expected),
                "{name}: {text}"
            );
        }
        // Required and not given at all.
        let errors = BackendConfig::from_plugin(BackendKind::S3, Vec::new(), "/d").unwrap_err();
        assert_eq!(errors[0].setting, "ORBIT_S3_BUCKET");
        // Given twice.
        let twice = given(&[
            ("ORBIT_S3_BUCKET", Value::Text("a".into())),
            ("ORBIT_S3_BUCKET", Value::Text("b".into())),
        ]);
        assert!(BackendConfig::from_plugin(BackendKind::S3, twice, "/d").is_err());
    }

    #[test]
    fn a_secret_file_with_a_default_may_be_unset() {
        let c = BackendConfig::from_plugin(
            BackendKind::Gcp,
            given(&[
                ("ORBIT_GCP_BUCKET_NAME", Value::Text("g".into())),
                ("ORBIT_GCP_CREDENTIALS_PATH", Value::Absent),
            ]),
            "/d",
        )
        .unwrap();
        let BackendConfig::Gcp(c) = c else { panic!() };
        assert_eq!(c.credentials_path, None);
        // Left out, it is the default file.
        let c = BackendConfig::from_plugin(
            BackendKind::Gcp,
            given(&[("ORBIT_GCP_BUCKET_NAME", Value::Text("g".into()))]),
            "/d",
        )
        .unwrap();
        let BackendConfig::Gcp(c) = c else { panic!() };
        assert_eq!(
            c.credentials_path,
            Some(SecretRef::File("/app/gcp/credentials.json".into()))
        );
    }

    #[test]
    fn every_declared_default_parses_to_its_field() {
        for kind in BackendKind::ALL {
            let required: Vec<(String, Value)> = BackendConfig::settings(kind)
                .iter()
                .filter(|s| s.required)
                .map(|s| (s.env.to_string(), Value::Text("x".into())))
                .collect();
            let c = BackendConfig::from_plugin(kind, required, "/d").unwrap();
            assert_eq!(c.kind(), kind);
        }
    }
}
