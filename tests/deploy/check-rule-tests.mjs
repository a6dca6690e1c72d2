// SPDX-License-Identifier: Apache-2.0
// Checks that the promtool unit tests (deploy/prometheus/tests/*.test.yml) really test every alert
// of deploy/prometheus/procscope.rules.yml:
//   - each alert has an alert_rule_test where it fires (non-empty exp_alerts) and one where it must
//     not (empty exp_alerts);
//   - mutation: with the alert's expr replaced by one that never fires, the tests fail.
//
//   node check-rule-tests.mjs --root <repo> [--promtool <path>]
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import YAML from "yaml";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const root = path.resolve(opt("--root", "."));
const promtool = opt("--promtool", "promtool");
const promDir = path.join(root, "deploy/prometheus");
const rules = YAML.parse(fs.readFileSync(path.join(promDir, "procscope.rules.yml"), "utf8"));
const testFiles = fs.readdirSync(path.join(promDir, "tests")).filter((f) => f.endsWith(".test.yml"));
const problems = [];

const alerts = rules.groups.flatMap((g) => g.rules.filter((r) => r.alert).map((r) => r.alert));
const fires = new Set();
const silent = new Set();
for (const f of testFiles) {
  const t = YAML.parse(fs.readFileSync(path.join(promDir, "tests", f), "utf8"));
  for (const test of t.tests ?? []) {
    for (const a of test.alert_rule_test ?? []) {
      if (!alerts.includes(a.alertname)) problems.push(`${f}: tests an unknown alert ${a.alertname}`);
      ((a.exp_alerts ?? []).length ? fires : silent).add(a.alertname);
    }
  }
}
for (const a of alerts) {
  if (!fires.has(a)) problems.push(`${a}: no test where it fires`);
  if (!silent.has(a)) problems.push(`${a}: no test where it must not fire`);
}

// Mutation: each alert in turn never fires; the tests must notice.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "procscope-rule-mutation-"));
try {
  fs.mkdirSync(path.join(tmp, "tests"));
  for (const f of testFiles) {
    fs.copyFileSync(path.join(promDir, "tests", f), path.join(tmp, "tests", f));
  }
  for (const a of alerts) {
    // The files that test this alert (faster than all of them, and enough to fail).
    const testPaths = testFiles
      .filter((f) => fs.readFileSync(path.join(promDir, "tests", f), "utf8").includes(`alertname: ${a}`))
      .map((f) => path.join(tmp, "tests", f));
    const mutant = structuredClone(rules);
    for (const g of mutant.groups) {
      for (const r of g.rules) if (r.alert === a) r.expr = "vector(0) > 1";
    }
    fs.writeFileSync(path.join(tmp, "procscope.rules.yml"), YAML.stringify(mutant));
    const run = spawnSync(promtool, ["test", "rules", ...testPaths], { encoding: "utf8" });
    if (run.error) {
      problems.push(`cannot run ${promtool}: ${run.error.message}`);
      break;
    }
    if (run.status === 0) problems.push(`${a}: the tests still pass when it never fires`);
  }
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

if (problems.length) {
  for (const p of problems) console.log(`FAIL: ${p}`);
  process.exit(1);
}
console.log(`ok: each of the ${alerts.length} alerts has a test where it fires and one where it ` +
            `does not, and the tests fail when it is made to never fire`);
