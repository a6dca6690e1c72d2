// SPDX-License-Identifier: Apache-2.0
// Every PromQL query a Grafana dashboard runs: panel targets (rows' nested panels included),
// annotation queries and query variables. Shared by tests/deploy/validate-dashboards.mjs (static
// checks) and tests/integration/dashboard-queries-run.mjs (runs them against a real Prometheus).
import fs from "node:fs";
import path from "node:path";

// Returns [{dashboard, where, kind, expr, instant, variable}]: kind is "panel", "annotation" or
// "variable"; where names the panel/annotation/variable and target for messages.
export function dashboardQueries(dashboard) {
  const out = [];
  const title = dashboard.title ?? dashboard.uid;
  const panels = [];
  for (const p of dashboard.panels ?? []) {
    panels.push(p);
    for (const nested of p.panels ?? []) panels.push(nested);
  }
  for (const p of panels) {
    for (const t of p.targets ?? []) {
      out.push({
        dashboard: title,
        where: `panel "${p.title}" target ${t.refId}`,
        kind: "panel",
        panelType: p.type,
        expr: t.expr,
        instant: t.instant === true && t.range !== true,
      });
    }
  }
  for (const a of dashboard.annotations?.list ?? []) {
    if (a.builtIn === 1 || a.expr === undefined) continue;
    out.push({ dashboard: title, where: `annotation "${a.name}"`, kind: "annotation", expr: a.expr });
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    out.push({ dashboard: title, where: `variable "${v.name}"`, kind: "variable", expr: q, variable: v.name });
  }
  return out;
}

// The dashboards of grafana/dashboards, as [{file, dashboard}].
export function loadDashboards(root) {
  const dir = path.join(root, "grafana/dashboards");
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => ({ file: path.join(dir, f), dashboard: JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) }));
}

// The $variables an expression uses: $name, ${name} and ${name:format}; Grafana's built-ins
// ($__interval, $__rate_interval, $__range, ...) are reported too, with their names.
export function variablesUsed(expr) {
  const names = new Set();
  for (const m of expr.matchAll(/\$(?:\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|([A-Za-z0-9_]+))/g)) {
    names.add(m[1] ?? m[2]);
  }
  return [...names];
}
