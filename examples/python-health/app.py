"""A health policy for the Orbit storage host, in Python (componentize-py).

World `health-policy` of `wit/worlds.wit`. Ready when the backend is open,
the host's canary write+read succeeded, and nobody has drained this pod for
maintenance: an operator drains it with

    curl -X PUT --data-binary 'kernel upgrade' localhost:8080/v1/kv/maintenance

and undrains it with `curl -X DELETE localhost:8080/v1/kv/maintenance`. The
key is read through the host's `store` import; the decision is logged through
the host's `log` import.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, store, types


class Health(exports.Health):
    def evaluate(self, context: types.DeploymentContext, report: types.HealthReport) -> types.HealthVerdict:
        reasons = []
        ready = True
        if not report.backend_open:
            ready = False
            reasons.append("python policy: the backend is not open")
        if not report.canary.ok:
            ready = False
            reasons.append(f"python policy: canary failed: {report.canary.error}")
        try:
            drained = store.get(b"maintenance")
        except Err as e:
            drained = None
            reasons.append(f"python policy: cannot read the maintenance switch: {e.value}")
        if drained is not None:
            ready = False
            reasons.append("python policy: drained for maintenance: " + drained.value.decode("utf-8", "replace"))
        if ready:
            reasons.append(f"python policy: backend open, canary ok in {report.canary.latency_us} us, not drained")
        log.log(log.Level.INFO if ready else log.Level.WARN, "; ".join(reasons))
        return types.HealthVerdict(live=True, ready=ready, status=types.HealthStatus.OK if ready else types.HealthStatus.DEGRADED, reasons=reasons)
