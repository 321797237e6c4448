//! Where a catalogue setting's value comes from: the environment first, then
//! the TOML file (at its path or one of its compatibility aliases), else the
//! default.

use orbit_config_syntax::Setting;

use crate::toml_doc::{TomlDoc, TomlScalar, scalar};
use crate::{Env, EnvValue};

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The environment variable of that name.
    Env(String),
    /// The TOML file, at this dotted path.
    Toml(String),
    /// The catalogue default.
    Default,
}

impl Source {
    /// The name a diagnostic should point at: the variable or TOML path that
    /// was read, or the setting's variable for a default.
    pub fn variable(&self, setting: &Setting) -> String {
        match self {
            Source::Env(name) => name.clone(),
            Source::Toml(path) => path.clone(),
            Source::Default => setting.env.to_string(),
        }
    }

    /// `ORBIT_X=value`, `persistence.x.y = value in the TOML file`, or
    /// `ORBIT_X (default value)`: how a sentence names a value.
    pub fn show(&self, setting: &Setting, value: &str) -> String {
        match self {
            Source::Env(name) => format!("{name}={value}"),
            Source::Toml(path) => format!("{path} = {value:?} in the TOML file"),
            Source::Default => format!("{}={value} (the default)", setting.env),
        }
    }
}

/// The raw value found for a setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raw {
    /// A value as text (TOML numbers and booleans are written as text).
    Text(String),
    /// A TOML value of a type no setting accepts (`array`, `table`, ...).
    NotScalar(&'static str),
    /// The environment variable is set but the host withheld its value.
    Withheld,
    /// Neither the environment nor the TOML file sets it.
    Unset,
}

/// The outcome of looking a setting up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub raw: Raw,
    pub source: Source,
    /// TOML paths that were also set but lost to an earlier one (an alias
    /// given together with the main key).
    pub shadowed: Vec<String>,
}

/// The setting's TOML paths: the main one, then its aliases (same table).
pub fn toml_paths(setting: &Setting) -> Vec<String> {
    if setting.toml.is_empty() {
        return Vec::new();
    }
    let mut paths = vec![setting.toml.to_string()];
    let table = setting.toml.rsplit_once('.').map(|(t, _)| t);
    for alias in setting.toml_aliases {
        paths.push(match table {
            Some(t) => format!("{t}.{alias}"),
            None => (*alias).to_string(),
        });
    }
    paths
}

/// Looks `setting` up: environment, then TOML (main key, then aliases).
pub fn find(setting: &Setting, env: &Env, doc: Option<&TomlDoc<'_>>) -> Found {
    let mut shadowed = Vec::new();
    // The current name, else an older one the catalogue still accepts.
    let mut found: Option<(Raw, Source)> = std::iter::once(setting.env)
        .chain(setting.env_aliases.iter().copied())
        .find_map(|name| match env.get(name) {
            Some(EnvValue::Plain(v)) => Some((Raw::Text(v.clone()), Source::Env(name.to_string()))),
            Some(EnvValue::Withheld) => Some((Raw::Withheld, Source::Env(name.to_string()))),
            None => None,
        });
    let env_won = found.is_some();
    if let Some(doc) = doc {
        for path in toml_paths(setting) {
            let Some(value) = doc.get(&path) else {
                continue;
            };
            if found.is_some() {
                if !env_won {
                    shadowed.push(path);
                }
                continue;
            }
            let raw = match scalar(value) {
                TomlScalar::Text(t) => Raw::Text(t),
                TomlScalar::Other(ty) => Raw::NotScalar(ty),
            };
            found = Some((raw, Source::Toml(path)));
        }
    }
    let (raw, source) = found.unwrap_or((Raw::Unset, Source::Default));
    Found {
        raw,
        source,
        shadowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_then_toml_then_aliases() {
        let setting = orbit_config_syntax::lookup("ORBIT_LSM_MEMTABLE_SIZE").unwrap();
        let doc = TomlDoc::parse(
            "[persistence.lsm_tree]\nmemtable_size_limit = 1024\nmemtable_size = '2KiB'\n",
        )
        .unwrap();
        let empty = Env::default();
        let f = find(setting, &empty, Some(&doc));
        assert_eq!(f.raw, Raw::Text("2KiB".into()));
        assert_eq!(
            f.source,
            Source::Toml("persistence.lsm_tree.memtable_size".into())
        );
        assert_eq!(f.shadowed, ["persistence.lsm_tree.memtable_size_limit"]);

        let doc = TomlDoc::parse("[persistence.lsm_tree]\nmemtable_size_limit = 1024\n").unwrap();
        let f = find(setting, &empty, Some(&doc));
        assert_eq!(f.raw, Raw::Text("1024".into()));
        assert_eq!(
            f.source,
            Source::Toml("persistence.lsm_tree.memtable_size_limit".into())
        );

        let env = Env::new([(
            "ORBIT_LSM_MEMTABLE_SIZE".to_string(),
            EnvValue::Plain("9".into()),
        )]);
        let f = find(setting, &env, Some(&doc));
        assert_eq!(f.raw, Raw::Text("9".into()));
        assert!(f.shadowed.is_empty());
        assert_eq!(find(setting, &empty, None).raw, Raw::Unset);
    }
}
