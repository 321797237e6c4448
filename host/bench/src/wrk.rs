//! `wrk` as `http-bench`'s load generator: one Lua script per request type,
//! requests prepared once per thread where they do not change (GET, PUT),
//! and compare-and-set requests that carry the version each key last
//! answered with. The script's `done` prints one JSON line that
//! [`run`] reads.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// orbit-server (or the floor): `GET /v1/kv/bench/{i:08}`.
    OrbitGet,
    /// `PUT /v1/kv/bench/{i:08}` with the value.
    OrbitPut,
    /// `PUT` with `If-Match: "<version>"`, the version the key last answered
    /// with (from the data file, then from each 200 or 412 answer).
    OrbitCas,
    /// etcd's gateway: `POST /v3/kv/range {"key"}`.
    EtcdGet,
    /// `POST /v3/kv/put {"key","value"}`.
    EtcdPut,
    /// `POST /v3/kv/txn`: compare `mod_revision` with the one the key last
    /// answered with, put (with `prev_kv`, so the answer names the key) on
    /// success, range on failure (so the answer carries the current one).
    EtcdCas,
}

/// One wrk run.
pub struct Load<'a> {
    pub url: &'a str,
    pub request: Request,
    pub threads: usize,
    pub connections: usize,
    pub seconds: f64,
    pub keys: usize,
    pub value: &'a [u8],
    /// Lines `index version base64-key` for every key (compare-and-set and
    /// etcd requests need them).
    pub data: Option<&'a Path>,
    /// Where to write the script.
    pub dir: &'a Path,
}

/// What the script reports.
#[derive(Debug, Clone, Deserialize)]
pub struct Outcome {
    pub requests: u64,
    pub duration_us: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Answers with status >= 400 (wrk's own count).
    pub status_errors: u64,
    pub socket_errors: u64,
    /// Compare-and-set only: applied, refused with a conflict, anything else.
    pub ok: u64,
    pub conflicts: u64,
    pub other: u64,
}

impl Outcome {
    pub fn ops_per_sec(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
}

const COMMON: &str = r#"
local threads = {}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

ok, conflicts, other = 0, 0, 0
local mine = {}
local b64 = {}
local index = {}
vers = {}

local function load()
  math.randomseed(id * 7919 + 17)
  for i = id, KEYS - 1, NTHREADS do table.insert(mine, i) end
  if DATA ~= "" then
    for line in io.lines(DATA) do
      local i, v, k = line:match("^(%d+) (%d+) (%S+)$")
      i = tonumber(i)
      vers[i] = v
      b64[i] = k
      index[k] = i
    end
  end
end

local function pick() return mine[math.random(#mine)] end
local function path(i) return string.format("/v1/kv/bench/%08d", i) end

function done(summary, latency, requests)
  local o, c, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); c = c + t:get("conflicts"); x = x + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%f,"p99_us":%f,"status_errors":%d,"socket_errors":%d,"ok":%d,"conflicts":%d,"other":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, o, c, x))
end
"#;

fn script(load: &Load<'_>) -> String {
    let value = String::from_utf8_lossy(load.value).replace(['"', '\\'], "v");
    let value_b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, load.value);
    let head = format!(
        "KEYS = {}\nNTHREADS = {}\nDATA = {:?}\nVALUE = {:?}\nVALUE_B64 = {:?}\n",
        load.keys,
        load.threads,
        load.data
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        value,
        value_b64
    );
    let json = r#"{["Content-Type"] = "application/json"}"#;
    let body = match load.request {
        Request::OrbitGet => r#"
local reqs = {}
function init(args)
  load()
  for _, i in ipairs(mine) do table.insert(reqs, wrk.format("GET", path(i))) end
end
function request() return reqs[math.random(#reqs)] end
"#
        .to_string(),
        Request::OrbitPut => r#"
local reqs = {}
function init(args)
  load()
  for _, i in ipairs(mine) do table.insert(reqs, wrk.format("PUT", path(i), nil, VALUE)) end
end
function request() return reqs[math.random(#reqs)] end
"#
        .to_string(),
        Request::OrbitCas => r#"
function init(args) load() end
function request()
  local i = pick()
  return wrk.format("PUT", path(i), {["If-Match"] = '"' .. vers[i] .. '"'}, VALUE)
end
function response(status, headers, body)
  if status == 200 then
    local k, v = body:match('"key":"bench/(%d+)","version":(%d+)')
    vers[tonumber(k)] = v
    ok = ok + 1
  elseif status == 412 then
    local k = body:match('"key":"bench/(%d+)"')
    local v = body:match('"current_version":(%d+)')
    if k and v then vers[tonumber(k)] = v end
    conflicts = conflicts + 1
  else
    other = other + 1
  end
end
"#
        .to_string(),
        Request::EtcdGet => format!(
            r#"
local reqs = {{}}
function init(args)
  load()
  for _, i in ipairs(mine) do
    table.insert(reqs, wrk.format("POST", "/v3/kv/range", {json}, '{{"key":"' .. b64[i] .. '"}}'))
  end
end
function request() return reqs[math.random(#reqs)] end
"#
        ),
        Request::EtcdPut => format!(
            r#"
local reqs = {{}}
function init(args)
  load()
  for _, i in ipairs(mine) do
    table.insert(reqs, wrk.format("POST", "/v3/kv/put", {json},
      '{{"key":"' .. b64[i] .. '","value":"' .. VALUE_B64 .. '"}}'))
  end
end
function request() return reqs[math.random(#reqs)] end
"#
        ),
        Request::EtcdCas => format!(
            r#"
function init(args) load() end
function request()
  local i = pick()
  local k = b64[i]
  return wrk.format("POST", "/v3/kv/txn", {json},
    '{{"compare":[{{"key":"' .. k .. '","target":"MOD","mod_revision":"' .. vers[i] ..
    '"}}],"success":[{{"request_put":{{"key":"' .. k .. '","value":"' .. VALUE_B64 ..
    '","prev_kv":true}}}}],"failure":[{{"request_range":{{"key":"' .. k .. '"}}}}]}}')
end
function response(status, headers, body)
  if status ~= 200 then other = other + 1; return end
  local i = index[body:match('"key":"([^"]+)"')]
  if body:find('"succeeded":true', 1, true) then
    vers[i] = body:match('"revision":"(%d+)"')
    ok = ok + 1
  else
    vers[i] = body:match('"mod_revision":"(%d+)"')
    conflicts = conflicts + 1
  end
end
"#
        ),
    };
    format!("{head}{COMMON}{body}")
}

/// Runs wrk and returns what its script reported.
pub fn run(load: &Load<'_>) -> anyhow::Result<Outcome> {
    let name = format!("{:?}.lua", load.request).to_lowercase();
    let file = load.dir.join(name);
    std::fs::write(&file, script(load))?;
    let out = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.seconds.round().max(1.0) as u64))
        .args(["--timeout", "10s", "-s"])
        .arg(&file)
        .arg(load.url)
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRKJSON "))
        .with_context(|| {
            format!(
                "wrk printed no result: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let outcome: Outcome = serde_json::from_str(line).context("wrk's result line")?;
    if outcome.requests == 0 {
        bail!("wrk completed no request against {}", load.url);
    }
    if outcome.socket_errors > 0 {
        bail!(
            "{} socket errors against {} ({:?})",
            outcome.socket_errors,
            load.url,
            load.request
        );
    }
    let cas = matches!(load.request, Request::OrbitCas | Request::EtcdCas);
    if cas && outcome.other > 0 || !cas && outcome.status_errors > 0 {
        bail!(
            "{:?} against {}: {} unexpected answers of {}",
            load.request,
            load.url,
            outcome.status_errors.max(outcome.other),
            outcome.requests
        );
    }
    Ok(outcome)
}
