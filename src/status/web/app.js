// The status page: reads the gateway's /api/v1 views (relative URLs, so the
// page works under any path prefix) and builds the tables with textContent
// only: label values come from senders and are never parsed as markup.
'use strict';

const PAGE = 50;
let familyOffset = 0;
let familyNext = 0;
let current = 'families';
// The family opened into its series, and the series opened into its
// sources (by its labels' text), kept across refreshes.
let openFamily = null;
let openSeries = null;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    if (c instanceof Node) {
      const td = document.createElement('td');
      td.appendChild(c);
      tr.appendChild(td);
    } else if (typeof c === 'number') {
      tr.appendChild(el('td', c, 'num'));
    } else {
      tr.appendChild(el('td', c));
    }
  }
  return tr;
}

function fill(tbody, rows, empty) {
  tbody.replaceChildren(...rows);
  if (rows.length === 0 && empty) {
    const td = el('td', empty, 'muted');
    td.colSpan = 8;
    const tr = document.createElement('tr');
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const ago = Math.max(0, Date.now() / 1000 - seconds);
  const d = new Date(seconds * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  if (ago < 90) return `${d} (${Math.round(ago)} s ago)`;
  if (ago < 5400) return `${d} (${Math.round(ago / 60)} min ago)`;
  return d;
}

function labelText(labels) {
  const parts = Object.entries(labels).map(([n, v]) => `${n}="${v}"`);
  return parts.length ? `{${parts.join(', ')}}` : '{} (no path labels)';
}

function say(text) {
  $('message').textContent = text || '';
}

async function get(path) {
  const r = await fetch(path, { headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

function credentials() {
  const user = $('user').value;
  const password = $('password').value;
  if (!user) return {};
  return { authorization: 'Basic ' + btoa(unescape(encodeURIComponent(`${user}:${password}`))) };
}

async function act(method, path, what) {
  if (!window.confirm(`${what}?`)) return;
  const r = await fetch(path, { method, headers: credentials() });
  const text = (await r.text()).trim();
  if (r.status === 401) {
    say(`${what}: admin credentials needed (fill in user and password above)`);
  } else if (!r.ok) {
    say(`${what}: ${r.status} ${text}`);
  } else {
    say(`${what}: ${text}`);
  }
  await refresh();
}

async function showFamilies() {
  const q = encodeURIComponent($('family-search').value);
  const data = await get(`api/v1/families?limit=${PAGE}&offset=${familyOffset}&match=${q}`);
  const rows = [];
  for (const f of data.families) {
    const name = el('button', null, 'link');
    name.appendChild(el('code', f.name));
    name.addEventListener('click', () => {
      openFamily = openFamily === f.name ? null : f.name;
      openSeries = null;
      refresh();
    });
    rows.push(row([name, f.type, f.mode, f.series, when(f.last_update), f.help]));
    if (openFamily === f.name) rows.push(...(await seriesRows(f.name)));
  }
  const nothing = data.total === 0 && !$('family-search').value;
  $('empty').hidden = !nothing;
  fill($('family-rows'), rows, nothing ? '' : 'no family matches');
  // A page can end early (`next`) when its entries are large.
  const last = data.next ?? data.total;
  familyNext = last;
  $('page-info').textContent = data.total ? `${data.offset + 1}–${last} of ${data.total}` : '';
  $('prev').disabled = data.offset === 0;
  $('next').disabled = last >= data.total;
}

function valueText(v) {
  return v !== null && typeof v === 'object' ? `count ${v.count}, sum ${v.sum}` : String(v);
}

// A family's series (the first page) and, under the one opened, its
// sources: what each sender last gave, so a jump can be traced to one.
async function seriesRows(family) {
  const selector = `{__name__=${JSON.stringify(family)}}`;
  const data = await get(`api/v1/series?limit=${PAGE}&match=${encodeURIComponent(selector)}`);
  const rows = [];
  for (const s of data.series) {
    const key = labelText(s.labels);
    const name = el('button', key, 'link');
    name.addEventListener('click', () => { openSeries = openSeries === key ? null : key; refresh(); });
    const start = s.start_time === null ? '' : `started ${when(s.start_time)}`;
    const sources = s.sources_total ? `${s.sources_total} source(s)` : '';
    const tr = row([name, '', '', valueText(s.value), start, sources]);
    tr.className = 'detail';
    rows.push(tr);
    if (openSeries !== key) continue;
    for (const src of s.sources) {
      const who = src.producer ? `producer ${src.producer} ${labelText(src.labels)}` : labelText(src.labels);
      const last = src.last_point_time ? `last point ${when(src.last_point_time)}` : '';
      const sr = row([el('code', who), src.rule, '', valueText(src.value), last, `forgotten in ${src.forgotten_in_seconds} s`]);
      sr.className = 'source';
      rows.push(sr);
    }
  }
  if (data.next !== null) {
    const more = row([el('span', `${data.total - data.series.length} more series: /api/v1/series?match=${selector}`, 'muted')]);
    more.className = 'detail';
    rows.push(more);
  }
  return rows;
}

async function showGroups() {
  const data = await get('api/v1/groups');
  const rows = data.groups.map((g) => {
    const result = g.last_error ? el('span', `refused: ${g.last_error}`, 'bad') : el('span', 'ok', 'ok');
    let action = el('span', '');
    if (g.delete_path) {
      action = el('button', 'Delete');
      action.type = 'button';
      action.dataset.labels = labelText(g.labels);
      action.addEventListener('click', () =>
        act('DELETE', g.delete_path, `Delete group ${labelText(g.labels)}`));
    }
    return row([el('code', labelText(g.labels)), when(g.last_push), result, g.pushes, g.refused, g.series, action]);
  });
  fill($('group-rows'), rows, 'no push yet');
}

async function showCardinality() {
  const data = await get('api/v1/cardinality?limit=20');
  fill($('card-families'), data.families.map((f) => row([el('code', f.name), f.series])), 'nothing stored');
  fill($('card-names'), data.label_names.map((n) => row([el('code', n.name), n.values, n.series])), 'no labels');
  fill($('card-pairs'), data.label_pairs.map((p) => row([el('code', `${p.name}="${p.value}"`), p.series])), 'no labels');
}

async function showRejections() {
  const data = await get('api/v1/rejections');
  const rows = data.rejections.map((r) =>
    row([when(r.time), r.protocol, el('code', r.route), r.status, r.code, r.reason]));
  fill($('rejection-rows'), rows, 'no push refused');
}

function flatten(prefix, value, out) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(prefix ? `${prefix}.${k}` : k, v, out);
  } else {
    out.push([prefix, Array.isArray(value) ? value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : v)).join(', ') : value]);
  }
}

async function showStatus() {
  const data = await get('api/v1/status');
  const out = [];
  flatten('', data, out);
  fill($('status-rows'), out.map(([k, v]) => row([el('code', k), v === null ? '—' : String(v)])));
}

async function summary() {
  const s = await get('api/v1/status');
  const pct = (x) => `${Math.round(x * 100)} %`;
  $('summary').textContent = `v${s.version} · up ${Math.round(s.uptime_seconds)} s · ${s.series} series in ${s.families} families · ${pct(s.limits.series.ratio)} of series limit · ${pct(s.limits.memory_bytes.ratio)} of memory limit`;
}

const views = {
  families: showFamilies,
  groups: showGroups,
  cardinality: showCardinality,
  rejections: showRejections,
  status: showStatus,
};

async function refresh() {
  try {
    await Promise.all([views[current](), summary()]);
  } catch (e) {
    say(String(e.message || e));
  }
}

function show(tab) {
  current = tab;
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const s of document.querySelectorAll('main section')) s.hidden = s.id !== tab;
  say('');
  refresh();
}

document.addEventListener('DOMContentLoaded', () => {
  const base = new URL('metrics/job/my_job', document.baseURI).href;
  $('first-push').textContent = `echo 'my_counter_total 1' | curl --data-binary @- ${base}`;
  $('copy').addEventListener('click', () => navigator.clipboard && navigator.clipboard.writeText($('first-push').textContent));
  for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => show(b.dataset.tab));
  $('family-search').addEventListener('input', () => { familyOffset = 0; refresh(); });
  $('prev').addEventListener('click', () => { familyOffset = Math.max(0, familyOffset - PAGE); refresh(); });
  $('next').addEventListener('click', () => { familyOffset = familyNext; refresh(); });
  $('wipe').addEventListener('click', () => act('PUT', 'api/v1/admin/wipe', 'Wipe every series'));
  $('login').addEventListener('submit', (e) => e.preventDefault());
  show('families');
  // Cardinality reads every series: refreshed when asked, not on a timer.
  setInterval(() => { if (current !== 'cardinality' && !document.hidden) refresh(); }, 5000);
});
