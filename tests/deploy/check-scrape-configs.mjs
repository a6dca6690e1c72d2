// SPDX-License-Identifier: Apache-2.0
// `promtool check config` on each Prometheus config given (with its rule files).
//
// Debian's Prometheus (2.42+ds) is built without Kubernetes service discovery: its promtool rejects
// any `kubernetes_sd_configs`. For such a config, the rest of it (relabelling, rule files,
// alerting) is still checked by promtool on a copy whose kubernetes_sd_configs are replaced with a
// static target, and the kubernetes_sd_configs themselves are checked here against the fields
// Prometheus documents for them (https://prometheus.io/docs/prometheus/latest/configuration/
// configuration/#kubernetes_sd_config). A promtool with Kubernetes SD checks the original as is.
//
//   node check-scrape-configs.mjs [--promtool <path>] <prometheus.yml>...
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import YAML from "yaml";

const args = process.argv.slice(2);
let promtool = "promtool";
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--promtool") promtool = args[++i];
  else files.push(args[i]);
}

const K8S_SD_KEYS = new Set([
  "api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
  "basic_auth", "authorization", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment",
  "proxy_connect_header", "follow_redirects", "enable_http2", "tls_config",
]);
const ROLES = new Set(["node", "service", "pod", "endpoints", "endpointslice", "ingress"]);
const NO_K8S_SD = "field kubernetes_sd_configs not found in type config.ScrapeConfig";

const problems = [];
const check = (file) => spawnSync(promtool, ["check", "config", file], { encoding: "utf8" });

function checkK8sSd(where, sd) {
  for (const k of Object.keys(sd)) {
    if (!K8S_SD_KEYS.has(k)) problems.push(`${where}: unknown field ${k}`);
  }
  if (!ROLES.has(sd.role)) problems.push(`${where}: role must be one of ${[...ROLES].join(", ")}`);
  const ns = sd.namespaces ?? {};
  for (const k of Object.keys(ns)) {
    if (!["names", "own_namespace"].includes(k)) problems.push(`${where}.namespaces: unknown field ${k}`);
  }
  if (ns.names !== undefined && !(Array.isArray(ns.names) && ns.names.every((n) => typeof n === "string"))) {
    problems.push(`${where}.namespaces.names must be a list of strings`);
  }
  for (const [i, s] of (sd.selectors ?? []).entries()) {
    for (const k of Object.keys(s)) {
      if (!["role", "label", "field"].includes(k)) problems.push(`${where}.selectors[${i}]: unknown field ${k}`);
    }
    if (!ROLES.has(s.role)) problems.push(`${where}.selectors[${i}]: bad role ${s.role}`);
  }
}

for (const file of files) {
  const run = check(file);
  if (run.error) {
    problems.push(`cannot run ${promtool}: ${run.error.message}`);
    break;
  }
  if (run.status === 0) {
    console.log(`ok: promtool check config ${path.basename(file)}`);
    continue;
  }
  const out = `${run.stdout}${run.stderr}`;
  if (!out.includes(NO_K8S_SD)) {
    problems.push(`promtool check config ${file}:\n${out}`);
    continue;
  }
  // This promtool has no Kubernetes SD: check the SD blocks here, the rest with promtool.
  const before = problems.length;
  const config = YAML.parse(fs.readFileSync(file, "utf8"));
  for (const sc of config.scrape_configs ?? []) {
    for (const [i, sd] of (sc.kubernetes_sd_configs ?? []).entries()) {
      checkK8sSd(`${path.basename(file)}: job ${sc.job_name}: kubernetes_sd_configs[${i}]`, sd);
    }
    if (sc.kubernetes_sd_configs) {
      delete sc.kubernetes_sd_configs;
      sc.static_configs = [...(sc.static_configs ?? []), { targets: ["pod.invalid:9750"] }];
    }
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "procscope-scrape-config-"));
  try {
    // Rule files are relative to the config: copy them next to the derived copy.
    for (const r of config.rule_files ?? []) {
      fs.copyFileSync(path.join(path.dirname(file), r), path.join(tmp, path.basename(r)));
    }
    config.rule_files = (config.rule_files ?? []).map((r) => path.basename(r));
    const derived = path.join(tmp, path.basename(file));
    fs.writeFileSync(derived, YAML.stringify(config));
    const again = check(derived);
    if (again.error || again.status !== 0) {
      problems.push(`promtool check config ${file} (kubernetes_sd_configs replaced):\n${again.stdout}${again.stderr}`);
    } else if (problems.length === before) {
      console.log(`ok: promtool check config ${path.basename(file)} (this promtool has no ` +
                  `Kubernetes SD: kubernetes_sd_configs checked against its documented fields, ` +
                  `the rest by promtool)`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (problems.length) {
  for (const p of problems) console.log(`FAIL: ${p}`);
  process.exit(1);
}
