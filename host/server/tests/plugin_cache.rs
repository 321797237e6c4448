//! The precompiled-plugin cache holds native code, so it is used only if the
//! host wrote it into a directory it owns (issue 14, hole 2), through the
//! real binary: a planted artifact of other code is not executed, an
//! unwritable data dir means no cache (never the shared temp dir), and a
//! cache directory others may write or that another user owns is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use orbit_test_support::server::Server;
use orbit_test_support::wasm::fixture;

const NO_BACKUP: (&str, &str) = ("ORBIT_MEMORY_DISK_BACKUP", "false");

fn constant_health() -> &'static Path {
    fixture("constant-health")
}

/// The embedded default health plugin (the same bytes as the dist file).
fn default_health_sha256() -> String {
    let bytes =
        std::fs::read(orbit_plugin_build::repo_root().join("plugins/dist/health.wasm")).unwrap();
    orbit_plugin_build::sha256_hex(&bytes)
}

fn loads(metrics: &str, role: &str, cache: &str) -> bool {
    metrics.contains(&format!(
        r#"orbit_plugin_loads_total{{role="{role}",cache="{cache}"}} 1"#
    ))
}

fn all_loads(metrics: &str, cache: &str) -> bool {
    ["selector", "translator", "health"]
        .iter()
        .all(|role| loads(metrics, role, cache))
}

/// The `.cwasm`/`.meta` pair of the entry for the component with `sha256`.
fn entry(cache: &Path, sha256: &str) -> (PathBuf, PathBuf) {
    let artifact = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "cwasm")
                && p.file_name().unwrap().to_string_lossy().starts_with(sha256)
        })
        .unwrap_or_else(|| panic!("no entry for {sha256} in {}", cache.display()));
    let meta = artifact.with_extension("meta");
    assert!(meta.is_file(), "{}", meta.display());
    (artifact, meta)
}

async fn reasons(s: &Server) -> Vec<String> {
    let r = s.get("/health/ready").await;
    let j = r.json();
    j["reasons"]
        .as_array()
        .unwrap_or_else(|| panic!("{j}"))
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

async fn serves_data(s: &Server) {
    assert_eq!(s.put("/v1/kv/k", "v").await.status, 200);
    let r = s.get("/v1/kv/k").await;
    assert_eq!((r.status, r.text().as_str()), (200, "v"));
}

/// Someone who can write the cache replaces the default health plugin's
/// entry with a genuine artifact of other code, compiled by the same engine
/// configuration, with a header right in every field and a MAC that is
/// genuine too, only made under another cache's key. The host does not run
/// it: it warns, counts the load as `invalid`, recompiles the real plugin,
/// and readiness is the real plugin's verdict.
#[tokio::test]
async fn a_planted_artifact_is_not_executed() {
    let constant = constant_health().display().to_string();
    let constant_sha = orbit_plugin_build::sha256_hex(&std::fs::read(constant_health()).unwrap());
    let default_sha = default_health_sha256();

    // The victim: a normal start writes the cache.
    let victim = tempfile::tempdir().unwrap();
    let s = Server::start(victim.path(), &[NO_BACKUP]);
    let m = s.get("/metrics").await.text();
    assert!(all_loads(&m, "miss"), "{m}");
    // The default plugin's verdict (timings vary from start to start).
    let real = |reasons: &[String]| {
        reasons.first().map(String::as_str) == Some("backend memory is open")
            && reasons
                .iter()
                .any(|r| r.starts_with("canary write+read succeeded"))
    };
    let first = reasons(&s).await;
    assert!(real(&first), "{first:?}");
    drop(s);

    // The attacker's artifact: the constant health plugin, precompiled by
    // the same binary into another cache. It answers "constant".
    let other = tempfile::tempdir().unwrap();
    let other_cache = other.path().join("cache");
    let other_cache_env = other_cache.display().to_string();
    let s = Server::start(
        other.path(),
        &[
            NO_BACKUP,
            ("ORBIT_PLUGIN_HEALTH", &constant),
            ("ORBIT_PLUGIN_CACHE_DIR", &other_cache_env),
        ],
    );
    assert_eq!(reasons(&s).await, ["constant"], "the fixture's verdict");
    drop(s);
    let (planted_artifact, planted_meta) = entry(&other_cache, &constant_sha);
    let planted = std::fs::read(&planted_artifact).unwrap();

    // Plant it under the default health plugin's name: the artifact, and a
    // header for this entry (component digest, artifact length) carrying the
    // other cache's MAC.
    let cache = victim.path().join(".plugin-cache");
    let (artifact, meta) = entry(&cache, &default_sha);
    let mut header = std::fs::read(&meta).unwrap();
    let other_header = std::fs::read(&planted_meta).unwrap();
    assert_eq!(header.len(), other_header.len());
    header[48..56].copy_from_slice(&(planted.len() as u64).to_le_bytes());
    let mac_at = header.len() - 32;
    header[mac_at..].copy_from_slice(&other_header[mac_at..]);
    std::fs::write(&artifact, &planted).unwrap();
    std::fs::write(&meta, &header).unwrap();

    let s = Server::start(victim.path(), &[NO_BACKUP]);
    let m = s.get("/metrics").await.text();
    assert!(loads(&m, "health", "invalid"), "{m}");
    assert!(loads(&m, "selector", "hit"), "{m}");
    assert!(loads(&m, "translator", "hit"), "{m}");
    let warned = format!("path={}", artifact.display());
    assert!(s.log_shows(&warned).await, "{}", s.log());
    let log = s.log();
    let line = log.lines().find(|l| l.contains(&warned)).unwrap();
    assert!(
        line.contains("WARN") && line.contains("MAC mismatch") && line.contains("not loaded"),
        "{line}"
    );
    assert!(
        log.lines().any(|l| l.contains("plugin loaded")
            && l.contains("role=health")
            && l.contains(r#"cache="invalid""#)),
        "{log}"
    );
    let now = reasons(&s).await;
    assert_ne!(now, ["constant"], "the planted code ran");
    assert!(real(&now), "{now:?}");
    drop(s);

    // The entry was rewritten with the real plugin, so the next start is a
    // hit again.
    assert_ne!(std::fs::read(&artifact).unwrap(), planted);
    let s = Server::start(victim.path(), &[NO_BACKUP]);
    let m = s.get("/metrics").await.text();
    assert!(all_loads(&m, "hit"), "{m}");
}

fn temp_cache_entries() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("orbit-plugin-cache-")
        })
        .collect();
    v.sort();
    v
}

/// A data dir that cannot be created (its parent is a regular file; root
/// cannot get around that) with the memory backend: the server starts, says
/// once that the cache is off, compiles every plugin in memory and writes
/// nothing under the temp dir.
#[tokio::test]
async fn an_unwritable_data_dir_means_no_cache_not_the_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"not a directory").unwrap();
    let data = file.join("data");
    assert!(std::fs::create_dir_all(&data).is_err());
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmp_env = tmp.display().to_string();
    let before = temp_cache_entries();

    let s = Server::start(&data, &[NO_BACKUP, ("TMPDIR", &tmp_env)]);
    let m = s.get("/metrics").await.text();
    assert!(all_loads(&m, "disabled"), "{m}");
    serves_data(&s).await;
    let needle = format!(
        "precompiled-plugin cache off: {} is not a writable directory; plugins are compiled in memory at each start",
        data.display()
    );
    assert!(s.log_shows(&needle).await, "{}", s.log());
    assert_eq!(s.log().matches("precompiled-plugin cache off").count(), 1);
    assert!(s.terminate());

    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the server's temp dir is untouched"
    );
    assert_eq!(temp_cache_entries(), before, "no orbit-plugin-cache-* made");
    assert!(std::fs::metadata(&file).unwrap().is_file());
}

/// `ORBIT_PLUGIN_CACHE_DIR` naming a directory anyone may write (mode 0777,
/// or 1777 like a shared temp dir), or one another user owns: refused with a
/// warning that names it and says why, nothing written into it, and the
/// server serves with plugins compiled in memory.
#[tokio::test]
async fn a_cache_dir_the_host_does_not_own_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = vec![
        (
            "world-writable",
            0o777,
            None,
            "group or others may write it",
        ),
        (
            "sticky-shared",
            0o1777,
            None,
            "group or others may write it",
        ),
    ];
    if geteuid() == 0 {
        // Only root can give a directory to someone else; as another user
        // this case is not checked.
        cases.push(("theirs", 0o700, Some(65534), "is owned by uid 65534"));
    }
    for (name, mode, owner, why) in cases {
        let cache = dir.path().join(name);
        std::fs::create_dir(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(mode)).unwrap();
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&cache, Some(uid), Some(uid)).unwrap();
        }
        let cache_env = cache.display().to_string();
        let data = dir.path().join(format!("{name}-data"));
        std::fs::create_dir(&data).unwrap();
        let s = Server::start(&data, &[NO_BACKUP, ("ORBIT_PLUGIN_CACHE_DIR", &cache_env)]);
        let m = s.get("/metrics").await.text();
        assert!(all_loads(&m, "disabled"), "{name}: {m}");
        assert!(
            s.log_shows("precompiled-plugin cache off:").await,
            "{name}: {}",
            s.log()
        );
        let log = s.log();
        let line = log
            .lines()
            .find(|l| l.contains("precompiled-plugin cache off:"))
            .unwrap();
        assert!(
            line.contains("WARN") && line.contains(&cache_env) && line.contains(why),
            "{name}: {line}"
        );
        serves_data(&s).await;
        assert_eq!(s.get("/health/live").await.status, 200);
        drop(s);
        assert_eq!(
            std::fs::read_dir(&cache).unwrap().count(),
            0,
            "{name}: nothing written into a refused directory"
        );
        assert!(!data.join(".plugin-cache").exists(), "{name}: no fallback");
    }
}

unsafe extern "C" {
    /// No preconditions, cannot fail.
    safe fn geteuid() -> u32;
}
