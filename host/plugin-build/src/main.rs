//! `orbit-plugin-build`: builds Orbit's plugins into `plugins/dist/`, checks
//! the committed ones, or builds any plugin crate.
//!
//!     cargo run --bin orbit-plugin-build                      # build plugins/dist/*.wasm
//!     cargo run --bin orbit-plugin-build -- --check           # rebuild and compare, exit 1 on mismatch
//!     cargo run --bin orbit-plugin-build -- --crate DIR [--out FILE]
//!     cargo run --bin orbit-plugin-build -- --example NAME [--out FILE]
//!     cargo run --bin orbit-plugin-build -- c-bindings WIT_DIR WORLD OUT_DIR
//!     cargo run --bin orbit-plugin-build -- componentize CORE.wasm COMPONENT.wasm

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use orbit_plugin_build::{
    build_component, build_default_plugins, c_bindings, check, componentize_file, dist_dir,
    repo_root, sha256_hex,
};

const USAGE: &str = "usage: orbit-plugin-build [--check | --crate DIR [--out FILE] | --example NAME [--out FILE]]
       orbit-plugin-build c-bindings WIT_DIR WORLD OUT_DIR
       orbit-plugin-build componentize CORE.wasm COMPONENT.wasm

  (no arguments)    build the default plugins into plugins/dist/{selector,translator,health}.wasm
  --check           rebuild them in a temporary directory and compare byte for byte with plugins/dist/
  --crate DIR       build the plugin crate in DIR (default output: DIR/dist/<dir name>.wasm)
  --example NAME    the same for examples/NAME
  --out FILE        where to write the component
  c-bindings        write wit-bindgen's C bindings of WORLD (<world>.h, <world>.c,
                    <world>_component_type.o) into OUT_DIR, for plugins written in C
  componentize      encode a core module that carries its component type (linked with
                    the bindings' *_component_type.o) as a component";

enum Mode {
    Default,
    Check,
    One {
        dir: PathBuf,
        out: Option<PathBuf>,
    },
    CBindings {
        wit: PathBuf,
        world: String,
        out: PathBuf,
    },
    Componentize {
        input: PathBuf,
        output: PathBuf,
    },
}

fn parse_args() -> Result<Mode> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.first().map(String::as_str) {
        Some("c-bindings") => {
            let [_, wit, world, out] = &all[..] else {
                bail!("c-bindings takes WIT_DIR WORLD OUT_DIR\n\n{USAGE}");
            };
            return Ok(Mode::CBindings {
                wit: wit.into(),
                world: world.clone(),
                out: out.into(),
            });
        }
        Some("componentize") => {
            let [_, input, output] = &all[..] else {
                bail!("componentize takes CORE.wasm COMPONENT.wasm\n\n{USAGE}");
            };
            return Ok(Mode::Componentize {
                input: input.into(),
                output: output.into(),
            });
        }
        _ => {}
    }
    let mut args = all.into_iter();
    let mut mode = Mode::Default;
    let mut out = None;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--check" => mode = Mode::Check,
            "--crate" => {
                mode = Mode::One {
                    dir: PathBuf::from(value("--crate")?),
                    out: None,
                }
            }
            "--example" => {
                mode = Mode::One {
                    dir: repo_root().join("examples").join(value("--example")?),
                    out: None,
                }
            }
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    match (&mut mode, out) {
        (Mode::One { out: slot, .. }, out) => *slot = out,
        (_, Some(_)) => bail!("--out goes with --crate or --example\n\n{USAGE}"),
        (_, None) => {}
    }
    Ok(mode)
}

fn run() -> Result<bool> {
    let started = Instant::now();
    match parse_args()? {
        Mode::Default => {
            for b in build_default_plugins(&dist_dir())? {
                println!(
                    "{}: {} bytes, sha256 {}",
                    b.path.display(),
                    b.size,
                    b.sha256
                );
            }
        }
        Mode::Check => {
            let mut ok = true;
            for c in check(&dist_dir())? {
                println!("{}", c.describe());
                ok &= c.matches();
            }
            if !ok {
                eprintln!(
                    "the committed plugins do not match their source; rebuild them with `cargo run --bin orbit-plugin-build` and commit plugins/dist/"
                );
                return Ok(false);
            }
        }
        Mode::One { dir, out } => {
            let bytes = build_component(&dir, None)?;
            let out = match out {
                Some(out) => out,
                None => {
                    let dir = dir.canonicalize().unwrap_or(dir);
                    let name = dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or("plugin".into());
                    dir.join("dist").join(format!("{name}.wasm"))
                }
            };
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "{}: {} bytes, sha256 {}",
                out.display(),
                bytes.len(),
                sha256_hex(&bytes)
            );
        }
        Mode::CBindings { wit, world, out } => {
            for path in c_bindings(&wit, &world, &out)? {
                println!("{}", path.display());
            }
        }
        Mode::Componentize { input, output } => {
            let size = componentize_file(&input, &output)?;
            println!("{}: {size} bytes", output.display());
        }
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(true)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("orbit-plugin-build: {e:#}");
            ExitCode::FAILURE
        }
    }
}
