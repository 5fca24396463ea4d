// The live run page (templates/runs/detail.html): while the run is not finished, ask
// status.json every 2 s and update the run's badge, counts, progress bar and each node's cells in
// place (rows carry data-node, cells data-field). Text is only ever set as text. Without scripts
// the page is simply as it was when loaded.
(() => {
  const root = document.querySelector(".run-page[data-status-url]");
  if (!root || root.dataset.finished === "true") return;
  const url = root.dataset.statusUrl;
  const EVERY_MS = 2000;

  function badge(element, kind, status, text, title) {
    if (!element) return;
    element.className = `badge badge-${kind}-${status}`;
    element.textContent = text;
    if (title !== undefined) element.title = title;
  }

  function setText(element, text) {
    if (element && element.textContent !== text) element.textContent = text;
  }

  function updateNode(node) {
    const body = root.querySelector(`tbody[data-node="${node.id}"]`);
    if (!body) return;
    body.dataset.status = node.status;
    for (const cell of body.querySelectorAll("[data-field]")) {
      const field = cell.dataset.field;
      if (field === "status") {
        badge(cell, "node", node.status, node.status_label, node.status_title);
      } else {
        setText(cell, node[field] == null ? "" : String(node[field]));
      }
    }
    const message = body.querySelector(".node-message");
    if (message) message.className = `node-message node-message-${node.status}`;
    if (node.error_line) {
      const link = body.querySelector(".node-line");
      const target = `sql-${node.id}-L${node.error_line}`;
      if (link) link.setAttribute("href", `#${target}`);
      const line = document.getElementById(target);
      if (line && !line.classList.contains("sql-error-line")) {
        line.classList.add("sql-error-line");
        const details = line.closest("details");
        if (details) details.open = true;
      }
    }
  }

  function apply(data) {
    if (data.nodes.length && !root.querySelector("tbody[data-node]")) {
      window.location.reload(); // a queued run was planned meanwhile: its table is the server's to draw
      return;
    }
    badge(root.querySelector('[data-run="status"]'), "run", data.status, data.status_label);
    setText(root.querySelector('[data-run="elapsed"]'), data.elapsed);
    setText(root.querySelector('[data-run="elapsed-label"]'), data.finished ? "Took" : "Elapsed");
    setText(root.querySelector('[data-run="message"]'), data.message);
    for (const element of root.querySelectorAll("[data-count]")) {
      setText(element, String(data.counts[element.dataset.count] ?? ""));
    }
    const progress = document.getElementById("run-progress");
    if (progress) {
      progress.max = Math.max(data.counts.total, 1);
      progress.value = data.counts.done;
      progress.textContent = `${data.counts.done} of ${data.counts.total}`;
    }
    for (const node of data.nodes) updateNode(node);
    for (const form of root.querySelectorAll("[data-when]")) {
      form.hidden = !data[form.dataset.when];
    }
    root.dataset.finished = data.finished ? "true" : "false";
  }

  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.ok && (response.headers.get("Content-Type") || "").includes("json")) {
        const data = await response.json();
        apply(data);
        if (data.finished) return;
      } else if (response.status === 404) {
        return;
      }
    } catch {
      // A network hiccup or a restarting server: ask again at the next tick.
    }
    window.setTimeout(poll, EVERY_MS);
  }

  window.setTimeout(poll, EVERY_MS);
})();
