// The SLA dashboard's charts (templates/sla/dashboard.html), drawn with Chart.js from the figures the
// page carries in <script type="application/json" id="sla-data"> (Django's json_script: no inline
// script). Two charts: the share on time per week for each promise with its target as a dashed line,
// and met / met late / breached per week. The tables under them say the same, so without scripts the
// page only lacks the pictures; the charts' box stays hidden until they are drawn.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, Legend, LinearScale, LineController, LineElement,
  PointElement, Tooltip);

const COLORS = { review: "#2251c7", incident: "#8a3ffc", run: "#0f7b6c" };
const OUTCOMES = [
  { key: "met", label: "met", color: [26, 127, 55] },
  { key: "met_late", label: "met late", color: [214, 152, 14] },
  { key: "breached", label: "breached", color: [180, 35, 24] },
];
// Reviews darkest, runs lightest: the same outcome keeps its colour in each group of bars.
const SHADE = { review: 1, incident: 0.72, run: 0.45 };

function rgba([r, g, b], alpha) {
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

function percent(value) {
  return value === null || value === undefined ? "—" : `${value} %`;
}

function attainmentChart(canvas, data) {
  const datasets = [];
  for (const s of data.series) {
    datasets.push({
      label: s.label,
      data: s.attainment,
      borderColor: COLORS[s.key],
      backgroundColor: COLORS[s.key],
      borderWidth: 2,
      pointRadius: 4,
      spanGaps: false, // a week with nothing due is a gap, not a slope between its neighbours
      tension: 0,
    });
    datasets.push({
      label: `${s.label} target (${s.target} %)`,
      data: data.weeks.map(() => s.target),
      borderColor: COLORS[s.key],
      backgroundColor: "transparent",
      borderDash: [6, 4],
      borderWidth: 1.5,
      pointRadius: 0,
      pointHitRadius: 0,
    });
  }
  return new Chart(canvas, {
    type: "line",
    data: { labels: data.weeks, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        y: { min: 0, max: 100, ticks: { callback: (v) => `${v} %` }, title: { display: true, text: "on time" } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 14 } },
        tooltip: { callbacks: { label: (ctx) => `${ctx.dataset.label}: ${percent(ctx.raw)}` } },
      },
    },
  });
}

function outcomesChart(canvas, data) {
  const datasets = [];
  for (const s of data.series) {
    for (const o of OUTCOMES) {
      datasets.push({
        label: `${s.label}: ${o.label}`,
        data: s[o.key],
        stack: s.key,
        yAxisID: s.key === "run" ? "runs" : "y",
        backgroundColor: rgba(o.color, SHADE[s.key]),
        borderColor: rgba(o.color, 1),
        borderWidth: 1,
      });
    }
  }
  return new Chart(canvas, {
    type: "bar",
    data: { labels: data.weeks, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { stacked: true },
        y: { stacked: true, beginAtZero: true, ticks: { precision: 0 },
          title: { display: true, text: "reviews, incidents" } },
        runs: { stacked: true, beginAtZero: true, position: "right", ticks: { precision: 0 },
          grid: { drawOnChartArea: false }, title: { display: true, text: "run slots" } },
      },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 14 } },
      },
    },
  });
}

function draw() {
  const source = document.getElementById("sla-data");
  const box = document.querySelector(".sla-charts");
  window.dmaasCharts = [];
  if (!source || !box) return;
  let data;
  try {
    data = JSON.parse(source.textContent);
  } catch {
    return; // the tables still say everything
  }
  if (!data || !Array.isArray(data.weeks) || !data.weeks.length) return;
  box.hidden = false;
  const line = document.getElementById("sla-attainment-chart");
  const bars = document.getElementById("sla-outcomes-chart");
  if (line) window.dmaasCharts.push(attainmentChart(line, data));
  if (bars) window.dmaasCharts.push(outcomesChart(bars, data));
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", draw);
} else {
  draw();
}
