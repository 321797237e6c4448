//! Read-only access to the TOML configuration file.
//!
//! Only the `toml` crate's parser is used (no serde): plugins look values up
//! by dotted path and read scalars as text, so that `max_memtables = 16` and
//! `max_memtables = "16"` go through the same strict parser.

pub use toml::de::{DeTable, DeValue};

use crate::Diag;

/// What is accepted where a TOML file is expected.
pub const TOML_ACCEPTED: &str = "a TOML document (https://toml.io/en/v1.0.0)";

/// A parsed configuration file.
pub struct TomlDoc<'a> {
    root: DeTable<'a>,
}

/// A TOML value as a setting reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TomlScalar {
    /// A string, integer, float or boolean, written as text
    /// (`16`, `0.01`, `true`, `64MiB`).
    Text(String),
    /// A value no setting accepts: its TOML type (`array`, `table`, `datetime`).
    Other(&'static str),
}

impl<'a> TomlDoc<'a> {
    /// Parses `text`; a syntax error becomes an error diagnostic naming the
    /// line and column. The offending line itself is not quoted: it may hold
    /// a secret the host could not withhold from an unparseable file.
    pub fn parse(text: &'a str) -> Result<Self, Diag> {
        match DeTable::parse(text) {
            Ok(root) => Ok(TomlDoc {
                root: root.into_inner(),
            }),
            Err(err) => {
                let at = err
                    .span()
                    .map(|span| {
                        let (line, column) = line_column(text, span.start);
                        format!(" at line {line}, column {column}")
                    })
                    .unwrap_or_default();
                Err(Diag::error(
                    "TOML file",
                    None,
                    TOML_ACCEPTED,
                    format!(
                        "the TOML configuration file is not valid TOML{at}: {}",
                        err.message()
                    ),
                ))
            }
        }
    }

    /// The top-level table.
    pub fn root(&self) -> &DeTable<'a> {
        &self.root
    }

    /// The value at a dotted path such as `persistence.lsm_tree.data_dir`.
    pub fn get(&self, path: &str) -> Option<&DeValue<'a>> {
        let mut parts = path.split('.');
        let mut value = entry(&self.root, parts.next()?)?;
        for part in parts {
            value = entry(value.as_table()?, part)?;
        }
        Some(value)
    }

    /// The table at a dotted path, if it exists and is a table.
    pub fn table(&self, path: &str) -> Option<&DeTable<'a>> {
        self.get(path)?.as_table()
    }
}

/// The value of `key` in `table`.
pub fn entry<'t, 'a>(table: &'t DeTable<'a>, key: &str) -> Option<&'t DeValue<'a>> {
    table.get(key).map(|v| v.get_ref())
}

/// The keys of `table` with their values.
pub fn entries<'t, 'a>(table: &'t DeTable<'a>) -> impl Iterator<Item = (&'t str, &'t DeValue<'a>)> {
    table
        .iter()
        .map(|(k, v)| (k.get_ref().as_ref(), v.get_ref()))
}

/// A scalar value written as text; other types are reported by name.
pub fn scalar(value: &DeValue<'_>) -> TomlScalar {
    match value {
        DeValue::String(s) => TomlScalar::Text(s.to_string()),
        DeValue::Integer(i) => {
            let text = if i.radix() == 10 {
                i.as_str().to_string()
            } else {
                // `0x10` etc.: settings parse decimal text.
                u64::from_str_radix(i.as_str(), i.radix())
                    .map_or_else(|_| i.to_string(), |n| n.to_string())
            };
            TomlScalar::Text(text)
        }
        DeValue::Float(f) => TomlScalar::Text(f.as_str().to_string()),
        DeValue::Boolean(b) => TomlScalar::Text(b.to_string()),
        other => TomlScalar::Other(other.type_str()),
    }
}

/// 1-based line and byte column of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_scalars() {
        let doc = TomlDoc::parse(
            "[server]\npersistence_backend = 'lsm_tree'\n[persistence.lsm_tree]\nmax_memtables = 16\nbloom = 0.01\nx = 0x10\non = true\nlist = [1]\n",
        )
        .unwrap();
        let text = |p: &str| scalar(doc.get(p).unwrap());
        assert_eq!(
            text("server.persistence_backend"),
            TomlScalar::Text("lsm_tree".into())
        );
        assert_eq!(
            text("persistence.lsm_tree.max_memtables"),
            TomlScalar::Text("16".into())
        );
        assert_eq!(
            text("persistence.lsm_tree.bloom"),
            TomlScalar::Text("0.01".into())
        );
        assert_eq!(
            text("persistence.lsm_tree.x"),
            TomlScalar::Text("16".into())
        );
        assert_eq!(
            text("persistence.lsm_tree.on"),
            TomlScalar::Text("true".into())
        );
        assert_eq!(
            text("persistence.lsm_tree.list"),
            TomlScalar::Other("array")
        );
        assert!(doc.get("persistence.lsm_tree.missing").is_none());
        assert!(doc.get("server.persistence_backend.deeper").is_none());
        assert!(doc.table("persistence").is_some());
    }

    #[test]
    fn syntax_errors_name_the_line_without_quoting_it() {
        let err = TomlDoc::parse("a = 1\nsecret = \"abc\n").err().unwrap();
        assert!(err.message.contains("line 2"), "{}", err.message);
        assert!(!err.message.contains("abc"), "{}", err.message);
        // Deep nesting and garbage never panic.
        let deep = "a = ".to_string() + &"[".repeat(10_000);
        assert!(TomlDoc::parse(&deep).is_err());
        assert!(TomlDoc::parse("\u{0}\u{feff}=").is_err());
    }
}
