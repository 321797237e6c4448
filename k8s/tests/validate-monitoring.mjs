// Validates the Prometheus Operator objects (ServiceMonitor, PrometheusRule)
// that kubernetes-validate has no schema for, against the monitoring.coreos.com/v1
// CRD schemas of the npm package @kubernetes-models/prometheus-operator.
//   node validate-monitoring.mjs NODE_MODULES_DIR < objects.json
// objects.json: a JSON array of Kubernetes objects (other kinds are skipped).
// Exit status 1 on the first invalid object, 2 if none was found.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const v1 = await import(
  pathToFileURL(join(modules, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js")).href
);
const objects = JSON.parse(readFileSync(0, "utf8"));
let checked = 0;
for (const o of objects) {
  const Kind = o && o.apiVersion === "monitoring.coreos.com/v1" ? v1[o.kind] : undefined;
  if (!Kind) continue;
  try {
    new Kind(o).validate();
    checked++;
  } catch (e) {
    console.error(`INVALID ${o.kind}/${o.metadata?.name}: ${e.message}`);
    process.exit(1);
  }
}
console.log(`${checked} monitoring.coreos.com/v1 objects valid`);
process.exit(checked ? 0 : 2);
