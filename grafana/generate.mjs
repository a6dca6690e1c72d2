#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Generates the bundled Grafana dashboards (grafana/dashboards/*.json) and the panel reference
// of docs/dashboards.md from one description, so that every panel has a question it answers, a
// query and a documented line, and the three can never disagree.
//
//   node grafana/generate.mjs           write the files
//   node grafana/generate.mjs --check   exit 1 if a written file would change (CI runs this)
//
// The JSON is Grafana's classic dashboard model (schemaVersion 39, Grafana 10.4 and later);
// tests/deploy/validate-dashboards.mjs checks it against @grafana/schema, and
// tests/integration/dashboards_test.sh runs every query against a real Prometheus.
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const DS = {type: 'prometheus', uid: '${datasource}'};

// --- selectors and query fragments ------------------------------------------------------------
const NODE = 'job="$job", instance="$instance"';
const GROUP = `${NODE}, group="$group"`;
const PROC = `${GROUP}, pid=~"$pid"`;
const HEALTH = 'job="$job", instance=~"$instance"';

// New exits of a counter family over a window, exactly: the counter now minus its value `window`
// ago. A group's exit (per outcome) and crash (per signal) series appear with its first such exit,
// already at 1, which increase() would miss; a series that did not exist `window` ago counts from
// 0 provided procscope was scraped then (else old history reloaded from the journal would show as
// new). The alert rules (deploy/prometheus/procscope.rules.yml) count the same way.
function newExits(series, by, window) {
  return `sum by (${by}) (
  clamp_min(
    ${series}
      - (
          ${series} offset ${window}
          or
          ${series} * 0
            and on (instance, job) (procscope_build_info{${NODE}} offset ${window})
        ),
    0)
)`;
}
const CRASHES = `procscope_group_crashes_total{${NODE}}`;
const OOMS = `procscope_group_exits_total{${NODE}, outcome="oom_killed"}`;

// --- panel builders ---------------------------------------------------------------------------
function target(expr, legend, extra = {}) {
  return {datasource: DS, expr, legendFormat: legend ?? '__auto', range: true, ...extra};
}
function instant(expr, extra = {}) {
  return target(expr, '__auto', {range: false, instant: true, format: 'table', ...extra});
}

function timeseries({title, question, unit, targets, w = 12, h = 8, stack = false, bars = false,
                     min, max, interval, overrides = [], legend = 'table'}) {
  return {
    type: 'timeseries', title, description: question, w, h, interval, targets,
    fieldConfig: {
      defaults: {
        unit, min, max,
        color: {mode: 'palette-classic'},
        custom: {
          drawStyle: bars ? 'bars' : 'line',
          lineWidth: 1,
          fillOpacity: bars || stack ? 80 : 10,
          showPoints: 'never',
          spanNulls: false,
          stacking: {mode: stack ? 'normal' : 'none', group: 'A'},
        },
      },
      overrides,
    },
    options: {
      legend: legend === 'table'
          ? {showLegend: true, displayMode: 'table', placement: 'right', calcs: ['max', 'lastNotNull']}
          : {showLegend: true, displayMode: 'list', placement: 'bottom', calcs: []},
      tooltip: {mode: 'multi', sort: 'desc'},
    },
  };
}

function table({title, question, targets, w = 12, h = 8, overrides = [], exclude = [],
                sortBy, unit}) {
  const hidden = Object.fromEntries(['Time', '__name__', 'job', 'instance', ...exclude]
                                        .map((f) => [f, true]));
  return {
    type: 'table', title, description: question, w, h, targets,
    fieldConfig: {defaults: {unit, custom: {align: 'auto', filterable: false}}, overrides},
    options: {
      showHeader: true,
      cellHeight: 'sm',
      footer: {show: false, reducer: ['sum'], countRows: false, fields: ''},
      sortBy: sortBy ? [{displayName: sortBy, desc: true}] : [],
    },
    transformations: [{id: 'organize', options: {excludeByName: hidden}}],
  };
}

function stat({title, question, targets, unit, w = 6, h = 4, mappings = [], thresholds,
               textMode = 'value_and_name'}) {
  return {
    type: 'stat', title, description: question, w, h, targets,
    fieldConfig: {
      defaults: {
        unit, mappings,
        color: {mode: 'thresholds'},
        thresholds: thresholds ?? {mode: 'absolute', steps: [{color: 'green', value: null}]},
      },
      overrides: [],
    },
    options: {
      reduceOptions: {calcs: ['lastNotNull'], fields: '', values: false},
      colorMode: 'background', graphMode: 'none', justifyMode: 'auto', orientation: 'auto',
      textMode, wideLayout: true, showPercentChange: false,
    },
  };
}

function heatmap({title, question, targets, w = 12, h = 8}) {
  return {
    type: 'heatmap', title, description: question, w, h, targets,
    fieldConfig: {defaults: {custom: {}}, overrides: []},
    options: {
      calculate: false,
      cellGap: 1,
      color: {mode: 'scheme', scheme: 'Oranges', steps: 64, exponent: 0.5, fill: 'dark-orange',
              reverse: false, scale: 'exponential'},
      yAxis: {axisPlacement: 'left', unit: 's'},
      rowsFrame: {layout: 'auto'},
      legend: {show: true},
      tooltip: {mode: 'single', yHistogram: false, showColorScale: false},
      filterValues: {le: 1e-9},
      showValue: 'never',
      cellValues: {unit: 'short'},
    },
  };
}

const row = (title) => ({type: 'row', title});

// Lays panels out left to right, 24 columns wide; a row starts a new line.
function layout(items) {
  const panels = [];
  let x = 0;
  let y = 0;
  let lineHeight = 0;
  let id = 1;
  for (const item of items) {
    if (item.type === 'row') {
      y += lineHeight;
      x = 0;
      lineHeight = 0;
      panels.push({type: 'row', title: item.title, collapsed: false, id: id++,
                   gridPos: {h: 1, w: 24, x: 0, y}, panels: []});
      y += 1;
      continue;
    }
    const {w, h, interval, ...panel} = item;
    if (x + w > 24) {
      y += lineHeight;
      x = 0;
      lineHeight = 0;
    }
    const refIds = 'ABCDEFGHIJ';
    const out = {
      ...panel,
      id: id++,
      datasource: DS,
      gridPos: {h, w, x, y},
      targets: panel.targets.map((t, i) => ({...t, refId: refIds[i]})),
    };
    if (interval) out.interval = interval;
    panels.push(out);
    x += w;
    lineHeight = Math.max(lineHeight, h);
  }
  return panels;
}

// --- variables --------------------------------------------------------------------------------
function datasourceVar() {
  return {name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus',
          regex: '', hide: 0, includeAll: false, multi: false, refresh: 1, options: []};
}
function queryVar(name, label, query, {multi = false, includeAll = false, allValue, sort = 1} = {}) {
  const v = {name, label, type: 'query', datasource: DS, query, regex: '', hide: 0, refresh: 2,
             sort, multi, includeAll, options: []};
  if (allValue) v.allValue = allValue;
  return v;
}
const jobVar = () => queryVar('job', 'Job', 'label_values(procscope_build_info, job)');
const nodeVar = (opts) => queryVar('instance', 'Node',
                                   'label_values(procscope_build_info{job="$job"}, instance)', opts);

function dashboard({uid, title, description, variables, items, annotations = []}) {
  return {
    uid, title, description,
    id: null,
    tags: ['procscope'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    refresh: '30s',
    schemaVersion: 39,
    version: 1,
    time: {from: 'now-1h', to: 'now'},
    timepicker: {},
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    links: [{title: 'procscope', type: 'dashboards', tags: ['procscope'], asDropdown: true,
             icon: 'external link', includeVars: true, keepTime: true, targetBlank: false,
             tooltip: '', url: ''}],
    annotations: {
      list: [
        {builtIn: 1, datasource: {type: 'grafana', uid: '-- Grafana --'}, enable: true, hide: true,
         iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard'},
        ...annotations,
      ],
    },
    templating: {list: variables},
    panels: layout(items),
  };
}

const mapping = (texts) => [{type: 'value', options: Object.fromEntries(
    Object.entries(texts).map(([v, [text, color]], index) => [v, {text, color, index}]))}];
const byName = (name, ...properties) => ({matcher: {id: 'byName', options: name}, properties});
const drillLink = (group, pid) => ({
  title: 'Drill down',
  url: '/d/procscope-drilldown/procscope-process-and-group?${datasource:queryparam}&' +
       `\${job:queryparam}&\${instance:queryparam}&var-group=${group}&var-pid=${pid}&` +
       '${__url_time_range}',
});
const RATE = '$__rate_interval';
const CORES = 'suffix: cores';

// --- 1. Overview: who is hurting this node ----------------------------------------------------
const REASONS = {
  cpu: ['CPU hog (rate: cores)', 'red'],
  runqueue_wait: ['Starved of CPU (rate: s/s on the run queue)', 'orange'],
  memory_growth: ['Memory growing (rate: bytes/s)', 'purple'],
  page_faults: ['Page-fault storm (rate: faults/s)', 'blue'],
  block_io: ['Block I/O hog (rate: bytes/s)', 'yellow'],
  crashes: ['Crash loop (rate: crashes/min, pid: last crash)', 'dark-red'],
};

function topPair(what, groupExpr, procExpr, unit, groupQuestion, procQuestion) {
  return [
    timeseries({title: `Top groups by ${what}`, question: groupQuestion, unit,
                targets: [target(groupExpr, '{{group}}')]}),
    timeseries({title: `Top processes by ${what}`, question: procQuestion, unit,
                targets: [target(procExpr, '{{comm}} ({{pid}})')]}),
  ];
}

const overview = dashboard({
  uid: 'procscope-overview',
  title: 'procscope / Overview: who is hurting this node',
  description: 'Offending processes on one node and why: CPU, run-queue wait, memory growth, ' +
               'page faults, block I/O, crashes and OOM kills.',
  variables: [datasourceVar(), jobVar(), nodeVar()],
  annotations: [
    {datasource: DS, enable: true, hide: false, iconColor: 'red', name: 'Crashes',
     expr: `${newExits(CRASHES, 'group, signal', '1m')} > 0`, step: '1m',
     titleFormat: '{{group}} crashed ({{signal}})', textFormat: '{{group}} crashed ({{signal}})',
     tagKeys: 'group,signal', useValueForTime: false},
    {datasource: DS, enable: true, hide: false, iconColor: 'purple', name: 'OOM kills',
     expr: `${newExits(OOMS, 'group', '1m')} > 0`, step: '1m',
     titleFormat: '{{group}} OOM-killed', textFormat: '{{group}} OOM-killed',
     tagKeys: 'group', useValueForTime: false},
  ],
  items: [
    row('Offenders'),
    table({
      title: 'Offenders now', w: 15, h: 9, sortBy: 'Rate',
      question: 'Which processes are hurting this node right now, and how? One row per ' +
                'process and resource procscoped flags over its offender window; the rate is ' +
                'in the unit the reason names. Click a process to drill down.',
      targets: [instant(`procscope_offender{${NODE}}`)],
      overrides: [
        byName('resource', {id: 'displayName', value: 'Reason'}, {id: 'mappings', value: mapping(REASONS)},
               {id: 'custom.cellOptions', value: {type: 'color-text'}}),
        byName('group', {id: 'displayName', value: 'Group'}),
        byName('comm', {id: 'displayName', value: 'Process'},
               {id: 'links', value: [drillLink('${__data.fields.group}', '${__data.fields.pid}')]}),
        byName('pid', {id: 'displayName', value: 'PID'}),
        byName('Value', {id: 'displayName', value: 'Rate'}, {id: 'decimals', value: 2}),
      ],
    }),
    timeseries({
      title: 'Offenders over time', w: 9, h: 9, bars: true, stack: true, legend: 'list',
      question: 'When did this node have offenders, and for which resource?',
      targets: [target(`count by (resource) (procscope_offender{${NODE}})`, '{{resource}}')],
    }),
    row('CPU'),
    timeseries({
      title: 'Top groups by CPU', unit: CORES, min: 0,
      question: 'Which groups use the CPUs (cores on CPU, all their processes, exited ones ' +
                'included), against the node\'s total?',
      targets: [target(`topk(10, rate(procscope_group_cpu_seconds_total{${NODE}}[${RATE}]))`, '{{group}}'),
                target(`sum(rate(procscope_group_cpu_seconds_total{${NODE}}[${RATE}]))`, 'all groups')],
    }),
    timeseries({
      title: 'Top processes by CPU', unit: CORES, min: 0,
      question: 'Which processes use the CPUs (cores on CPU, all threads)?',
      targets: [target(`topk(10, rate(procscope_process_cpu_seconds_total{${NODE}}[${RATE}]))`,
                       '{{comm}} ({{pid}})')],
    }),
    row('Run queue'),
    timeseries({
      title: 'Top groups by run-queue wait', unit: 'suffix: s/s', min: 0, w: 8,
      question: 'Which groups are starved of CPU: seconds per second their threads waited ' +
                'runnable for a CPU?',
      targets: [target(`topk(10, rate(procscope_group_runqueue_wait_seconds_total{${NODE}}[${RATE}]))`,
                       '{{group}}')],
    }),
    timeseries({
      title: 'Top processes by run-queue wait', unit: 'suffix: s/s', min: 0, w: 8,
      question: 'Which processes wait for a CPU the longest?',
      targets: [target(`topk(10, rate(procscope_process_runqueue_wait_seconds_total{${NODE}}[${RATE}]))`,
                       '{{comm}} ({{pid}})')],
    }),
    timeseries({
      title: 'Run-queue latency p99 by group', unit: 's', min: 0, w: 8,
      question: 'How long does one wakeup or preemption wait for a CPU, at the 99th ' +
                'percentile, in the worst groups?',
      targets: [target(`topk(10, histogram_quantile(0.99, sum by (group, le) (rate(procscope_group_runqueue_latency_seconds_bucket{${NODE}}[${RATE}]))) > 0)`,
                       '{{group}}')],
    }),
    row('Memory'),
    timeseries({
      title: 'Top groups by memory growth', unit: 'Bps', w: 8,
      question: 'Whose resident memory is growing (a leak), in bytes per second?',
      targets: [target(`topk(10, deriv(procscope_group_resident_memory_bytes{${NODE}}[${RATE}]))`,
                       '{{group}}')],
    }),
    timeseries({
      title: 'Top processes by memory growth', unit: 'Bps', w: 8,
      question: 'Which processes\' resident memory is growing?',
      targets: [target(`topk(10, deriv(procscope_process_resident_memory_bytes{${NODE}}[${RATE}]))`,
                       '{{comm}} ({{pid}})')],
    }),
    timeseries({
      title: 'Top groups by resident memory', unit: 'bytes', min: 0, w: 8,
      question: 'Which groups hold the most memory?',
      targets: [target(`topk(10, procscope_group_resident_memory_bytes{${NODE}})`, '{{group}}')],
    }),
    row('Page faults'),
    timeseries({
      title: 'Top groups by page faults', unit: 'suffix: faults/s', min: 0, w: 8,
      question: 'Which groups fault pages in (minor and major), per second?',
      targets: [target(`topk(10, sum without (type) (rate(procscope_group_page_faults_total{${NODE}}[${RATE}])))`,
                       '{{group}}')],
    }),
    timeseries({
      title: 'Top processes by page faults', unit: 'suffix: faults/s', min: 0, w: 8,
      question: 'Which processes fault pages in, per second?',
      targets: [target(`topk(10, sum without (type) (rate(procscope_process_page_faults_total{${NODE}}[${RATE}])))`,
                       '{{comm}} ({{pid}})')],
    }),
    timeseries({
      title: 'Top groups by major page faults', unit: 'suffix: faults/s', min: 0, w: 8,
      question: 'Which groups wait for the disk on page faults (major faults: swap-in, ' +
                'file pages not cached)?',
      targets: [target(`topk(10, rate(procscope_group_page_faults_total{${NODE}, type="major"}[${RATE}]))`,
                       '{{group}}')],
    }),
    row('Block I/O'),
    timeseries({
      title: 'Top groups by block I/O', unit: 'Bps', min: 0, w: 8,
      question: 'Which groups read and write the block devices (bytes per second, writeback ' +
                'of the page cache they dirtied included)?',
      targets: [target(`topk(10, sum without (direction) (rate(procscope_group_block_io_bytes_total{${NODE}}[${RATE}])))`,
                       '{{group}}')],
    }),
    timeseries({
      title: 'Top processes by block I/O', unit: 'Bps', min: 0, w: 8,
      question: 'Which processes read and write the block devices?',
      targets: [target(`topk(10, sum without (direction) (rate(procscope_process_block_io_bytes_total{${NODE}}[${RATE}])))`,
                       '{{comm}} ({{pid}})')],
    }),
    timeseries({
      title: 'Block I/O latency by group', unit: 's', min: 0, w: 8,
      question: 'Whose block requests are slow: mean device time (issue to completion) per ' +
                'request?',
      targets: [target(`topk(10, sum without (direction) (rate(procscope_group_block_io_time_seconds_total{${NODE}}[${RATE}])) / (sum without (direction) (rate(procscope_group_block_io_operations_total{${NODE}}[${RATE}])) > 0))`,
                       '{{group}}')],
    }),
    row('Crashes and OOM kills'),
    timeseries({
      title: 'Crashes and OOM kills', bars: true, stack: true, min: 0, w: 16, interval: '1m',
      unit: 'short',
      question: 'Which groups crashed or were OOM-killed, when, and with which signal? Each ' +
                'bar counts the exits in its interval.',
      targets: [target(`${newExits(CRASHES, 'group, signal', '$__interval')} > 0`, '{{group}} {{signal}}'),
                target(`${newExits(OOMS, 'group', '$__interval')} > 0`, '{{group}} OOM kill')],
    }),
    table({
      title: 'Failed exits in the time range', w: 8, sortBy: 'Exits',
      question: 'Which groups had processes fail, crash or get killed over the dashboard\'s ' +
                'time range, and how many?',
      targets: [instant(`${newExits(`procscope_group_exits_total{${NODE}, outcome=~"failure|signaled|crashed|oom_killed"}`, 'group, outcome', '$__range')} > 0`)],
      overrides: [byName('group', {id: 'displayName', value: 'Group'}),
                  byName('outcome', {id: 'displayName', value: 'Outcome'}),
                  byName('Value', {id: 'displayName', value: 'Exits'})],
    }),
  ],
});

// --- 2. Drill-down: one group and its processes -----------------------------------------------
const drilldown = dashboard({
  uid: 'procscope-drilldown',
  title: 'procscope / Process and group',
  description: 'Every procscope metric of one group, and of its processes that procscoped ' +
               'exports (the top K per resource and the offenders), over time.',
  variables: [
    datasourceVar(), jobVar(), nodeVar(),
    queryVar('group', 'Group', 'label_values(procscope_group_cpu_seconds_total{job="$job", instance="$instance"}, group)'),
    queryVar('pid', 'PID', 'label_values(procscope_process_cpu_seconds_total{job="$job", instance="$instance", group="$group"}, pid)',
             {multi: true, includeAll: true, allValue: '.+', sort: 3}),
  ],
  items: [
    row('Group $group'),
    timeseries({
      title: 'CPU and run-queue wait', unit: CORES, min: 0, w: 8,
      question: 'How much CPU does the group get, and how long do its threads wait for one?',
      targets: [target(`rate(procscope_group_cpu_seconds_total{${GROUP}}[${RATE}])`, 'on CPU'),
                target(`rate(procscope_group_runqueue_wait_seconds_total{${GROUP}}[${RATE}])`, 'waiting for a CPU')],
    }),
    timeseries({
      title: 'Run-queue latency percentiles', unit: 's', min: 0, w: 8,
      question: 'How long does one wakeup or preemption of the group wait for a CPU (p50, p90, p99)?',
      targets: [0.5, 0.9, 0.99].map((q) => target(
          `histogram_quantile(${q}, sum by (le) (rate(procscope_group_runqueue_latency_seconds_bucket{${GROUP}}[${RATE}])))`,
          `p${Math.round(q * 100)}`)),
    }),
    heatmap({
      title: 'Run-queue latency', w: 8,
      question: 'How are the group\'s run-queue waits distributed over time (log2 buckets)?',
      targets: [target(`sum by (le) (increase(procscope_group_runqueue_latency_seconds_bucket{${GROUP}}[${RATE}]))`,
                       '{{le}}', {format: 'heatmap'})],
    }),
    timeseries({
      title: 'Run-queue wait caused and suffered', unit: CORES, min: 0, w: 8,
      question: 'Whom does the group delay? The run-queue wait of other processes that ended ' +
                'when the group left their CPU (caused), next to the group\'s own wait (suffered).',
      targets: [target(`rate(procscope_group_runqueue_wait_caused_seconds_total{${GROUP}}[${RATE}])`, 'caused (delaying others)'),
                target(`rate(procscope_group_runqueue_wait_seconds_total{${GROUP}}[${RATE}])`, 'suffered (waiting for a CPU)')],
    }),
    timeseries({
      title: 'Off-CPU time: blocked and sleeping', unit: CORES, min: 0, w: 8,
      question: 'What does the group wait on while off the CPU: blocked uninterruptibly (D: disk, ' +
                'locks) or sleeping (S: pipes, sockets, timers)? Its stacks: /debug/pprof/offcpu.',
      targets: [target(`rate(procscope_group_blocked_seconds_total{${GROUP}}[${RATE}])`, 'blocked (D)'),
                target(`rate(procscope_group_sleep_seconds_total{${GROUP}}[${RATE}])`, 'sleeping (S)')],
    }),
    timeseries({
      title: 'Culprits and victims on this node', unit: CORES, min: 0, w: 8,
      question: 'Which groups delay others the most (caused), and which wait the most (suffered)?',
      targets: [target(`topk(5, rate(procscope_group_runqueue_wait_caused_seconds_total{${NODE}}[${RATE}]) > 0)`, 'culprit {{group}}'),
                target(`topk(5, rate(procscope_group_runqueue_wait_seconds_total{${NODE}}[${RATE}]) > 0)`, 'victim {{group}}')],
    }),
    timeseries({
      title: 'Context switches', unit: 'suffix: /s', min: 0, w: 8,
      question: 'How often do the group\'s threads block (voluntary) or get preempted (involuntary)?',
      targets: [target(`sum by (type) (rate(procscope_group_context_switches_total{${GROUP}}[${RATE}]))`, '{{type}}')],
    }),
    timeseries({
      title: 'Page faults', unit: 'suffix: faults/s', min: 0, w: 8,
      question: 'How many minor and major page faults does the group take per second?',
      targets: [target(`sum by (type) (rate(procscope_group_page_faults_total{${GROUP}}[${RATE}]))`, '{{type}}')],
    }),
    timeseries({
      title: 'Resident memory and processes', unit: 'bytes', min: 0, w: 8,
      question: 'How much memory do the group\'s live processes hold, and how many are there?',
      targets: [target(`procscope_group_resident_memory_bytes{${GROUP}}`, 'resident memory'),
                target(`procscope_group_processes{${GROUP}}`, 'live processes')],
      overrides: [byName('live processes', {id: 'unit', value: 'short'},
                         {id: 'custom.axisPlacement', value: 'right'})],
    }),
    timeseries({
      title: 'Block I/O throughput', unit: 'Bps', min: 0, w: 6,
      question: 'How many bytes does the group read and write on block devices?',
      targets: [target(`sum by (direction) (rate(procscope_group_block_io_bytes_total{${GROUP}}[${RATE}]))`, '{{direction}}'),
                target(`rate(procscope_group_page_cache_dirtied_bytes_total{${GROUP}}[${RATE}])`, 'page cache dirtied')],
    }),
    timeseries({
      title: 'Block I/O requests', unit: 'iops', min: 0, w: 6,
      question: 'How many block requests does the group complete per second?',
      targets: [target(`sum by (direction) (rate(procscope_group_block_io_operations_total{${GROUP}}[${RATE}]))`, '{{direction}}')],
    }),
    timeseries({
      title: 'Block I/O latency', unit: 's', min: 0, w: 6,
      question: 'How long does one of the group\'s block requests take on the device (mean)?',
      targets: [target(`sum by (direction) (rate(procscope_group_block_io_time_seconds_total{${GROUP}}[${RATE}])) / (sum by (direction) (rate(procscope_group_block_io_operations_total{${GROUP}}[${RATE}])) > 0)`,
                       '{{direction}}')],
    }),
    timeseries({
      title: 'Exits', bars: true, stack: true, min: 0, w: 6, interval: '1m', unit: 'short',
      legend: 'list',
      question: 'How did the group\'s processes end (success, failure, signaled, crashed, ' +
                'OOM-killed), per interval?',
      targets: [target(newExits(`procscope_group_exits_total{${GROUP}}`, 'outcome', '$__interval'), '{{outcome}}'),
                target(`${newExits(`procscope_group_crashes_total{${GROUP}}`, 'signal', '$__interval')} > 0`, 'crash: {{signal}}')],
    }),
    row('Processes of $group (pid $pid)'),
    table({
      title: 'Processes', w: 8, sortBy: 'Started',
      question: 'Which of the group\'s processes does procscope export, and when did each ' +
                'start (a pid with a new start time was reused)?',
      targets: [instant(`procscope_process_start_time_seconds{${PROC}} * 1000`)],
      overrides: [byName('comm', {id: 'displayName', value: 'Process'}),
                  byName('pid', {id: 'displayName', value: 'PID'}),
                  byName('group', {id: 'displayName', value: 'Group'}),
                  byName('container', {id: 'displayName', value: 'Container'}),
                  byName('Value', {id: 'displayName', value: 'Started'}, {id: 'unit', value: 'dateTimeAsIso'})],
    }),
    timeseries({
      title: 'CPU by process', unit: CORES, min: 0, w: 8,
      question: 'How much CPU does each process use?',
      targets: [target(`rate(procscope_process_cpu_seconds_total{${PROC}}[${RATE}])`, '{{comm}} ({{pid}})')],
    }),
    timeseries({
      title: 'Run-queue wait by process', unit: 'suffix: s/s', min: 0, w: 8,
      question: 'How long does each process wait for a CPU?',
      targets: [target(`rate(procscope_process_runqueue_wait_seconds_total{${PROC}}[${RATE}])`, '{{comm}} ({{pid}})')],
    }),
    timeseries({
      title: 'Resident memory by process', unit: 'bytes', min: 0, w: 8,
      question: 'How much memory does each process hold; is it growing?',
      targets: [target(`procscope_process_resident_memory_bytes{${PROC}}`, '{{comm}} ({{pid}})')],
    }),
    timeseries({
      title: 'Page faults by process', unit: 'suffix: faults/s', min: 0, w: 8,
      question: 'How many minor and major faults does each process take?',
      targets: [target(`rate(procscope_process_page_faults_total{${PROC}}[${RATE}])`, '{{comm}} ({{pid}}) {{type}}')],
    }),
    timeseries({
      title: 'Block I/O by process', unit: 'Bps', min: 0, w: 8,
      question: 'How many bytes does each process read and write on block devices?',
      targets: [target(`rate(procscope_process_block_io_bytes_total{${PROC}}[${RATE}])`, '{{comm}} ({{pid}}) {{direction}}')],
    }),
    timeseries({
      title: 'Context switches by process', unit: 'suffix: /s', min: 0, w: 8,
      question: 'How often does each process block or get preempted?',
      targets: [target(`rate(procscope_process_context_switches_total{${PROC}}[${RATE}])`, '{{comm}} ({{pid}}) {{type}}')],
    }),
  ],
});

// --- 3. procscope health ----------------------------------------------------------------------
const health = dashboard({
  uid: 'procscope-health',
  title: 'procscope / Health',
  description: 'Is procscope itself well: up, its BPF cost, lost events, map fill, scrape ' +
               'duration and the series cap.',
  variables: [datasourceVar(), jobVar(), nodeVar({multi: true, includeAll: true, allValue: '.+'})],
  items: [
    row('Daemon'),
    stat({
      title: 'Up', w: 8, h: 5,
      question: 'Can Prometheus scrape procscoped on each node?',
      targets: [target(`up{${HEALTH}}`, '{{instance}}')],
      mappings: mapping({0: ['DOWN', 'red'], 1: ['UP', 'green']}),
      thresholds: {mode: 'absolute', steps: [{color: 'red', value: null}, {color: 'green', value: 1}]},
    }),
    table({
      title: 'Version', w: 8, h: 5,
      question: 'Which procscoped version runs on each node?',
      targets: [instant(`procscope_build_info{${HEALTH}}`)],
      exclude: ['Value'],
    }),
    timeseries({
      title: 'Tracked processes and exits', w: 8, h: 5, legend: 'list', min: 0, unit: 'short',
      question: 'How many live processes does procscoped track, and how many exits per second ' +
                'does it handle?',
      targets: [target(`procscope_tracked_processes{${HEALTH}}`, '{{instance}} processes'),
                target(`rate(procscope_exit_events_total{${HEALTH}}[${RATE}])`, '{{instance}} exits/s')],
    }),
    row('BPF'),
    timeseries({
      title: 'BPF CPU time by program', unit: 'percentunit', min: 0, w: 8,
      question: 'How much CPU do the BPF programs cost, as a share of one core (needs ' +
                '--bpf_stats or kernel.bpf_stats_enabled=1)?',
      targets: [target(`sum by (instance, program) (rate(procscope_bpf_program_run_time_seconds_total{${HEALTH}}[${RATE}]))`,
                       '{{instance}} {{program}}')],
    }),
    timeseries({
      title: 'BPF cost per run', unit: 's', min: 0, w: 8,
      question: 'How long does one run of each BPF program take on average?',
      targets: [target(`sum by (instance, program) (rate(procscope_bpf_program_run_time_seconds_total{${HEALTH}}[${RATE}])) / (sum by (instance, program) (rate(procscope_bpf_program_runs_total{${HEALTH}}[${RATE}])) > 0)`,
                       '{{instance}} {{program}}')],
    }),
    timeseries({
      title: 'BPF runs', unit: 'suffix: /s', min: 0, w: 8,
      question: 'How often does each BPF program run (scheduler and block-layer event rates)?',
      targets: [target(`sum by (instance, program) (rate(procscope_bpf_program_runs_total{${HEALTH}}[${RATE}]))`,
                       '{{instance}} {{program}}')],
    }),
    timeseries({
      title: 'Kernel events dropped', unit: 'suffix: /s', min: 0, w: 8,
      question: 'Is the BPF side losing events (a full map or ring buffer), and why? Anything ' +
                'above 0 means the figures undercount.',
      targets: [target(`rate(procscope_kernel_events_dropped_total{${HEALTH}}[${RATE}])`, '{{instance}} {{reason}}')],
    }),
    timeseries({
      title: 'BPF map fill', unit: 'percentunit', min: 0, max: 1, w: 8,
      question: 'How full is each BPF map that can fill up? At 100 % events are dropped.',
      targets: [target(`procscope_bpf_map_entries{${HEALTH}} / procscope_bpf_map_max_entries{${HEALTH}}`,
                       '{{instance}} {{map}}')],
    }),
    timeseries({
      title: 'Unattributed and orphan block I/O', unit: 'iops', min: 0, w: 8,
      question: 'How much block I/O could procscope not charge to a process (kernel, journal, ' +
                'metadata), or completed after its process exited?',
      targets: [target(`rate(procscope_unattributed_block_io_operations_total{${HEALTH}}[${RATE}])`, '{{instance}} unattributed'),
                target(`rate(procscope_orphan_block_io_operations_total{${HEALTH}}[${RATE}])`, '{{instance}} orphan')],
    }),
    row('Exposition'),
    timeseries({
      title: 'Scrape duration', unit: 's', min: 0, w: 8,
      question: 'How long does a scrape take: procscoped building and serialising it, and ' +
                'Prometheus\'s whole scrape?',
      targets: [target(`procscope_scrape_duration_seconds{${HEALTH}}`, '{{instance}} procscoped'),
                target(`scrape_duration_seconds{${HEALTH}}`, '{{instance}} Prometheus')],
    }),
    timeseries({
      title: 'Series and the series cap', unit: 'short', min: 0, w: 8,
      question: 'How many series does a scrape hold, against the cap (--max_series)?',
      targets: [target(`scrape_samples_scraped{${HEALTH}}`, '{{instance}} series'),
                target(`procscope_series_limit{${HEALTH}}`, '{{instance}} cap')],
    }),
    timeseries({
      title: 'Series and journal bytes dropped', unit: 'short', min: 0, w: 8,
      question: 'Is the series cap cutting series out (raise --max_series or choose a coarser ' +
                '--group_by), or is the exit journal dropping bytes?',
      targets: [target(`rate(procscope_series_dropped_total{${HEALTH}}[${RATE}])`, '{{instance}} series/s'),
                target(`rate(procscope_journal_dropped_bytes_total{${HEALTH}}[${RATE}])`, '{{instance}} journal bytes/s')],
    }),
  ],
});

// --- output -----------------------------------------------------------------------------------
const DASHBOARDS = [['procscope-overview.json', overview], ['procscope-drilldown.json', drilldown],
                    ['procscope-health.json', health]];

const ANNOTATION_QUESTIONS = {'Crashes': 'crash, with which signal', 'OOM kills': 'have a process OOM-killed'};

function docsReference() {
  const lines = [];
  const cell = (s) => s.replace(/\s*\n\s*/g, ' ').replace(/\(\s+/g, '(').replace(/\s+\)/g, ')')
                          .replace(/\|/g, '\\|');
  for (const [file, d] of DASHBOARDS) {
    lines.push(`### ${d.title}`, '', `\`grafana/dashboards/${file}\`, uid \`${d.uid}\`. ${d.description}`,
               '', `Variables: ${d.templating.list.map((v) => `\`${v.name}\``).join(', ')}.`, '');
    lines.push('| panel | question it answers | query |', '|---|---|---|');
    for (const p of d.panels) {
      if (p.type === 'row') continue;
      const queries = p.targets.map((t) => `\`${cell(t.expr)}\``).join('<br>');
      lines.push(`| ${cell(p.title)} | ${cell(p.description)} | ${queries} |`);
    }
    for (const a of d.annotations.list.filter((a) => a.expr)) {
      lines.push(`| annotation: ${a.name} | When did a group ${ANNOTATION_QUESTIONS[a.name]}? A marker per minute with one, titled "${cell(a.titleFormat)}". | \`${cell(a.expr)}\` |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

const BEGIN = '<!-- panels:begin (generated by grafana/generate.mjs, do not edit) -->';
const END = '<!-- panels:end -->';
const outputs = DASHBOARDS.map(([file, d]) => [path.join(HERE, 'dashboards', file),
                                               JSON.stringify(d, null, 2) + '\n']);
const docsPath = path.join(ROOT, 'docs', 'dashboards.md');
const docs = fs.readFileSync(docsPath, 'utf8');
const b = docs.indexOf(BEGIN);
const e = docs.indexOf(END);
if (b < 0 || e < b) {
  console.error(`${docsPath}: the markers ${BEGIN} and ${END} are missing`);
  process.exit(1);
}
outputs.push([docsPath, docs.slice(0, b + BEGIN.length) + '\n\n' + docsReference() + '\n' + docs.slice(e)]);

const check = process.argv.includes('--check');
let stale = 0;
for (const [file, text] of outputs) {
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  if (old === text) continue;
  if (check) {
    console.error(`${path.relative(ROOT, file)} is not what grafana/generate.mjs makes: run it and commit`);
    stale++;
  } else {
    fs.mkdirSync(path.dirname(file), {recursive: true});
    fs.writeFileSync(file, text);
    console.log(`wrote ${path.relative(ROOT, file)}`);
  }
}
process.exit(stale ? 1 : 0);
