#!/usr/bin/env python3
"""Container test: the image that scripts/build-image.sh builds runs the server.

1. Builds the image with scripts/build-image.sh (buildah, vfs storage under
   --root, from scratch) from the given binary, and exports it as an OCI archive.
2. Compares the image's configuration with the Containerfile's final stage
   (ENTRYPOINT, CMD, USER, WORKDIR, ENV, EXPOSE), so that the image users build
   from the Containerfile and the one tested here have the same layout.
3. In a private network namespace (the image's ports 8080 and 9090 as they are),
   runs the image's entrypoint and command with `buildah run --isolation chroot`
   (as the image's user, with its environment), waits for /health/startup, then
   expects /health and /health/ready to answer 200 on 8080 and /metrics on 9090;
   `config check` in the image loads the embedded plugins; SIGTERM stops the
   server cleanly and leaves the memory snapshot in /app/data (written as the
   non-root user).

Usage: container_test.py --bin PATH --root DIR [--oci-archive FILE]
Ends with "N passed, N failed".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from manifest_process_test import http_get, loopback_up  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TAG = "localhost/orbit-rs/orbit-server:test"


def buildah(root: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    cmd = ["buildah", "--storage-driver", "vfs", "--root", str(root / "storage"), "--runroot", str(root / "run"), *args]
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def containerfile_final_stage() -> dict:
    text = (REPO / "Containerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    stages = re.split(r"(?m)^FROM\s", text)
    final = stages[-1]
    conf = {"Env": [], "ExposedPorts": set()}
    for line in final.splitlines():
        m = re.match(r"^(ENTRYPOINT|CMD|USER|WORKDIR|ENV|EXPOSE)\s+(.*)$", line.strip())
        if not m:
            continue
        key, val = m.groups()
        if key in ("ENTRYPOINT", "CMD"):
            conf[key.capitalize() if key == "CMD" else "Entrypoint"] = json.loads(val)
        elif key == "USER":
            conf["User"] = val
        elif key == "WORKDIR":
            conf["WorkingDir"] = val
        elif key == "ENV":
            conf["Env"].append(val.replace(" ", "=", 1) if "=" not in val else val)
        elif key == "EXPOSE":
            conf["ExposedPorts"] |= {p if "/" in p else p + "/tcp" for p in val.split()}
    return conf


def check_layout(image_config: dict) -> list[str]:
    want = containerfile_final_stage()
    errors = []
    for key in ("Entrypoint", "Cmd", "User", "WorkingDir"):
        if image_config.get(key) != want.get(key):
            errors.append(f"{key}: image {image_config.get(key)!r}, Containerfile {want.get(key)!r}")
    # PATH comes from the distroless base image in the Containerfile.
    env = [e for e in image_config.get("Env", []) if not e.startswith("PATH=")]
    if not any(e.startswith("PATH=") and "/usr/local/bin" in e for e in image_config.get("Env", [])):
        errors.append("Env: no PATH with /usr/local/bin (kubectl exec ... orbit-server would not find the binary)")
    if sorted(env) != sorted(want["Env"]):
        errors.append(f"Env: image {image_config.get('Env')}, Containerfile {want['Env']}")
    if set(image_config.get("ExposedPorts", {})) != want["ExposedPorts"]:
        errors.append(f"ExposedPorts: image {sorted(image_config.get('ExposedPorts', {}))}, Containerfile {sorted(want['ExposedPorts'])}")
    return errors


def descendant_named(pid: int, comm: str) -> int | None:
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        p = int(stat.parent.name)
        names[p] = name
        children.setdefault(ppid, []).append(p)
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if names.get(c, "").startswith(comm[:15]):
                return c
            todo.append(c)
    return None


def run_in_namespace(root: Path, ctr: str, argv: list[str]) -> list[tuple[bool, str]]:
    """Runs inside `unshare --net`: start the container, probe it, stop it."""
    loopback_up()
    results = []
    # As `kubectl exec POD -- orbit-server config check` would run it: found through PATH.
    out = buildah(root, "run", "--isolation", "chroot", ctr, "--", "orbit-server", "config", "check", timeout=120)
    results.append((out.returncode == 0 and "backend: memory" in out.stdout,
                    "orbit-server config check in the image: " + (out.stdout.splitlines() or [out.stderr.strip()[-300:]])[0]))
    log = open(root / "container.log", "wb")
    cmd = ["buildah", "--storage-driver", "vfs", "--root", str(root / "storage"), "--runroot", str(root / "run"),
           "run", "--isolation", "chroot", ctr, "--", *argv]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.monotonic()
    started = False
    while time.monotonic() - t0 < 60:
        try:
            if http_get(8080, "/health/startup", 2)[0] == 200:
                started = True
                break
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    results.append((started, f"GET :8080/health/startup = 200 after {time.monotonic() - t0:.2f} s"))
    if started:
        for port, path in ((8080, "/health"), (8080, "/health/ready"), (9090, "/metrics")):
            try:
                st, body = http_get(port, path, 3)
            except OSError as e:
                st, body = 0, str(e).encode()
            ok = st == 200 and (path != "/health/ready" or json.loads(body).get("ready") is True)
            results.append((ok, f"GET :{port}{path} = {st}"))
    # SIGTERM to the server itself, as the kubelet's runtime signals a container's
    # main process (buildah run would SIGKILL its child when signalled itself).
    server = descendant_named(proc.pid, "orbit-server")
    results.append((server is not None, f"server process in the container: pid {server}"))
    os.kill(server or proc.pid, signal.SIGTERM)
    try:
        rc = proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        rc = proc.wait()
    text = (root / "container.log").read_text(errors="replace")
    results.append((rc == 0 and "backend flushed" in text, f"SIGTERM: buildah run exited {rc}"))
    if not all(ok for ok, _ in results):
        print(text[-3000:], file=sys.stderr)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("ORBIT_SERVER_BIN", str(REPO / "target" / "debug" / "orbit-server")))
    ap.add_argument("--root", required=True, help="buildah storage directory of the test")
    ap.add_argument("--oci-archive")
    ap.add_argument("--in-namespace", nargs=2, metavar=("CONTAINER", "ARGV_JSON"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    root = Path(a.root).resolve()

    if a.in_namespace:
        print(json.dumps(run_in_namespace(root, a.in_namespace[0], json.loads(a.in_namespace[1]))))
        return 0

    results: list[tuple[bool, str]] = []
    t0 = time.monotonic()
    cmd = [str(REPO / "scripts" / "build-image.sh"), "--bin", a.bin, "--tag", TAG, "--root", str(root)]
    if a.oci_archive:
        cmd += ["--oci-archive", a.oci_archive]
    b = subprocess.run(cmd, text=True, capture_output=True)
    results.append((b.returncode == 0, f"scripts/build-image.sh ({time.monotonic() - t0:.1f} s) {b.stderr.strip()}"))
    if b.returncode != 0:
        print(b.stdout + b.stderr)
    else:
        info = json.loads(buildah(root, "inspect", "--type", "image", TAG).stdout)
        config = info["OCIv1"]["config"]
        errors = check_layout(config)
        results.append((not errors, "image configuration = Containerfile final stage" + ("" if not errors else ": " + "; ".join(errors))))
        ctr = buildah(root, "from", "--name", f"orbit-container-test-{os.getpid()}", TAG).stdout.strip()
        try:
            argv = config["Entrypoint"] + config.get("Cmd", [])
            r = subprocess.run(
                ["unshare", "--net", sys.executable, __file__, "--root", str(root), "--in-namespace", ctr, json.dumps(argv)],
                text=True, capture_output=True, timeout=300,
            )
            try:
                results += [tuple(x) for x in json.loads(r.stdout.strip().splitlines()[-1])]
            except (json.JSONDecodeError, IndexError):
                results.append((False, f"container run failed: {r.stdout[-1000:]} {r.stderr[-2000:]}"))
            if r.stderr:
                print(r.stderr[-3000:])
            mnt = buildah(root, "mount", ctr).stdout.strip()
            # The memory backend reserves versions in a file next to its
            # snapshot at open (an empty, idle store writes no snapshot).
            snap = Path(mnt) / "app" / "data" / "orbit_backup.json.versions"
            owner = snap.stat().st_uid if snap.exists() else None
            results.append((owner == 65532, f"memory version reservation in /app/data owned by uid {owner} (image user 65532)"))
            buildah(root, "umount", ctr)
            print(f"run: buildah run --isolation chroot {ctr} -- {shlex.join(argv)}")
        finally:
            buildah(root, "rm", ctr)
            buildah(root, "rmi", "--force", TAG)
    passed = sum(1 for ok, _ in results if ok)
    for ok, what in results:
        print(("PASS " if ok else "FAIL ") + what)
    print(f"container test: {time.monotonic() - t0:.1f} s")
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
