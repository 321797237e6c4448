//! Native tests through the exported functions (the WIT types compile on the
//! host target too): round trips for all seven backends, and the
//! diagnostics users see.

use std::time::Duration;

use super::*;
use orbit::storage::types::{
    Diagnostic, EnvValue, EnvVar, HostFacts, PodIdentity, SecretRef as WitSecretRef, Severity,
};
use orbit_config_syntax::{
    AzureConfig, BackendConfig, BackendKind, CowBtreeConfig, Durability, GcpConfig, LsmTreeConfig,
    MemoryConfig, RocksdbConfig, S3Config, SecretRef,
};

/// A translation with its configuration read back into the typed form the
/// host builds (`BackendConfig::from_plugin`).
struct Translation {
    config: Option<BackendConfig>,
    diagnostics: Vec<Diagnostic>,
}

/// The typed configuration of a WIT one. The translator must give every
/// setting that has a value: nothing is left for the host to fill in.
fn typed(c: &orbit::storage::config::BackendConfig) -> BackendConfig {
    let (kind, values) = config::from_wit(c);
    let config = BackendConfig::from_plugin(
        kind,
        values.iter().map(|(n, v)| (n.to_string(), v.clone())),
        "/host-would-fill-this",
    )
    .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        values.iter().count(),
        BackendConfig::settings(kind).len(),
        "the translator left settings out: {values:?}"
    );
    config
}

/// `None` as a value means "set, withheld" (a secret).
fn ctx(env: &[(&str, Option<&str>)], toml: Option<&str>) -> DeploymentContext {
    DeploymentContext {
        env: env
            .iter()
            .map(|(n, v)| EnvVar {
                name: n.to_string(),
                value: v.map_or(EnvValue::Withheld, |v| EnvValue::Plain(v.to_string())),
            })
            .collect(),
        toml: toml.map(str::to_string),
        facts: HostFacts {
            dirs: Vec::new(),
            memory_limit_bytes: None,
            cpu_count: 2,
            pod: PodIdentity {
                pod_name: None,
                pod_namespace: None,
                pod_ip: None,
                node_name: None,
                hostname: None,
            },
        },
    }
}

fn translate(kind: BackendKind, env: &[(&str, Option<&str>)], toml: Option<&str>) -> Translation {
    let t = Translator::translate(glue::wit_kind(kind), ctx(env, toml));
    assert_eq!(
        t.config.is_some(),
        !t.diagnostics.iter().any(|d| d.severity == Severity::Error),
        "config present iff no error: {:?}",
        t.diagnostics
    );
    Translation {
        config: t.config.as_ref().map(typed),
        diagnostics: t.diagnostics,
    }
}

fn errors(t: &Translation) -> Vec<&Diagnostic> {
    t.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect()
}

fn warnings(t: &Translation) -> Vec<&Diagnostic> {
    t.diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect()
}

fn kind_of(c: &BackendConfig) -> BackendKind {
    c.kind()
}

/// translate(render_env(c)) == c, with secrets arriving withheld as the host sends them.
fn round_trip(c: BackendConfig) {
    let vars = Translator::render_env(config::to_wit(c.kind(), &c.values()));
    let env: Vec<(String, Option<String>)> = vars
        .iter()
        .map(|v| {
            let known = orbit_config_syntax::lookup(&v.name).is_some()
                || v.name
                    .strip_suffix("_FILE")
                    .and_then(orbit_config_syntax::lookup)
                    .is_some();
            assert!(known, "render_env produced an unknown name {}", v.name);
            match &v.value {
                RenderedValue::Plain(s) => (v.name.clone(), Some(s.clone())),
                RenderedValue::Secret(WitSecretRef::Env(_)) => (v.name.clone(), None),
                RenderedValue::Secret(WitSecretRef::File(p)) => {
                    panic!("{}: file secret rendered as a secret: {p}", v.name)
                }
            }
        })
        .collect();
    let env: Vec<(&str, Option<&str>)> = env
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_deref()))
        .collect();
    let t = translate(kind_of(&c), &env, None);
    assert!(
        t.diagnostics.is_empty(),
        "{:?}\nfrom {env:?}",
        t.diagnostics
    );
    assert_eq!(t.config, Some(c), "from {env:?}");
}

fn non_default_configs() -> Vec<BackendConfig> {
    vec![
        BackendConfig::Memory(MemoryConfig {
            max_entries: 42,
            disk_backup: false,
            backup_path: "/srv/backup.json".into(),
            backup_interval: Duration::from_secs(7),
        }),
        BackendConfig::CowBtree(CowBtreeConfig {
            data_dir: "/srv/cow".into(),
            max_keys_per_node: 64,
            group_commit_size: 4096,
            enable_compression: false,
            sync_interval: Duration::from_secs(0),
            durability: Durability::Periodic,
        }),
        BackendConfig::LsmTree(LsmTreeConfig {
            data_dir: "/srv/lsm".into(),
            memtable_size: 1 << 20,
            max_memtables: 3,
            bloom_fp_rate: 0.001,
            enable_compaction: false,
            compaction_threshold: 9,
            durability: Durability::None,
            sync_interval: Duration::from_millis(250),
            block_cache_size: 1 << 20,
            ..LsmTreeConfig::defaults("/unused").unwrap()
        }),
        BackendConfig::Rocksdb(RocksdbConfig {
            data_dir: "/srv/rocks".into(),
            enable_wal: false,
            max_background_jobs: 2,
            write_buffer_size: 1000,
            max_write_buffer_number: 5,
            target_file_size_base: 2000,
            enable_statistics: false,
            block_cache_size: 0,
            durability: Durability::Periodic,
            sync_interval: Duration::from_millis(50),
        }),
        BackendConfig::S3(S3Config {
            endpoint: Some("http://minio:9000".into()),
            region: "eu-west-1".into(),
            bucket: "orbit-data".into(),
            access_key_id: Some(SecretRef::Env("ORBIT_S3_ACCESS_KEY_ID".into())),
            secret_access_key: Some(SecretRef::File("/var/run/secrets/s3/secret".into())),
            prefix: String::new(),
            enable_ssl: false,
            connection_timeout: Duration::from_secs(5),
            read_timeout: Some(Duration::from_secs(60)),
            write_timeout: None,
            retry_count: 0,
        }),
        BackendConfig::Azure(AzureConfig {
            account_name: "devstoreaccount1".into(),
            account_key: Some(SecretRef::File("/secrets/azure-key".into())),
            container_name: "orbit".into(),
            endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
            prefix: "p/q".into(),
            connection_timeout: Duration::from_secs(1),
            retry_count: 100,
        }),
        BackendConfig::Gcp(GcpConfig {
            project_id: Some("my-project".into()),
            bucket_name: "b".into(),
            credentials_path: None,
            service_account_key: Some(SecretRef::Env("ORBIT_GCP_SERVICE_ACCOUNT_KEY".into())),
            prefix: "orbit".into(),
            connection_timeout: Duration::from_secs(30),
            retry_count: 3,
        }),
        BackendConfig::Gcp(GcpConfig {
            project_id: None,
            bucket_name: "b".into(),
            credentials_path: Some(SecretRef::File("/secrets/gcp.json".into())),
            service_account_key: None,
            prefix: "orbit".into(),
            connection_timeout: Duration::from_secs(30),
            retry_count: 3,
        }),
    ]
}

#[test]
fn round_trip_non_default_configs_of_all_seven_backends() {
    let configs = non_default_configs();
    for kind in [
        BackendKind::Memory,
        BackendKind::CowBtree,
        BackendKind::LsmTree,
        BackendKind::Rocksdb,
        BackendKind::S3,
        BackendKind::Azure,
        BackendKind::Gcp,
    ] {
        assert!(
            configs.iter().any(|c| kind_of(c) == kind),
            "{kind:?} untested"
        );
    }
    for c in configs {
        round_trip(c);
    }
}

#[test]
fn defaults_and_their_round_trip() {
    let required: &[(&str, Option<&str>)] = &[
        ("ORBIT_S3_BUCKET", Some("b")),
        ("ORBIT_AZURE_ACCOUNT_NAME", Some("acct")),
        ("ORBIT_AZURE_CONTAINER_NAME", Some("c")),
        ("ORBIT_GCP_BUCKET_NAME", Some("g")),
    ];
    for c in non_default_configs() {
        let t = translate(kind_of(&c), required, None);
        assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
        round_trip(t.config.unwrap());
    }
    let t = translate(BackendKind::LsmTree, &[], None);
    assert_eq!(
        t.config,
        Some(BackendConfig::LsmTree(LsmTreeConfig {
            data_dir: "/app/data/lsm_tree".into(),
            memtable_size: 67108864,
            max_memtables: 10,
            bloom_fp_rate: 0.01,
            enable_compaction: true,
            compaction_threshold: 4,
            durability: Durability::Sync,
            sync_interval: Duration::from_millis(1000),
            block_cache_size: 256 << 20,
            ..LsmTreeConfig::defaults("/app/data").unwrap()
        }))
    );
    let t = translate(BackendKind::Gcp, &required[3..], None);
    let Some(BackendConfig::Gcp(g)) = t.config else {
        panic!()
    };
    assert_eq!(
        g.credentials_path,
        Some(SecretRef::File("/app/gcp/credentials.json".into()))
    );
    assert_eq!(g.service_account_key, None);
    let t = translate(BackendKind::S3, &required[..1], None);
    let Some(BackendConfig::S3(s)) = t.config else {
        panic!()
    };
    assert_eq!(
        (s.endpoint, s.read_timeout, s.access_key_id, s.enable_ssl),
        (None, None, None, true)
    );
}

#[test]
fn data_dir_placeholder() {
    let t = translate(
        BackendKind::Rocksdb,
        &[("ORBIT_DATA_DIR", Some("/data/"))],
        None,
    );
    let Some(BackendConfig::Rocksdb(r)) = t.config else {
        panic!()
    };
    assert_eq!(r.data_dir, "/data/rocksdb");
    let t = translate(
        BackendKind::Memory,
        &[],
        Some("[server]\ndata_dir = '/var/lib/orbit'\n"),
    );
    let Some(BackendConfig::Memory(m)) = t.config else {
        panic!()
    };
    assert_eq!(m.backup_path, "/var/lib/orbit/orbit_backup.json");
}

#[test]
fn toml_numbers_strings_and_aliases() {
    let toml = r#"
[persistence.lsm_tree]
memtable_size_limit = "64MiB"
max_memtables = 16
bloom_filter_fp_rate = 0.02
enable_compaction = "false"
compaction_threshold = "8"
data_dir = "/x"
durability = "periodic"
sync_interval = "200ms"
"#;
    let t = translate(
        BackendKind::LsmTree,
        &[("ORBIT_LSM_MAX_MEMTABLES", Some("12"))],
        Some(toml),
    );
    assert!(t.diagnostics.is_empty(), "{:?}", t.diagnostics);
    assert_eq!(
        t.config,
        Some(BackendConfig::LsmTree(LsmTreeConfig {
            data_dir: "/x".into(),
            memtable_size: 64 << 20,
            max_memtables: 12,
            bloom_fp_rate: 0.02,
            enable_compaction: false,
            compaction_threshold: 8,
            durability: Durability::Periodic,
            sync_interval: Duration::from_millis(200),
            block_cache_size: 256 << 20,
            ..LsmTreeConfig::defaults("/app/data").unwrap()
        }))
    );
    // Main key and alias together: the main key wins, with a warning.
    let t = translate(
        BackendKind::LsmTree,
        &[],
        Some("[persistence.lsm_tree]\nmemtable_size = 1024\nmemtable_size_limit = 2048\n"),
    );
    let Some(BackendConfig::LsmTree(l)) = &t.config else {
        panic!()
    };
    assert_eq!(l.memtable_size, 1024);
    assert_eq!(
        warnings(&t)[0].variable,
        "persistence.lsm_tree.memtable_size_limit"
    );
}

#[test]
fn strict_values_name_variable_value_and_accepted() {
    let t = translate(
        BackendKind::LsmTree,
        &[("ORBIT_LSM_MAX_MEMTABLES", Some("abc"))],
        None,
    );
    let e = errors(&t);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].variable, "ORBIT_LSM_MAX_MEMTABLES");
    assert_eq!(e[0].value.as_deref(), Some("abc"));
    assert_eq!(e[0].accepted, "an integer from 2 to 1024");
    assert_eq!(
        e[0].message,
        "ORBIT_LSM_MAX_MEMTABLES=abc: expected an integer from 2 to 1024"
    );

    let t = translate(
        BackendKind::Memory,
        &[("ORBIT_MEMORY_DISK_BACKUP", Some("false"))],
        None,
    );
    let Some(BackendConfig::Memory(m)) = t.config else {
        panic!()
    };
    assert!(!m.disk_backup);
    let t = translate(
        BackendKind::Memory,
        &[("ORBIT_MEMORY_DISK_BACKUP", Some("flase"))],
        None,
    );
    assert!(errors(&t)[0].accepted.contains("a boolean"));

    let t = translate(
        BackendKind::LsmTree,
        &[],
        Some("[persistence.lsm_tree]\nmemtable_size_limit = \"64 XB\"\n"),
    );
    let e = errors(&t);
    assert_eq!(e[0].variable, "persistence.lsm_tree.memtable_size_limit");
    assert!(e[0].message.starts_with("persistence.lsm_tree.memtable_size_limit = \"64 XB\" in the TOML file: expected a byte size"), "{}", e[0].message);
    let t = translate(
        BackendKind::LsmTree,
        &[],
        Some("[persistence.lsm_tree]\nmax_memtables = [1]\n"),
    );
    assert!(
        errors(&t)[0].message.contains("is a array") || errors(&t)[0].message.contains("array")
    );
    let t = translate(
        BackendKind::LsmTree,
        &[("ORBIT_LSM_MAX_MEMTABLES", Some(""))],
        None,
    );
    assert_eq!(errors(&t).len(), 1, "an explicitly empty count is an error");
    let t = translate(
        BackendKind::S3,
        &[
            ("ORBIT_S3_BUCKET", Some("b")),
            ("ORBIT_S3_ENDPOINT", Some("minio:9000")),
        ],
        None,
    );
    assert!(errors(&t)[0].accepted.contains("http://"));
    let t = translate(
        BackendKind::S3,
        &[
            ("ORBIT_S3_BUCKET", Some("b")),
            ("ORBIT_S3_ENDPOINT", Some("")),
        ],
        None,
    );
    assert!(t.config.is_some(), "an empty optional URL means none");
}

#[test]
fn required_settings() {
    let t = translate(BackendKind::S3, &[], None);
    let e = errors(&t);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].variable, "ORBIT_S3_BUCKET");
    assert!(
        e[0].message.contains("ORBIT_S3_BUCKET") && e[0].message.contains("`bucket`"),
        "{}",
        e[0].message
    );
    let t = translate(
        BackendKind::Azure,
        &[("ORBIT_AZURE_ACCOUNT_NAME", Some(" "))],
        None,
    );
    assert_eq!(errors(&t).len(), 2);
}

#[test]
fn secrets_travel_as_references() {
    let base = ("ORBIT_S3_BUCKET", Some("b"));
    let t = translate(
        BackendKind::S3,
        &[
            base,
            ("ORBIT_S3_ACCESS_KEY_ID", None),
            ("ORBIT_S3_SECRET_ACCESS_KEY_FILE", Some("/s/key")),
        ],
        None,
    );
    let Some(BackendConfig::S3(s)) = t.config else {
        panic!("{:?}", t.diagnostics)
    };
    assert_eq!(
        s.access_key_id,
        Some(SecretRef::Env("ORBIT_S3_ACCESS_KEY_ID".into()))
    );
    assert_eq!(s.secret_access_key, Some(SecretRef::File("/s/key".into())));

    // `<key>_file` in TOML.
    let toml = "[persistence.s3]\nbucket = 'b'\naccess_key_id_file = '/a'\nsecret_access_key_file = '/b'\n";
    let t = translate(BackendKind::S3, &[], Some(toml));
    let Some(BackendConfig::S3(s)) = t.config else {
        panic!("{:?}", t.diagnostics)
    };
    assert_eq!(s.access_key_id, Some(SecretRef::File("/a".into())));

    // The secret itself in TOML: refused, and never echoed.
    let toml = "[persistence.s3]\nbucket = 'b'\nsecret_access_key = '<withheld>'\n";
    let t = translate(
        BackendKind::S3,
        &[("ORBIT_S3_ACCESS_KEY_ID", None)],
        Some(toml),
    );
    let e = errors(&t);
    assert_eq!(e[0].variable, "persistence.s3.secret_access_key");
    assert_eq!(e[0].value, None);
    assert!(e[0].message.contains("secrets are not accepted in the TOML file; use ORBIT_S3_SECRET_ACCESS_KEY from a Kubernetes Secret or secret_access_key_file"), "{}", e[0].message);
    assert_eq!(e.len(), 1, "no extra 'missing secret' error: {e:?}");

    // Half a credential pair.
    let t = translate(
        BackendKind::S3,
        &[base, ("ORBIT_S3_ACCESS_KEY_ID", None)],
        None,
    );
    let e = errors(&t);
    assert_eq!(
        (e.len(), e[0].variable.as_str()),
        (1, "ORBIT_S3_SECRET_ACCESS_KEY")
    );

    // Both the variable and its _FILE form.
    let t = translate(
        BackendKind::Azure,
        &[
            ("ORBIT_AZURE_ACCOUNT_NAME", Some("a")),
            ("ORBIT_AZURE_CONTAINER_NAME", Some("c")),
            ("ORBIT_AZURE_ACCOUNT_KEY", None),
            ("ORBIT_AZURE_ACCOUNT_KEY_FILE", Some("/k")),
        ],
        None,
    );
    assert_eq!(errors(&t).len(), 1);
}

#[test]
fn plain_http_needs_ssl_off() {
    let t = translate(
        BackendKind::S3,
        &[
            ("ORBIT_S3_BUCKET", Some("b")),
            ("ORBIT_S3_ENDPOINT", Some("http://minio:9000")),
        ],
        None,
    );
    let e = errors(&t);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].variable, "ORBIT_S3_ENDPOINT");
    assert!(
        e[0].message.contains("ORBIT_S3_ENABLE_SSL=false"),
        "{}",
        e[0].message
    );
    let t = translate(
        BackendKind::S3,
        &[
            ("ORBIT_S3_BUCKET", Some("b")),
            ("ORBIT_S3_ENDPOINT", Some("http://minio:9000")),
            ("ORBIT_S3_ENABLE_SSL", Some("false")),
        ],
        None,
    );
    assert!(t.diagnostics.is_empty());
}

#[test]
fn unknown_names_warn_with_suggestions_and_other_backends_are_silent() {
    let toml = r#"
[server]
persistence_backend = "lsm_tree"
data_dri = "/x"
[persistence]
backend = "lsm_tree"
[persistence.lsm_tree]
memtable_size_limt = 5
[persistence.lsm_tre]
[persistence.s3]
bucket = "b"
endpoint = "http://minio:9000"
secret_access_key = "<withheld>"
[helth]
"#;
    let t = translate(
        BackendKind::LsmTree,
        &[
            ("ORBIT_LSM_MEMTABLE_SIZ", Some("1")),
            ("ORBIT_S3_BUCKET", Some("ignored")),
            ("ORBIT_S3_SECRET_ACCESS_KEY_FILE", Some("/k")),
            ("ORBIT_TOTALLY_UNRELATED", Some("1")),
            ("POD_NAME", Some("orbit-0")),
            ("SOMETHING_ELSE", Some("x")),
        ],
        Some(toml),
    );
    assert!(t.config.is_some());
    let w: Vec<(&str, &str)> = warnings(&t)
        .iter()
        .map(|d| (d.variable.as_str(), d.message.as_str()))
        .collect();
    let has = |var: &str, hint: &str| w.iter().any(|(v, m)| *v == var && m.contains(hint));
    assert!(
        has(
            "ORBIT_LSM_MEMTABLE_SIZ",
            "did you mean ORBIT_LSM_MEMTABLE_SIZE?"
        ),
        "{w:#?}"
    );
    assert!(
        has("ORBIT_TOTALLY_UNRELATED", "not an Orbit setting"),
        "{w:#?}"
    );
    assert!(
        has("server.data_dri", "did you mean server.data_dir?"),
        "{w:#?}"
    );
    assert!(
        has("persistence.backend", "[server] persistence_backend"),
        "{w:#?}"
    );
    assert!(
        has(
            "persistence.lsm_tree.memtable_size_limt",
            "did you mean persistence.lsm_tree.memtable_size_limit?"
        ),
        "{w:#?}"
    );
    assert!(
        has(
            "persistence.lsm_tre",
            "did you mean [persistence.lsm_tree]?"
        ),
        "{w:#?}"
    );
    assert!(
        has(
            "persistence.s3.secret_access_key",
            "secrets are not accepted"
        ),
        "{w:#?}"
    );
    assert!(has("helth", "did you mean [health]?"), "{w:#?}");
    assert_eq!(w.len(), 8, "{w:#?}");
}

#[test]
fn withheld_non_secret_is_explained() {
    // `ORBIT_COW_MAX_KEYS_PER_NODE` contains `_KEY`, so `is_secret_name`
    // calls it a secret and a host that follows it withholds the value.
    let t = translate(
        BackendKind::CowBtree,
        &[("ORBIT_COW_MAX_KEYS_PER_NODE", None)],
        None,
    );
    assert!(errors(&t)[0].message.contains("withheld"));
    let t = translate(
        BackendKind::CowBtree,
        &[],
        Some("[persistence.cow_btree]\nmax_keys_per_node = '<withheld>'\n"),
    );
    assert!(errors(&t)[0].message.contains("withheld"));
}

#[test]
fn broken_toml_is_an_error_not_a_trap() {
    let t = translate(
        BackendKind::Memory,
        &[],
        Some("[persistence.memory\nmax_entries = 1"),
    );
    assert_eq!(errors(&t)[0].variable, "TOML file");
}

/// Deterministic garbage for every variable and TOML key: never a panic, and
/// a config exactly when there is no error.
#[test]
fn weird_input_never_panics() {
    let pieces = [
        "",
        " ",
        "0",
        "1",
        "-1",
        "18446744073709551616",
        "99999999999999999999TiB",
        "64MiB",
        "1.5",
        "NaN",
        "inf",
        "true",
        "off",
        "http://",
        "https://x",
        "ü",
        "\u{0}",
        "<withheld>",
        "{data_dir}",
        "0x10",
        "5m",
        "500ms",
        "\"",
        "[",
        "=",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let names: Vec<&str> = orbit_config_syntax::settings()
        .iter()
        .map(|s| s.env)
        .collect();
    let keys: Vec<&str> = orbit_config_syntax::settings()
        .iter()
        .map(|s| s.toml)
        .filter(|t| !t.is_empty())
        .collect();
    for round in 0..400 {
        let mut env = Vec::new();
        let mut toml = String::new();
        for _ in 0..(next() % 12) {
            let name = names[(next() % names.len() as u64) as usize];
            let value = pieces[(next() % pieces.len() as u64) as usize];
            let withheld = next() % 5 == 0;
            env.push((name, (!withheld).then_some(value)));
            let key = keys[(next() % keys.len() as u64) as usize];
            match next() % 4 {
                0 => toml.push_str(&format!("{key} = {value:?}\n")),
                1 => toml.push_str(&format!("{key} = {value}\n")),
                2 => toml.push_str(&format!("{key}_file = [{value:?}]\n")),
                _ => toml.push_str(&format!("{key}.x = 1\n")),
            }
        }
        let kind = [
            BackendKind::Memory,
            BackendKind::CowBtree,
            BackendKind::LsmTree,
            BackendKind::Rocksdb,
            BackendKind::S3,
            BackendKind::Azure,
            BackendKind::Gcp,
        ][round % 7];
        let t = translate(kind, &env, Some(&toml));
        if let Some(c) = t.config {
            let _ = Translator::render_env(config::to_wit(c.kind(), &c.values()));
        }
        let _ = translate(kind, &env, None);
    }
}

#[test]
fn old_cow_btree_names_are_still_read_with_a_warning() {
    let t = translate(
        BackendKind::CowBtree,
        &[
            ("ORBIT_COW_WAL_SYNC_INTERVAL", Some("7")),
            ("ORBIT_COW_WAL_BUFFER_SIZE", Some("4096")),
        ],
        None,
    );
    let Some(BackendConfig::CowBtree(c)) = &t.config else {
        panic!("{:?}", t.diagnostics)
    };
    assert_eq!(c.sync_interval, Duration::from_secs(7));
    assert_eq!(c.group_commit_size, 4096);
    let w = warnings(&t);
    assert!(
        w.iter().any(|d| d
            .message
            .contains("ORBIT_COW_WAL_SYNC_INTERVAL is the old name of ORBIT_COW_SYNC_INTERVAL")),
        "{w:?}"
    );
    // The new name wins over the old one.
    let t = translate(
        BackendKind::CowBtree,
        &[
            ("ORBIT_COW_WAL_SYNC_INTERVAL", Some("7")),
            ("ORBIT_COW_SYNC_INTERVAL", Some("250ms")),
        ],
        None,
    );
    let Some(BackendConfig::CowBtree(c)) = &t.config else {
        panic!()
    };
    assert_eq!(c.sync_interval, Duration::from_millis(250));
    // Old TOML keys too.
    let t = translate(
        BackendKind::CowBtree,
        &[],
        Some("[persistence.cow_btree]\nwal_sync_interval = 9\nwal_buffer_size = '8KiB'\n"),
    );
    let Some(BackendConfig::CowBtree(c)) = &t.config else {
        panic!("{:?}", t.diagnostics)
    };
    assert_eq!(
        (c.sync_interval, c.group_commit_size),
        (Duration::from_secs(9), 8192)
    );
}
