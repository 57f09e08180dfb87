// The scorekeeper operator console.
//
// Plain JavaScript with no dependencies and no build step: the binary embeds
// this file and serves it as it is, and the machine that opens the console
// may have no internet. Every page is built from the JSON under /ui/api
// (docs/console.md). Text from the server only ever reaches the page through
// textContent, text nodes or attribute values, never as HTML.
'use strict';

(() => {
  const STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
  const ACTIVE = new Set(['queued', 'running']);
  const JOB_TYPES = ['reindex', 'audit'];
  const AUDIT_TABLES = ['conversations', 'scorecards', 'scores'];
  const DRIFT_KINDS = ['missing', 'stale', 'newer', 'only_in_clickhouse', 'out_of_range'];
  const PARTITION_DONE = new Set(['succeeded', 'done', 'finished', 'completed']);
  const HEATMAP_MAX_DAYS = 120;
  const PATH_COLOURS = { api: '#1d4ed8', batch_index: '#7c3aed', autoqa: '#0f766e', reindex: '#c2410c' };
  const EXTRA_COLOURS = ['#be185d', '#4d7c0f', '#0369a1', '#a16207'];

  const session = { csrf: '', admin: false, customer_id: 0, expires_at: null };
  let view = null; // the page shown: { timers: Set }; replaced on every route

  // ---------------------------------------------------------------- DOM

  const $ = (sel, root = document) => root.querySelector(sel);

  // h('tr', {'data-job-id': id, class: 'x', onclick: f}, child, 'text', [more])
  // Strings become text nodes: server text is never parsed as HTML.
  function h(tag, attrs, ...kids) {
    return build(document.createElement(tag), attrs, kids);
  }

  function svg(tag, attrs, ...kids) {
    return build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, kids);
  }

  function build(el, attrs, kids) {
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'class') el.setAttribute('class', v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
    return el;
  }

  // Replaces el's children; takes what h() takes (arrays, strings, nulls).
  function fill(el, ...kids) {
    el.replaceChildren();
    return build(el, null, kids);
  }

  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- formats

  const pad2 = (n) => String(n).padStart(2, '0');
  const dash = () => h('span', { class: 'muted' }, '—');

  // Local time, short ("12-06 21:03:04"), the full RFC 3339 string in the title.
  function time(iso) {
    if (!iso) return dash();
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return h('span', null, iso);
    const text = `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
      `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    return h('time', { datetime: iso, title: iso }, text);
  }

  // "0.4 s", "3 s", "4 min", "2 h", "3 d".
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
    const s = Math.max(0, seconds);
    if (s < 1) return `${s.toFixed(1)} s`;
    if (s < 60) return `${Math.min(59, Math.round(s))} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h`;
    return `${Math.floor(s / 86400)} d`;
  }

  function millis(ms) {
    if (ms === null || ms === undefined) return '—';
    return ms < 1000 ? `${Math.round(ms)} ms` : duration(ms / 1000);
  }

  function rate(r) {
    if (r === null || r === undefined || !Number.isFinite(r)) return '—';
    return r >= 1000 ? String(Math.round(r)) : r.toFixed(1);
  }

  function count(n) {
    return n === null || n === undefined ? '—' : String(n);
  }

  // 1234 → "1.2k" for axis labels.
  function compact(n) {
    const a = Math.abs(n);
    if (a >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
    if (a >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
    return String(+n.toFixed(a < 10 ? 1 : 0));
  }

  const shortId = (id) => (id ? String(id).slice(0, 8) : '');
  const customer = (id) => (id === 0 ? 'all' : String(id));

  function badge(state, extra) {
    return h('span', { class: `badge state-${state}`, ...extra }, state);
  }

  function jobLink(id) {
    if (!id) return dash();
    return h('a', { href: `#/jobs/${enc(id)}`, title: id, class: 'mono' }, shortId(id));
  }

  // ---------------------------------------------------------------- errors

  let stickyUntil = 0;

  // Errors from polls go away with the next good answer; errors from an
  // action the user took stay ten seconds (or until dismissed).
  function showError(message, sticky = false) {
    const box = $('#error');
    $('#error-text').textContent = message;
    box.hidden = false;
    if (sticky) stickyUntil = Date.now() + 10000;
  }

  function clearError(force = false) {
    if (!force && Date.now() < stickyUntil) return;
    stickyUntil = 0;
    $('#error').hidden = true;
    $('#error-text').textContent = '';
  }

  function report(err, sticky = false) {
    if (!(err instanceof ApiError)) console.error(err);
    showError(err && err.message ? err.message : String(err), sticky);
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, { method = 'GET', body } = {}) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') {
      init.headers['X-CSRF-Token'] = session.csrf;
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body ?? {});
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', `cannot reach the server (${e.message})`);
    }
    if (res.status === 401) {
      location = '/ui/login';
      return new Promise(() => {}); // the page is going away
    }
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const message = data && typeof data.message === 'string' && data.message
        ? data.message : `the server answered HTTP ${res.status}`;
      throw new ApiError(res.status, data && data.code ? data.code : 'http', message);
    }
    if (data === null || typeof data !== 'object') {
      throw new ApiError(res.status, 'bad_response', 'the server answered something that is not JSON');
    }
    return data;
  }

  const post = (path, body) => api(path, { method: 'POST', body });

  // ---------------------------------------------------------------- polling

  // Runs fn now (or after ms with delay), then every ms after each run ends,
  // while the page that started it is shown. fn gets current(), false once
  // the answer is stale (page left, or a newer run was kicked off); fn
  // returning false stops the loop. kick() runs it again at once.
  function poll(fn, ms, { delay = false } = {}) {
    const v = view;
    let timer = null;
    let seq = 0;
    const run = async () => {
      if (v !== view) return;
      if (timer !== null) {
        clearTimeout(timer);
        v.timers.delete(timer);
        timer = null;
      }
      const mine = ++seq;
      const current = () => mine === seq && v === view;
      let again = true;
      try {
        again = (await fn(current)) !== false;
        if (current()) clearError();
      } catch (e) {
        if (current()) report(e);
      }
      if (!current() || !again) return;
      timer = setTimeout(run, ms);
      v.timers.add(timer);
    };
    if (delay) {
      timer = setTimeout(run, ms);
      v.timers.add(timer);
    } else {
      run();
    }
    return { kick: run };
  }

  // ---------------------------------------------------------------- routing

  function route() {
    if (view) for (const t of view.timers) clearTimeout(t);
    view = { timers: new Set() };
    clearError(true);
    const hash = location.hash.replace(/^#\/?/, '');
    const parts = hash.split('/').filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (_) { return p; }
    });
    const main = $('#view');
    main.replaceChildren();
    window.scrollTo(0, 0);

    let section = parts[0] || 'jobs';
    if (section === 'jobs' && parts[1]) jobPage(main, parts[1]);
    else if (section === 'freshness') freshnessPage(main);
    else if (section === 'drift' && parts[1]) auditPage(main, parts[1]);
    else if (section === 'drift') driftPage(main);
    else if (section === 'topology') topologyPage(main);
    else {
      section = 'jobs';
      if (hash !== 'jobs') history.replaceState(null, '', '#/jobs');
      jobsPage(main);
    }
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }

  function title(text) {
    document.title = `${text} · scorekeeper console`;
  }

  // ---------------------------------------------------------------- bars

  function bar(done, estimated, finished, small = false) {
    const pct = finished ? 100 : estimated > 0 ? Math.min(100, (done / estimated) * 100) : 0;
    const fill = h('div', { class: 'fill' });
    fill.style.width = `${pct.toFixed(1)}%`;
    return h('div', {
      class: `bar${small ? ' mini' : ''}${finished ? ' finished' : ''}`,
      'data-rows-done': done ?? 0,
      'data-rows-estimated': estimated ?? 0,
      role: 'progressbar',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': Math.round(pct),
    }, fill);
  }

  function eta(seconds, finished, stopped = false) {
    if (finished) return 'done';
    if (stopped) return 'stopped';
    return seconds === null || seconds === undefined ? 'ETA —' : `ETA ${duration(seconds)}`;
  }

  // ---------------------------------------------------------------- jobs list

  const jobFilters = { state: '', type: '', customer: '' };

  function jobsPage(main) {
    title('Jobs');
    const stateSel = h('select', { id: 'filter-state' },
      h('option', { value: '' }, 'any state'),
      STATES.map((s) => h('option', { value: s }, s)));
    const typeSel = h('select', { id: 'filter-type' },
      h('option', { value: '' }, 'any type'),
      JOB_TYPES.map((t) => h('option', { value: t }, t)));
    stateSel.value = jobFilters.state;
    typeSel.value = jobFilters.type;

    let customerInput = null;
    if (session.admin) {
      customerInput = h('input', {
        id: 'filter-customer', type: 'number', min: 0, step: 1, inputmode: 'numeric',
        placeholder: 'any', size: 8,
      });
      customerInput.value = jobFilters.customer;
    }

    const tbody = h('tbody');
    const more = h('button', { id: 'more-jobs', type: 'button', hidden: true }, 'Load more');
    const table = h('table', { id: 'jobs', class: 'list' },
      h('thead', null, h('tr', null,
        ['id', 'type', 'scorecard types', 'customer', 'state', 'created', 'started', 'finished',
          'attempts', 'error'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody);

    main.append(
      h('h1', null, 'Jobs'),
      h('div', { class: 'toolbar' },
        h('label', null, 'State ', stateSel),
        h('label', null, 'Type ', typeSel),
        customerInput && h('label', null, 'Customer ', customerInput)),
      h('div', { class: 'table-wrap' }, table),
      h('div', { class: 'after-table' }, more));

    let pages = 1;
    let lastToken = '';

    const p = poll(async (current) => {
      const query = new URLSearchParams();
      if (jobFilters.state) query.set('state', jobFilters.state);
      if (jobFilters.type) query.set('type', jobFilters.type);
      if (session.admin && /^\d+$/.test(jobFilters.customer)) query.set('customer_id', jobFilters.customer);
      const jobs = [];
      let token = '';
      for (let i = 0; i < pages; i++) {
        const q = new URLSearchParams(query);
        if (token) q.set('page_token', token);
        const qs = q.toString();
        const page = await api(qs ? `/ui/api/jobs?${qs}` : '/ui/api/jobs');
        if (!current()) return false;
        jobs.push(...(page.jobs || []));
        token = page.next_page_token || '';
        if (!token) break;
      }
      lastToken = token;
      fill(tbody, ...(jobs.length ? jobs.map(jobRow)
        : [h('tr', { class: 'empty' }, h('td', { colspan: 10 }, 'no jobs'))]));
      more.hidden = !lastToken;
      more.disabled = false;
      return true;
    }, 3000);

    const refilter = () => {
      jobFilters.state = stateSel.value;
      jobFilters.type = typeSel.value;
      pages = 1;
      p.kick();
    };
    stateSel.addEventListener('change', refilter);
    typeSel.addEventListener('change', refilter);
    if (customerInput) {
      let debounce = null;
      customerInput.addEventListener('input', () => {
        const v = customerInput.value.trim();
        customerInput.classList.toggle('invalid', v !== '' && !/^\d+$/.test(v));
        clearTimeout(debounce);
        debounce = setTimeout(() => {
          if (v !== jobFilters.customer && (v === '' || /^\d+$/.test(v))) {
            jobFilters.customer = v;
            pages = 1;
            p.kick();
          }
        }, 400);
      });
    }
    more.addEventListener('click', () => {
      pages += 1;
      more.disabled = true;
      p.kick();
    });
  }

  function jobRow(job) {
    const err = job.error;
    return h('tr', { 'data-job-id': job.id, 'data-state': job.state },
      h('td', null, jobLink(job.id)),
      h('td', null, job.type),
      h('td', null, (job.scorecard_types || []).join(', ') || dash()),
      h('td', null, customer(job.customer_id)),
      h('td', null, badge(job.state)),
      h('td', null, time(job.created_at)),
      h('td', null, time(job.started_at)),
      h('td', null, time(job.finished_at)),
      h('td', { class: 'num' }, count(job.attempts)),
      h('td', { class: 'error-cell', title: err ? err.message : null }, err ? err.message : ''));
  }

  // ---------------------------------------------------------------- job page

  function jobPage(main, id) {
    title(`Job ${shortId(id)}`);
    const box = h('div', { class: 'job' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, '← Jobs')), box);
    const p = poll(async (current) => {
      const job = await api(`/ui/api/jobs/${enc(id)}`);
      if (!current()) return false;
      renderJob(box, job, p);
      return ACTIVE.has(job.state);
    }, 1000);
  }

  function renderJob(box, job, p) {
    const active = ACTIVE.has(job.state);
    let cancel = null;
    if (active) {
      cancel = h('button', { id: 'cancel-job', type: 'button', class: 'danger' }, 'Cancel job');
      cancel.addEventListener('click', async () => {
        cancel.disabled = true;
        cancel.textContent = 'Cancelling…';
        try {
          const updated = await post(`/ui/api/jobs/${enc(job.id)}/cancel`);
          renderJob(box, updated, p);
          p.kick();
        } catch (e) {
          report(e, true);
          cancel.disabled = false;
          cancel.textContent = 'Cancel job';
        }
      });
    }

    const err = job.error;
    const errBox = h('div', { id: 'job-error', class: 'error-box', role: 'status', hidden: !err },
      err && [
        h('strong', null, err.code || 'error'),
        ': ', err.message,
        h('div', { class: 'muted small' },
          err.retryable ? 'retryable' : 'not retryable',
          err.correlation_id ? ` · correlation id ${err.correlation_id}` : ''),
      ]);

    const meta = h('dl', { class: 'meta' },
      h('div', null, h('dt', null, 'state'),
        h('dd', null, h('span', { id: 'job-state', class: `badge state-${job.state}` }, job.state))),
      h('div', null, h('dt', null, 'type'), h('dd', null, job.type)),
      h('div', null, h('dt', null, 'customer'), h('dd', null, customer(job.customer_id))),
      h('div', null, h('dt', null, 'scorecard types'),
        h('dd', null, (job.scorecard_types || []).join(', ') || dash())),
      h('div', null, h('dt', null, 'created'), h('dd', null, time(job.created_at))),
      h('div', null, h('dt', null, 'started'), h('dd', null, time(job.started_at))),
      h('div', null, h('dt', null, 'finished'), h('dd', null, time(job.finished_at))),
      h('div', null, h('dt', null, 'attempts'), h('dd', null, count(job.attempts))));

    const activities = job.activities || [];
    fill(box,
      h('div', { class: 'page-head' },
        h('h1', null, 'Job ', h('span', { class: 'mono', title: job.id }, shortId(job.id))),
        cancel),
      h('p', { class: 'muted mono small' }, job.id),
      meta,
      errBox,
      activities.length ? activities.map((a) => activityBlock(a, active))
        : h('p', { class: 'muted' }, active ? 'No activity has started yet.' : 'No activities.'));
  }

  function activityBlock(a, jobActive) {
    const finished = !!a.finished;
    const parts = a.partitions || [];
    return h('section', { class: 'activity', 'data-activity': a.activity },
      h('h2', null, a.activity, ' ', finished ? h('span', { class: 'badge state-succeeded' }, 'finished') : null),
      bar(a.rows_done, a.rows_estimated, finished),
      h('p', { class: 'stats' },
        `${count(a.rows_done)} / ${count(a.rows_estimated)} rows · ${rate(a.rows_per_second)} rows/s · ` +
        eta(a.eta_seconds, finished, !jobActive)),
      h('p', { class: 'stats muted' },
        `${count(a.partitions_done)}/${count(a.partitions_total)} partitions`,
        a.pages_done !== undefined && a.pages_done !== null ? ` · ${a.pages_done} pages` : ''),
      parts.length ? h('div', { class: 'partitions' }, parts.map((pt) => partitionBlock(pt, finished, jobActive))) : null);
  }

  function partitionBlock(pt, activityFinished, jobActive) {
    const done = activityFinished || PARTITION_DONE.has(pt.state);
    const bits = [
      `${count(pt.rows_done)} / ${count(pt.rows_estimated)} rows`,
      `${rate(pt.rows_per_second)} rows/s`,
      eta(pt.eta_seconds, done, !jobActive),
      `attempts ${count(pt.attempts)}`,
    ];
    if (pt.worker) bits.push(`worker ${pt.worker}`);
    return h('div', {
      class: 'partition', 'data-index': pt.index, 'data-state': pt.state, 'data-rows-done': pt.rows_done ?? 0,
      title: pt.range ? `range ${pt.range}` : null,
    },
    h('div', { class: 'partition-head' },
      h('span', { class: 'mono' }, `#${pt.index}`), ' ', badge(pt.state)),
    bar(pt.rows_done, pt.rows_estimated, done, true),
    h('div', { class: 'small' }, bits.join(' · ')));
  }

  // ---------------------------------------------------------------- freshness

  function freshnessPage(main) {
    title('Freshness');
    const box = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('h1', null, 'Freshness'), box);
    poll(async (current) => {
      const f = await api('/ui/api/freshness');
      if (!current()) return false;
      renderFreshness(box, f);
      return true;
    }, 5000);
  }

  const chartPrefs = { log: false };

  function pathColour(path, i) {
    return PATH_COLOURS[path] || EXTRA_COLOURS[i % EXTRA_COLOURS.length];
  }

  function renderFreshness(box, f) {
    const outbox = f.outbox || {};
    const paths = f.paths || [];
    const history = f.history || [];
    const sample = f.sample_seconds || 10;

    const names = paths.map((p) => p.path);
    for (const s of history) {
      for (const k of Object.keys(s.rows_per_second || {})) if (!names.includes(k)) names.push(k);
    }
    const colours = Object.fromEntries(names.map((n, i) => [n, pathColour(n, i)]));

    const rows = paths.map((p) => h('tr', { class: 'path', 'data-path': p.path },
      h('th', { scope: 'row' }, h('span', { class: 'swatch' }, ''), p.path),
      h('td', { title: p.last_write_at || null },
        p.last_write_at ? `${duration(p.seconds_since_last_write)} ago` : 'never'),
      h('td', { class: 'num' }, rate(p.rows_per_second))));
    rows.forEach((r, i) => { r.querySelector('.swatch').style.background = colours[paths[i].path]; });

    const times = history.map((s) => Date.parse(s.at));
    const known = times.filter(Number.isFinite);
    const end = known.length ? Math.max(...known) : Date.now();
    const t0 = end - 3600 * 1000;

    const rateSeries = names.map((n) => ({
      name: n,
      colour: colours[n],
      points: history.map((s, i) => [times[i], s.rows_per_second ? s.rows_per_second[n] : undefined]),
    }));
    const depthSeries = [{
      name: 'outbox depth',
      colour: '#374151',
      points: history.map((s, i) => [times[i], s.outbox_depth]),
    }];

    const gap = sample * 3 * 1000;
    // the figure's inner width: the box less the figure's padding and border
    const chartWidth = (box.clientWidth || 760) - 28;
    const logBox = h('input', { type: 'checkbox', id: 'chart-log' });
    logBox.checked = chartPrefs.log;
    logBox.addEventListener('change', () => {
      chartPrefs.log = logBox.checked;
      renderFreshness(box, f);
    });
    const logToggle = h('label', { class: 'chart-option' }, logBox, ' log scale');
    fill(box,
      h('div', { class: 'cards' },
        h('div', { class: 'card' },
          h('div', { class: 'card-label' }, 'Outbox depth'),
          h('div', { class: 'card-value' }, h('span', { id: 'outbox-depth' }, count(outbox.depth)), ' entries')),
        h('div', { class: 'card' },
          h('div', { class: 'card-label' }, 'Oldest outbox entry'),
          h('div', { class: 'card-value', title: duration(outbox.oldest_age_seconds) },
            h('span', { id: 'outbox-age' },
              Number.isFinite(outbox.oldest_age_seconds) ? outbox.oldest_age_seconds.toFixed(1) : '—'),
            ' s'))),
      h('h2', null, 'Write paths'),
      h('div', { class: 'table-wrap' },
        h('table', { id: 'paths', class: 'list' },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'path'),
            h('th', { scope: 'col' }, 'last write to ClickHouse'),
            h('th', { scope: 'col', class: 'num' }, 'rows/s'))),
          h('tbody', null, rows))),
      h('h2', null, 'Last hour'),
      h('p', { class: 'muted small' },
        `Sampled every ${sample} s by the process serving this page; ${history.length} samples.`),
      h('figure', { class: 'chart-box' },
        h('figcaption', null, 'Rows/s by write path', logToggle),
        lineChart('history-chart', rateSeries, t0, end, gap, 'rows per second by write path, last hour',
          false, chartPrefs.log, chartWidth),
        legend(rateSeries, (v) => `${rate(v)} rows/s`)),
      h('figure', { class: 'chart-box' },
        h('figcaption', null, 'Outbox depth'),
        lineChart('outbox-chart', depthSeries, t0, end, gap, 'outbox depth, last hour', true, false, chartWidth),
        legend(depthSeries, (v) => `${count(v)} entries`)));
  }

  function legend(series, fmt) {
    return h('ul', { class: 'legend' }, series.map((s) => {
      const last = [...s.points].reverse().find((p) => Number.isFinite(p[1]));
      const sw = h('span', { class: 'swatch' });
      sw.style.background = s.colour;
      return h('li', { 'data-series': s.name }, sw, s.name, last ? h('span', { class: 'muted' }, ` ${fmt(last[1])}`) : null);
    }));
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const e = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
    return 10 * e;
  }

  // A line chart drawn in SVG: one polyline per series, broken where samples
  // are further apart than gapMs (a restart of the sampling process).
  function lineChart(id, series, t0, t1, gapMs, label, small = false, log = false, width = 760) {
    // Drawn at the width it is shown at, so its text stays legible on a phone.
    const W = Math.round(Math.max(300, Math.min(1100, width)));
    const H = small ? (W < 500 ? 140 : 160) : (W < 500 ? 200 : 240);
    const L = 44, R = 12, T = 12, B = 24;
    const pw = W - L - R, ph = H - T - B;
    let max = 0;
    for (const s of series) for (const [, v] of s.points) if (Number.isFinite(v) && v > max) max = v;
    const ymax = log ? 10 ** Math.max(1, Math.ceil(Math.log10(Math.max(max, 1)))) : niceMax(max);
    const span = Math.max(1, t1 - t0);
    const x = (t) => L + ((t - t0) / span) * pw;
    const y = log
      ? (v) => T + ph - (Math.log10(1 + Math.max(0, v)) / Math.log10(1 + ymax)) * ph
      : (v) => T + ph - (v / ymax) * ph;

    const el = svg('svg', {
      id, class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label,
      preserveAspectRatio: 'xMidYMid meet',
    });
    el.append(svg('title', null, label));
    const grid = svg('g', { class: 'grid' });
    const ticks = log ? Math.round(Math.log10(ymax)) + 2 : 5;
    for (let i = 0; i < ticks; i++) {
      const v = log ? (i === 0 ? 0 : 10 ** (i - 1)) : (ymax / (ticks - 1)) * i;
      const yy = y(v);
      grid.append(svg('line', { x1: L, x2: W - R, y1: yy, y2: yy, class: i === 0 ? 'axis' : 'gridline' }));
      grid.append(svg('text', { x: L - 6, y: yy + 4, 'text-anchor': 'end', class: 'tick' }, compact(v)));
    }
    // x ticks on every 10 minutes of the local clock
    const step = (W < 500 ? 20 : 10) * 60 * 1000;
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const xx = x(t);
      const d = new Date(t);
      grid.append(svg('line', { x1: xx, x2: xx, y1: T, y2: T + ph, class: 'gridline' }));
      grid.append(svg('text', { x: xx, y: H - 8, 'text-anchor': 'middle', class: 'tick' },
        `${pad2(d.getHours())}:${pad2(d.getMinutes())}`));
    }
    el.append(grid);

    let any = false;
    for (const s of series) {
      const g = svg('g', { class: 'series', 'data-series': s.name });
      let seg = [];
      let prevT = null;
      const flush = () => {
        if (seg.length === 1) {
          g.append(svg('circle', { cx: seg[0][0], cy: seg[0][1], r: 2.5, fill: s.colour }));
        } else if (seg.length > 1) {
          g.append(svg('polyline', {
            points: seg.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' '),
            fill: 'none', stroke: s.colour, 'stroke-width': 2, 'stroke-linejoin': 'round',
          }));
        }
        seg = [];
      };
      for (const [t, v] of s.points) {
        if (!Number.isFinite(t) || t < t0) continue;
        if (!Number.isFinite(v)) { flush(); prevT = null; continue; }
        if (prevT !== null && t - prevT > gapMs) flush();
        seg.push([x(t), y(v)]);
        prevT = t;
        any = true;
      }
      flush();
      el.append(g);
    }
    if (!any) {
      el.append(svg('text', { x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle', class: 'nodata' },
        'no samples yet'));
    }
    return el;
  }

  // ---------------------------------------------------------------- drift list

  function driftPage(main) {
    title('Drift');
    let customerInput = null;
    if (session.admin) {
      customerInput = h('input', {
        id: 'audit-customer', type: 'number', min: 0, step: 1, inputmode: 'numeric',
        placeholder: '0 = all', size: 8,
      });
    }
    const run = h('button', { id: 'run-audit', type: 'button' }, 'Run audit');
    const jobOut = h('span', { id: 'audit-job', class: 'job-status', 'aria-live': 'polite' });
    const tbody = h('tbody', null, h('tr', { class: 'empty' }, h('td', { colspan: 8 }, 'Loading…')));

    main.append(
      h('h1', null, 'Drift'),
      h('div', { class: 'toolbar' },
        customerInput && h('label', null, 'Customer ', customerInput),
        run, jobOut),
      h('p', { class: 'muted small' },
        'An audit compares Postgres with ClickHouse, day by day, and names the rows that differ. ' +
        'Run audit queues one without repair; its result appears below when it finishes.'),
      h('div', { class: 'table-wrap' },
        h('table', { id: 'audits', class: 'list' },
          h('thead', null, h('tr', null,
            ['audit', 'started', 'customer', 'phase', 'drifted rows', 'per table', 'elapsed', 'job']
              .map((c) => h('th', { scope: 'col' }, c)))),
          tbody)));

    const list = poll(async (current) => {
      const r = await api('/ui/api/audits');
      if (!current()) return false;
      const audits = r.audits || [];
      fill(tbody, ...(audits.length ? audits.map(auditRow)
        : [h('tr', { class: 'empty' }, h('td', { colspan: 8 }, 'no audits stored yet'))]));
      return true;
    }, 3000);

    let tracked = null;
    run.addEventListener('click', async () => {
      let body = {};
      if (customerInput) {
        const v = customerInput.value.trim();
        if (v !== '' && !/^\d+$/.test(v)) {
          showError('the customer must be a whole number (0 for all customers)', true);
          return;
        }
        body = { customer_id: v === '' ? 0 : Number(v) };
      }
      run.disabled = true;
      let job;
      try {
        job = (await post('/ui/api/audits', body)).job;
      } catch (e) {
        report(e, true);
        run.disabled = false;
        return;
      }
      run.disabled = false;
      tracked = job.id;
      showJobStatus(jobOut, 'Audit job', job);
      if (!ACTIVE.has(job.state)) { list.kick(); return; }
      poll(async (current) => {
        if (tracked !== job.id) return false;
        const j = await api(`/ui/api/jobs/${enc(job.id)}`);
        if (!current() || tracked !== job.id) return false;
        showJobStatus(jobOut, 'Audit job', j);
        if (ACTIVE.has(j.state)) return true;
        list.kick();
        return false;
      }, 1000, { delay: true });
    });
  }

  function showJobStatus(out, label, job, note) {
    fill(out, label, ' ', jobLink(job.id), ' ',
      h('span', { class: `badge state-${job.state}`, 'data-state': job.state }, job.state),
      job.error ? h('span', { class: 'error-text' }, ` ${job.error.message}`) : null,
      note ? h('span', { class: 'muted' }, ` ${note}`) : null);
  }

  function tableDrift(tables) {
    if (!tables || !tables.length) return dash();
    return h('span', { class: 'per-table' }, tables.map((t, i) => [
      i > 0 ? ' · ' : null,
      h('span', { class: t.drifted > 0 ? 'drift-count drifted' : 'drift-count' }, `${t.table} ${t.drifted}`)]));
  }

  function auditRow(a) {
    return h('tr', { 'data-audit-id': a.id, 'data-drifted': a.drifted_rows, 'data-phase': a.phase },
      h('td', null, h('a', { href: `#/drift/${enc(a.id)}` }, `#${a.id}`)),
      h('td', null, time(a.started_at)),
      h('td', null, customer(a.customer_id)),
      h('td', null, h('span', { class: `phase phase-${a.phase}` }, a.phase)),
      h('td', { class: `num${a.drifted_rows > 0 ? ' drifted' : ''}` }, count(a.drifted_rows)),
      h('td', null, tableDrift(a.tables)),
      h('td', { class: 'num' }, millis(a.elapsed_ms)),
      h('td', null, jobLink(a.job_id)));
  }

  // ---------------------------------------------------------------- audit page

  function auditPage(main, id) {
    title(`Audit ${id}`);
    const box = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('p', { class: 'crumbs' }, h('a', { href: '#/drift' }, '← Drift')), box);
    // The audit does not change once stored: load it once, retry on errors.
    poll(async (current) => {
      const a = await api(`/ui/api/audits/${enc(id)}`);
      if (!current()) return false;
      renderAudit(box, a);
      return false;
    }, 3000);
  }

  function heatColour(drifted, max) {
    const t = Math.min(1, Math.log1p(drifted) / Math.log1p(Math.max(max, 10)));
    const stops = [[253, 212, 158], [239, 101, 72], [127, 0, 0]];
    const seg = t <= 0.5 ? 0 : 1;
    const u = seg === 0 ? t / 0.5 : (t - 0.5) / 0.5;
    const [a, b] = [stops[seg], stops[seg + 1]];
    const c = a.map((v, i) => Math.round(v + (b[i] - v) * u));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }

  // Every day when there are at most HEATMAP_MAX_DAYS; else every day with
  // drift (the latest ones if even those are too many) and then the most
  // recent days, up to HEATMAP_MAX_DAYS.
  function pickDays(allDays, driftedDays) {
    if (allDays.length <= HEATMAP_MAX_DAYS) return allDays;
    const keep = new Set(allDays.filter((d) => driftedDays.has(d)).slice(-HEATMAP_MAX_DAYS));
    for (let i = allDays.length - 1; i >= 0 && keep.size < HEATMAP_MAX_DAYS; i--) keep.add(allDays[i]);
    return allDays.filter((d) => keep.has(d));
  }

  function renderAudit(box, a) {
    const days = a.days || [];
    const rows = a.rows || [];
    const tables = [...AUDIT_TABLES];
    for (const t of [...(a.tables || []).map((x) => x.table), ...days.map((d) => d.table)]) {
      if (!tables.includes(t)) tables.push(t);
    }

    // ---- summary
    const summaryRows = (a.tables || []).map((t) => {
      const d = t.drift || {};
      return h('tr', { 'data-table': t.table },
        h('th', { scope: 'row' }, t.table),
        h('td', { class: 'num' }, count(t.rows_checked)),
        h('td', { class: `num${t.drifted > 0 ? ' drifted' : ''}` }, count(t.drifted)),
        DRIFT_KINDS.map((k) => h('td', { class: 'num' }, count(d[k] ?? 0))));
    });
    const summary = h('div', { class: 'table-wrap' },
      h('table', { id: 'audit-tables', class: 'list compact' },
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'table'),
          h('th', { scope: 'col', class: 'num' }, 'rows checked'),
          h('th', { scope: 'col', class: 'num' }, 'drifted'),
          DRIFT_KINDS.map((k) => h('th', { scope: 'col', class: 'num' }, k.replace(/_/g, ' '))))),
        h('tbody', null, summaryRows.length ? summaryRows
          : h('tr', { class: 'empty' }, h('td', { colspan: 3 + DRIFT_KINDS.length }, 'no tables')))));

    // ---- drifted rows table, filled by a click on a cell
    const rowsTitle = h('h2', { id: 'drifted-rows-title' }, 'Drifted rows');
    const rowsBody = h('tbody', null,
      h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'Click a cell of the heat map to list its drifted rows.')));
    const rowsTable = h('table', { id: 'drifted-rows', class: 'list compact' },
      h('thead', null, h('tr', null,
        ['id', 'customer', 'kind', 'postgres version', 'clickhouse version']
          .map((c) => h('th', { scope: 'col' }, c)))),
      rowsBody);

    const showRows = (table, day, heading) => {
      const hits = rows.filter((r) => r.table === table && r.day === day);
      rowsTitle.textContent = heading;
      fill(rowsBody, ...(hits.length ? hits.map((r) => h('tr', { 'data-row-id': r.id },
        h('td', { class: 'mono' }, String(r.id)),
        h('td', null, customer(r.customer_id)),
        h('td', null, r.kind),
        h('td', { class: 'num' }, r.postgres_version === null || r.postgres_version === undefined ? '—' : String(r.postgres_version)),
        h('td', { class: 'num' }, r.clickhouse_version === null || r.clickhouse_version === undefined ? '—' : String(r.clickhouse_version))))
        : [h('tr', { class: 'empty' }, h('td', { colspan: 5 }, 'no drifted rows named for this day'))]));
    };

    // ---- heat map
    const byKey = new Map(days.map((d) => [`${d.table}|${d.day}`, d]));
    const allDays = [...new Set(days.map((d) => d.day).filter(Boolean))].sort();
    const driftedDays = new Set(days.filter((d) => d.drifted > 0).map((d) => d.day));
    const shown = pickDays(allDays, driftedDays);
    const maxDrift = Math.max(0, ...days.map((d) => d.drifted || 0));
    const position = new Map(allDays.map((d, i) => [d, i]));

    const heat = h('div', { id: 'heatmap', class: 'heatmap' });
    let selected = null;
    if (!shown.length) {
      heat.append(h('p', { class: 'muted' }, 'No rows on either side in the audited span.'));
    } else {
      const grid = h('div', { class: 'hm-grid', role: 'grid', 'aria-label': 'drifted rows by table and day' });
      grid.style.gridTemplateColumns = `max-content repeat(${shown.length}, 1.05rem)`;
      grid.append(h('div', { class: 'hm-corner' }));
      shown.forEach((day, i) => {
        const gapBefore = i > 0 && position.get(day) !== position.get(shown[i - 1]) + 1;
        // The year where it starts or changes, month-day elsewhere.
        const newYear = i === 0 || shown[i - 1].slice(0, 4) !== day.slice(0, 4);
        grid.append(h('div', { class: `hm-day${gapBefore ? ' gap' : ''}`, title: day }, newYear ? day : day.slice(5)));
      });
      for (const table of tables) {
        grid.append(h('div', { class: 'hm-table' }, table));
        shown.forEach((day, i) => {
          const d = byKey.get(`${table}|${day}`);
          const checked = d ? d.rows_checked || 0 : 0;
          const ch = d ? d.clickhouse_rows || 0 : 0;
          const drifted = d ? d.drifted || 0 : 0;
          const gapBefore = i > 0 && position.get(day) !== position.get(shown[i - 1]) + 1;
          let kind;
          let label;
          if (checked + ch === 0) {
            kind = 'none';
            label = `${table} · ${day}: no rows on either side`;
          } else {
            kind = drifted > 0 ? 'drift' : 'clean';
            label = `${table} · ${day}: ${drifted} drifted · ${checked} rows in Postgres · ${ch} in ClickHouse`;
          }
          const cell = h('button', {
            type: 'button', class: `cell ${kind}${gapBefore ? ' gap' : ''}`,
            'data-table': table, 'data-day': day, 'data-drifted': drifted,
            title: label, 'aria-label': label, 'aria-pressed': 'false',
          });
          if (kind === 'drift') cell.style.background = heatColour(drifted, maxDrift);
          cell.addEventListener('click', () => {
            if (selected) { selected.classList.remove('selected'); selected.setAttribute('aria-pressed', 'false'); }
            selected = cell;
            cell.classList.add('selected');
            cell.setAttribute('aria-pressed', 'true');
            showRows(table, day, `Drifted rows of ${table} on ${day} (${drifted})`);
          });
          grid.append(cell);
        });
      }
      heat.append(grid);
    }

    const heatLegend = h('ul', { class: 'legend heat-legend' },
      h('li', null, h('span', { class: 'swatch none' }), 'no rows'),
      h('li', null, h('span', { class: 'swatch clean' }), 'no drift'),
      maxDrift > 0
        ? h('li', null, h('span', { class: 'swatch ramp' }), `1 … ${maxDrift} drifted rows (log scale)`)
        : null);

    const undated = rows.filter((r) => !r.day);
    const undatedNote = undated.length ? h('p', { class: 'note' },
      `${undated.length} drifted row${undated.length === 1 ? ' is' : 's are'} dated where ClickHouse cannot hold ` +
      'it, so no cell shows them. ',
      h('button', {
        type: 'button', class: 'link', onclick: () => {
          rowsTitle.textContent = 'Drifted rows without a day';
          fill(rowsBody, ...undated.map((r) => h('tr', { 'data-row-id': r.id },
            h('td', { class: 'mono' }, `${r.id}`), h('td', null, customer(r.customer_id)),
            h('td', null, `${r.kind} (${r.table})`),
            h('td', { class: 'num' }, r.postgres_version ?? '—'),
            h('td', { class: 'num' }, r.clickhouse_version ?? '—'))));
        },
      }, 'List them')) : null;

    // ---- repair
    let repairBlock = null;
    if (a.drifted_rows > 0) {
      const repair = h('button', { id: 'repair', type: 'button', class: 'primary' }, 'Repair');
      const out = h('span', { id: 'repair-job', class: 'job-status', 'aria-live': 'polite' });
      repair.addEventListener('click', () => startRepair(a, repair, out));
      repairBlock = h('div', { class: 'toolbar repair' }, repair, out,
        h('p', { class: 'muted small full' },
          'Repair queues an audit job with repair over the same customer and span: it audits, reindexes ' +
          'and tombstones what drifted, then audits again. This page then shows that re-audit.'));
    }

    const span = a.span_start || a.span_end
      ? [time(a.span_start), ' – ', time(a.span_end)] : 'every day';

    fill(box,
      h('div', { class: 'page-head' },
        h('h1', null, `Audit #${a.id} `, h('span', { class: `phase phase-${a.phase}` }, a.phase)),
        h('div', { class: 'headline' + (a.drifted_rows > 0 ? ' drifted' : ' clean') },
          h('span', { id: 'audit-drifted' }, count(a.drifted_rows)), ' drifted rows')),
      h('dl', { class: 'meta' },
        h('div', null, h('dt', null, 'customer'), h('dd', null, customer(a.customer_id))),
        h('div', null, h('dt', null, 'started'), h('dd', null, time(a.started_at))),
        h('div', null, h('dt', null, 'elapsed'), h('dd', null, millis(a.elapsed_ms))),
        h('div', null, h('dt', null, 'span'), h('dd', null, span)),
        h('div', null, h('dt', null, 'job'), h('dd', null, jobLink(a.job_id)))),
      repairBlock,
      h('h2', null, 'By table'),
      summary,
      h('h2', null, 'By day'),
      shown.length < allDays.length ? h('p', { class: 'note' },
        `Showing ${shown.length} of ${allDays.length} days: every day with drift and the most recent ones.`) : null,
      heatLegend,
      heat,
      undatedNote,
      rowsTitle,
      a.rows_truncated ? h('p', { class: 'note', id: 'rows-truncated' },
        `The audit names ${rows.length} of its ${a.drifted_rows} drifted rows (the list stops at 1,000): ` +
        'a cell may list fewer rows than it counts.') : null,
      h('div', { class: 'table-wrap' }, rowsTable));
  }

  async function startRepair(a, button, out) {
    button.disabled = true;
    let job;
    try {
      job = (await post(`/ui/api/audits/${enc(a.id)}/repair`)).job;
    } catch (e) {
      report(e, true);
      button.disabled = false;
      return;
    }
    showJobStatus(out, 'Repair job', job);
    let lookups = 0;
    poll(async (current) => {
      if (ACTIVE.has(job.state)) {
        const j = await api(`/ui/api/jobs/${enc(job.id)}`);
        if (!current()) return false;
        job = j;
        showJobStatus(out, 'Repair job', job);
        if (ACTIVE.has(job.state)) return true;
      }
      const r = await api('/ui/api/audits');
      if (!current()) return false;
      const verify = (r.audits || []).find((x) => x.job_id === job.id && x.phase === 'verify');
      if (verify) {
        location.hash = `#/drift/${enc(verify.id)}`;
        return false;
      }
      // A successful repair stores its re-audit as it ends; give it a moment.
      if (job.state === 'succeeded' && ++lookups < 10) {
        showJobStatus(out, 'Repair job', job, 'waiting for the re-audit…');
        return true;
      }
      showJobStatus(out, 'Repair job', job, 'no re-audit was stored.');
      button.disabled = false;
      return false;
    }, 1000, { delay: true });
  }

  // ---------------------------------------------------------------- topology

  function topologyPage(main) {
    title('Topology');
    const box = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    main.append(h('h1', null, 'Topology'), box);
    poll(async (current) => {
      const t = await api('/ui/api/topology');
      if (!current()) return false;
      renderTopology(box, t);
      return true;
    }, 3000);
  }

  function upDown(up, id) {
    return h('span', { id, class: `badge ${up ? 'up' : 'down'}`, 'data-up': up ? 'true' : 'false' }, up ? 'up' : 'down');
  }

  function renderTopology(box, t) {
    const cluster = t.cluster;
    let clusterBlock;
    if (cluster) {
      const rows = [];
      let up = 0;
      let total = 0;
      for (const s of cluster.shards || []) {
        for (const r of s.replicas || []) {
          total += 1;
          if (r.up) up += 1;
          rows.push(h('tr', {
            class: 'replica', 'data-shard': s.shard, 'data-replica': r.replica, 'data-up': r.up ? 'true' : 'false',
          },
          h('td', { class: 'num' }, String(s.shard)),
          h('td', { class: 'num' }, String(r.replica)),
          h('td', { class: 'mono' }, `${r.host}:${r.port}`),
          h('td', null, upDown(!!r.up))));
        }
      }
      clusterBlock = [
        h('h2', null, 'ClickHouse cluster ', h('span', { class: 'mono' }, cluster.name)),
        h('p', { class: 'muted small' }, `${up} of ${total} replicas up.`),
        h('div', { class: 'table-wrap fit' },
          h('table', { id: 'replicas', class: 'list compact' },
            h('thead', null, h('tr', null,
              h('th', { scope: 'col', class: 'num' }, 'shard'),
              h('th', { scope: 'col', class: 'num' }, 'replica'),
              h('th', { scope: 'col' }, 'host:port'),
              h('th', { scope: 'col' }, 'status'))),
            h('tbody', null, rows.length ? rows
              : h('tr', { class: 'empty' }, h('td', { colspan: 4 }, 'no replicas'))))),
      ];
    } else {
      clusterBlock = h('p', { class: 'muted' }, 'ClickHouse is a single server, not a cluster.');
    }
    fill(box,
      h('div', { class: 'cards' },
        h('div', { class: 'card' },
          h('div', { class: 'card-label' }, 'Postgres'),
          h('div', { class: 'card-value' }, upDown(!!t.postgres, 'pg-status'))),
        h('div', { class: 'card' },
          h('div', { class: 'card-label' }, 'ClickHouse'),
          h('div', { class: 'card-value' }, upDown(!!t.clickhouse, 'ch-status')))),
      t.checked === false ? h('p', { class: 'note' }, 'Not checked yet: the first check has not run.') : null,
      h('p', { class: 'muted small' }, 'As this process reaches them; refreshed every 3 s.'),
      clusterBlock);
  }

  // ---------------------------------------------------------------- start

  async function logout(ev) {
    ev.preventDefault();
    try {
      await fetch('/ui/logout', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRF-Token': session.csrf, 'Content-Type': 'application/json' },
        body: '{}',
      });
    } catch (_) {
      // going to the login page anyway
    }
    location = '/ui/login';
  }

  async function start() {
    $('#error-close').addEventListener('click', () => clearError(true));
    $('#logout').addEventListener('submit', logout);
    for (;;) {
      try {
        const s = await api('/ui/api/session');
        session.csrf = s.csrf || '';
        session.admin = !!s.admin;
        session.customer_id = s.customer_id;
        session.expires_at = s.expires_at;
        break;
      } catch (e) {
        report(e);
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
    clearError(true);
    const who = $('#whoami');
    who.textContent = session.admin ? 'admin' : `customer ${session.customer_id}`;
    if (session.expires_at) who.title = `Logged in until ${session.expires_at}`;
    document.body.classList.toggle('is-admin', session.admin);
    window.addEventListener('hashchange', route);
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
