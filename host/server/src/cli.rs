//! The command line: `orbit-server [--config FILE] [serve]` and
//! `orbit-server config check [--env] [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orbit_plugin_runtime::{RenderedValue, types as wit};

use crate::bootstrap::{self, BootstrapError};
use crate::settings::{ConfigSource, ServerSettings};
use crate::{context, logging, serve};

#[derive(Debug, Parser)]
#[command(
    name = "orbit-server",
    version,
    about = "Orbit storage host: a key-value API over pluggable backends, policy in WebAssembly plugins"
)]
pub struct Cli {
    /// TOML configuration file (environment variables win over it).
    #[arg(long, global = true, env = "ORBIT_CONFIG_FILE", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Tools for plugin authors.
    Plugin {
        #[command(subcommand)]
        command: crate::plugin_cli::PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Run the selector and translator plugins on the current environment and
    /// TOML; print the effective configuration (secrets as references only) or
    /// the diagnostics, exiting non-zero on errors.
    Check {
        /// Also print the environment variables that reproduce the configuration.
        #[arg(long)]
        env: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print every setting (variable, TOML key, default, meaning) as a
    /// markdown table.
    Settings,
    /// Regenerate the files that follow from the code: the README's
    /// settings table, the Helm chart's backend tables and their schema, the
    /// raw manifests' backend variables (from the settings catalogue), and
    /// the HTTP API's OpenAPI description (docs/openapi.json).
    Generate {
        /// The repository root.
        #[arg(default_value = ".")]
        root: std::path::PathBuf,
        /// Only check: exit non-zero, naming the files that differ.
        #[arg(long)]
        check: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

/// The catalogue of settings as a markdown table (also in README.md).
pub fn settings_table() -> String {
    use orbit_config_syntax::Scope;
    let mut out =
        String::from("| variable | TOML key | default | what it does |\n|---|---|---|---|\n");
    for s in orbit_config_syntax::settings() {
        let scope = match s.scope {
            Scope::Backend(k) => format!("{k}: "),
            _ => String::new(),
        };
        let toml = if s.toml.is_empty() {
            String::from("-")
        } else {
            format!("`{}`", s.toml)
        };
        let default = match (s.default, s.required) {
            (_, true) => "required".to_string(),
            ("", _) => "-".to_string(),
            (d, _) => format!("`{}`", d.replace("{data_dir}", "$ORBIT_DATA_DIR")),
        };
        let old_names = if s.env_aliases.is_empty() {
            String::new()
        } else {
            format!(" Old name, still read: `{}`.", s.env_aliases.join("`, `"))
        };
        out.push_str(&format!(
            "| `{}` | {toml} | {default} | {scope}{}{old_names} |\n",
            s.env,
            s.doc.replace('|', "\\|")
        ));
    }
    out
}

async fn run(cli: Cli) -> ExitCode {
    let src = match ConfigSource::from_process(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let settings = match ServerSettings::from_source(&src) {
        Ok(s) => s,
        Err(e) => return fail(&format!("invalid server settings:\n{e}")),
    };
    logging::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match serve::run(src, settings).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                // Logging is up, so the error goes out once, in the log format.
                tracing::error!("{e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Config {
            command: ConfigCommand::Check { env, json },
        } => check(src, settings, env, json).await,
        Command::Plugin { command } => crate::plugin_cli::run(command, &src, &settings).await,
        Command::Config {
            command: ConfigCommand::Settings,
        } => {
            print!("{}", settings_table());
            ExitCode::SUCCESS
        }
        Command::Config {
            command: ConfigCommand::Generate { root, check },
        } => generate(&root, check),
    }
}

fn generate(root: &std::path::Path, check: bool) -> ExitCode {
    use crate::generated;
    let files = if check {
        generated::drift(root)
    } else {
        generated::write(root)
    };
    match files {
        Ok(files) if check && !files.is_empty() => fail(&format!(
            "{} differ from what the code generates; run `{}`",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            generated::COMMAND
        )),
        Ok(files) => {
            for f in files {
                println!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

async fn check(src: ConfigSource, settings: ServerSettings, env: bool, json: bool) -> ExitCode {
    let plugins = match bootstrap::load_plugins(&settings, None) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let ctx = context::build(&src, &settings.data_dir);
    let resolved = match bootstrap::resolve(
        &plugins.selector,
        &plugins.translator,
        &ctx,
        &crate::secrets::bindings(&src),
    )
    .await
    {
        Ok(r) => r,
        Err(e @ (BootstrapError::Selection(_) | BootstrapError::Translation { .. })) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Err(e) => return fail(&e),
    };
    let rendered = if env {
        match plugins.translator.render_env(&resolved.config).await {
            Ok(r) => Some(r),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    let env_lines: Vec<String> = rendered
        .unwrap_or_default()
        .iter()
        .map(|v| match &v.value {
            RenderedValue::Plain(s) => format!("{}={s}", v.name),
            RenderedValue::Secret(wit::SecretRef::Env(n)) => {
                format!("{}=<secret from env {n}>", v.name)
            }
            RenderedValue::Secret(wit::SecretRef::File(p)) => {
                format!("{}=<secret from file {p}>", v.name)
            }
        })
        .collect();
    let warnings: Vec<String> = resolved.warnings.iter().map(ToString::to_string).collect();
    if json {
        let plugin_list: Vec<_> = [
            plugins.selector.info(),
            plugins.translator.info(),
            plugins.health.info(),
        ]
        .iter()
        .map(|i| serde_json::json!({"role": i.role.name(), "source": i.source, "sha256": i.sha256}))
        .collect();
        let out = serde_json::json!({
            "backend": resolved.backend.name(),
            "reason": resolved.reason,
            "config": crate::config_view::json(&resolved.config),
            "warnings": warnings,
            "env": env_lines,
            "plugins": plugin_list,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!("backend: {} ({})", resolved.backend, resolved.reason);
        println!(
            "\n[effective configuration]\n{}",
            crate::config_view::toml(&resolved.config)
        );
        for w in &warnings {
            println!("{w}");
        }
        if env {
            println!("\n[environment]");
            for l in &env_lines {
                println!("{l}");
            }
        }
    }
    ExitCode::SUCCESS
}
