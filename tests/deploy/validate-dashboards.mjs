// SPDX-License-Identifier: Apache-2.0
// Validates the Grafana dashboards (grafana/dashboards/*.json) and their installation files.
//
//   node validate-dashboards.mjs --root <repo> [--rendered <kubectl kustomize grafana/ output>]
//
// 1. Schema: each dashboard type-checks against Grafana's own dashboard schema, the `Dashboard`
//    type of the @grafana/schema npm package, with the TypeScript compiler: the JSON is the object
//    literal of a typed constant, so unknown fields (excess properties), wrong types and enum
//    values Grafana does not have are errors. A self-test injects one of each into a copy of a
//    dashboard and fails unless the type check catches it.
// 2. What the schema leaves open: known panel types, unique panel ids, panels inside the 24-column
//    grid and not overlapping, every panel and target on the `${datasource}` variable, unique
//    refIds, non-empty queries, titles and descriptions, the variables the dashboards promise,
//    every `$variable` used defined (before the variables that use it), unique short uids, every
//    procscope metric a query uses documented in docs/metrics.md, data links to bundled uids.
// 3. The files are what grafana/generate.mjs makes (`node grafana/generate.mjs --check`).
// 4. The provisioning files (grafana/provisioning/): known keys only, a file provider on the path
//    docs/dashboards.md installs the JSON to, a Prometheus data source whose timeInterval is the
//    scrape interval of deploy/prometheus/prometheus.yml.
// 5. grafana/kustomization.yaml: its configMapGenerator holds exactly the dashboards; the
//    ConfigMap it makes is valid (kubernetes-models), labelled for the Grafana sidecar and small
//    enough for `kubectl apply` (its last-applied annotation must stay under 256 KiB). With
//    --rendered, the ConfigMap kustomize really made must equal the one expected.
// Prints an `ok:` line per check that holds and a `FAIL:` line per problem; exit 1 on a problem.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import ts from "typescript";
import YAML from "yaml";
import { ConfigMap } from "kubernetes-models/v1";
import { dashboardQueries, loadDashboards, variablesUsed } from "./dashboard-queries.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PANEL_TYPES = ["timeseries", "table", "stat", "heatmap", "row", "bargauge", "text"];
const DS = { type: "prometheus", uid: "${datasource}" };
// Grafana's global variables (those without dots: ${__data.fields.x} and the like are not
// reported by variablesUsed).
const BUILTINS = new Set([
  "__interval", "__interval_ms", "__rate_interval", "__rate_interval_ms", "__range", "__range_s",
  "__range_ms", "__from", "__to", "__dashboard", "__org", "__user", "__name", "__timezone",
  "__timeFilter", "timeFilter", "__url_time_range", "__all_variables", "__auto_interval",
]);
const GRID_COLUMNS = 24;
const MAX_UID = 40;
// kubectl apply (client side) keeps the whole object in an annotation; annotations are limited to
// 256 KiB in total.
const MAX_ANNOTATION = 262144;
// Grafana's provisioning keys (pkg/services/provisioning/{dashboards,datasources}/types.go).
const PROVIDER_KEYS = ["name", "type", "orgId", "folder", "folderUid", "editable", "options",
  "disableDeletion", "updateIntervalSeconds", "allowUiUpdates"];
const PROVIDER_FILE_OPTIONS = ["path", "foldersFromFilesStructure"];
const DATASOURCE_KEYS = ["orgId", "orgName", "version", "name", "type", "access", "url", "user",
  "database", "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "correlations",
  "jsonData", "secureJsonData", "editable", "uid"];

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const root = path.resolve(opt("--root") ?? ".");
const rendered = opt("--rendered");
const rel = (f) => path.relative(root, f);

let failed = 0;
// check(what, fn): fn(problem) reports problems; prints `ok: <what fn returned>` if none did.
function check(name, fn) {
  const problems = [];
  let okMessage;
  try {
    okMessage = fn((msg) => problems.push(msg));
  } catch (e) {
    problems.push(`${name}: ${e.stack ?? e}`);
  }
  if (problems.length) {
    failed += problems.length;
    for (const p of problems) console.log(`FAIL: ${p}`);
  } else {
    console.log(`ok: ${okMessage ?? name}`);
  }
}

let dashboards;
try {
  dashboards = loadDashboards(root);
} catch (e) {
  console.log(`FAIL: grafana/dashboards: ${e.message}`);
  process.exit(1);
}
if (!dashboards.length) {
  console.log("FAIL: grafana/dashboards holds no dashboards");
  process.exit(1);
}

// --- 1. schema -------------------------------------------------------------------------------
// Json<T>: T as a JSON document can spell it. @grafana/schema types enums as TypeScript string
// enums (ThresholdsMode.Absolute = "absolute", ...), which no string literal satisfies; Json<T>
// turns each into the union of its values and keeps everything else, so that excess properties,
// wrong types and unknown enum values are still errors. Numeric enums accept their number
// literals as they are.
//
// Checked: the type a dashboard must have, Json<Dashboard> but for the annotation queries. Those
// carry their data source's own fields on the annotation itself: Grafana's own AnnotationQuery
// type (@grafana/data) has `[key: string]: any` for them, the schema's has none, so no Prometheus
// annotation could pass. Rather than any field, these are the Prometheus data source's
// (@grafana/prometheus annotations.ts: expr, step and refId, which it moves into target, and the
// fields that turn series into events); anything else is still an unknown field.
const JSON_TS = `
import type { AnnotationQuery, Dashboard, DataQuery } from "@grafana/schema";

export type Json<T> =
  unknown extends T ? T
  : T extends string ? \`\${T}\`
  : T extends number | boolean | null | undefined ? T
  : T extends readonly (infer E)[] ? Json<E>[]
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;

interface PrometheusAnnotationQuery {
  expr?: string;
  interval?: string;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
}
interface PrometheusAnnotation {
  expr?: string;
  step?: string;
  refId?: string;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
  useValueForTime?: boolean;
  target?: Json<DataQuery> & PrometheusAnnotationQuery;
}
type Annotation = Omit<Json<AnnotationQuery>, "target"> & PrometheusAnnotation;

export type Checked = Omit<Json<Dashboard>, "annotations"> & {
  annotations?: { list?: Annotation[] };
};
`;
const HEADER = [
  'import type { Checked } from "./json";',
  "export const dashboard: Checked =",
];

// Paths in a dashboard: arrays of keys and indices, shown as `panels[3].gridPos.x`.
const showPath = (segs) => segs.map((k, i) => (typeof k === "number" ? `[${k}]`
  : /^[A-Za-z_$][\w$]*$/.test(k) ? `${i ? "." : ""}${k}` : `[${JSON.stringify(k)}]`)).join("") || "(dashboard)";
const within = (inner, outer) => outer.length <= inner.length && outer.every((k, i) => inner[i] === k);

// The path of the innermost property or element at pos in the object literal of sf.
function pathAt(sf, pos) {
  const segs = [];
  let node = sf;
  for (;;) {
    let next;
    ts.forEachChild(node, (c) => {
      if (!next && c.getStart(sf) <= pos && pos < c.getEnd()) next = c;
    });
    if (!next) return segs;
    if (ts.isArrayLiteralExpression(node)) segs.push(node.elements.indexOf(next));
    if (ts.isObjectLiteralExpression(node) && ts.isPropertyAssignment(next)) segs.push(next.name.text);
    node = next;
  }
}

// The line (in the JSON text) of every property and element of sf's object literal, by path.
function pathLines(sf) {
  const lines = new Map();
  const walk = (node, segs) => {
    if (ts.isObjectLiteralExpression(node)) {
      for (const p of node.properties) {
        if (!ts.isPropertyAssignment(p)) continue;
        const s = [...segs, p.name.text];
        lines.set(showPath(s), sf.getLineAndCharacterOfPosition(p.getStart(sf)).line + 1 - HEADER.length);
        walk(p.initializer, s);
      }
    } else if (ts.isArrayLiteralExpression(node)) {
      node.elements.forEach((e, i) => {
        const s = [...segs, i];
        lines.set(showPath(s), sf.getLineAndCharacterOfPosition(e.getStart(sf)).line + 1 - HEADER.length);
        walk(e, s);
      });
    } else {
      ts.forEachChild(node, (c) => walk(c, segs));
    }
  };
  walk(sf, []);
  return lines;
}

// Type-checks JSON texts against Json<Dashboard>, one virtual .ts file each, in one program (the
// next call reuses the unchanged files). Returns {name: [{segs, path, line, code, message}]}.
const TYPECHECK_DIR = path.join(HERE, ".dashboard-typecheck"); // virtual: node_modules is found from here
const TS_OPTIONS = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  types: [],
};
let oldProgram;
const tsFile = (name) => path.join(TYPECHECK_DIR, `${name}.ts`);
const tsSource = (json) => `${HEADER.join("\n")}\n${json.trimEnd()};\n`;
function typecheck(sources) {
  const files = new Map([[tsFile("json"), JSON_TS]]);
  for (const [name, json] of Object.entries(sources)) files.set(tsFile(name), tsSource(json));
  const host = ts.createCompilerHost(TS_OPTIONS);
  const { getSourceFile, fileExists, readFile, directoryExists } = host;
  host.getSourceFile = (f, lang, ...rest) =>
    files.has(f) ? ts.createSourceFile(f, files.get(f), lang, true) : getSourceFile.call(host, f, lang, ...rest);
  host.fileExists = (f) => files.has(f) || fileExists.call(host, f);
  host.readFile = (f) => (files.has(f) ? files.get(f) : readFile.call(host, f));
  host.directoryExists = (d) => d === TYPECHECK_DIR || directoryExists.call(host, d);
  const program = ts.createProgram({ rootNames: [...files.keys()], options: TS_OPTIONS, host, oldProgram });
  oldProgram = program;
  const out = {};
  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const name of Object.keys(sources)) {
    const sf = program.getSourceFile(tsFile(name));
    const diags = [...global, ...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
    out[name] = diags.map((d) => {
      const inFile = d.file === sf && d.start !== undefined;
      // The chain goes from the whole dashboard down to the property at fault: keep the last
      // link, which names it, and the first if it says more than "not assignable".
      const chain = [];
      for (let m = d.messageText; m; m = typeof m === "string" ? undefined : m.next?.[0]) {
        chain.push(typeof m === "string" ? m : m.messageText);
      }
      let message = chain.length > 1 && !/is not assignable to type/.test(chain[0])
        ? `${chain[0]} ... ${chain.at(-1)}` : chain.at(-1);
      const excess = message.match(/^Object literal may only specify known properties, and '"(.*)"' does not exist in type '(.*)'\.$/s);
      if (excess) message = `unknown field "${excess[1]}" (not in ${excess[2].length <= 80 ? `type ${excess[2]}` : "the schema's type here"})`;
      // Long inline object types say nothing a reader can use.
      message = message.replace(/'\{[^']{80,}'/g, (t) => `${t.slice(0, 60)} ...}'`);
      const segs = inFile ? pathAt(sf, d.start) : [];
      const line = inFile ? sf.getLineAndCharacterOfPosition(d.start).line + 1 - HEADER.length : 0;
      return { segs, path: showPath(segs), line, code: d.code, message };
    });
  }
  return out;
}

// TypeScript stops at the first error of an object literal: a nested error hides an unknown
// field above it, and only the first unknown field of an object is reported. So the check runs
// again without each field it found fault with (errors the removal itself causes, above the
// removed field, are not reported) until nothing new turns up. Returns, per dashboard name, the
// errors with their lines in the file, and the dashboard without the faulty fields.
function schemaErrors(texts) {
  const names = Object.keys(texts);
  const lines = {};
  for (const n of names) {
    const sf = ts.createSourceFile(tsFile(n), tsSource(texts[n]), ts.ScriptTarget.ES2022, true);
    lines[n] = pathLines(sf);
  }
  const docs = Object.fromEntries(names.map((n) => [n, JSON.parse(texts[n])]));
  const found = Object.fromEntries(names.map((n) => [n, []]));
  const removed = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < 10; round++) {
    const result = typecheck(round === 0 ? texts
      : Object.fromEntries(names.map((n) => [n, JSON.stringify(docs[n], null, 2)])));
    let progress = false;
    for (const n of names) {
      for (const d of result[n]) {
        if (found[n].some((f) => f.path === d.path && f.code === d.code)) continue;
        if (removed[n].some((r) => within(r, d.segs))) continue;
        found[n].push({ ...d, line: round === 0 ? d.line : lines[n].get(d.path) ?? 0 });
        if (typeof d.segs.at(-1) !== "string") continue;
        let parent = docs[n];
        for (const k of d.segs.slice(0, -1)) parent = parent?.[k];
        if (parent && typeof parent === "object" && d.segs.at(-1) in parent) {
          delete parent[d.segs.at(-1)];
          removed[n].push(d.segs);
          progress = true;
        }
      }
    }
    if (!progress) break;
  }
  return Object.fromEntries(names.map((n) => [n, {
    errors: found[n].sort((a, b) => a.line - b.line),
    cleaned: docs[n],
  }]));
}

// The self-test's mutations of dashboard d: each must add a type error at `at` or above it.
function mutations(d) {
  const out = [];
  const clone = () => structuredClone(d);
  let m = clone();
  m.refreshh = "30s";
  out.push({ what: 'an unknown top-level field ("refreshh": "30s")', dashboard: m, at: ["refreshh"] });
  m = clone();
  m.schemaVersion = String(m.schemaVersion);
  out.push({ what: `a wrong type ("schemaVersion": "${m.schemaVersion}")`, dashboard: m, at: ["schemaVersion"] });
  m = clone();
  const i = m.panels.findIndex((p) => p.type !== "row");
  const fc = (m.panels[i].fieldConfig ??= { defaults: {}, overrides: [] });
  fc.defaults = { ...fc.defaults, thresholds: { mode: "absolut", steps: [{ color: "green", value: null }] } };
  out.push({ what: 'an invalid enum value (threshold "mode": "absolut")', dashboard: m,
    at: ["panels", i, "fieldConfig", "defaults", "thresholds", "mode"] });
  m = clone();
  m.panels[i].gridPos = { ...m.panels[i].gridPos, wdith: 12 };
  out.push({ what: 'an unknown field in a panel\'s gridPos ("wdith": 12)', dashboard: m,
    at: ["panels", i, "gridPos", "wdith"] });
  m = clone();
  const list = (m.annotations ??= {}).list ??= [];
  if (!list.length) list.push({ builtIn: 1, datasource: { type: "grafana", uid: "-- Grafana --" }, enable: true, iconColor: "red", name: "a" });
  list[list.length - 1] = { ...list.at(-1), iconColour: "red" };
  out.push({ what: 'an unknown field in an annotation ("iconColour")', dashboard: m,
    at: ["annotations", "list", list.length - 1, "iconColour"] });
  return out;
}
// The smallest dashboard the schema takes, for the self-test when no dashboard is free of errors.
const MINIMAL = {
  title: "self-test", uid: "self-test", schemaVersion: 39,
  panels: [{ type: "timeseries", id: 1, title: "p", gridPos: { x: 0, y: 0, w: 12, h: 8 },
    fieldConfig: { defaults: {}, overrides: [] } }],
};

check("schema", (problem) => {
  const texts = {};
  const fileOf = {};
  for (const { file } of dashboards) {
    const n = path.basename(file, ".json").replace(/[^A-Za-z0-9_-]/g, "_");
    texts[n] = fs.readFileSync(file, "utf8");
    fileOf[n] = file;
  }
  const results = schemaErrors(texts);
  let errors = 0;
  for (const [n, { errors: errs }] of Object.entries(results)) {
    for (const d of errs) {
      errors++;
      const at = d.line > 0 ? `${rel(fileOf[n])}:${d.line}` : rel(fileOf[n]);
      problem(`${at}: ${d.path}: TS${d.code} ${d.message}`);
    }
  }

  // Self-test: a dashboard (without the faulty fields found above, as those hide others), and
  // copies of it with one mistake each. A copy is caught if it has an error the dashboard does
  // not, at the mistake or an object holding it.
  const first = Object.keys(results)[0];
  const candidates = [
    { what: `a copy of ${rel(fileOf[first])}${results[first].errors.length ? " (its faulty fields removed)" : ""}`,
      dashboard: results[first].cleaned },
    { what: "a minimal dashboard", dashboard: MINIMAL },
  ];
  let base;
  let baseResult;
  for (const c of candidates) {
    const r = typecheck({ base: JSON.stringify(c.dashboard, null, 2) }).base;
    if (!r.length) { base = c; baseResult = r; break; }
  }
  if (!base) {
    problem(`the schema check rejects even a minimal dashboard: ${
      typecheck({ base: JSON.stringify(MINIMAL, null, 2) }).base.map((d) => `${d.path}: ${d.message}`).join("; ")}`);
    return undefined;
  }
  const mutants = mutations(base.dashboard);
  const result = typecheck(Object.fromEntries(mutants.map((m, i) => [`mutant${i}`, JSON.stringify(m.dashboard, null, 2)])));
  const baseKeys = new Set(baseResult.map((d) => `${d.path} ${d.code}`));
  const caught = [];
  mutants.forEach((m, i) => {
    const hit = result[`mutant${i}`].find((d) => !baseKeys.has(`${d.path} ${d.code}`) && within(m.at, d.segs));
    if (hit) caught.push(`${m.what}: ${hit.path}: TS${hit.code} ${hit.message}`);
    else problem(`the schema check does not catch ${m.what} in ${base.what}`);
  });
  if (caught.length === mutants.length) {
    console.log(`ok: self-test: the schema check catches each mistake injected into ${base.what}:` +
      caught.map((c) => `\n    ${c}`).join(""));
  }
  if (errors) return undefined;
  return `${dashboards.length} dashboards type-check against Dashboard of @grafana/schema ` +
    `${pkgVersion("@grafana/schema")} (TypeScript ${ts.version}; annotations may also have the ` +
    `Prometheus data source's fields)`;
});

function pkgVersion(name) {
  return JSON.parse(fs.readFileSync(path.join(HERE, "node_modules", name, "package.json"), "utf8")).version;
}

// --- 2. what the schema leaves open ----------------------------------------------------------
const metricsDoc = fs.readFileSync(path.join(root, "docs/metrics.md"), "utf8");
const documented = new Set([...metricsDoc.matchAll(/`(procscope_[a-z0-9_]+)`/g)].map((m) => m[1]));
const byUid = new Map(dashboards.map(({ file, dashboard }) => [dashboard.uid, { file, dashboard }]));

function allPanels(d) {
  const out = [];
  (d.panels ?? []).forEach((p, i) => {
    out.push({ p, at: `panels[${i}]` });
    (p.panels ?? []).forEach((q, j) => out.push({ p: q, at: `panels[${i}].panels[${j}]`, row: p }));
  });
  return out;
}

// Every data-link URL of a panel: fieldConfig defaults and overrides, panel links.
function dataLinks(p) {
  const out = [];
  const fc = p.fieldConfig ?? {};
  for (const l of fc.defaults?.links ?? []) out.push(l.url);
  for (const o of fc.overrides ?? []) {
    for (const prop of o.properties ?? []) {
      if (prop.id === "links") for (const l of prop.value ?? []) out.push(l.url);
    }
  }
  for (const l of p.links ?? []) out.push(l.url);
  return out.filter((u) => typeof u === "string" && u !== "");
}

const overlap = (a, b) =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

check("lint", (problem) => {
  let nPanels = 0;
  let nTargets = 0;
  let nLinks = 0;
  const metrics = new Set();
  const uids = new Map();
  for (const { file, dashboard: d } of dashboards) {
    const f = rel(file);
    const where = (at, p) => `${f}: ${at}${p?.title ? ` "${p.title}"` : ""}`;
    if (typeof d.uid !== "string" || d.uid === "") problem(`${f}: no uid`);
    else if (d.uid.length > MAX_UID) problem(`${f}: uid "${d.uid}" is longer than ${MAX_UID} characters`);
    if (uids.has(d.uid)) problem(`${f}: uid "${d.uid}" is also the uid of ${uids.get(d.uid)}`);
    uids.set(d.uid, f);
    if (!d.title) problem(`${f}: no title`);

    // Variables.
    const vars = d.templating?.list ?? [];
    const names = vars.map((v) => v.name);
    const dsVar = vars.find((v) => v.name === "datasource");
    if (!dsVar || dsVar.type !== "datasource" || dsVar.query !== "prometheus") {
      problem(`${f}: no variable "datasource" of type datasource with query "prometheus"`);
    }
    if (!names.includes("instance")) problem(`${f}: no variable "instance"`);
    names.forEach((n, i) => { if (names.indexOf(n) !== i) problem(`${f}: variable "${n}" is defined twice`); });
    const usesDefined = (what, text, before = names) => {
      if (typeof text !== "string") return;
      for (const v of variablesUsed(text)) {
        if (BUILTINS.has(v) || before.includes(v)) continue;
        if (names.includes(v)) problem(`${what} uses $${v}, which is defined after it`);
        else problem(`${what} uses $${v}, which is not a variable of the dashboard nor a Grafana built-in`);
      }
    };
    vars.forEach((v, i) => {
      const at = `${f}: variable "${v.name}"`;
      const q = typeof v.query === "string" ? v.query : v.query?.query;
      for (const text of [q, v.regex, v.datasource?.uid]) usesDefined(at, text, names.slice(0, i));
      if (v.type === "query" && !isDeepStrictEqual(v.datasource, DS)) {
        problem(`${at}: datasource is ${JSON.stringify(v.datasource)}, not ${JSON.stringify(DS)}`);
      }
    });

    // Panels.
    const panels = allPanels(d);
    const ids = new Map();
    for (const { p, at } of panels) {
      nPanels++;
      const w = where(at, p);
      if (!PANEL_TYPES.includes(p.type)) problem(`${w}: panel type "${p.type}" is not one of ${PANEL_TYPES.join(", ")}`);
      if (typeof p.id !== "number") problem(`${w}: no id`);
      else if (ids.has(p.id)) problem(`${w}: id ${p.id} is also the id of ${ids.get(p.id)}`);
      ids.set(p.id, at);
      if (typeof p.title !== "string" || p.title.trim() === "") problem(`${w}: no title`);
      usesDefined(`${w} title`, p.title);
      const g = p.gridPos;
      if (!g || ![g.x, g.y, g.w, g.h].every(Number.isInteger)) {
        problem(`${w}: gridPos ${JSON.stringify(g)} is not four integers x, y, w, h`);
      } else if (g.x < 0 || g.y < 0 || g.w < 1 || g.h < 1 || g.x + g.w > GRID_COLUMNS) {
        problem(`${w}: gridPos ${JSON.stringify(g)} is outside the ${GRID_COLUMNS}-column grid`);
      }
      if (p.type === "row") {
        if (p.description) problem(`${w}: a row has no description (Grafana does not show it)`);
        continue;
      }
      if (typeof p.description !== "string" || p.description.trim() === "") problem(`${w}: no description`);
      if (!isDeepStrictEqual(p.datasource, DS)) {
        problem(`${w}: datasource is ${JSON.stringify(p.datasource)}, not ${JSON.stringify(DS)}`);
      }
      const targets = p.targets ?? [];
      if (!targets.length && p.type !== "text") problem(`${w}: no targets`);
      const refIds = new Set();
      for (const t of targets) {
        nTargets++;
        const tw = `${w} target ${t.refId ?? "(no refId)"}`;
        if (typeof t.refId !== "string" || t.refId === "") problem(`${w}: a target has no refId`);
        else if (refIds.has(t.refId)) problem(`${w}: refId ${t.refId} is used twice`);
        refIds.add(t.refId);
        if (typeof t.expr !== "string" || t.expr.trim() === "") problem(`${tw}: no expr`);
        if (!isDeepStrictEqual(t.datasource, DS)) {
          problem(`${tw}: datasource is ${JSON.stringify(t.datasource)}, not ${JSON.stringify(DS)}`);
        }
      }
      for (const url of dataLinks(p)) {
        nLinks++;
        const m = url.match(/^\/d\/([^/?#]+)/);
        if (!m) continue;
        const target = byUid.get(m[1]);
        if (!target) {
          problem(`${w}: data link to /d/${m[1]}, which is not the uid of a bundled dashboard`);
          continue;
        }
        // The variables it passes (var-x=... and ${x:queryparam}) exist in the linked dashboard.
        const targetVars = (target.dashboard.templating?.list ?? []).map((v) => v.name);
        const passed = [...url.matchAll(/[?&]var-([A-Za-z0-9_]+)=/g)].map((v) => v[1])
          .concat([...url.matchAll(/\$\{([A-Za-z0-9_]+):queryparam\}/g)].map((v) => v[1]));
        for (const v of passed) {
          if (!targetVars.includes(v)) problem(`${w}: data link passes variable ${v}, which ${m[1]} does not have`);
        }
      }
    }
    // Grid: no two panels of the same level overlap (a collapsed row's panels are laid out on
    // their own when it opens).
    const levels = [d.panels ?? [], ...(d.panels ?? []).filter((p) => p.collapsed).map((p) => p.panels ?? [])];
    for (const level of levels) {
      const placed = level.filter((p) => p.gridPos && [p.gridPos.x, p.gridPos.y, p.gridPos.w, p.gridPos.h].every(Number.isInteger));
      for (let i = 0; i < placed.length; i++) {
        for (let j = i + 1; j < placed.length; j++) {
          if (overlap(placed[i].gridPos, placed[j].gridPos)) {
            problem(`${f}: panels "${placed[i].title}" (id ${placed[i].id}) and "${placed[j].title}" (id ${placed[j].id}) overlap`);
          }
        }
      }
    }

    // Queries: variables defined, metrics documented.
    for (const q of dashboardQueries(d)) {
      if (typeof q.expr !== "string" || q.expr.trim() === "") {
        if (q.kind !== "panel") problem(`${f}: ${q.where}: no query`);
        continue;
      }
      if (q.kind !== "variable") usesDefined(`${f}: ${q.where}`, q.expr);
      for (const m of q.expr.matchAll(/(?<![a-zA-Z0-9_:])procscope_[a-z0-9_]+/g)) {
        const name = m[0];
        const base = name.replace(/_(bucket|sum|count)$/, "");
        metrics.add(documented.has(name) ? name : base);
        if (!documented.has(name) && !documented.has(base)) {
          problem(`${f}: ${q.where} uses ${name}, which docs/metrics.md does not document`);
        }
      }
    }
    for (const a of d.annotations?.list ?? []) {
      if (a.builtIn !== 1 && !isDeepStrictEqual(a.datasource, DS)) {
        problem(`${f}: annotation "${a.name}": datasource is ${JSON.stringify(a.datasource)}, not ${JSON.stringify(DS)}`);
      }
    }
    // Dashboard links by tag find at least one other bundled dashboard.
    for (const l of d.links ?? []) {
      if (l.type !== "dashboards") continue;
      const others = dashboards.filter((o) => o.dashboard !== d &&
        (l.tags ?? []).every((t) => (o.dashboard.tags ?? []).includes(t)));
      if (!l.tags?.length || !others.length) {
        problem(`${f}: dashboard link "${l.title}" (tags ${JSON.stringify(l.tags)}) finds no other bundled dashboard`);
      }
    }
  }
  if (metrics.size < 5) problem(`found only ${metrics.size} procscope metrics in the queries: the check is broken`);
  return `${dashboards.length} dashboards, ${nPanels} panels, ${nTargets} targets: known panel ` +
    `types, unique ids, grid in bounds and no overlap, all on \${datasource}, variables defined ` +
    `in order, unique uids, ${nLinks} data links to bundled dashboards, the ${metrics.size} ` +
    `procscope metrics used all in docs/metrics.md`;
});

// --- 3. generated files current --------------------------------------------------------------
check("generated", (problem) => {
  try {
    execFileSync(process.execPath, [path.join(root, "grafana/generate.mjs"), "--check"],
      { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const out = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim();
    problem(`node grafana/generate.mjs --check failed (exit ${e.status}): run node grafana/generate.mjs` +
      (out ? `\n${out.split("\n").map((l) => `    ${l}`).join("\n")}` : ""));
  }
  return "grafana/dashboards/*.json and docs/dashboards.md are what grafana/generate.mjs makes";
});

// --- 4. provisioning files -------------------------------------------------------------------
function readYaml(file, problem) {
  const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"));
  if (doc.errors.length) {
    problem(`${rel(file)}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
    return undefined;
  }
  return doc.toJS();
}
const unknownKeys = (obj, known) => Object.keys(obj ?? {}).filter((k) => !known.includes(k));

check("provisioning", (problem) => {
  const provFile = path.join(root, "grafana/provisioning/dashboards/procscope.yaml");
  const dsFile = path.join(root, "grafana/provisioning/datasources/prometheus.yaml");
  const docFile = path.join(root, "docs/dashboards.md");
  const kust = YAML.parse(fs.readFileSync(path.join(root, "grafana/kustomization.yaml"), "utf8"));
  const prov = readYaml(provFile, problem);
  const ds = readYaml(dsFile, problem);
  let providerPath;
  if (prov) {
    const f = rel(provFile);
    if (prov.apiVersion !== 1) problem(`${f}: apiVersion is ${prov.apiVersion}, not 1`);
    for (const k of unknownKeys(prov, ["apiVersion", "providers"])) problem(`${f}: unknown key ${k}`);
    if (!Array.isArray(prov.providers) || !prov.providers.length) problem(`${f}: no providers`);
    for (const [i, p] of (prov.providers ?? []).entries()) {
      const w = `${f}: providers[${i}]`;
      for (const k of unknownKeys(p, PROVIDER_KEYS)) problem(`${w}: unknown key ${k}`);
      if (!p.name) problem(`${w}: no name`);
      if (p.type !== "file") problem(`${w}: type is ${p.type}, not file`);
      for (const k of unknownKeys(p.options, PROVIDER_FILE_OPTIONS)) problem(`${w}: unknown key options.${k}`);
      if (typeof p.options?.path !== "string" || !path.isAbsolute(p.options.path)) {
        problem(`${w}: options.path ${JSON.stringify(p.options?.path)} is not an absolute path`);
      } else {
        providerPath = p.options.path.replace(/\/+$/, "");
      }
      const folder = kust?.generatorOptions?.annotations?.grafana_folder;
      if (folder !== undefined && p.folder !== folder) {
        problem(`${w}: folder ${p.folder} differs from grafana/kustomization.yaml's grafana_folder ${folder}`);
      }
    }
  }
  // docs/dashboards.md: `install ... grafana/dashboards/*.json <dir>`.
  const doc = fs.readFileSync(docFile, "utf8");
  const copied = [...doc.matchAll(/grafana\/dashboards\/\*\.json\s+(\/\S+)/g)].map((m) => m[1].replace(/\/+$/, ""));
  if (!copied.length) problem(`${rel(docFile)} does not say where to copy grafana/dashboards/*.json`);
  for (const c of copied) {
    if (providerPath !== undefined && c !== providerPath) {
      problem(`${rel(docFile)} copies the dashboards to ${c}, the provider loads ${providerPath}`);
    }
  }
  let timeInterval;
  if (ds) {
    const f = rel(dsFile);
    if (ds.apiVersion !== 1) problem(`${f}: apiVersion is ${ds.apiVersion}, not 1`);
    for (const k of unknownKeys(ds, ["apiVersion", "datasources", "deleteDatasources", "prune"])) {
      problem(`${f}: unknown key ${k}`);
    }
    (ds.datasources ?? []).forEach((d, i) => {
      for (const k of unknownKeys(d, DATASOURCE_KEYS)) problem(`${f}: datasources[${i}]: unknown key ${k}`);
    });
    const prom = (ds.datasources ?? []).filter((d) => d.type === "prometheus");
    if (!prom.length) problem(`${f}: no data source of type prometheus`);
    const scrape = YAML.parse(fs.readFileSync(path.join(root, "deploy/prometheus/prometheus.yml"), "utf8"))
      ?.global?.scrape_interval;
    for (const d of prom) {
      const w = `${f}: data source ${d.name}`;
      if (d.access !== "proxy") problem(`${w}: access is ${d.access}, not proxy`);
      if (typeof d.url !== "string" || !/^https?:\/\/\S+$/.test(d.url)) problem(`${w}: url ${JSON.stringify(d.url)} is not an http(s) URL`);
      timeInterval = d.jsonData?.timeInterval;
      if (scrape === undefined) problem("deploy/prometheus/prometheus.yml: no global.scrape_interval");
      else if (timeInterval !== scrape) {
        problem(`${w}: jsonData.timeInterval ${JSON.stringify(timeInterval)} is not the scrape_interval ` +
          `of deploy/prometheus/prometheus.yml (${scrape})`);
      }
    }
  }
  return `provisioning: file provider on ${providerPath} (where docs/dashboards.md copies the ` +
    `dashboards), Prometheus data source with timeInterval ${timeInterval} = scrape_interval, known keys only`;
});

// --- 5. kustomization ------------------------------------------------------------------------
check("kustomization", (problem) => {
  const kFile = path.join(root, "grafana/kustomization.yaml");
  const k = readYaml(kFile, problem);
  if (!k) return undefined;
  const f = rel(kFile);
  const gens = k.configMapGenerator ?? [];
  if (gens.length !== 1) {
    problem(`${f}: ${gens.length} configMapGenerator entries, expected one`);
    if (!gens.length) return undefined;
  }
  const gen = gens[0];
  const files = (gen.files ?? []).map((e) => {
    const [key, file] = e.includes("=") ? e.split("=", 2) : [path.basename(e), e];
    return { key, file };
  });
  const listed = files.map((e) => path.normalize(e.file)).sort();
  const want = dashboards.map((d) => path.relative(path.join(root, "grafana"), d.file)).sort();
  for (const w of want) if (!listed.includes(w)) problem(`${f}: configMapGenerator does not list ${w}`);
  for (const l of listed) {
    if (!want.includes(l)) problem(`${f}: configMapGenerator lists ${l}, which is not a dashboard in grafana/dashboards`);
  }
  listed.forEach((l, i) => { if (listed.indexOf(l) !== i) problem(`${f}: configMapGenerator lists ${l} twice`); });

  const opts = k.generatorOptions ?? {};
  const cm = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: gen.name,
      ...(k.namespace ?? gen.namespace ? { namespace: gen.namespace ?? k.namespace } : {}),
      labels: { ...opts.labels, ...gen.options?.labels, ...k.commonLabels },
      annotations: { ...opts.annotations, ...gen.options?.annotations, ...k.commonAnnotations },
    },
    data: {},
  };
  for (const { key, file } of files) {
    const p = path.join(root, "grafana", file);
    if (fs.existsSync(p)) cm.data[key] = fs.readFileSync(p, "utf8");
    if (!/^[-._a-zA-Z0-9]+$/.test(key)) problem(`${f}: ${key} is not a valid ConfigMap key`);
  }
  if (!(opts.disableNameSuffixHash || gen.options?.disableNameSuffixHash)) {
    problem(`${f}: the ConfigMap name gets a hash suffix: kubectl apply -k leaves the old ones behind`);
  }
  if (cm.metadata.labels.grafana_dashboard !== "1") {
    problem(`${f}: the ConfigMap lacks the label grafana_dashboard: "1" the Grafana sidecar looks for`);
  }
  if (!cm.metadata.namespace) problem(`${f}: no namespace`);
  try {
    new ConfigMap(cm).validate();
  } catch (e) {
    problem(`${f}: the ConfigMap is invalid: ${e.message}`);
  }
  const dataBytes = Object.values(cm.data).reduce((n, v) => n + Buffer.byteLength(v), 0);
  const applied = Buffer.byteLength(JSON.stringify(cm));
  if (applied >= MAX_ANNOTATION) {
    problem(`${f}: the ConfigMap is ${applied} bytes as JSON, too large for kubectl apply's ` +
      `last-applied-configuration annotation (< ${MAX_ANNOTATION}); use kubectl apply --server-side or split it`);
  }
  if (rendered) {
    const objs = YAML.parseAllDocuments(fs.readFileSync(rendered, "utf8")).map((d) => d.toJS()).filter(Boolean);
    const got = objs.filter((o) => o.kind === "ConfigMap");
    if (objs.length !== 1 || got.length !== 1) {
      problem(`kustomize build grafana/: ${objs.length} objects, ${got.length} ConfigMaps; expected one ConfigMap`);
    } else {
      const clean = (o) => ({ ...o, metadata: { ...o.metadata, annotations: o.metadata.annotations ?? {} } });
      if (!isDeepStrictEqual(clean(got[0]), clean(cm))) {
        for (const key of new Set([...Object.keys(got[0]), ...Object.keys(cm)])) {
          if (!isDeepStrictEqual(clean(got[0])[key], clean(cm)[key])) {
            problem(`kustomize build grafana/: the ConfigMap's ${key} differs from the expected one`);
          }
        }
      }
    }
  }
  return `grafana/kustomization.yaml: ConfigMap ${cm.metadata.namespace}/${cm.metadata.name} ` +
    `with the ${files.length} dashboards, valid (kubernetes-models), labelled grafana_dashboard: "1", ` +
    `${dataBytes} bytes of data, ${applied} bytes as JSON (kubectl apply's limit ${MAX_ANNOTATION})` +
    (rendered ? ", equal to the kustomize output" : "");
});

if (failed) process.exit(1);
