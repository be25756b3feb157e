// Tally dashboard: reads the API with the key kept in sessionStorage; no build step, no
// external resources. Every value from the API is inserted as text, never as markup.
"use strict";

const KEY_STORE = "tally.apiKey";
const SVG = "http://www.w3.org/2000/svg";

const VERDICTS = {
  pass: ["通过", "pass"],
  fail: ["未通过", "fail"],
  insufficient_evidence: ["证据不足", "insufficient evidence"],
  not_applicable: ["不适用", "not applicable"],
};
const SOURCES = {
  measured: ["实测", "measured"],
  registry: ["登记", "registry"],
  declared: ["声明", "declared"],
};
// The step of the devices-over-time chart for each window choice.
const STEPS = { "24h": "1h", "7d": "6h", "30d": "1d", "90d": "1d", "365d": "7d" };

const state = { key: sessionStorage.getItem(KEY_STORE), programmes: [], loading: 0 };

class ApiError extends Error {
  constructor(status, detail, path) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
    this.path = path;
  }
}

// --- DOM helpers --------------------------------------------------------------------------

function $(id) {
  return document.getElementById(id);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function notice(target, text, kind) {
  target.hidden = !text;
  target.textContent = text || "";
  target.dataset.kind = kind || "info";
}

function bilingual(pair) {
  return `${pair[0]} ${pair[1]}`;
}

function badge(verdict) {
  const pair = VERDICTS[verdict] || [verdict, verdict];
  return el("span", { class: `badge ${verdict}`, "data-verdict": verdict }, bilingual(pair));
}

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") {
    return Number.isInteger(value) ? value.toLocaleString("en") : value.toLocaleString("en", { maximumFractionDigits: 2 });
  }
  return String(value);
}

function fmtTime(iso) {
  return iso ? iso.replace("T", " ").replace(/:00(\.0+)?Z$/, " UTC").replace(/Z$/, " UTC") : "—";
}

// --- API ----------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = new Headers();
  headers.set("Authorization", `Bearer ${state.key}`);
  let body;
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(options.json);
  }
  const res = await fetch(path, { method: options.method || "GET", headers, body, cache: "no-store" });
  if (!res.ok) {
    let detail = res.statusText || "error";
    try {
      const answer = await res.json();
      if (typeof answer.detail === "string") detail = answer.detail;
      else if (Array.isArray(answer.detail)) detail = answer.detail.map((d) => d.msg).join("; ");
    } catch (_) {
      // not JSON: keep the status text
    }
    throw new ApiError(res.status, detail, path);
  }
  return options.raw ? res : res.json();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, String(value));
  }
  return search.toString();
}

// Say what went wrong in both languages; a refused key goes back to the key form.
function describeError(err, what) {
  if (!(err instanceof ApiError)) return `${what}: 无法连接 cannot reach the API (${err.message})`;
  if (err.status === 401) return `密钥被拒绝 The API key was refused (401): ${err.detail}`;
  if (err.status === 403) return `权限不足 This key's role does not allow it (403): ${err.detail}`;
  if (err.status === 404 && err.detail === "Not Found") {
    // No such route: the endpoint is not part of this server's version.
    return `${what}: 本服务器尚未提供 not available on this server (404 from ${err.path.split("?")[0]})`;
  }
  if (err.status === 404) return `${what}: 未找到 not found (404): ${err.detail}`;
  return `${what}: ${err.status} ${err.detail}`;
}

function handle(err, target, what) {
  if (err instanceof ApiError && err.status === 401) {
    askForKey(describeError(err, what));
    return;
  }
  notice(target, describeError(err, what), "error");
}

// --- key flow -----------------------------------------------------------------------------

function askForKey(message) {
  state.key = null;
  sessionStorage.removeItem(KEY_STORE);
  $("workspace").hidden = true;
  $("key-status").hidden = true;
  $("key-panel").hidden = false;
  notice($("key-message"), message || "", "error");
  $("api-key").focus();
}

async function connect() {
  try {
    state.programmes = await api("/v1/programs");
  } catch (err) {
    askForKey(describeError(err, "方案 programmes"));
    return;
  }
  sessionStorage.setItem(KEY_STORE, state.key);
  $("key-panel").hidden = true;
  notice($("key-message"), "");
  $("key-prefix").textContent = `${state.key.split("_").slice(0, 2).join("_")}_…`;
  $("key-status").hidden = false;
  $("workspace").hidden = false;
  fillProgrammes();
  await load();
}

function fillProgrammes() {
  const select = $("programme");
  const previous = select.value;
  select.replaceChildren(
    ...state.programmes.map((p) => el("option", { value: p.id }, `${p.title} · ${p.title_en}`)),
  );
  if (state.programmes.some((p) => p.id === previous)) select.value = previous;
  fillTiers();
}

function fillTiers() {
  const programme = currentProgramme();
  const select = $("tier");
  const previous = select.value;
  const tiers = programme ? programme.tiers : [];
  select.replaceChildren(...tiers.map((t) => el("option", { value: t.id }, `${t.name} · ${t.name_en}`)));
  if (tiers.some((t) => t.id === previous)) select.value = previous;
}

function currentProgramme() {
  return state.programmes.find((p) => p.id === $("programme").value) || state.programmes[0];
}

function selection() {
  return {
    program: $("programme").value,
    tier: $("tier").value,
    window: $("window").value,
    include_simulated: $("include-simulated").checked,
  };
}

// --- loading ------------------------------------------------------------------------------

async function load() {
  const sel = selection();
  if (!sel.program || !sel.tier) return;
  const ticket = ++state.loading;
  document.body.classList.toggle("simulated", sel.include_simulated);
  $("simulated-banner").hidden = !sel.include_simulated;
  notice($("load-message"), "加载中… Loading…", "info");
  const common = { window: sel.window, include_simulated: sel.include_simulated };
  const tasks = [
    [api(`/v1/programs/${encodeURIComponent(sel.program)}/tiers/${encodeURIComponent(sel.tier)}/evaluation?${query(common)}`),
      renderEvaluation, $("rules"), "评估 evaluation"],
    [api(`/v1/counts/series?${query({ ...common, step: STEPS[sel.window] || "1d" })}`),
      renderSeries, $("series"), "设备趋势 device series"],
    [api(`/v1/counts?${query({ ...common, group_by: "type" })}`),
      (body) => renderGroups($("types"), body, "设备种类 type"), $("types"), "设备种类 device types"],
    [api(`/v1/counts?${query({ ...common, group_by: "industry" })}`),
      (body) => renderGroups($("industries"), body, "行业 industry"), $("industries"), "行业 industries"],
    [api(`/v1/calls/monthly?${query({ window: sel.window })}`),
      renderCalls, $("calls"), "月度调用 monthly calls"],
  ];
  const settled = await Promise.allSettled(tasks.map((t) => t[0]));
  if (ticket !== state.loading) return; // a newer selection is loading
  let refused = null;
  settled.forEach((outcome, i) => {
    const [, render, target, what] = tasks[i];
    if (outcome.status === "fulfilled") {
      render(outcome.value);
    } else {
      const err = outcome.reason;
      if (err instanceof ApiError && err.status === 401) refused = err;
      target.replaceChildren(el("p", { class: "notice", "data-kind": "error", role: "alert" }, describeError(err, what)));
      if (render === renderEvaluation) $("summary").replaceChildren();
    }
  });
  if (refused) {
    askForKey(describeError(refused, "evaluation"));
    return;
  }
  notice($("load-message"), "");
  renderDrilldowns(sel);
}

// --- evaluation ---------------------------------------------------------------------------

function renderEvaluation(body) {
  const ev = body.evaluation;
  const programme = state.programmes.find((p) => p.id === body.programme);
  const tier = programme && programme.tiers.find((t) => t.id === body.tier);
  const counts = Object.entries(ev.counts).map(([v, n]) => el("span", { class: `count ${v}` }, `${bilingual(VERDICTS[v])}: ${n}`));
  $("summary").replaceChildren(
    el("div", { class: "summary-head" },
      el("h2", {}, `${ev.programme_title} · ${tier ? `${tier.name} ${tier.name_en}` : ev.tier_name}`),
      el("span", { id: "tier-verdict", class: "big" }, badge(body.verdict))),
    el("p", { class: "counts" }, ...counts),
    el("p", { class: "meta" },
      `窗口 Window ${fmtTime(body.window.start)} → ${fmtTime(body.window.end)} (${body.window.hours} h)`,
      ` · 生成 generated ${fmtTime(body.generated_at)} · Tally ${body.software_version}`),
    body.include_simulated
      ? el("p", { class: "notice", "data-kind": "warn", id: "summary-simulated" },
        "本评估包含模拟设备 This evaluation INCLUDES simulated devices (include_simulated=true).")
      : el("p", { class: "meta" },
        `模拟设备已排除 Simulated devices excluded: ${body.simulated_devices_excluded}`),
    ...ev.warnings.map((w) => el("p", { class: "notice", "data-kind": "warn" }, w)),
  );
  $("rules").replaceChildren(...ev.results.map(renderRule));
}

function renderRule(r) {
  const source = SOURCES[r.source] || [r.source, r.source];
  const article = el("article", { class: `rule ${r.verdict}`, "data-rule": r.rule, "data-verdict": r.verdict },
    el("header", {},
      badge(r.verdict),
      el("span", { class: "clause" }, r.clause),
      el("span", { class: `source ${r.source}` }, bilingual(source)),
      el("code", { class: "rule-id" }, r.rule)),
    el("div", { class: "texts" },
      el("p", { class: "zh", lang: "zh-CN" }, r.text),
      el("p", { class: "en", lang: "en" }, r.gloss)),
    renderCheck(r.check, true),
  );
  if (r.alternatives && r.alternatives.length && r.check.kind !== "any") {
    article.append(el("div", { class: "alternatives" }, ...r.alternatives.map((a) => renderCheck(a, false))));
  }
  if (r.notes) article.append(el("p", { class: "notes" }, r.notes));
  if (r.drilldown) {
    const button = downloadButton("明细 Evidence behind this figure (CSV)", withFormat(r.drilldown, "csv"), `${r.rule}.csv`);
    button.dataset.drilldown = r.drilldown;
    article.append(el("p", { class: "drill" }, button));
  }
  return article;
}

function renderCheck(check, top) {
  const box = el("div", { class: `check ${check.kind}${top ? " root" : ""}` });
  if (check.kind === "threshold" || (check.threshold !== null && check.threshold !== undefined && check.kind !== "groups")) {
    box.append(barRow(check.label || check.metric, check));
  } else if (check.kind === "all" || check.kind === "any") {
    const head = check.kind === "all" ? "全部满足 all of" : "任一满足 any of";
    box.append(el("div", { class: "combo" }, badge(check.verdict), ` ${check.label ? `${check.label} · ` : ""}${head}`));
    box.append(el("div", { class: "children" }, ...check.children.map((c) => renderCheck(c, false))));
  } else if (check.kind === "groups") {
    box.append(barRow(check.label || `合格${check.unit === "domains" ? "领域" : "行业"} qualifying ${check.unit}`, check));
    const groups = el("details", { class: "groups" },
      el("summary", {}, `各组 Each group (${check.groups.length})`),
      ...check.groups.map((g) => el("div", { class: "group" },
        el("div", { class: "group-head" }, badge(g.verdict), ` ${g.group}${g.name ? ` ${g.name}` : ""}`),
        renderCheck(g.result, false))));
    box.append(groups);
  } else {
    box.append(el("div", { class: "declared" }, badge(check.verdict), ` ${check.label || ""}`));
  }
  if (check.detail) box.append(el("p", { class: "detail" }, check.detail));
  return box;
}

// One bar: the measured value against the threshold (a vertical line).
function barRow(label, c) {
  const measured = typeof c.measured === "number" ? c.measured : null;
  const threshold = typeof c.threshold === "number" ? c.threshold : null;
  const unit = c.unit ? ` ${c.unit}` : "";
  const scale = Math.max(measured || 0, threshold || 0) * 1.15 || 1;
  const width = 300;
  const chart = svg("svg", { class: "bar", viewBox: `0 0 ${width} 16`, role: "img",
    "aria-label": `${label}: ${fmt(measured)} ${c.op || ""} ${fmt(threshold)}${unit}` },
  svg("rect", { class: "track", x: 0, y: 2, width, height: 12, rx: 2 }));
  if (measured !== null) {
    chart.append(svg("rect", { class: `fill ${c.verdict}`, x: 0, y: 2, width: Math.max(1, (measured / scale) * width), height: 12, rx: 2 }));
  } else {
    chart.append(svg("rect", { class: "fill missing", x: 0, y: 2, width, height: 12, rx: 2 }));
  }
  if (threshold !== null) {
    const x = (threshold / scale) * width;
    chart.append(svg("line", { class: "threshold", x1: x, x2: x, y1: 0, y2: 16 }));
  }
  const figure = measured === null
    ? `无数据 no figure · 要求 needs ${c.op || ""} ${fmt(threshold)}${unit}`
    : `${fmt(measured)}${unit} ${c.op || ""} ${fmt(threshold)}${unit}`;
  return el("div", { class: "bar-row", "data-metric": c.metric || "", "data-measured": measured ?? "", "data-threshold": threshold ?? "" },
    el("span", { class: "bar-label" }, badge(c.verdict), ` ${label || ""}`),
    chart,
    el("span", { class: "bar-figure" }, figure));
}

// --- charts -------------------------------------------------------------------------------

function renderSeries(body) {
  const points = body.points;
  const target = $("series");
  if (!points.length) {
    target.replaceChildren(el("p", { class: "meta" }, "无数据 No data"));
    return;
  }
  const w = 600;
  const h = 200;
  const pad = { l: 40, r: 10, t: 10, b: 30 };
  const max = Math.max(1, ...points.map((p) => p.connected_devices));
  const x = (i) => pad.l + (points.length === 1 ? 0 : (i / (points.length - 1)) * (w - pad.l - pad.r));
  const y = (v) => h - pad.b - (v / max) * (h - pad.t - pad.b);
  const chart = svg("svg", { class: "series", viewBox: `0 0 ${w} ${h}`, role: "img",
    "aria-label": "connected and managed devices per step" },
  svg("line", { class: "axis", x1: pad.l, x2: w - pad.r, y1: y(0), y2: y(0) }),
  svg("line", { class: "axis", x1: pad.l, x2: pad.l, y1: pad.t, y2: y(0) }),
  svg("text", { x: pad.l - 4, y: y(max) + 4, "text-anchor": "end", text: fmt(max) }),
  svg("text", { x: pad.l - 4, y: y(0) + 4, "text-anchor": "end", text: "0" }),
  svg("text", { x: pad.l, y: h - 8, text: fmtTime(points[0].start) }),
  svg("text", { x: w - pad.r, y: h - 8, "text-anchor": "end", text: fmtTime(points[points.length - 1].end) }));
  for (const [name, cls] of [["connected_devices", "connected"], ["managed_devices", "managed"]]) {
    chart.append(svg("polyline", { class: `line ${cls}`, points: points.map((p, i) => `${x(i)},${y(p[name])}`).join(" ") }));
    if (points.length > 60) continue; // too many to mark one by one
    points.forEach((p, i) => {
      chart.append(svg("circle", { class: `dot ${cls}`, cx: x(i), cy: y(p[name]), r: 2.5 },
        svg("title", { text: `${fmtTime(p.start)} → ${fmtTime(p.end)}: ${name} ${p[name]}` })));
    });
  }
  const last = points[points.length - 1];
  target.replaceChildren(
    chart,
    el("p", { class: "legend" },
      el("span", { class: "key connected" }, "连接设备 connected"), " ",
      el("span", { class: "key managed" }, "可管理设备 managed"),
      ` · 每步 per ${body.step} · 最近一步 last step: ${last.connected_devices} / ${last.managed_devices}`),
  );
}

function hbars(rows, valueName) {
  if (!rows.length) return el("p", { class: "meta" }, "无数据 No data");
  const max = Math.max(1, ...rows.map((r) => r.value));
  const list = el("div", { class: "hbars" });
  for (const r of rows) {
    list.append(el("div", { class: "hbar", "data-key": r.key },
      el("span", { class: "hbar-label" }, r.label),
      svg("svg", { class: "bar", viewBox: "0 0 200 12", role: "img", "aria-label": `${r.label}: ${r.value} ${valueName}` },
        svg("rect", { class: "track", x: 0, y: 0, width: 200, height: 12, rx: 2 }),
        svg("rect", { class: "fill neutral", x: 0, y: 0, width: Math.max(1, (r.value / max) * 200), height: 12, rx: 2 })),
      el("span", { class: "bar-figure" }, r.figure)));
  }
  return list;
}

function renderGroups(target, body, name) {
  const rows = body.groups
    .filter((g) => g.connected_devices > 0)
    .sort((a, b) => b.connected_devices - a.connected_devices)
    .map((g) => ({
      key: g.key ?? "",
      label: g.key ?? `未标注 none (${name})`,
      value: g.connected_devices,
      figure: `${g.connected_devices} 台 devices · ${g.managed_devices} 可管理 managed · ${g.points} 点 points`,
    }));
  target.replaceChildren(
    el("p", { class: "meta" }, `连接设备 connected ${body.connected_devices} · 种类 types ${body.device_types} · 点 points ${body.points} · 流程点 process points ${body.process_points}`),
    hbars(rows, "devices"),
  );
}

function renderCalls(body) {
  const target = $("calls");
  if (!body.months.length) {
    target.replaceChildren(el("p", { class: "meta" },
      "窗口内没有完整的自然月 No full calendar month inside this window; choose 90 or 365 days."));
    return;
  }
  const rows = body.months.map((m) => ({ key: m, label: m, value: body.total.calls[m] || 0,
    figure: `${fmt(body.total.calls[m] || 0)} 次 calls (${fmt(body.total.ok_calls[m] || 0)} ok)` }));
  target.replaceChildren(
    el("p", { class: "meta" }, `月均 monthly average ${fmt(body.total.monthly_average)} · 时区 ${body.timezone}`),
    hbars(rows, "calls"),
  );
}

// --- evidence: drill-downs and bundles -----------------------------------------------------

// A verdict's drill-down is a relative URL: "/v1/drilldowns/..." or "drilldowns/...".
function withFormat(relative, format) {
  const url = new URL(relative, `${window.location.origin}/v1/`);
  url.searchParams.set("format", format);
  return url.pathname + url.search;
}

function renderDrilldowns(sel) {
  const base = { window: sel.window, include_simulated: sel.include_simulated, format: "csv" };
  const links = [
    ["连接设备 Connected devices", `/v1/drilldowns/devices?${query({ ...base, status: "connected" })}`, "connected-devices.csv"],
    ["可管理设备 Managed devices", `/v1/drilldowns/devices?${query({ ...base, status: "managed" })}`, "managed-devices.csv"],
    ["数据采集点 Data collection points", `/v1/drilldowns/points?${query(base)}`, "points.csv"],
    ["工业 APP 与模型 Apps and their calls", `/v1/drilldowns/apps?${query({ window: sel.window, format: "csv" })}`, "apps.csv"],
  ];
  $("drilldowns").replaceChildren(...links.map(([label, url, file]) => el("li", {}, downloadButton(label, url, file))));
}

function downloadButton(label, url, filename) {
  const button = el("button", { type: "button", class: "download", "data-url": url }, label);
  button.addEventListener("click", () => download(url, filename, label));
  return button;
}

function filenameOf(res, fallback) {
  const disposition = res.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  return match ? match[1] : fallback;
}

// Fetch with the key (a plain link cannot carry it), then offer the file as a blob link.
async function download(url, filename, label) {
  const message = $("evidence-message");
  notice(message, `下载中 Downloading ${label}…`, "info");
  try {
    const res = await api(url, { raw: true });
    offer(await res.blob(), filenameOf(res, filename), label);
    notice(message, `已下载 Downloaded ${label}`, "ok");
  } catch (err) {
    handle(err, message, label);
  }
}

function offer(blob, filename, label) {
  const href = URL.createObjectURL(blob);
  const link = el("a", { href, download: filename, class: "blob-link" }, `${filename}`);
  $("downloads").prepend(el("li", {}, link, ` · ${label} · ${blob.size.toLocaleString("en")} bytes`));
  link.click();
}

async function makeBundle() {
  const sel = selection();
  const message = $("evidence-message");
  const what = "报告包 report bundle";
  notice(message, "生成中 Creating the signed bundle…", "info");
  try {
    const report = await api("/v1/reports", { method: "POST", json: sel });
    const url = report.bundle_url || `/v1/reports/${encodeURIComponent(report.id)}/bundle`;
    const res = await api(url, { raw: true });
    offer(await res.blob(), filenameOf(res, `tally-report-${report.id}.zip`), what);
    notice(message, `已下载 Downloaded bundle ${report.id}; 用 check it with tally verify`, "ok");
  } catch (err) {
    handle(err, message, what);
  }
}

// --- wiring -------------------------------------------------------------------------------

function start() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    state.key = key;
    $("api-key").value = "";
    connect();
  });
  $("forget-key").addEventListener("click", () => askForKey(""));
  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  $("programme").addEventListener("change", () => {
    fillTiers();
    load();
  });
  for (const id of ["tier", "window", "include-simulated"]) $(id).addEventListener("change", load);
  $("make-bundle").addEventListener("click", makeBundle);
  if (state.key) connect();
  else askForKey("");
}

document.addEventListener("DOMContentLoaded", start);
