//! The files that follow from the code (the settings catalogue, the HTTP
//! handlers), and the command that writes them (`orbit-server config
//! generate [--check] [ROOT]`):
//!
//! | file | what is generated |
//! |---|---|
//! | `README.md` | the settings table |
//! | `helm/orbit-rs/values.yaml` | the `persistence.<backend>` tables ([`crate::chart`]) |
//! | `helm/orbit-rs/values.schema.json` | their JSON schema ([`crate::chart`]) |
//! | `k8s/05-statefulset.yaml` | the backend variables of all seven backends ([`crate::manifests`]) |
//! | `k8s/06-deployment-cloud.yaml` | the backend variables of the cloud backends |
//! | `docs/openapi.json` | all of it: the HTTP API's OpenAPI 3.1 description ([`crate::http::openapi`]) |
//!
//! A text region is the lines between a `BEGIN generated` and an `END
//! generated` marker line; the rest of each file is written by hand
//! (`docs/openapi.json` has no hand-written part).
//! `tests/docs.rs` fails when a committed file has drifted, so a new setting
//! is one catalogue line and this command.

use std::path::{Path, PathBuf};

/// One generated file: its path under the repository root and the function
/// that turns its current text into what it must be.
struct Generated {
    path: &'static str,
    render: fn(&str) -> Result<String, String>,
}

const FILES: &[Generated] = &[
    Generated {
        path: "README.md",
        render: |text| replace_region(text, "settings table", &crate::cli::settings_table()),
    },
    Generated {
        path: "helm/orbit-rs/values.yaml",
        render: |text| replace_region(text, "backend settings", &crate::chart::values_yaml()),
    },
    Generated {
        path: "helm/orbit-rs/values.schema.json",
        render: crate::chart::schema_json,
    },
    Generated {
        path: "k8s/05-statefulset.yaml",
        render: |text| {
            replace_region(
                text,
                "backend variables",
                &crate::manifests::env_block(&orbit_config_syntax::BackendKind::ALL),
            )
        },
    },
    Generated {
        path: "k8s/06-deployment-cloud.yaml",
        render: |text| {
            replace_region(
                text,
                "backend variables",
                &crate::manifests::env_block(&crate::manifests::CLOUD),
            )
        },
    },
    Generated {
        path: "docs/openapi.json",
        render: |_| Ok(crate::http::openapi::json()),
    },
];

/// The command that regenerates every file.
pub const COMMAND: &str = "orbit-server config generate";

/// The files under `root` that differ from what the code generates.
pub fn drift(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut stale = Vec::new();
    for file in FILES {
        let path = root.join(file.path);
        let text = read(&path)?;
        if (file.render)(&text).map_err(|e| format!("{}: {e}", path.display()))? != text {
            stale.push(path);
        }
    }
    Ok(stale)
}

/// Rewrites the generated parts of every file under `root`; returns the
/// files it changed.
pub fn write(root: &Path) -> Result<Vec<PathBuf>, String> {
    let mut changed = Vec::new();
    for file in FILES {
        let path = root.join(file.path);
        let text = read(&path)?;
        let new = (file.render)(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if new != text {
            std::fs::write(&path, new).map_err(|e| format!("{}: {e}", path.display()))?;
            changed.push(path);
        }
    }
    Ok(changed)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} (give the repository root: `{COMMAND} ROOT`)",
            path.display()
        )
    })
}

/// Replaces the lines between the marker lines `... BEGIN generated <name>
/// ...` and `... END generated <name> ...` with `content`. The markers may
/// sit in any comment syntax (`#`, `<!-- -->`) and indentation.
pub fn replace_region(text: &str, name: &str, content: &str) -> Result<String, String> {
    let begin = format!("BEGIN generated {name}");
    let end = format!("END generated {name}");
    let line_with = |from: usize, marker: &str| {
        text[from..].find(marker).map(|at| {
            let at = from + at;
            let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            let stop = text[at..].find('\n').map_or(text.len(), |n| at + n + 1);
            (start, stop)
        })
    };
    let (_, body_start) = line_with(0, &begin).ok_or_else(|| format!("no line with `{begin}`"))?;
    let (body_end, _) = line_with(body_start, &end)
        .ok_or_else(|| format!("no line with `{end}` after `{begin}`"))?;
    Ok(format!(
        "{}{content}{}",
        &text[..body_start],
        &text[body_end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::replace_region;

    #[test]
    fn a_region_is_replaced_between_its_marker_lines_only() {
        let text = "a\n  # BEGIN generated x: do not edit\nold\n  # END generated x\nb\n";
        assert_eq!(
            replace_region(text, "x", "new\n").unwrap(),
            "a\n  # BEGIN generated x: do not edit\nnew\n  # END generated x\nb\n"
        );
        let err = replace_region("a\n", "x", "").unwrap_err();
        assert!(err.contains("BEGIN generated x"), "{err}");
        let err = replace_region("# BEGIN generated x\n", "x", "").unwrap_err();
        assert!(err.contains("END generated x"), "{err}");
    }
}
