// tollgate's dashboard: reads the admin listener's event stream (/admin/events) and draws it with
// uPlot (served from this listener too). No framework and no network beyond this origin. Every
// value from the ledger goes into the page as text (textContent), never as markup.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);

  /** What the page shows now; `window.tollgateDashboard` lets a test (or a curious person) read it. */
  const state = { series: null, live: null, charts: {}, source: null, seenTail: new Set() };
  window.tollgateDashboard = state;

  // Formatting -----------------------------------------------------------------------------------

  const usd = (value) => {
    if (value === null || value === undefined) return "—";
    const abs = Math.abs(value);
    if (abs === 0) return "$0";
    if (abs >= 1) return (value < 0 ? "-$" : "$") + abs.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    return (value < 0 ? "-$" : "$") + abs.toLocaleString("en-US", { minimumFractionDigits: 2, maximumSignificantDigits: 3 });
  };
  const count = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US"));
  const ms = (value) => (value === null || value === undefined ? "—" : value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value).toLocaleString("en-US")} ms`);
  const percent = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(part === whole || part === 0 ? 0 : 1)}%` : "—");
  const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  /** An element with text (never markup) and optional attributes. */
  const el = (tag, text, attrs) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
    return node;
  };

  const setStatus = (text, kind) => {
    const status = $("status");
    status.textContent = text;
    status.className = `status ${kind}`;
  };

  // Charts ---------------------------------------------------------------------------------------

  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  /** `#rrggbb` at opacity `a`, for a canvas (which takes fewer colour forms than CSS). */
  const faded = (hex, a) => {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  };

  const CHARTS = {
    spend: {
      series: [
        { label: "Spend", color: "--c1", key: "costUsd", value: usd, fill: true },
        { label: "Saved by the cache", color: "--c2", key: "savedUsd", value: usd }
      ],
      axis: (u, values) => values.map((v) => usd(v))
    },
    requests: {
      series: [
        { label: "Requests", color: "--c1", key: "requests", value: count, fill: true },
        { label: "Errors", color: "--c3", key: "errors", value: count },
        { label: "Retried", color: "--c4", key: "retried", value: count },
        { label: "Failed over", color: "--c5", key: "failovers", value: count },
        { label: "Cache hits", color: "--c2", key: "cacheHits", value: count }
      ]
    },
    latency: {
      series: [
        { label: "Latency p50", color: "--c1", key: "p50LatencyMs", value: ms, gaps: true },
        { label: "Latency p95", color: "--c3", key: "p95LatencyMs", value: ms, gaps: true },
        { label: "TTFB p50", color: "--c2", key: "p50TtfbMs", value: ms, gaps: true },
        { label: "TTFB p95", color: "--c4", key: "p95TtfbMs", value: ms, gaps: true }
      ],
      axis: (u, values) => values.map((v) => `${v} ms`)
    }
  };

  /** Every bucket of the window, empty ones as 0 (counts) or no point (percentiles). */
  const columns = (series, spec) => {
    const step = series.stepMs;
    const byT = new Map(series.buckets.map((b) => [b.t, b]));
    const first = series.buckets.length > 0 ? series.buckets[0].t : Infinity;
    let start = Math.floor(Date.parse(series.since) / step) * step;
    // `all` starts in 1970: begin at the first bucket with rows instead.
    if (start < first - 2000 * step) start = first;
    const last = series.buckets.length > 0 ? series.buckets[series.buckets.length - 1].t : -Infinity;
    const end = Math.max(Math.floor(Date.now() / step) * step, last);
    const xs = [];
    for (let t = start; t <= end && xs.length <= 5000; t += step) xs.push(t);
    const ys = spec.series.map((s) => xs.map((t) => {
      const bucket = byT.get(t);
      if (bucket === undefined) return s.gaps ? null : 0;
      return bucket[s.key];
    }));
    return [xs.map((t) => t / 1000), ...ys];
  };

  const makeChart = (name) => {
    const spec = CHARTS[name];
    const target = $(`chart-${name}`);
    const text = cssVar("--text");
    const grid = cssVar("--grid");
    const axis = { stroke: text, grid: { stroke: grid }, ticks: { stroke: grid } };
    const opts = {
      width: Math.max(280, target.clientWidth),
      height: 220,
      scales: { x: { time: true } },
      series: [
        { label: "Time" },
        ...spec.series.map((s) => {
          const color = cssVar(s.color);
          return {
            label: s.label,
            stroke: color,
            width: 2,
            spanGaps: false,
            // Counts are 0 in every empty bucket: dots would only add noise. Percentiles have gaps, where a lone dot is the data.
            ...(s.gaps ? {} : { points: { show: false } }),
            value: (u, v) => s.value(v),
            ...(s.fill ? { fill: faded(color, 0.14) } : {})
          };
        })
      ],
      axes: [axis, { ...axis, size: 70, ...(spec.axis ? { values: spec.axis } : {}) }]
    };
    const data = state.series ? columns(state.series, spec) : [[], ...spec.series.map(() => [])];
    target.replaceChildren();
    state.charts[name] = new uPlot(opts, data, target);
  };

  const makeCharts = () => {
    for (const name of Object.keys(CHARTS)) {
      if (state.charts[name]) state.charts[name].destroy();
      makeChart(name);
    }
  };

  const resize = new ResizeObserver(() => {
    for (const [name, chart] of Object.entries(state.charts)) {
      const width = Math.max(280, $(`chart-${name}`).clientWidth);
      if (width !== chart.width) chart.setSize({ width, height: 220 });
    }
  });

  // Rendering ------------------------------------------------------------------------------------

  const card = (label, value, detail) => {
    const box = el("div");
    box.append(el("dt", label));
    const dd = el("dd", value);
    if (detail) {
      dd.append(" ");
      dd.append(el("small", detail));
    }
    box.append(dd);
    return box;
  };

  const renderSummary = (totals) => {
    const t = totals || { requests: 0, costUsd: 0, savedUsd: 0, cacheHits: 0, errors: 0, retried: 0, failovers: 0, inputTokens: 0, outputTokens: 0 };
    $("summary").replaceChildren(
      card("Spend", usd(t.costUsd), t.unpriced ? `${count(t.unpriced)} unpriced` : undefined),
      card("Requests", count(t.requests)),
      card("Cache hits", count(t.cacheHits), percent(t.cacheHits, t.requests)),
      card("Saved by the cache", usd(t.savedUsd)),
      card("Error rate", percent(t.errors, t.requests), `${count(t.errors)} errors`),
      card("Retry rate", percent(t.retried, t.requests), `${count(t.retried)} retried`),
      card("Failover rate", percent(t.failovers, t.requests), `${count(t.failovers)} failed over`),
      card("Latency p50 / p95", `${ms(t.p50LatencyMs)} / ${ms(t.p95LatencyMs)}`),
      card("TTFB p50 / p95", `${ms(t.p50TtfbMs)} / ${ms(t.p95TtfbMs)}`),
      card("Tokens in / out", `${count(t.inputTokens)} / ${count(t.outputTokens)}`)
    );
  };

  const BREAKDOWNS = [["model", "By model"], ["provider", "By provider"], ["route", "By route"], ["project", "By project"], ["session", "By session"]];

  const renderBreakdowns = (breakdowns) => {
    const tables = BREAKDOWNS.map(([key, title]) => {
      const table = el("table", undefined, { "data-breakdown": key });
      table.append(el("caption", `${title} (the ten costliest)`));
      const head = el("tr");
      for (const [h, num] of [[key[0].toUpperCase() + key.slice(1), false], ["Requests", true], ["Spend", true], ["Saved", true], ["Cache hits", true], ["Errors", true], ["Retried", true]]) {
        head.append(el("th", h, { scope: "col", class: num ? "num" : undefined }));
      }
      const thead = el("thead");
      thead.append(head);
      table.append(thead);
      const body = el("tbody");
      const rows = breakdowns[key] || [];
      if (rows.length === 0) {
        const tr = el("tr");
        tr.append(el("td", "No requests in this window.", { colspan: "7", class: "empty" }));
        body.append(tr);
      }
      for (const r of rows) {
        const tr = el("tr", undefined, { "data-group": r.group });
        tr.append(el("th", r.group, { scope: "row", title: r.group }));
        for (const v of [count(r.requests), usd(r.costUsd), usd(r.savedUsd), count(r.cacheHits), count(r.errors), count(r.retried)]) tr.append(el("td", v, { class: "num" }));
        body.append(tr);
      }
      table.append(body);
      // A narrow screen scrolls the table, not the page; the keyboard can scroll it too.
      const wrap = el("div", undefined, { class: "scroll", tabindex: "0", role: "region", "aria-label": title });
      wrap.append(table);
      return wrap;
    });
    $("breakdowns").replaceChildren(...tables);
  };

  const renderSeries = () => {
    const series = state.series;
    renderSummary(series.totals);
    renderBreakdowns(series.breakdowns);
    for (const [name, chart] of Object.entries(state.charts)) chart.setData(columns(series, CHARTS[name]));
  };

  const renderBudgets = (budget) => {
    const box = $("budgets");
    if (!budget.enabled || budget.limits.length === 0) {
      box.replaceChildren(el("p", budget.enabled ? "No budget limits are set." : "Budgets are off (budget.enabled).", { class: "empty" }));
      return;
    }
    box.replaceChildren(...budget.limits.map((l) => {
      const used = l.spentUsd + l.reservedUsd;
      const name = `${l.scope}${l.key ? ` ${l.key}` : ""} · ${l.window}`;
      const gauge = el("div", undefined, { class: "gauge" });
      gauge.append(el("div", name, { class: "name" }));
      const bar = el("div", undefined, {
        class: "bar",
        role: "meter",
        "aria-label": name,
        "aria-valuemin": "0",
        "aria-valuemax": String(l.limitUsd),
        "aria-valuenow": String(Math.min(used, l.limitUsd)),
        "aria-valuetext": `${usd(l.spentUsd)} spent and ${usd(l.reservedUsd)} reserved of ${usd(l.limitUsd)}`
      });
      const share = (v) => `${Math.min(100, l.limitUsd > 0 ? (100 * v) / l.limitUsd : 100)}%`;
      bar.append(el("div", undefined, { class: `spent${used >= l.limitUsd ? " over" : ""}`, style: undefined }));
      bar.append(el("div", undefined, { class: "reserved" }));
      bar.children[0].style.width = share(l.spentUsd);
      bar.children[1].style.width = share(l.reservedUsd);
      gauge.append(bar);
      const resets = l.resetsAt ? `; resets ${new Date(l.resetsAt).toLocaleString()}` : "";
      gauge.append(el("div", `${usd(l.spentUsd)} spent + ${usd(l.reservedUsd)} in flight of ${usd(l.limitUsd)} (${l.onBreach} at the limit)${resets}`, { class: "text" }));
      return gauge;
    }));
    if (budget.blocks.length > 0) {
      const list = el("ul", undefined, { class: "alerts" });
      for (const b of budget.blocks) list.append(el("li", `Session ${b.session} blocked (${b.anomaly}) until ${new Date(b.until).toLocaleString()}`));
      box.append(list);
    }
  };

  const STATE_CLASS = { closed: "ok", "half-open": "warn", open: "bad" };

  const renderBreakers = (breakers) => {
    const body = $("breakers").tBodies[0];
    if (breakers.length === 0) {
      const tr = el("tr");
      tr.append(el("td", "No target has been called yet.", { colspan: "4", class: "empty" }));
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...breakers.map((b) => {
      const tr = el("tr");
      tr.append(el("th", b.target, { scope: "row" }));
      tr.append(el("td", b.state, { class: STATE_CLASS[b.state] }));
      tr.append(el("td", count(b.consecutiveFailures), { class: "num" }));
      tr.append(el("td", b.state === "open" ? `${Math.ceil(b.retryAfterMs / 1000)} s` : "—", { class: "num" }));
      return tr;
    }));
  };

  const renderAlerts = (alerts) => {
    const list = $("alerts");
    if (alerts.length === 0) {
      list.replaceChildren(el("li", "No alerts in the last day.", { class: "empty" }));
      return;
    }
    list.replaceChildren(...alerts.map((a) => {
      const li = el("li", undefined, { class: a.kind === "threshold" ? "warn" : "bad" });
      li.append(el("time", time(a.at), { datetime: a.at }));
      li.append(a.message);
      return li;
    }));
  };

  const renderTail = (rows) => {
    const body = $("tail").tBodies[0];
    const first = state.seenTail.size === 0;
    const seen = new Set();
    body.replaceChildren(...rows.map((r) => {
      seen.add(r.id);
      const tr = el("tr", undefined, { "data-request-id": r.requestId, class: first || state.seenTail.has(r.id) ? undefined : "fresh" });
      const failed = r.status >= 400 || (r.errorType && !r.aborted);
      tr.append(el("td", time(new Date(r.ts).toISOString()), { title: new Date(r.ts).toISOString() }));
      tr.append(el("td", r.model ?? "—"));
      tr.append(el("td", r.provider ?? "—"));
      tr.append(el("td", r.route ?? "(default)"));
      tr.append(el("td", r.aborted ? `${r.status} aborted` : r.errorType ? `${r.status} ${r.errorType}` : String(r.status), { class: failed ? "bad" : undefined }));
      tr.append(el("td", count(r.inputTokens), { class: "num" }));
      tr.append(el("td", count(r.outputTokens), { class: "num" }));
      tr.append(el("td", usd(r.costUsd), { class: "num" }));
      tr.append(el("td", ms(r.latencyMs), { class: "num" }));
      tr.append(el("td", ms(r.ttfbMs), { class: "num" }));
      const notes = [r.cacheStatus, r.attempts > 1 ? `${r.attempts} attempts` : null, r.failover ? "failover" : null].filter(Boolean);
      tr.append(el("td", notes.length > 0 ? notes.join(", ") : "—"));
      return tr;
    }));
    if (rows.length === 0) {
      const tr = el("tr");
      tr.append(el("td", "No requests yet.", { colspan: "11", class: "empty" }));
      body.replaceChildren(tr);
    }
    state.seenTail = seen;
  };

  const renderLive = () => {
    const live = state.live;
    renderBudgets(live.budget);
    renderBreakers(live.breakers);
    renderAlerts(live.alerts);
    renderTail(live.tail);
    const queue = live.ledger.queueDepth > 0 ? `, ${count(live.ledger.queueDepth)} rows queued` : "";
    const ledger = live.ledger.status === "ok" ? "" : ` (ledger: ${live.ledger.status})`;
    setStatus(`Live, updated ${time(live.at)}${queue}${ledger}`, live.ledger.status === "ok" ? "live" : "down");
  };

  // The stream -----------------------------------------------------------------------------------

  const connect = () => {
    if (state.source) state.source.close();
    const [since, step] = $("window").value.split("/");
    const source = new EventSource(`/admin/events?since=${encodeURIComponent(since)}&step=${encodeURIComponent(step)}`);
    state.source = source;
    source.addEventListener("series", (e) => {
      state.series = JSON.parse(e.data);
      renderSeries();
    });
    source.addEventListener("live", (e) => {
      state.live = JSON.parse(e.data);
      renderLive();
    });
    source.addEventListener("problem", (e) => setStatus(JSON.parse(e.data).message, "down"));
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.OPEN) setStatus("Disconnected: reconnecting…", "down");
    });
  };

  const start = () => {
    const select = $("window");
    const fromHash = decodeURIComponent(location.hash.slice(1));
    if ([...select.options].some((o) => o.value === fromHash)) select.value = fromHash;
    select.addEventListener("change", () => {
      history.replaceState(null, "", `#${select.value}`);
      state.series = null;
      connect();
    });
    $("controls").addEventListener("submit", (e) => e.preventDefault());
    renderSummary(null);
    renderBreakdowns({});
    makeCharts();
    for (const name of Object.keys(CHARTS)) resize.observe($(`chart-${name}`));
    // Colours come from the style sheet: a change of the system's theme redraws the charts in the new ones.
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", makeCharts);
    connect();
  };

  start();
})();
