// SPDX-License-Identifier: Apache-2.0
// Runs every query of the bundled Grafana dashboards against a real Prometheus, the way Grafana
// would with the given variable values (used by dashboards_test.sh).
//
//   node dashboard-queries-run.mjs all --root R --prometheus URL --start S --end E --step 1
//        --vars '{"job":"procscope","instance":"...","group":"...","pid":"...",
//                 "__interval":"5s","__rate_interval":"5s","__range":"30s"}'
//     Every panel target and annotation is run as a range query over [S, E] (an instant panel
//     too: it must show data at some moment of the run) and must return at least one series
//     with a finite sample; every query variable's values (label values over [S, E]) must hold
//     the value given for it in --vars. Prints ok/FAIL per query; exit 1 on any FAIL.
//   node dashboard-queries-run.mjs instant --root R --prometheus URL --vars ... --panel TITLE
//     Prints the JSON result of that panel's first target as an instant query now.
import { dashboardQueries, loadDashboards, variablesUsed } from "../deploy/dashboard-queries.mjs";

const [mode, ...rest] = process.argv.slice(2);
const opt = (name) => {
  const i = rest.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= rest.length) throw new Error(`missing --${name}`);
  return rest[i + 1];
};
const root = opt("root");
const prom = opt("prometheus");
const vars = JSON.parse(opt("vars"));

// Grafana's interpolation for the Prometheus data source: $name, ${name} and ${name:format}
// become the value (a multi-value variable would become a regex alternation; the test sets one).
function interpolate(expr) {
  const unknown = variablesUsed(expr).filter((v) => !(v in vars));
  if (unknown.length) throw new Error(`no value for $${unknown.join(", $")}`);
  return expr.replace(/\$(?:\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|([A-Za-z0-9_]+))/g, (_, a, b) => vars[a ?? b]);
}

async function api(endpoint, params) {
  // POST where the API takes it (long queries), GET for label values, which only has GET.
  const body = new URLSearchParams(params);
  const res = endpoint.startsWith("label/")
    ? await fetch(`${prom}/api/v1/${endpoint}?${body}`)
    : await fetch(`${prom}/api/v1/${endpoint}`, { method: "POST", body });
  const json = await res.json();
  if (json.status !== "success") throw new Error(`${json.errorType}: ${json.error}`);
  return json.data;
}

function finiteSamples(result) {
  let n = 0;
  for (const s of result) {
    for (const [, v] of s.values ?? (s.value ? [s.value] : [])) {
      if (Number.isFinite(Number(v))) n++;
    }
  }
  return n;
}

const all = loadDashboards(root).flatMap(({ dashboard }) => dashboardQueries(dashboard));

if (mode === "instant") {
  const title = opt("panel");
  const q = all.find((x) => x.kind === "panel" && x.where.startsWith(`panel "${title}" `));
  if (!q) throw new Error(`no panel "${title}"`);
  const data = await api("query", { query: interpolate(q.expr) });
  console.log(JSON.stringify(data.result));
  process.exit(0);
}
if (mode !== "all") throw new Error(`unknown mode ${mode}`);

const start = opt("start");
const end = opt("end");
const step = opt("step");
let failed = 0;
// The emptiness check itself must see an empty answer as one.
{
  const data = await api("query_range", { query: 'up{job="procscope-no-such-job"}', start, end, step });
  if (finiteSamples(data.result) !== 0) {
    console.log("FAIL: a query of a job that does not exist returned data: the check is broken");
    failed++;
  }
}
const counts = { panel: 0, annotation: 0, variable: 0 };
for (const q of all) {
  const label = `${q.dashboard}: ${q.where}`;
  try {
    if (q.kind === "variable") {
      // label_values(selector, label), as the Prometheus data source runs it.
      const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q.expr.trim());
      if (!m) throw new Error(`not label_values(selector, label): ${q.expr}`);
      const values = await api(`label/${m[2]}/values`, { "match[]": interpolate(m[1]), start, end });
      const want = vars[q.variable];
      if (!values.includes(want)) {
        throw new Error(`values [${values.slice(0, 20).join(", ")}] lack "${want}"`);
      }
      console.log(`ok: ${label}: ${values.length} value(s), "${want}" among them`);
    } else {
      const data = await api("query_range", { query: interpolate(q.expr), start, end, step });
      const n = finiteSamples(data.result);
      if (n === 0) throw new Error(`no data (${data.result.length} series, no finite sample)`);
      console.log(`ok: ${label}: ${data.result.length} series, ${n} samples`);
    }
    counts[q.kind]++;
  } catch (e) {
    failed++;
    console.log(`FAIL: ${label}: ${e.message}\n    query: ${q.expr.replace(/\n/g, "\n    ")}`);
  }
}
const total = all.length;
console.log(`${total - failed}/${total} queries return data (${counts.panel} panel targets, ` +
            `${counts.annotation} annotations, ${counts.variable} variables)`);
if (counts.panel < 30) {
  console.log(`FAIL: only ${counts.panel} panel targets passed: is the extraction broken?`);
  failed++;
}
process.exit(failed ? 1 : 0);
