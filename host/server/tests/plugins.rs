//! Operator-supplied plugins, built from source here: the example custom
//! selector changes the chosen backend without rebuilding the host; a
//! health plugin stopped at its CPU deadline makes the server unready but
//! not dead while data keeps flowing (the limits themselves are proven
//! against the runtime in `host/plugin-runtime/tests/limits.rs`); hot
//! reload, the precompiled cache, signatures and the plugin author's
//! commands through the real binary.

mod in_process;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orbit_test_support::server::{Server, run_to_end};
use orbit_test_support::wasm::{built, built_by_script, fixture};

fn repo() -> PathBuf {
    orbit_plugin_build::repo_root()
}

fn example_selector() -> &'static Path {
    built("examples/custom-selector")
}

fn misbehaving_health() -> &'static Path {
    fixture("misbehaving-health")
}

fn constant_health() -> &'static Path {
    fixture("constant-health")
}

fn check_json(env: &[(&str, &str)]) -> serde_json::Value {
    let (ok, out, err) = run_to_end(env, &["config", "check", "--json"]);
    assert!(ok, "{out}\n{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn example_selector_changes_the_backend_without_rebuilding_the_host() {
    let selector = example_selector().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let base = [
        ("ORBIT_PLUGIN_SELECTOR", selector.as_str()),
        ("ORBIT_DATA_DIR", data.as_str()),
    ];

    // Embedded default: memory.
    assert_eq!(
        check_json(&[("ORBIT_DATA_DIR", &data)])["backend"],
        "memory"
    );

    // Writable data root with enough room: the example picks lsm_tree.
    let j = check_json(&[base[0], base[1], ("ORBIT_EXAMPLE_MIN_FREE_BYTES", "1")]);
    assert_eq!(j["backend"], "lsm_tree", "{j}");
    assert_eq!(j["config"]["data_dir"], format!("{data}/lsm_tree"));
    assert!(
        j["plugins"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("custom-selector.wasm"),
        "{j}"
    );

    // Not enough room: memory, and the reason says why.
    let j = check_json(&[
        base[0],
        base[1],
        ("ORBIT_EXAMPLE_MIN_FREE_BYTES", "1000000000000000000"),
    ]);
    assert_eq!(j["backend"], "memory", "{j}");
    assert!(j["reason"].as_str().unwrap().contains("free"), "{j}");

    // Missing data root: memory.
    let gone = dir.path().join("missing").display().to_string();
    let j = check_json(&[
        base[0],
        ("ORBIT_DATA_DIR", &gone),
        ("ORBIT_EXAMPLE_MIN_FREE_BYTES", "1"),
    ]);
    assert_eq!(j["backend"], "memory", "{j}");
}

#[test]
fn a_plugin_for_another_role_or_a_broken_file_is_refused_clearly() {
    let dist = repo().join("plugins/dist");
    let translator = dist.join("translator.wasm").display().to_string();
    let (ok, _, err) = run_to_end(
        &[("ORBIT_PLUGIN_SELECTOR", &translator)],
        &["config", "check"],
    );
    assert!(!ok);
    assert!(err.contains("is not a selector plugin"), "{err}");
    assert!(err.contains("orbit:storage/selection@0.2.0"), "{err}");
    assert!(err.contains("looks like a translator plugin"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm\x0d\x00\x01\x00garbage").unwrap();
    let (ok, _, err) = run_to_end(
        &[("ORBIT_PLUGIN_HEALTH", garbage.to_str().unwrap())],
        &["config", "check"],
    );
    assert!(!ok);
    assert!(
        err.contains("garbage.wasm") && err.contains("not a valid WebAssembly component"),
        "{err}"
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\x00\x00\x00").unwrap();
    let (ok, _, err) = run_to_end(
        &[("ORBIT_PLUGIN_TRANSLATOR", core.to_str().unwrap())],
        &["config", "check"],
    );
    assert!(!ok);
    assert!(
        err.contains("core WebAssembly module, not a component"),
        "{err}"
    );

    let (ok, _, err) = run_to_end(
        &[("ORBIT_PLUGIN_SELECTOR", "/nonexistent/selector.wasm")],
        &["config", "check"],
    );
    assert!(!ok);
    assert!(
        err.contains("/nonexistent/selector.wasm") && err.contains("cannot read the file"),
        "{err}"
    );
}

async fn readiness(s: &Server) -> (u16, serde_json::Value, Duration) {
    let t = Instant::now();
    let r = s.get("/health/ready").await;
    (r.status, r.json(), t.elapsed())
}

/// A health plugin stopped at its CPU deadline, with the server in the test
/// process: readiness turns false with the reason while liveness stays
/// true, requests on other connections are served meanwhile, the failure is
/// counted, and the next evaluation is ready again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_health_plugin_makes_the_server_unready_not_dead_while_data_flows() {
    let plugin = misbehaving_health().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let s = in_process::start(
        dir.path(),
        &[
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_PLUGIN_HEALTH", &plugin),
            // It reads its mode from the key `misbehave`.
            ("ORBIT_PLUGIN_HEALTH_GRANTS", "keyvalue:default"),
            ("ORBIT_PLUGIN_TIMEOUT", "500ms"),
            ("ORBIT_PLUGIN_MEMORY_LIMIT", "16MiB"),
        ],
    )
    .await;
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(
        j["reasons"][0], "fixture read misbehave=none",
        "the plugin read the store: {j}"
    );

    // Spin: the readiness evaluation is stopped at the CPU deadline, and
    // requests on other connections are served meanwhile.
    assert_eq!(s.put("/v1/kv/misbehave", "spin").await.status, 200);
    let probe = async {
        let t = Instant::now();
        let (status, j) = s.fresh_readiness().await;
        (status, j, t.elapsed())
    };
    let traffic = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut worst = Duration::ZERO;
        for i in 0..20 {
            let t = Instant::now();
            assert_eq!(s.put(&format!("/v1/kv/during/{i}"), "x").await.status, 200);
            assert_eq!(s.get(&format!("/v1/kv/during/{i}")).await.status, 200);
            worst = worst.max(t.elapsed());
        }
        worst
    };
    let ((status, j, took), worst) = tokio::join!(probe, traffic);
    assert_eq!(status, 503, "{j}");
    let reason = j["reasons"][0].as_str().unwrap();
    assert!(reason.contains("exceeded its CPU deadline"), "{j}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "stopped after {took:?}"
    );
    assert!(
        worst < Duration::from_millis(400),
        "data requests stalled {worst:?} while the plugin spun"
    );
    assert_eq!(
        j["live"], true,
        "a failing health plugin does not make the pod dead"
    );
    // What `/health/ready` and `/health/live` answer meanwhile.
    let r = s.get("/health/ready").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("exceeded its CPU deadline"),
        "{}",
        r.text()
    );
    assert_eq!(s.get("/health/live").await.status, 200);

    // Back to normal without a restart.
    assert_eq!(s.delete("/v1/kv/misbehave").await.status, 204);
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");

    let m = s.get("/metrics").await.text();
    let needle =
        r#"orbit_plugin_calls_total{role="health",function="evaluate",outcome="cpu_deadline"} 1"#;
    assert!(m.contains(needle), "missing {needle}");
    assert_eq!(s.get("/v1/kv/during/19").await.status, 200);
}

/// Points `link` at `target` atomically, the way a ConfigMap update swaps
/// its `..data` symlink.
fn swap_symlink(dir: &Path, link: &str, target: &str) {
    let tmp = dir.join(format!("{link}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(link)).unwrap();
}

/// Installs `bytes` as a new ConfigMap revision named `rev`.
fn publish(dir: &Path, rev: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir.join(rev)).unwrap();
    std::fs::write(dir.join(rev).join("health.wasm"), bytes).unwrap();
    swap_symlink(dir, "..data", rev);
}

/// Publishes `bytes` as revision `rev` and checks it is refused with `error`
/// while the fixture keeps answering.
async fn assert_refused(s: &Server, plugins: &Path, rev: &str, bytes: &[u8], error: &str) {
    publish(plugins, rev, bytes);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let j = s.get("/health/ready").await.json();
    assert!(
        j["reasons"].to_string().contains("fixture read misbehave"),
        "{j}"
    );
    assert!(
        j["plugin"]["last_reload_error"]
            .as_str()
            .unwrap()
            .contains(error),
        "{j}"
    );
}

async fn wait_for_reason(
    s: &Server,
    needle: &str,
    within: Duration,
) -> (Duration, serde_json::Value) {
    let t = Instant::now();
    let j = wait_for_ready_json(s, within, |j| j["reasons"].to_string().contains(needle)).await;
    (t.elapsed(), j)
}

/// Polls `/health/ready` until `found` accepts its JSON.
async fn wait_for_ready_json(
    s: &Server,
    within: Duration,
    found: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let j = s.get("/health/ready").await.json();
        if found(&j) {
            return j;
        }
        assert!(t.elapsed() < within, "not seen within {within:?}: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `/health/ready` shows why the changed file of policy plugin
/// `slot` (0 selector, 1 translator) was refused, checks the reason contains
/// `reason`, and returns the JSON.
async fn policy_refused(s: &Server, slot: usize, reason: &str) -> serde_json::Value {
    let j = wait_for_ready_json(s, Duration::from_secs(5), |j| {
        !j["policy_plugins"][slot]["last_reload_error"].is_null()
    })
    .await;
    let error = j["policy_plugins"][slot]["last_reload_error"].to_string();
    assert!(error.contains(reason), "{j}");
    j
}

/// Replaces `path` with `bytes` in one rename, as a deployment tool would.
fn replace_file(path: &Path, bytes: &[u8]) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, bytes).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

/// The selector and translator run once, at start-up, but their files are
/// still watched: a changed selector is checked and reported with what the
/// next start would do (another backend here), a broken one is refused, and
/// one that would make the next start fail is refused with that failure; the
/// same for the translator. The running backend never changes and readiness
/// stays true.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_selector_and_translator_files_are_judged_for_the_next_start() {
    let default = std::fs::read(repo().join("plugins/dist/selector.wasm")).unwrap();
    let default_translator = std::fs::read(repo().join("plugins/dist/translator.wasm")).unwrap();
    let custom = std::fs::read(example_selector()).unwrap();
    let custom_sha = orbit_plugin_build::sha256_hex(&custom);
    let pending = |j: &serde_json::Value| j["policy_plugins"][0]["pending"].clone();

    for bad_lsm_setting in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let selector = dir.path().join("selector.wasm");
        std::fs::write(&selector, &default).unwrap();
        let path = selector.display().to_string();
        let translator = dir.path().join("translator.wasm");
        std::fs::write(&translator, &default_translator).unwrap();
        let translator_path = translator.display().to_string();
        let mut env = vec![
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_PLUGIN_SELECTOR", path.as_str()),
            ("ORBIT_PLUGIN_TRANSLATOR", translator_path.as_str()),
            ("ORBIT_PLUGIN_RELOAD_INTERVAL", "200ms"),
            ("ORBIT_EXAMPLE_MIN_FREE_BYTES", "1"),
        ];
        if bad_lsm_setting {
            // Harmless while the backend is memory; fatal for lsm_tree.
            env.push(("ORBIT_LSM_MEMTABLE_SIZE", "lots"));
        }
        let s = Server::start(dir.path(), &env);
        let (status, j, _) = readiness(&s).await;
        assert_eq!(status, 200, "{j}");
        assert_eq!(j["backend"]["kind"], "memory", "{j}");
        assert_eq!(j["policy_plugins"][0]["role"], "selector", "{j}");
        assert_eq!(j["policy_plugins"][1]["role"], "translator", "{j}");
        assert!(pending(&j).is_null(), "{j}");

        // The example selector would pick lsm_tree at the next start.
        replace_file(&selector, &custom);
        if bad_lsm_setting {
            let j = policy_refused(&s, 0, "the next start would fail").await;
            assert!(
                j["policy_plugins"][0]["last_reload_error"]
                    .to_string()
                    .contains("ORBIT_LSM_MEMTABLE_SIZE"),
                "{j}"
            );
            assert!(pending(&j).is_null(), "{j}");
            let m = s.get("/metrics").await.text();
            assert!(
                m.contains(r#"orbit_plugin_reloads_total{role="selector",outcome="refused"} 1"#),
                "{m}"
            );
            continue;
        }
        let j = wait_for_ready_json(&s, Duration::from_secs(5), |j| !pending(j).is_null()).await;
        assert_eq!(pending(&j)["sha256"], custom_sha.as_str(), "{j}");
        assert!(
            pending(&j)["next_start"]
                .as_str()
                .unwrap()
                .contains("would open backend lsm_tree instead of memory"),
            "{j}"
        );
        assert_eq!(j["backend"]["kind"], "memory", "{j}");
        assert_eq!(j["ready"], true, "{j}");

        // Not a component: refused; the pending version stays pending.
        replace_file(&selector, b"not a component");
        let j = policy_refused(&s, 0, "not a valid WebAssembly component").await;
        assert_eq!(pending(&j)["sha256"], custom_sha.as_str(), "{j}");

        // Back to the version in service: nothing pending.
        replace_file(&selector, &default);
        let j = wait_for_ready_json(&s, Duration::from_secs(5), |j| pending(j).is_null()).await;
        assert!(j["policy_plugins"][0]["last_reload_error"].is_null(), "{j}");
        let m = s.get("/metrics").await.text();
        for line in [
            r#"orbit_plugin_reloads_total{role="selector",outcome="pending_restart"} 2"#,
            r#"orbit_plugin_reloads_total{role="selector",outcome="refused"} 1"#,
        ] {
            assert!(m.contains(line), "{line} missing: {m}");
        }
        assert!(s.log_shows("it applies at the next start").await);

        // The translator's file is watched the same way. A new build (here:
        // the same code plus a custom section) is pending with the same
        // configuration; a health component in its place is refused.
        let mut rebuilt = default_translator.clone();
        rebuilt.extend_from_slice(&[0, 5, 4, b'n', b'o', b't', b'e']);
        replace_file(&translator, &rebuilt);
        let j = wait_for_ready_json(&s, Duration::from_secs(5), |j| {
            !j["policy_plugins"][1]["pending"].is_null()
        })
        .await;
        assert_eq!(
            j["policy_plugins"][1]["pending"]["next_start"],
            "the next start would open backend memory with the same configuration",
            "{j}"
        );
        let health = std::fs::read(repo().join("plugins/dist/health.wasm")).unwrap();
        replace_file(&translator, &health);
        policy_refused(&s, 1, "is not a translator plugin").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_through_a_configmap_symlink_swap() {
    let fixture = std::fs::read(misbehaving_health()).unwrap();
    let default = std::fs::read(repo().join("plugins/dist/health.wasm")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    publish(&plugins, "..rev1", &default);
    std::os::unix::fs::symlink("..data/health.wasm", plugins.join("health.wasm")).unwrap();
    let path = plugins.join("health.wasm").display().to_string();
    let s = Server::start(
        dir.path(),
        &[
            ("ORBIT_MEMORY_DISK_BACKUP", "false"),
            ("ORBIT_PLUGIN_HEALTH", &path),
            ("ORBIT_PLUGIN_RELOAD_INTERVAL", "200ms"),
        ],
    );
    let (_, j) = wait_for_reason(&s, "canary", Duration::from_secs(5)).await;
    assert_eq!(j["plugin"]["reloads"], 0);

    // A new revision is serving within 2 s, without a restart.
    publish(&plugins, "..rev2", &fixture);
    let (took, j) = wait_for_reason(&s, "fixture read misbehave", Duration::from_secs(2)).await;
    assert_eq!(j["plugin"]["reloads"], 1, "{j}");
    eprintln!("reload visible after {took:?}");

    // A broken revision is refused; the previous version keeps answering.
    assert_refused(
        &s,
        &plugins,
        "..rev3",
        b"\0asm\x0d\x00\x01\x00not a component",
        "not a valid WebAssembly component",
    )
    .await;
    // So is a component for another role.
    let translator = std::fs::read(repo().join("plugins/dist/translator.wasm")).unwrap();
    assert_refused(
        &s,
        &plugins,
        "..rev4",
        &translator,
        "is not a health plugin",
    )
    .await;

    let m = s.get("/metrics").await.text();
    assert!(
        m.contains(r#"orbit_plugin_reloads_total{role="health",outcome="ok"} 1"#),
        "{m}"
    );
    // The digest in service is the fixture's, and only the fixture's.
    let info: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with(r#"orbit_plugin_info{role="health""#))
        .collect();
    assert_eq!(info.len(), 1, "{m}");
    assert!(
        info[0].contains(&format!(
            r#"sha256="{}""#,
            orbit_plugin_build::sha256_hex(&fixture)
        )) && info[0].ends_with(" 1"),
        "{m}"
    );
    assert!(
        m.contains(r#"orbit_plugin_reloads_total{role="health",outcome="refused"} 2"#),
        "{m}"
    );
}

#[tokio::test]
async fn second_start_reads_the_precompiled_cache_and_survives_a_corrupt_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("ORBIT_MEMORY_DISK_BACKUP", "false")];
    let loads = |m: &str, cache: &str| {
        ["selector", "translator", "health"].iter().all(|role| {
            m.contains(&format!(
                r#"orbit_plugin_loads_total{{role="{role}",cache="{cache}"}} 1"#
            ))
        })
    };
    let s = Server::start(dir.path(), &env);
    let m = s.get("/metrics").await.text();
    assert!(loads(&m, "miss"), "{m}");
    drop(s);

    let s = Server::start(dir.path(), &env);
    let m = s.get("/metrics").await.text();
    assert!(loads(&m, "hit"), "{m}");
    drop(s);

    let cache = dir.path().join(".plugin-cache");
    for f in std::fs::read_dir(&cache).unwrap() {
        let f = f.unwrap().path();
        let mut bytes = std::fs::read(&f).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x5A;
        std::fs::write(&f, bytes).unwrap();
    }
    let s = Server::start(dir.path(), &env);
    let m = s.get("/metrics").await.text();
    assert!(loads(&m, "invalid"), "{m}");
    assert_eq!(s.get("/health/ready").await.status, 200);
}

#[test]
fn a_pinned_digest_refuses_any_other_component() {
    let health = std::fs::read(repo().join("plugins/dist/health.wasm")).unwrap();
    let digest = orbit_plugin_build::sha256_hex(&health);
    let (ok, out, err) = run_to_end(
        &[("ORBIT_PLUGIN_HEALTH_SHA256", &digest)],
        &["config", "check"],
    );
    assert!(ok, "{out}\n{err}");
    let wrong = "0".repeat(64);
    let (ok, _, err) = run_to_end(
        &[("ORBIT_PLUGIN_HEALTH_SHA256", &wrong)],
        &["config", "check"],
    );
    assert!(!ok);
    assert!(err.contains(&digest) && err.contains("is pinned"), "{err}");
    let (ok, _, err) = run_to_end(
        &[("ORBIT_PLUGIN_HEALTH_SHA256", "abc")],
        &["config", "check"],
    );
    assert!(!ok);
    assert!(
        err.contains("ORBIT_PLUGIN_HEALTH_SHA256") && err.contains("64 hexadecimal"),
        "{err}"
    );
}

#[test]
fn plugin_author_cli_inspects_and_checks() {
    let health = repo()
        .join("plugins/dist/health.wasm")
        .display()
        .to_string();
    let (ok, out, err) = run_to_end(&[], &["plugin", "inspect", &health]);
    assert!(ok, "{err}");
    assert!(
        out.contains("role:    health (world health-policy)"),
        "{out}"
    );
    assert!(out.contains("exports: orbit:storage/health@0.2.0"), "{out}");

    let (ok, out, err) = run_to_end(&[], &["plugin", "check", &health]);
    assert!(ok, "{err}");
    assert!(
        out.contains("ok: health verdict") && out.contains("ready=true"),
        "{out}"
    );

    let (ok, _, err) = run_to_end(&[], &["plugin", "check", &health, "--role", "selector"]);
    assert!(!ok);
    assert!(
        err.contains("is not a selector plugin") && err.contains("looks like a health plugin"),
        "{err}"
    );

    let (ok, out, err) = run_to_end(&[], &["plugin", "bench", &health, "--iterations", "50"]);
    assert!(ok, "{err}");
    for line in [
        "compile:",
        "load from cache:",
        "start from cache:",
        "call, reused instance:",
        "instantiate + call:",
    ] {
        assert!(out.contains(line), "{line} missing: {out}");
    }
}

/// A plugin that ignores its input: `plugin bench` on it measures the host's
/// own cost of a call (lowering the context and report, lifting the verdict).
/// The figure is printed for the benchmark notes, not judged here.
#[test]
fn a_constant_plugin_shows_the_cost_of_the_call_itself() {
    let plugin = constant_health().display().to_string();
    let (ok, out, err) = run_to_end(&[], &["plugin", "run", &plugin, "--input", "{}"]);
    assert!(ok, "{err}");
    assert!(out.contains(r#""constant""#), "{out}");
    let (ok, out, err) = run_to_end(&[], &["plugin", "bench", &plugin, "--iterations", "50"]);
    assert!(ok, "{err}");
    assert!(out.contains("call, reused instance:   p50"), "{out}");
}

/// `plugin run`: one call with a context the author writes as JSON, the
/// answer printed as JSON; for each role, and for bad input.
#[test]
fn plugin_run_calls_a_plugin_with_a_given_context() {
    let dist = |name: &str| {
        repo()
            .join(format!("plugins/dist/{name}.wasm"))
            .display()
            .to_string()
    };
    let run = |file: &str, input: &str| {
        let (ok, out, err) = run_to_end(&[], &["plugin", "run", file, "--input", input]);
        (ok, out, err)
    };
    let json = |out: &str| -> serde_json::Value { serde_json::from_str(out).unwrap() };

    let (ok, out, err) = run(
        &dist("selector"),
        r#"{"env": {"ORBIT_PERSISTENCE_BACKEND": "rocksdb"}}"#,
    );
    assert!(ok, "{err}");
    assert_eq!(json(&out)["backend"], "rocksdb", "{out}");

    let (ok, out, err) = run(
        &dist("translator"),
        r#"{"backend": "lsm_tree", "env": {"ORBIT_LSM_MEMTABLE_SIZE": "32MiB"}}"#,
    );
    assert!(ok, "{err}");
    let j = json(&out);
    assert_eq!(j["config"]["memtable_size"], 32 << 20, "{out}");
    let (ok, out, _) = run(
        &dist("translator"),
        r#"{"backend": "lsm_tree", "env": {"ORBIT_LSM_MEMTABLE_SIZE": "lots"}}"#,
    );
    assert!(ok);
    let j = json(&out);
    assert!(j["config"].is_null(), "{out}");
    assert!(
        j["diagnostics"][0]
            .as_str()
            .unwrap()
            .contains("ORBIT_LSM_MEMTABLE_SIZE"),
        "{out}"
    );

    let (ok, out, err) = run(&dist("health"), "{}");
    assert!(ok, "{err}");
    assert_eq!(json(&out)["ready"], true, "{out}");
    let (ok, out, err) = run(
        &dist("health"),
        r#"{"report": {"canary_ok": false, "canary_error": "disk full"}}"#,
    );
    assert!(ok, "{err}");
    let j = json(&out);
    assert_eq!(j["ready"], false, "{out}");
    assert!(j["reasons"].to_string().contains("disk full"), "{out}");

    for (input, says) in [
        ("{", "--input is not valid"),
        (r#"{"reprot": {}}"#, "unknown field `reprot`"),
        (r#"{"backend": "lsm"}"#, "unknown persistence backend"),
    ] {
        let file = if input.contains("backend") {
            dist("translator")
        } else {
            dist("health")
        };
        let (ok, _, err) = run(&file, input);
        assert!(!ok, "{input} accepted");
        assert!(err.contains(says), "{input}: {err}");
    }
}

/// Plugin instances come from the pooling allocator; where its address
/// space cannot be reserved (here: a 4 GB `ulimit -v`), the engine falls back
/// to on-demand allocation, says so, and plugins still run.
#[test]
fn the_instance_pool_falls_back_when_address_space_is_short() {
    let health = repo()
        .join("plugins/dist/health.wasm")
        .display()
        .to_string();
    let (ok, out, err) = run_to_end(&[], &["plugin", "bench", &health, "--iterations", "20"]);
    assert!(ok, "{err}");
    assert!(out.contains("instance allocator:      pooling"), "{out}");

    let bin = env!("CARGO_BIN_EXE_orbit-server");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v 4000000 && exec {bin} plugin bench {health} --iterations 20"
        ))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("instance allocator:      on-demand (pooling unavailable"),
        "{stdout}"
    );
    assert!(stdout.contains("instantiate + call:"), "{stdout}");
    assert!(
        stderr.contains("allocating instances on demand"),
        "{stderr}"
    );
}

/// With ORBIT_PLUGIN_PUBLIC_KEY set, a plugin file needs a detached ed25519
/// signature by that key (`plugin keygen`, `plugin sign`), at start-up and on
/// hot reload; the private key never appears in any output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_plugins_only_when_a_public_key_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing.pk8");
    let key_arg = key.display().to_string();
    let (ok, out, err) = run_to_end(&[], &["plugin", "keygen", "--out", &key_arg]);
    assert!(ok, "{err}");
    let public = out
        .lines()
        .find_map(|l| l.strip_prefix("public key:  "))
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let private = std::fs::read(&key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (ok, _, err) = run_to_end(&[], &["plugin", "keygen", "--out", &key_arg]);
    assert!(
        !ok && err.contains("cannot create"),
        "never overwrites a key: {err}"
    );

    let plugin = dir.path().join("health.wasm");
    std::fs::copy(repo().join("plugins/dist/health.wasm"), &plugin).unwrap();
    let plugin_arg = plugin.display().to_string();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let env = [
        ("ORBIT_MEMORY_DISK_BACKUP", "false"),
        ("ORBIT_PLUGIN_HEALTH", plugin_arg.as_str()),
        ("ORBIT_PLUGIN_PUBLIC_KEY", public.as_str()),
        ("ORBIT_PLUGIN_RELOAD_INTERVAL", "200ms"),
    ];
    let err = Server::try_start(&data, &env)
        .err()
        .expect("unsigned plugin refused");
    assert!(
        err.contains("health.wasm.sig must hold its signature"),
        "{err}"
    );

    let (ok, out, err) = run_to_end(&[], &["plugin", "sign", &plugin_arg, "--key", &key_arg]);
    assert!(ok, "{err}");
    assert!(out.contains(&public), "{out}");
    let s = Server::start(&data, &env);
    assert_eq!(s.get("/health/ready").await.status, 200);

    // A new version (the same component with a custom section appended)
    // signed by another key is refused on reload; the old one keeps serving.
    let other = dir.path().join("other.pk8");
    let other_arg = other.display().to_string();
    assert!(run_to_end(&[], &["plugin", "keygen", "--out", &other_arg]).0);
    let mut bytes = std::fs::read(&plugin).unwrap();
    bytes.extend_from_slice(&[0x00, 11, 10]);
    bytes.extend_from_slice(b"orbit-test");
    let staged = dir.path().join("staged.wasm");
    std::fs::write(&staged, &bytes).unwrap();
    let staged_arg = staged.display().to_string();
    assert!(run_to_end(&[], &["plugin", "sign", &staged_arg, "--key", &other_arg]).0);
    std::fs::rename(
        dir.path().join("staged.wasm.sig"),
        dir.path().join("health.wasm.sig"),
    )
    .unwrap();
    std::fs::rename(&staged, &plugin).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = s.get("/metrics").await.text();
        if m.contains(r#"orbit_plugin_reloads_total{role="health",outcome="refused"} 1"#) {
            break;
        }
        assert!(Instant::now() < deadline, "reload not refused: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let j = s.get("/health/ready").await.json();
    assert!(
        j.to_string().contains("does not verify with public key"),
        "{j}"
    );
    let private_hex: String = private.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!s.log().contains(&private_hex[..32]));

    let (ok, _, err) = run_to_end(&[("ORBIT_PLUGIN_PUBLIC_KEY", "abc")], &["config", "check"]);
    assert!(
        !ok && err.contains("ORBIT_PLUGIN_PUBLIC_KEY") && err.contains("64 hexadecimal"),
        "{err}"
    );
}

/// The maintenance switch both example policies implement, prefixing their
/// sentences with `<policy> policy:`. Ready at first; a PUT of `maintenance`
/// drains the pod (503, named in the reasons and in the plugin's own log
/// line) while data keeps flowing; its DELETE makes it ready again. The
/// server runs in the test process; readiness is asked for fresh.
async fn check_maintenance_switch(s: &in_process::InProcess, policy: &str) {
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
    assert!(
        j["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{policy} policy: backend open")),
        "{j}"
    );

    assert_eq!(
        s.put("/v1/kv/maintenance", "kernel upgrade").await.status,
        200
    );
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 503, "{j}");
    assert!(
        j["reasons"].to_string().contains(&format!(
            "{policy} policy: drained for maintenance: kernel upgrade"
        )),
        "{j}"
    );
    assert!(
        orbit_test_support::logs::text()
            .contains(&format!("{policy} policy: drained for maintenance")),
        "the plugin's log line reaches the server log"
    );
    assert_eq!(
        s.get("/v1/kv/maintenance").await.text(),
        "kernel upgrade",
        "data keeps flowing while not ready"
    );

    assert_eq!(s.delete("/v1/kv/maintenance").await.status, 204);
    let (status, j) = s.fresh_readiness().await;
    assert_eq!(status, 200, "{j}");
}

/// A health policy written in Python (componentize-py, WASI 0.2 linked with a
/// deny-by-default context) decides readiness and reads the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_health_policy_decides_readiness() {
    let plugin = built_by_script("python-health").display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ORBIT_MEMORY_DISK_BACKUP", "false"),
        ("ORBIT_PLUGIN_HEALTH", plugin.as_str()),
        // The maintenance switch is the key `maintenance`, outside any bucket.
        ("ORBIT_PLUGIN_HEALTH_GRANTS", "keyvalue:default"),
    ];
    let s = in_process::start(dir.path(), &env).await;
    check_maintenance_switch(&s, "python").await;
    s.shut_down().await;

    // The second start takes the 18 MB component from the precompiled cache.
    let s = in_process::start(dir.path(), &env).await;
    let m = s.get("/metrics").await.text();
    assert!(
        m.contains(r#"orbit_plugin_loads_total{role="health",cache="hit"} 1"#),
        "{m}"
    );
}

/// A health policy written in C (wit-bindgen's C bindings, Debian's clang,
/// no libc and no WASI) decides readiness, reads the store and logs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_health_policy_decides_readiness() {
    let plugin = built_by_script("c-health").display().to_string();
    let (ok, out, err) = run_to_end(&[], &["plugin", "inspect", &plugin]);
    assert!(ok, "{err}");
    assert!(
        out.contains("role:    health (world health-policy)"),
        "{out}"
    );
    assert!(
        !out.contains("wasi:"),
        "the C plugin imports no WASI: {out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("ORBIT_MEMORY_DISK_BACKUP", "false"),
        ("ORBIT_PLUGIN_HEALTH", plugin.as_str()),
        // The maintenance switch is the key `maintenance`, outside any bucket.
        ("ORBIT_PLUGIN_HEALTH_GRANTS", "keyvalue:default"),
    ];
    let s = in_process::start(dir.path(), &env).await;
    check_maintenance_switch(&s, "c").await;
}
