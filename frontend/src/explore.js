// The explore panel (templates/explore/_panel.html) and a saved chart's page (templates/explore/chart.html),
// drawn with Chart.js from the portal's API (portal/api/explore.py): a model's rows with sorting and
// filters, a column's profile, a chart builder that saves charts, and the row count and build time over
// time. Each drawn chart is kept on its canvas as `canvas.dmaasChart` (tests read it).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  ScatterController,
  Tooltip,
} from "chart.js";
import { makeApi } from "./api.js";

Chart.register(BarController, BarElement, CategoryScale, Filler, Legend, LinearScale, LineController,
  LineElement, PointElement, ScatterController, Tooltip);

const PALETTE = ["#2251c7", "#0f7b6c", "#d6980e", "#b42318", "#8a3ffc", "#1192e8", "#6b7d12", "#e2579b",
  "#5b6577", "#005d5d", "#9f1853", "#fa4d56"];
const OTHER_COLOR = "#a0a8b5";
const OP_WORDS = { "=": "=", "!=": "≠", "<": "<", "<=": "≤", ">": ">", ">=": "≥", contains: "contains",
  starts_with: "starts with", in: "is one of", is_null: "is empty", not_null: "is not empty" };
const PAGE = 50;
const TIME_KINDS = ["date", "timestamp"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function cellText(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function draw(canvas, config) {
  const old = canvas.dmaasChart;
  if (old) old.destroy();
  const chart = new Chart(canvas, config);
  canvas.dmaasChart = chart;
  return chart;
}

function color(i, series) {
  return series && series.other ? OTHER_COLOR : PALETTE[i % PALETTE.length];
}

// A chart-data answer as a Chart.js configuration.
export function chartConfig(data) {
  const kind = data.kind;
  const type = kind === "area" ? "line" : kind;
  const datasets = data.series.map((s, i) => {
    const c = color(i, s);
    const set = { label: s.name, backgroundColor: kind === "area" ? `${c}55` : c, borderColor: c, borderWidth: 2,
      pointRadius: kind === "scatter" ? 3 : 2, tension: 0 };
    if (kind === "scatter") set.data = s.points.map(([x, y]) => ({ x: Number(x), y }));
    else set.data = s.values;
    if (kind === "area") set.fill = data.series.length > 1 ? (i === 0 ? "origin" : "-1") : "origin";
    return set;
  });
  const labels = data.labels.map((l) => (l === null ? "(empty)" : String(l)));
  const yTitle = data.aggregate === "count" ? "rows" : data.aggregate === "none" ? data.y : `${data.aggregate} of ${data.y}`;
  return {
    type,
    data: kind === "scatter" ? { datasets } : { labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: kind === "scatter" ? { mode: "nearest", intersect: true } : { mode: "index", intersect: false },
      scales: {
        x: { type: kind === "scatter" ? "linear" : "category",
          title: { display: true, text: data.bucket ? `${data.x} per ${data.bucket}` : data.x } },
        y: { beginAtZero: kind !== "scatter", ticks: data.aggregate === "count" ? { precision: 0 } : {}, stacked: kind === "area" && data.series.length > 1, title: { display: true, text: yTitle } },
      },
      plugins: { legend: { display: data.series.length > 1, position: "bottom" } },
    },
  };
}

function chartWords(data) {
  const parts = [];
  const points = data.kind === "scatter" ? data.series.reduce((n, s) => n + s.points.length, 0) : data.labels.length;
  parts.push(`${points} ${data.kind === "scatter" ? "point" : "value"}${points === 1 ? "" : "s"} of x`);
  if (data.truncated) parts.push("cut at the limit: filter to see the rest");
  if (data.groups_truncated) parts.push("groups beyond the first 12 are summed up as Other");
  if (data.masked) parts.push("personal data is masked");
  return parts.join("; ") + ".";
}

// ------------------------------------------------------------------ the panel

class Panel {
  constructor(root) {
    this.root = root;
    this.model = root.dataset.model;
    this.api = makeApi(root.dataset.api);
    this.base = `models/${encodeURIComponent(this.model)}`;
    this.filters = [];
    this.sort = null;
    this.order = "asc";
    this.offset = 0;
    this.columns = [];
    try {
      this.columns = JSON.parse(document.getElementById("explore-columns").textContent) || [];
    } catch {
      this.columns = [];
    }
    this.$ = (id) => document.getElementById(id);
    this.lastChart = null;
  }

  start() {
    this.$("explore-filter-form").addEventListener("submit", (e) => { e.preventDefault(); this.addFilter(); });
    this.$("explore-filter-op").addEventListener("change", () => this.syncValueInput());
    this.$("explore-prev").addEventListener("click", () => { this.offset = Math.max(0, this.offset - PAGE); this.loadRows(); });
    this.$("explore-next").addEventListener("click", () => { this.offset += PAGE; this.loadRows(); });
    this.$("explore-chart-form").addEventListener("submit", (e) => { e.preventDefault(); this.drawChart(); });
    this.$("explore-chart-aggregate").addEventListener("change", () => this.syncChartForm());
    this.$("explore-chart-kind").addEventListener("change", () => this.syncChartForm());
    this.$("explore-chart-x").addEventListener("change", () => this.syncChartForm());
    this.$("explore-save-form").addEventListener("submit", (e) => { e.preventDefault(); this.saveChart(); });
    this.fillColumnSelects();
    this.loadRows();
    this.loadSaved();
    this.loadHistory();
  }

  error(message) {
    const box = this.$("explore-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  // ---------------------------------------------------------------- columns and filters
  fillColumnSelects() {
    const fill = (select, blank) => {
      const current = select.value;
      select.replaceChildren(...(blank ? [el("option", { value: "" }, "—")] : []),
        ...this.columns.map((c) => el("option", { value: c.name }, c.name)));
      if ([...select.options].some((o) => o.value === current)) select.value = current;
    };
    fill(this.$("explore-filter-column"), false);
    fill(this.$("explore-chart-x"), false);
    fill(this.$("explore-chart-y"), true);
    fill(this.$("explore-chart-group"), true);
    this.syncChartForm();
  }

  syncValueInput() {
    const op = this.$("explore-filter-op").value;
    const input = this.$("explore-filter-value");
    input.disabled = op === "is_null" || op === "not_null";
    input.placeholder = op === "in" ? "a, b, c" : "";
  }

  syncChartForm() {
    const aggregate = this.$("explore-chart-aggregate");
    const kind = this.$("explore-chart-kind").value;
    if (kind === "scatter" && aggregate.value !== "none" && !aggregate.dataset.touched) aggregate.value = "none";
    this.$("explore-chart-y").disabled = aggregate.value === "count";
    // "Per" day, week, month or year: only for a date or timestamp x (the kinds come with the first rows).
    const x = this.columns.find((c) => c.name === this.$("explore-chart-x").value);
    const dated = Boolean(x && TIME_KINDS.includes(x.kind)) && kind !== "scatter";
    this.$("explore-chart-bucket-row").hidden = !dated;
    if (!dated) this.$("explore-chart-bucket").value = "";
  }

  addFilter() {
    const column = this.$("explore-filter-column").value;
    const op = this.$("explore-filter-op").value;
    const raw = this.$("explore-filter-value").value;
    if (!column) return;
    const filter = { column, op };
    if (op === "in") filter.value = raw.split(",").map((v) => v.trim()).filter((v) => v !== "");
    else if (op !== "is_null" && op !== "not_null") filter.value = raw;
    this.filters.push(filter);
    this.$("explore-filter-value").value = "";
    this.offset = 0;
    this.renderFilters();
    this.loadRows();
  }

  renderFilters() {
    const list = this.$("explore-filters");
    list.replaceChildren(...this.filters.map((f, i) => {
      const words = `${f.column} ${OP_WORDS[f.op] || f.op}${f.value === undefined ? "" : ` ${Array.isArray(f.value) ? f.value.join(", ") : f.value}`}`;
      return el("li", {}, words, el("button", { type: "button", "aria-label": `Remove the filter ${words}`,
        onclick: () => { this.filters.splice(i, 1); this.offset = 0; this.renderFilters(); this.loadRows(); } }, "×"));
    }));
  }

  // ---------------------------------------------------------------- rows
  async loadRows() {
    const status = this.$("explore-status");
    status.textContent = "Loading…";
    const body = { filters: this.filters, limit: PAGE, offset: this.offset };
    if (this.sort) Object.assign(body, { sort: this.sort, order: this.order });
    let data;
    try {
      data = await this.api.call("POST", `${this.base}/rows`, body);
    } catch (err) {
      status.textContent = "";
      this.error(err.message);
      if (err.error && err.error.field && err.error.field.startsWith("filters") && this.filters.length) {
        this.filters.pop(); // the filter just added was refused: say why and take it back
        this.renderFilters();
      }
      return;
    }
    this.error("");
    const known = new Set(this.columns.map((c) => c.name));
    if (data.columns.length !== this.columns.length || data.columns.some((c) => !known.has(c.name)) ||
        data.columns.some((c, i) => this.columns[i].kind !== c.kind)) {
      this.columns = data.columns.map((c) => ({ name: c.name, type: c.type, kind: c.kind }));
      this.fillColumnSelects();
    }
    this.renderTable(data);
    const first = data.row_count ? data.offset + 1 : 0;
    status.textContent = `Rows ${first}–${data.offset + data.row_count} of ${data.total}` +
      `${this.filters.length ? " matching the filters" : ""} (${data.relation}).`;
    this.$("explore-prev").disabled = data.offset === 0;
    this.$("explore-next").disabled = !data.truncated;
  }

  renderTable(data) {
    const table = this.$("explore-table");
    const head = el("tr");
    for (const c of data.columns) {
      const sorted = this.sort === c.name;
      const arrow = sorted ? (this.order === "asc" ? " ▲" : " ▼") : "";
      head.append(el("th", { scope: "col", "aria-sort": sorted ? (this.order === "asc" ? "ascending" : "descending") : undefined },
        el("button", { type: "button", "aria-pressed": sorted ? "true" : "false", "data-column": c.name,
          "aria-label": `Sort by ${c.name}`, onclick: () => this.sortBy(c.name) }, c.name + arrow),
        el("span", { class: "explore-type" }, `${c.type}${c.masked ? " · masked" : ""} `,
          el("a", { href: "#explore-profile", class: "explore-profile-link", "data-profile": c.name,
            onclick: (e) => { e.preventDefault(); this.loadProfile(c.name); } }, "profile"))));
    }
    const rows = data.rows.map((row) => el("tr", {}, ...row.map((v, i) => el("td", {
      class: v === null ? "explore-null" : data.columns[i].kind === "number" ? "explore-number" : undefined,
    }, cellText(v)))));
    table.tHead.replaceChildren(head);
    table.tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: data.columns.length || 1 }, "No rows."))]));
  }

  sortBy(name) {
    if (this.sort === name) this.order = this.order === "asc" ? "desc" : "asc";
    else { this.sort = name; this.order = "asc"; }
    this.offset = 0;
    this.loadRows();
  }

  // ---------------------------------------------------------------- profile
  async loadProfile(column) {
    const section = this.$("explore-profile");
    section.hidden = false;
    section.querySelector('[data-field="column"]').textContent = column;
    const summary = this.$("explore-profile-summary");
    summary.textContent = "Loading…";
    let data;
    try {
      const q = new URLSearchParams({ column });
      if (this.filters.length) q.set("filters", JSON.stringify(this.filters));
      data = await this.api.call("GET", `${this.base}/profile?${q}`);
    } catch (err) {
      summary.textContent = err.message;
      return;
    }
    const parts = [`${data.rows} rows`, `${data.nulls} empty`];
    if (data.distinct !== null) parts.push(`${data.distinct} distinct`);
    if (data.min !== null) parts.push(`from ${cellText(data.min)} to ${cellText(data.max)}`);
    if (data.masked) parts.push("values masked: personal data");
    summary.textContent = parts.join(" · ");
    const canvas = this.$("explore-profile-canvas");
    const top = this.$("explore-profile-top");
    if (data.histogram) {
      top.hidden = true;
      canvas.parentElement.hidden = false;
      const label = (b) => (data.kind === "number" && typeof b.from === "number"
        ? `${+b.from.toPrecision(4)}–${+b.to.toPrecision(4)}` : cellText(b.from));
      draw(canvas, {
        type: "bar",
        data: { labels: data.histogram.map(label), datasets: [{ label: "rows", data: data.histogram.map((b) => b.count),
          backgroundColor: PALETTE[0], barPercentage: 1, categoryPercentage: 0.95 }] },
        options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "rows" } },
            x: { title: { display: true, text: data.unit ? `${column} per ${data.unit}` : column } } } },
      });
    } else {
      canvas.parentElement.hidden = true;
      top.hidden = false;
      top.tBodies[0].replaceChildren(...data.top.map((t) => el("tr", {}, el("td", {}, cellText(t.value)), el("td", {}, t.count))));
    }
  }

  // ---------------------------------------------------------------- charts
  chartDefinition() {
    const value = (id) => this.$(id).value;
    const aggregate = value("explore-chart-aggregate");
    return { kind: value("explore-chart-kind"), x: value("explore-chart-x"), bucket: value("explore-chart-bucket"), aggregate,
      y: aggregate === "count" ? "" : value("explore-chart-y"), group_by: value("explore-chart-group"),
      filters: this.filters.slice() };
  }

  async drawChart() {
    const status = this.$("explore-chart-status");
    const definition = this.chartDefinition();
    status.textContent = "Drawing…";
    let data;
    try {
      data = await this.api.call("POST", `${this.base}/chart-data`, definition);
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    this.$("explore-chart-box").hidden = false;
    draw(this.$("explore-chart-canvas"), chartConfig(data));
    status.textContent = chartWords(data);
    this.lastChart = definition;
    const save = this.$("explore-save-form");
    save.hidden = false;
    const title = this.$("explore-save-title");
    if (!title.value) {
      const what = data.aggregate === "count" ? "Rows" : data.aggregate === "none" ? data.y : `${data.aggregate} of ${data.y}`;
      title.value = `${what} by ${data.bucket ? `${data.bucket} of ` : ""}${data.x}${data.group_by ? ` per ${data.group_by}` : ""}`;
    }
  }

  async saveChart() {
    const status = this.$("explore-save-status");
    if (!this.lastChart) return;
    try {
      const chart = await this.api.call("POST", "charts", { ...this.lastChart, model: this.model,
        title: this.$("explore-save-title").value });
      status.replaceChildren("Saved: ", el("a", { href: chart.url, "data-share": "" }, chart.title),
        " (share this link).");
      this.loadSaved();
    } catch (err) {
      status.textContent = err.message;
    }
  }

  async loadSaved() {
    const list = this.$("explore-saved");
    let charts;
    try {
      charts = await this.api.all(`charts?model=${encodeURIComponent(this.model)}`);
    } catch (err) {
      list.replaceChildren(el("li", { class: "hint" }, err.message));
      return;
    }
    list.replaceChildren(...(charts.length ? charts.map((c) => el("li", {}, el("a", { href: c.url }, c.title),
      ` · ${c.kind} · ${c.owner || "—"}`)) : [el("li", { class: "hint" }, "No saved charts yet.")]));
  }

  // ---------------------------------------------------------------- build history
  async loadHistory() {
    const status = this.$("explore-history-status");
    let data;
    try {
      data = await this.api.call("GET", `${this.base}/build-history`);
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    if (!data.points.length) {
      status.textContent = "No production build recorded yet.";
      return;
    }
    status.textContent = `The last ${data.points.length} production build${data.points.length === 1 ? "" : "s"}.`;
    this.$("explore-history").hidden = false;
    const labels = data.points.map((p) => p.at.slice(0, 16).replace("T", " "));
    const line = (canvas, label, values, c) => draw(canvas, {
      type: "line",
      data: { labels, datasets: [{ label, data: values, borderColor: c, backgroundColor: c, pointRadius: 2, tension: 0 }] },
      options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, title: { display: true, text: label } } } },
    });
    line(this.$("explore-history-rows"), "rows", data.points.map((p) => p.rows), PALETTE[0]);
    line(this.$("explore-history-seconds"), "build seconds", data.points.map((p) => p.seconds), PALETTE[1]);
  }
}

// ------------------------------------------------------------------ a saved chart's page

async function chartPage(root) {
  const api = makeApi(root.dataset.api);
  const definition = JSON.parse(document.getElementById("explore-chart-definition").textContent);
  const status = document.getElementById("explore-chart-status");
  const del = document.getElementById("explore-chart-delete");
  if (del) {
    del.addEventListener("click", async () => {
      if (!window.confirm("Delete this chart? Its link stops working.")) return;
      try {
        await api.call("DELETE", `charts/${definition.id}`);
        window.location.assign(root.dataset.exploreUrl);
      } catch (err) {
        status.textContent = err.message;
      }
    });
  }
  try {
    const data = await api.call("POST", `models/${encodeURIComponent(definition.model)}/chart-data`, {
      kind: definition.kind, x: definition.x, bucket: definition.bucket || "", y: definition.y, group_by: definition.group_by,
      aggregate: definition.aggregate, filters: definition.filters,
    });
    draw(document.getElementById("explore-chart-canvas"), chartConfig(data));
    status.textContent = chartWords(data);
  } catch (err) {
    status.textContent = "";
    const box = document.getElementById("explore-error");
    box.textContent = err.message;
    box.hidden = false;
  }
}

function boot() {
  const panel = document.getElementById("explore");
  if (panel) new Panel(panel).start();
  const page = document.getElementById("explore-chart-page");
  if (page) chartPage(page);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
else boot();
