// SPDX-License-Identifier: Apache-2.0
// Checks deploy/pyroscope/procscope.alloy without an Alloy binary (Debian has none): it parses
// as Alloy's configuration syntax (blocks, attributes, strings, lists, objects, references,
// comments), and says what procscoped needs: the profile paths are routes procscoped serves,
// the `seconds` parameter equals the scrape interval (each sample once), delta off, and the
// scrape timeout above the interval. A self-test proves the parser refuses broken input.
// Usage: node alloy_check.mjs <file.alloy> <daemon/daemon.cc>
import { readFileSync } from 'node:fs';

function tokenize(src) {
  const toks = [];
  let i = 0, line = 1;
  const err = (m) => { throw new Error(`line ${line}: ${m}`); };
  while (i < src.length) {
    const c = src[i];
    if (c === '\n') { line++; i++; continue; }
    if (/\s/.test(c)) { i++; continue; }
    if (src.startsWith('//', i)) { while (i < src.length && src[i] !== '\n') i++; continue; }
    if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) err('unclosed comment');
      line += src.slice(i, end).split('\n').length - 1;
      i = end + 2; continue;
    }
    if (c === '"') {
      let j = i + 1, s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\n') err('newline in a string');
        if (src[j] === '\\') { s += src[j + 1]; j += 2; continue; }
        s += src[j++];
      }
      if (j >= src.length) err('unclosed string');
      toks.push({ t: 'str', v: s, line }); i = j + 1; continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*|^-?[0-9]+(\.[0-9]+)?/.exec(src.slice(i));
    if (m) {
      toks.push({ t: /^[-0-9]/.test(m[0]) ? 'num' : 'id', v: m[0], line });
      i += m[0].length; continue;
    }
    if ('{}[]=,.:'.includes(c)) { toks.push({ t: c, v: c, line }); i++; continue; }
    err(`unexpected character '${c}'`);
  }
  return toks;
}

// Returns a list of {kind: 'attr'|'block', name, label, value|body}.
function parse(src) {
  const toks = tokenize(src);
  let p = 0;
  const peek = (k = 0) => toks[p + k] || { t: 'eof', line: 'end' };
  const expect = (t) => {
    const x = peek();
    if (x.t !== t) throw new Error(`line ${x.line}: expected '${t}', got '${x.v ?? x.t}'`);
    p++; return x;
  };
  function expr() {
    const x = peek();
    if (x.t === 'str' || x.t === 'num') { p++; return x.t === 'num' ? Number(x.v) : x.v; }
    if (x.t === 'id') {
      p++;
      if (x.v === 'true' || x.v === 'false') return x.v === 'true';
      let ref = x.v;
      while (peek().t === '.') { p++; ref += '.' + expect('id').v; }
      return { ref };
    }
    if (x.t === '[') {
      p++; const list = [];
      while (peek().t !== ']') { list.push(expr()); if (peek().t === ',') p++; else break; }
      expect(']'); return list;
    }
    if (x.t === '{') {
      p++; const obj = {};
      while (peek().t !== '}') {
        const k = peek(); if (k.t !== 'str' && k.t !== 'id') throw new Error(`line ${k.line}: bad object key`);
        p++; if (peek().t === '=' || peek().t === ':') p++; else expect('=');
        obj[k.v] = expr(); if (peek().t === ',') p++; else break;
      }
      expect('}'); return obj;
    }
    throw new Error(`line ${x.line}: expected a value, got '${x.v ?? x.t}'`);
  }
  function body(end) {
    const items = [];
    while (peek().t !== end) {
      const first = expect('id');
      if (peek().t === '=') { p++; items.push({ kind: 'attr', name: first.v, value: expr(), line: first.line }); continue; }
      let name = first.v;
      while (peek().t === '.') { p++; name += '.' + expect('id').v; }
      let label;
      if (peek().t === 'str') label = toks[p++].v;
      expect('{');
      const b = body('}');
      expect('}');
      items.push({ kind: 'block', name, label, body: b, line: first.line });
    }
    return items;
  }
  return body('eof');
}

const attr = (items, name) => items.find((i) => i.kind === 'attr' && i.name === name)?.value;
const blocks = (items, name) => items.filter((i) => i.kind === 'block' && i.name === name);
const seconds = (d) => {
  const m = /^([0-9]+)s$/.exec(d ?? '');
  if (!m) throw new Error(`duration '${d}': expected whole seconds like "15s"`);
  return Number(m[1]);
};

// Self-test: broken inputs must be refused, or the check proves nothing.
for (const bad of ['a {', 'a = ', 'a = "x', 'x { y = [1, }', 'b "l" { c = {"k" 1} }', 'a = @']) {
  let refused = false;
  try { parse(bad); } catch { refused = true; }
  if (!refused) { console.error(`FAIL: self-test: the parser accepted '${bad}'`); process.exit(1); }
}

const [file, daemonCc] = process.argv.slice(2);
let failures = 0;
const fail = (m) => { console.error(`FAIL: ${file}: ${m}`); failures++; };
let cfg;
try { cfg = parse(readFileSync(file, 'utf8')); } catch (e) { fail(`does not parse: ${e.message}`); process.exit(1); }
console.log(`ok: ${file} parses as Alloy syntax (${cfg.length} top-level blocks)`);

const routes = new Set([...readFileSync(daemonCc, 'utf8').matchAll(/\{"(\/[a-z0-9/_]+)"/g)].map((m) => m[1]));
const scrapes = blocks(cfg, 'pyroscope.scrape');
if (scrapes.length === 0) fail('no pyroscope.scrape block');
if (blocks(cfg, 'pyroscope.write').length === 0) fail('no pyroscope.write block');
for (const s of scrapes) {
  const interval = seconds(attr(s.body, 'scrape_interval') ?? '15s');
  const timeout = seconds(attr(s.body, 'scrape_timeout') ?? '18s');
  const want = attr(s.body, 'params')?.seconds?.[0];
  if (String(want) !== String(interval)) {
    fail(`params seconds = ${want}, want the scrape interval ${interval} (each sample once)`);
  }
  if (timeout <= interval) fail(`scrape_timeout ${timeout}s must exceed scrape_interval ${interval}s`);
  const pc = blocks(s.body, 'profiling_config')[0];
  if (!pc) { fail('no profiling_config'); continue; }
  const paths = [];
  for (const b of pc.body.filter((i) => i.kind === 'block')) {
    if (attr(b.body, 'enabled') !== true) continue;
    const path = attr(b.body, 'path');
    if (!routes.has(path)) fail(`${b.name} ${b.label ?? ''}: path '${path}' is not a procscoped route`);
    if (attr(b.body, 'delta') !== false) fail(`${b.name}: delta must be false (seconds comes from params)`);
    paths.push(path);
  }
  for (const need of ['/debug/pprof/profile', '/debug/pprof/offcpu']) {
    if (!paths.includes(need)) fail(`${need} is not scraped`);
  }
  console.log(`ok: scrapes ${paths.join(', ')} every ${interval}s with seconds=${want}`);
}
process.exit(failures ? 1 : 0);
