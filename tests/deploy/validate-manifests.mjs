// SPDX-License-Identifier: Apache-2.0
// Validates deploy/kubernetes against the real schemas and against what procscoped needs.
//
//   node validate-manifests.mjs --root <repo> [--rendered <kustomize build output>]
//
// 1. Every object is built with its kubernetes-models / @kubernetes-models/prometheus-operator
//    class and validate()d: the Kubernetes OpenAPI schema, and the prometheus-operator CRD schema.
// 2. Unknown fields: those schemas do not reject them (an API server drops them, so a typo such as
//    `readOnlyRootFileSystem` would silently lose a protection). The validator is run on a proxy
//    of the object that records which fields the schema looked at; a field it never looked at,
//    in an object whose keys it did not enumerate (maps such as labels), is unknown.
// 3. The kustomization lists every manifest, and the manifests hang together: selectors, port
//    names, probes, the mounts the flags point at.
// 4. The DaemonSet keeps its security promises (docs/deploy.md): hostPID, not privileged, no
//    privilege escalation, read-only root filesystem, drop ALL, add only BPF/PERFMON/SYS_PTRACE,
//    the same set as the systemd unit; only the documented host paths.
// 5. The PrometheusRule's spec equals deploy/prometheus/procscope.rules.yml.
// 6. Every flag in the DaemonSet args, the systemd unit and its config file exists in
//    daemon/main.cc.
// Exit status 0 when all holds, 1 with one line per problem otherwise.
import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";
import { Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import { DaemonSet } from "kubernetes-models/apps/v1";
import {
  PrometheusRule,
  ServiceMonitor,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const MODELS = {
  "v1/Namespace": Namespace,
  "v1/ServiceAccount": ServiceAccount,
  "v1/Service": Service,
  "apps/v1/DaemonSet": DaemonSet,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};
const ALLOWED_CAPS = ["BPF", "PERFMON", "SYS_PTRACE"];
const REQUIRED_CAPS = ["BPF", "PERFMON"];
const HOST_PATHS = {
  "/proc": { readOnly: true, flag: "--proc_root" },
  "/sys/kernel/btf": { readOnly: true, mountPath: "/sys/kernel/btf" },
  "/var/lib/procscope": { readOnly: false, flag: "--journal_dir" },
  "/sys/fs/bpf": { readOnly: false, mountPath: "/sys/fs/bpf" },
};

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const root = path.resolve(opt("--root") ?? ".");
const k8sDir = path.join(root, "deploy/kubernetes");
const problems = [];
const problem = (msg) => problems.push(msg);
const notes = [];

function parseAll(file, text) {
  const docs = YAML.parseAllDocuments(text);
  const out = [];
  for (const d of docs) {
    if (d.errors.length) {
      problem(`${file}: YAML: ${d.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push({ file, obj: v });
  }
  return out;
}

// --- 3. kustomization: every manifest listed, every listed file there -------------------------
const kustomization = YAML.parse(fs.readFileSync(path.join(k8sDir, "kustomization.yaml"), "utf8"));
const listed = kustomization.resources ?? [];
for (const r of listed) {
  if (!fs.existsSync(path.join(k8sDir, r))) problem(`kustomization.yaml: resource ${r} does not exist`);
}
for (const f of fs.readdirSync(k8sDir)) {
  if (/\.ya?ml$/.test(f) && f !== "kustomization.yaml" && !listed.includes(f)) {
    problem(`kustomization.yaml does not list ${f}`);
  }
}

// The objects: kustomize's output when given, else the listed files with the namespace applied.
let objects = [];
const rendered = opt("--rendered");
if (rendered) {
  objects = parseAll(rendered, fs.readFileSync(rendered, "utf8"));
  notes.push(`validated the kustomize output (${objects.length} objects)`);
} else {
  for (const r of listed) {
    const file = path.join(k8sDir, r);
    if (fs.existsSync(file)) objects.push(...parseAll(r, fs.readFileSync(file, "utf8")));
  }
  for (const { obj } of objects) {
    if (kustomization.namespace && obj.kind !== "Namespace") {
      obj.metadata = { ...obj.metadata, namespace: kustomization.namespace };
    }
  }
  notes.push(`validated the ${listed.length} listed files (no kustomize at hand)`);
}

// --- 1 and 2. schemas and unknown fields ------------------------------------------------------
function unknownFields(model) {
  const records = new Map();
  const wrap = (value) => {
    if (value === null || typeof value !== "object") return value;
    const rec = { read: new Set(), enumerated: false };
    records.set(value, rec);
    const children = new Map();
    return new Proxy(value, {
      get(target, prop, receiver) {
        if (typeof prop === "string" && Object.prototype.hasOwnProperty.call(target, prop)) {
          rec.read.add(prop);
          if (!children.has(prop)) children.set(prop, wrap(target[prop]));
          return children.get(prop);
        }
        return Reflect.get(target, prop, receiver);
      },
      ownKeys(target) {
        rec.enumerated = true;
        return Reflect.ownKeys(target);
      },
    });
  };
  try {
    model.validate.call(wrap(model));
  } catch {
    // Schema errors are reported by the plain validate() below.
  }
  const unknown = [];
  const walk = (value, at) => {
    if (value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      value.forEach((v, i) => walk(v, `${at}/${i}`));
      return;
    }
    const rec = records.get(value);
    for (const key of Object.keys(value)) {
      if (rec && !rec.enumerated && !rec.read.has(key)) unknown.push(`${at}/${key}`);
      walk(value[key], `${at}/${key}`);
    }
  };
  walk(model, "");
  return unknown;
}

const byKind = {};
for (const { file, obj } of objects) {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const Model = MODELS[key];
  const name = `${file}: ${obj.kind ?? "?"} ${obj.metadata?.name ?? "?"}`;
  if (!Model) {
    problem(`${name}: no schema for ${key} here (add its model to tests/deploy/validate-manifests.mjs)`);
    continue;
  }
  // Report a schema error and go on: the checks below still apply to the object.
  const model = new Model(obj);
  try {
    model.validate();
  } catch (e) {
    problem(`${name}: schema: ${e.message}`);
  }
  for (const f of unknownFields(model)) problem(`${name}: unknown field ${f}`);
  (byKind[obj.kind] ??= []).push(obj);
}

// --- 3 and 4. coherence and the DaemonSet's promises -----------------------------------------
const one = (kind) => {
  const list = byKind[kind] ?? [];
  if (list.length !== 1) problem(`expected one ${kind}, found ${list.length}`);
  return list[0];
};
const matches = (selector, labels) =>
  Object.entries(selector ?? {}).every(([k, v]) => (labels ?? {})[k] === v);
const ds = one("DaemonSet");
const svc = one("Service");
const sm = one("ServiceMonitor");
const rule = one("PrometheusRule");
one("Namespace");
one("ServiceAccount");

let dsCaps = [];
let dsArgs = [];
if (ds) {
  const pod = ds.spec.template.spec;
  const c = pod.containers?.[0];
  if (pod.containers?.length !== 1) problem("DaemonSet: expected one container");
  if (!matches(ds.spec.selector.matchLabels, ds.spec.template.metadata?.labels)) {
    problem("DaemonSet: selector does not match the pod template's labels");
  }
  if (pod.hostPID !== true) problem("DaemonSet: hostPID must be true");
  if (pod.hostNetwork) problem("DaemonSet: hostNetwork is not needed");
  if (pod.automountServiceAccountToken !== false) {
    problem("DaemonSet: automountServiceAccountToken must be false (procscoped does not use the API)");
  }
  const sc = c?.securityContext ?? {};
  if (sc.privileged !== false) problem("DaemonSet: securityContext.privileged must be false");
  if (sc.allowPrivilegeEscalation !== false) problem("DaemonSet: allowPrivilegeEscalation must be false");
  if (sc.readOnlyRootFilesystem !== true) problem("DaemonSet: readOnlyRootFilesystem must be true");
  if (!isDeepStrictEqual(sc.capabilities?.drop, ["ALL"])) problem("DaemonSet: capabilities.drop must be [ALL]");
  dsCaps = sc.capabilities?.add ?? [];
  for (const cap of dsCaps) {
    if (!ALLOWED_CAPS.includes(cap)) problem(`DaemonSet: capability ${cap} is not one docs/deploy.md justifies`);
  }
  for (const cap of REQUIRED_CAPS) {
    if (!dsCaps.includes(cap)) problem(`DaemonSet: procscoped needs capability ${cap}`);
  }
  if (!c?.resources?.requests?.cpu || !c?.resources?.requests?.memory ||
      !c?.resources?.limits?.cpu || !c?.resources?.limits?.memory) {
    problem("DaemonSet: set cpu and memory requests and limits");
  }
  dsArgs = c?.args ?? [];
  const flag = (name) => dsArgs.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  const port = (c?.ports ?? []).find((p) => p.name === "metrics");
  if (port?.containerPort !== 9750) problem("DaemonSet: container port 9750 must be named metrics");
  const listen = flag("--listen");
  if (listen !== undefined && !listen.endsWith(`:${port?.containerPort}`)) {
    problem(`DaemonSet: --listen=${listen} is not the metrics port`);
  }
  for (const [probe, wantPath] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
    const g = c?.[probe]?.httpGet;
    if (g?.path !== wantPath || g?.port !== "metrics") {
      problem(`DaemonSet: ${probe} must be httpGet ${wantPath} on port metrics`);
    }
  }
  // Volumes: only the documented host paths, mounted where the flags point, read-only as noted.
  const mounts = Object.fromEntries((c?.volumeMounts ?? []).map((m) => [m.name, m]));
  const seen = new Set();
  for (const v of pod.volumes ?? []) {
    if (!v.hostPath) continue;
    const want = HOST_PATHS[v.hostPath.path];
    const m = mounts[v.name];
    if (!want) {
      problem(`DaemonSet: hostPath ${v.hostPath.path} is not one docs/deploy.md justifies`);
      continue;
    }
    seen.add(v.hostPath.path);
    if (!m) {
      problem(`DaemonSet: volume ${v.name} (${v.hostPath.path}) is not mounted`);
      continue;
    }
    if (Boolean(m.readOnly) !== want.readOnly) {
      problem(`DaemonSet: ${v.hostPath.path} must be mounted ${want.readOnly ? "read-only" : "read-write"}`);
    }
    if (want.flag && flag(want.flag) !== m.mountPath) {
      problem(`DaemonSet: ${want.flag} must be ${m.mountPath}, where ${v.hostPath.path} is mounted`);
    }
    if (want.mountPath && m.mountPath !== want.mountPath) {
      problem(`DaemonSet: ${v.hostPath.path} must be mounted at ${want.mountPath}`);
    }
  }
  for (const p of Object.keys(HOST_PATHS)) {
    if (!seen.has(p)) problem(`DaemonSet: host path ${p} is not mounted`);
  }
  if (svc) {
    if (!matches(svc.spec.selector, ds.spec.template.metadata?.labels)) {
      problem("Service: selector does not match the DaemonSet's pods");
    }
    const sp = (svc.spec.ports ?? []).find((p) => p.name === "metrics");
    if (sp?.port !== 9750 || sp?.targetPort !== "metrics") {
      problem("Service: port 9750 named metrics must target the container port metrics");
    }
  }
}
if (sm && svc) {
  if (!matches(sm.spec.selector?.matchLabels, svc.metadata?.labels)) {
    problem("ServiceMonitor: selector does not match the Service's labels");
  }
  for (const ep of sm.spec.endpoints ?? []) {
    if (!(svc.spec.ports ?? []).some((p) => p.name === ep.port)) {
      problem(`ServiceMonitor: endpoint port ${ep.port} is not a port of the Service`);
    }
  }
  // The rules select job="procscope": the operator names the job after the Service.
  if (svc.metadata?.name !== "procscope" && !sm.spec.jobLabel) {
    problem('ServiceMonitor: the rules expect job="procscope" (the Service\'s name)');
  }
}

// --- 5. the PrometheusRule carries the rule file unchanged ------------------------------------
const rulesFile = path.join(root, "deploy/prometheus/procscope.rules.yml");
const rules = YAML.parse(fs.readFileSync(rulesFile, "utf8"));
if (rule && !isDeepStrictEqual(rule.spec, rules)) {
  problem("PrometheusRule: spec differs from deploy/prometheus/procscope.rules.yml " +
          "(run deploy/kubernetes/generate-prometheusrule.sh)");
}

// --- 4 and 6. the systemd unit: same capabilities; flags that exist ---------------------------
const mainCc = fs.readFileSync(path.join(root, "daemon/main.cc"), "utf8");
const knownFlags = new Set([...mainCc.matchAll(/ABSL_FLAG\([^,]+,\s*(\w+)\s*,/g)].map((m) => m[1]));
if (knownFlags.size < 10) problem("daemon/main.cc: could not read its flags");
const checkFlags = (where, list) => {
  for (const a of list) {
    const m = /^--([a-z_]+)(=|$)/.exec(a);
    if (!m) {
      problem(`${where}: '${a}' is not a --flag`);
    } else if (!knownFlags.has(m[1])) {
      problem(`${where}: procscoped has no flag --${m[1]}`);
    }
  }
};
checkFlags("DaemonSet args", dsArgs);

const unitFile = path.join(root, "deploy/systemd/procscoped.service");
const unit = fs.readFileSync(unitFile, "utf8");
const directive = (name) =>
  [...unit.matchAll(new RegExp(`^${name}=(.*)$`, "gm"))].map((m) => m[1].trim());
const capsOf = (name) => directive(name).join(" ").split(/\s+/).filter(Boolean)
  .map((c) => c.replace(/^CAP_/, "")).sort();
const want = [...dsCaps].sort();
for (const d of ["AmbientCapabilities", "CapabilityBoundingSet"]) {
  if (!isDeepStrictEqual(capsOf(d), want)) {
    problem(`procscoped.service: ${d} (${capsOf(d).join(" ")}) differs from the DaemonSet's (${want.join(" ")})`);
  }
}
const execStart = directive("ExecStart")[0] ?? "";
const [binary, ...unitArgs] = execStart.split(/\s+/);
if (binary !== "/usr/local/sbin/procscoped") problem(`procscoped.service: ExecStart runs ${binary}`);
checkFlags("procscoped.service ExecStart", unitArgs);
const confArg = unitArgs.find((a) => a.startsWith("--config="));
if (confArg) {
  const conf = fs.readFileSync(path.join(root, "deploy/systemd/procscoped.conf"), "utf8");
  const keys = conf.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    .map((l) => `--${l.replace(/^--/, "")}`);
  checkFlags("procscoped.conf", keys);
  if (keys.some((k) => k.startsWith("--config="))) problem("procscoped.conf: cannot set config");
}

for (const n of notes) console.log(`note: ${n}`);
if (problems.length) {
  for (const p of problems) console.log(`FAIL: ${p}`);
  process.exit(1);
}
console.log(`ok: ${objects.length} Kubernetes objects valid against kubernetes-models and ` +
            `@kubernetes-models/prometheus-operator, no unknown fields, consistent with the ` +
            `rules, the systemd unit and procscoped's flags`);
