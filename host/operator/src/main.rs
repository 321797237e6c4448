//! `orbit-operator`: run the controller, write or check the CRD, or render
//! a resource's objects offline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use orbit_operator::crd::OrbitCluster;
use orbit_operator::reconcile::{Context, error_policy, reconcile};
use orbit_operator::telemetry::Telemetry;
use orbit_operator::translate::Translators;
use orbit_operator::{crd_gen, offline, render};

#[derive(Debug, Parser)]
#[command(
    name = "orbit-operator",
    version,
    about = "Kubernetes operator for the Orbit storage host (OrbitCluster, orbit.turingworks.com/v1)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Watch OrbitCluster resources and reconcile them (in-cluster config or
    /// KUBECONFIG).
    Run {
        /// Only this namespace (default: every namespace).
        #[arg(long, env = "WATCH_NAMESPACE")]
        namespace: Option<String>,
        /// Where custom translators read from ConfigMaps are written.
        #[arg(
            long,
            env = "ORBIT_OPERATOR_PLUGIN_DIR",
            default_value = "/tmp/orbit-operator-plugins"
        )]
        plugin_dir: PathBuf,
        /// Where /healthz, /readyz and /metrics are served.
        #[arg(long, env = "ORBIT_OPERATOR_LISTEN", default_value = "0.0.0.0:8081")]
        listen: SocketAddr,
    },
    /// The CustomResourceDefinition.
    Crd {
        #[command(subcommand)]
        command: CrdCommand,
    },
    /// Print the objects the operator would apply for OrbitCluster files
    /// (YAML, one document per object), checked by the embedded translator.
    Render {
        files: Vec<PathBuf>,
        /// Namespace for resources that name none.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
}

#[derive(Debug, Subcommand)]
enum CrdCommand {
    /// Print the CRD.
    Print,
    /// Write the committed copies under the repository root.
    Write { root: PathBuf },
    /// Exit non-zero, saying which, if a committed copy has drifted.
    Check { root: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = match cli.command {
        Command::Crd { command } => crd(command),
        Command::Render { files, namespace } => tokio_run(render_files(files, namespace)),
        Command::Run {
            namespace,
            plugin_dir,
            listen,
        } => tokio_run(run(namespace, plugin_dir, listen)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn tokio_run(f: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

fn crd(command: CrdCommand) -> anyhow::Result<()> {
    match command {
        CrdCommand::Print => {
            print!("{}", crd_gen::crd_yaml().map_err(anyhow::Error::msg)?);
            Ok(())
        }
        CrdCommand::Write { root } => crd_gen::write(&root).map_err(anyhow::Error::msg),
        CrdCommand::Check { root } => match crd_gen::drift(&root).map_err(anyhow::Error::msg)? {
            None => Ok(()),
            Some(e) => Err(anyhow::Error::msg(e)),
        },
    }
}

async fn render_files(files: Vec<PathBuf>, namespace: String) -> anyhow::Result<()> {
    let translators = Translators::new(std::env::temp_dir().join("orbit-operator-render"))
        .map_err(anyhow::Error::msg)?;
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
        let rendered = offline::render_text(&translators, &text, &namespace)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        for o in rendered.objects {
            print!("---\n{}", serde_yaml::to_string(&o)?);
        }
    }
    Ok(())
}

async fn run(
    namespace: Option<String>,
    plugin_dir: PathBuf,
    listen: SocketAddr,
) -> anyhow::Result<()> {
    let telemetry = Arc::new(Telemetry::new());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (--listen)"))?;
    let router = telemetry.clone().router();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("health and metrics endpoints stopped: {e}");
        }
    });
    let client = Client::try_default()
        .await
        .context("no Kubernetes API server (in-cluster config or KUBECONFIG)")?;
    let translators = Arc::new(Translators::new(plugin_dir).map_err(anyhow::Error::msg)?);
    let ctx = Arc::new(Context::new(
        client.clone(),
        translators,
        env!("CARGO_PKG_VERSION").to_string(),
    ));
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let clusters: Api<OrbitCluster> = api(&client, &namespace);
    let controller = Controller::new(clusters, watcher::Config::default());
    let store = controller.store();
    let ready = (store.clone(), telemetry.clone());
    tokio::spawn(async move {
        if ready.0.wait_until_ready().await.is_ok() {
            ready.1.set_ready();
        }
    });
    // A Secret or plugins ConfigMap a cluster references: reconcile it (the
    // checksum annotation then rolls its pods).
    let referencing = move |ns: Option<String>, name: String, secret: bool| {
        store
            .state()
            .into_iter()
            .filter(|c| c.namespace() == ns)
            .filter(|c| {
                if secret {
                    render::secret_name(c) == name
                } else {
                    render::plugins_config_map(c).as_deref() == Some(name.as_str())
                }
            })
            .map(|c| ObjectRef::from_obj(&*c))
            .collect::<Vec<_>>()
    };
    let by_secret = referencing.clone();
    let by_config_map = referencing;
    tracing::info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        "orbit-operator started"
    );
    controller
        .owns(
            api::<StatefulSet>(&client, &namespace),
            watcher::Config::default(),
        )
        .owns(
            api::<Deployment>(&client, &namespace),
            watcher::Config::default(),
        )
        .owns(
            api::<Service>(&client, &namespace),
            watcher::Config::default(),
        )
        .watches(
            api::<Secret>(&client, &namespace),
            watcher::Config::default(),
            move |s| by_secret(s.namespace(), s.name_any(), true),
        )
        .watches(
            api::<ConfigMap>(&client, &namespace),
            watcher::Config::default(),
            move |c| by_config_map(c.namespace(), c.name_any(), false),
        )
        .shutdown_on_signal()
        .run(
            move |cluster, ctx| {
                let telemetry = telemetry.clone();
                async move {
                    let start = Instant::now();
                    let r = reconcile(cluster, ctx).await;
                    telemetry.observe(r.is_ok(), start.elapsed());
                    r
                }
            },
            error_policy,
            ctx,
        )
        .for_each(|r| async move {
            match r {
                Ok((obj, _)) => tracing::debug!(cluster = %obj.name, "reconciled"),
                Err(e) => tracing::debug!("reconcile error: {e}"),
            }
        })
        .await;
    Ok(())
}
