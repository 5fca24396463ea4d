// The editor page (templates/editor/editor.html): one model at a time, saved into the analyst's change.
// Everything goes through the API; words on the page say "saved" and "version", never git's words.

import { ApiError, makeApi } from "./api.js";
import { DetailsForm } from "./details.js";
import { createEditor, offsetOf } from "./sql.js";

const root = document.getElementById("editor-page");
const data = root.dataset;
const api = makeApi(data.api);
const $ = (id) => document.getElementById(id);
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const POLL_MS = 1000;

const state = {
  change: data.change ? Number(data.change) : null,
  changeInfo: data.change
    ? { id: Number(data.change), title: data.changeTitle, description: data.changeDescription, state: data.changeState }
    : null,
  name: data.model || null,
  exists: false, // the model is in the change (or on main) already
  baseSha: null, // the version the next save is based on
  savedSql: "",
  savedDetails: "",
  nodes: [], // the catalog as the change sees it
  models: new Map(),
  sources: new Map(),
  validation: null,
  validatedDoc: null,
  canCheck: true,
  saving: null,
  loaded: false,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

function messageOf(err) {
  if (err instanceof ApiError) {
    const details = err.error.details;
    if (details && typeof details === "object") {
      const parts = Object.values(details).flat().filter((m) => m !== err.message);
      if (parts.length) return `${err.message} ${parts.join(" ")}`;
    }
    return err.message;
  }
  return String((err && err.message) || err);
}

// A 404 or 405 for the address itself (not for a change or model): the endpoint is not on this portal.
function missingEndpoint(err) {
  return err instanceof ApiError && (err.status === 405 || (err.status === 404 && /address/.test(err.message)));
}

function changeUrl(id) {
  return data.changeUrl.replace(/0\/$/, `${id}/`);
}

function editorUrl(change, name) {
  const params = new URLSearchParams();
  if (change) params.set("change", change);
  if (name) params.set("model", name);
  const query = params.toString();
  return query ? `${data.editorUrl}?${query}` : data.editorUrl;
}

// --------------------------------------------------------------------------- status and dirty state

let statusTimer = null;

function setStatus(text, kind = "") {
  const node = $("save-status");
  node.textContent = text;
  node.className = `save-status ${kind}`;
}

function isDirty() {
  if (!state.loaded) return false;
  return editor.text() !== state.savedSql || details.snapshot() !== state.savedDetails;
}

function refreshDirty() {
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => {
    if (state.saving) return;
    if (isDirty()) setStatus("Unsaved changes", "unsaved");
    else if ($("save-status").classList.contains("unsaved")) setStatus(state.exists ? "Saved" : "");
  }, 50);
}

function markSaved(sql, detailsSnapshot) {
  state.savedSql = sql;
  state.savedDetails = detailsSnapshot;
}

window.addEventListener("beforeunload", (event) => {
  if (isDirty()) {
    event.preventDefault();
    event.returnValue = "";
  }
});

// --------------------------------------------------------------------------- the catalog

function indexCatalog(nodes) {
  state.nodes = nodes;
  state.models = new Map();
  state.sources = new Map();
  for (const node of nodes) {
    if (node.kind === "source") {
      const dot = node.name.indexOf(".");
      const source = node.name.slice(0, dot);
      const table = node.name.slice(dot + 1);
      state.sources.set(node.name, { ...node, label: node.name, source, table });
    } else {
      state.models.set(node.name, { ...node, label: node.name });
    }
  }
}

async function loadCatalog() {
  try {
    const onMain = await api.all("models?kind=all&page_size=200");
    let nodes = onMain;
    if (state.change) {
      const inChange = await api.call("GET", `changes/${state.change}/models`);
      nodes = [...onMain.filter((n) => n.kind !== "model"), ...inChange];
    }
    indexCatalog(nodes);
    renderModelList();
  } catch (err) {
    $("model-list").replaceChildren(el("li", { class: "error", text: `The models could not be listed: ${messageOf(err)}` }));
  }
}

function renderModelList() {
  const filter = $("model-filter").value.trim().toLowerCase();
  const models = [...state.models.values()].filter((n) => n.kind === "model" && n.name.toLowerCase().includes(filter));
  const items = models.map((n) => {
    const link = el("a", { href: editorUrl(state.change, n.name), text: n.name, title: n.description || undefined });
    if (n.name === state.name) link.setAttribute("aria-current", "page");
    return el("li", {}, link);
  });
  if (state.name && !state.models.has(state.name) && state.name.toLowerCase().includes(filter)) {
    items.unshift(el("li", {}, el("a", { href: editorUrl(state.change, state.name), "aria-current": "page", text: `${state.name} (new)` })));
  }
  if (!items.length) items.push(el("li", { class: "hint", text: filter ? "No model matches." : "No models yet." }));
  $("model-list").replaceChildren(...items);
}

function dependentsOf(name) {
  return [...state.models.values()].filter((n) => n.name !== name && (n.depends_on || []).includes(name)).map((n) => n.name);
}

// --------------------------------------------------------------------------- checks as you type

let checkController = null;

async function check(doc) {
  if (!state.canCheck || !state.loaded) return null;
  if (checkController) checkController.abort();
  const controller = new AbortController();
  checkController = controller;
  $("problems-status").textContent = "Checking…";
  try {
    const result = await api.call(
      "POST",
      "validate",
      { sql: doc.toString(), name: state.name || "new_model", change: state.change },
      { signal: controller.signal },
    );
    if (editor.view.state.doc === doc) {
      state.validation = result;
      state.validatedDoc = doc;
      renderProblems();
    }
    return result;
  } catch (err) {
    if (err.name === "AbortError") return null;
    if (missingEndpoint(err)) {
      state.canCheck = false;
      $("problems-status").textContent = "Checking as you type is not available on this portal yet.";
    } else {
      $("problems-status").textContent = `The SQL could not be checked just now: ${messageOf(err)}`;
    }
    return null;
  } finally {
    if (checkController === controller) checkController = null;
  }
}

function countBySeverity(diagnostics) {
  const count = { error: 0, warning: 0, info: 0 };
  for (const d of diagnostics) count[d.severity] = (count[d.severity] || 0) + 1;
  return count;
}

function renderProblems() {
  const result = state.validation;
  const list = $("problems-list");
  if (!result) {
    list.replaceChildren();
    return;
  }
  list.classList.remove("stale");
  const diagnostics = result.diagnostics || [];
  const count = countBySeverity(diagnostics);
  const parts = [];
  if (count.error) parts.push(plural(count.error, "error"));
  if (count.warning) parts.push(plural(count.warning, "warning"));
  if (count.info) parts.push(plural(count.info, "note"));
  $("problems-count").textContent = parts.length ? `(${parts.join(", ")})` : "";
  $("problems-status").textContent = diagnostics.length
    ? `Checked in ${Math.round(result.elapsed_ms || 0)} ms.`
    : `No problems found (checked in ${Math.round(result.elapsed_ms || 0)} ms).`;
  const label = { error: "Error", warning: "Warning", info: "Note" };
  list.replaceChildren(
    ...diagnostics.map((d) => {
      const where = el("button", {
        type: "button",
        class: "link-button problem-where",
        text: `Line ${d.line}, column ${d.column}`,
        "aria-label": `Go to line ${d.line}, column ${d.column}`,
      });
      where.addEventListener("click", () => editor.jumpTo(d.line, d.column));
      const fixes = (d.fixes || []).map((fix) => {
        const button = el("button", { type: "button", class: "secondary-button fix-button", text: fix.label });
        button.addEventListener("click", () => applyFix(fix));
        return button;
      });
      return el(
        "li",
        { class: `problem problem-${d.severity}` },
        el("span", { class: `severity severity-${d.severity}`, text: label[d.severity] || d.severity }),
        " ",
        where,
        el("span", { class: "problem-message", text: d.message }),
        fixes.length ? el("span", { class: "fixes" }, ...fixes) : null,
      );
    }),
  );
}

function applyFix(fix) {
  const doc = editor.view.state.doc;
  if (doc !== state.validatedDoc) {
    editor.relint(); // the text moved on since the check: check again, the fix will be offered anew
    return;
  }
  const from = offsetOf(doc, fix.replace.line, fix.replace.column);
  const to = offsetOf(doc, fix.replace.end_line, fix.replace.end_column);
  editor.replace(from, Math.max(from, to), fix.text);
  editor.view.focus();
}

// --------------------------------------------------------------------------- loading a model

async function loadModel() {
  let sql = "";
  let properties = {};
  state.exists = false;
  state.baseSha = null;
  if (state.name) {
    try {
      const path = state.change ? `changes/${state.change}/models/${state.name}` : `models/${state.name}`;
      const model = await api.call("GET", path);
      sql = model.sql;
      properties = model.properties || {};
      state.exists = true;
      state.baseSha = state.change ? model.commit : null;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        setStatus(`The model could not be loaded: ${messageOf(err)}`, "failed");
        return false;
      }
      setStatus("A new model: write its SQL, then save.");
    }
  }
  editor.setText(sql);
  details.load(properties);
  markSaved(sql, details.snapshot());
  state.loaded = true;
  editor.relint();
  return true;
}

function showModel() {
  $("editor-heading").textContent = state.name || "Editor";
  document.title = `${state.name || "Editor"} · Editor · Data models`;
  const history = $("history-link");
  history.hidden = !state.exists;
  if (state.exists) history.href = data.historyUrl.replace("__name__", encodeURIComponent(state.name));
  $("editor-body").hidden = !state.name;
  $("empty-state").hidden = Boolean(state.name);
  renderModelList();
}

function showChange() {
  const node = $("editor-change");
  if (!state.change) return;
  const info = state.changeInfo || { title: `Change ${state.change}` };
  node.replaceChildren("In the change ", el("a", { href: changeUrl(state.change), text: info.title }), info.state_label ? ` (${info.state_label.toLowerCase()})` : "");
  $("models-scope").textContent = `As the change “${info.title}” sees them.`;
}

// --------------------------------------------------------------------------- saving

async function ensureChange() {
  if (state.change) return;
  const change = await api.call("POST", "changes", { title: `Edit ${state.name}`, description: "" });
  state.change = change.id;
  state.changeInfo = change;
  state.baseSha = null; // a new change: nobody has saved in it yet
  history.replaceState(null, "", editorUrl(state.change, state.name));
  showChange();
}

async function refreshChange() {
  if (!state.change) return;
  try {
    state.changeInfo = await api.call("GET", `changes/${state.change}`);
    showChange();
  } catch {
    // the change's title is only shown; the page works without it
  }
}

function save() {
  if (!state.saving) state.saving = doSave().finally(() => (state.saving = null));
  return state.saving;
}

async function doSave() {
  if (!state.name) return false;
  const sql = editor.text();
  const form = details.value();
  const snapshot = JSON.stringify(form);
  setStatus("Saving…", "saving");
  try {
    await ensureChange();
    const result = await api.call("PUT", `changes/${state.change}/models/${state.name}`, {
      sql,
      ...form,
      base_sha: state.baseSha,
    });
    state.baseSha = result.sha;
    state.exists = true;
    markSaved(sql, snapshot);
    $("conflict-panel").hidden = true;
    const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    setStatus(result.changed ? `Saved at ${time}.` : "Saved: nothing had changed.", isDirty() ? "unsaved" : "saved");
    showModel();
    loadCatalog();
    refreshChange();
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && err.code === "conflict") {
      showConflict(err.error, sql);
      setStatus("Not saved: someone else saved this model meanwhile.", "failed");
    } else {
      setStatus(`Not saved: ${messageOf(err)}`, "failed");
    }
    return false;
  }
}

function showConflict(error, mine) {
  const current = error.current || null;
  state.conflict = { sha: error.current_sha || null, current };
  $("conflict-theirs").textContent = current ? current.sql : "(In their version the model is deleted.)";
  $("conflict-mine").textContent = mine;
  $("conflict-take-theirs").hidden = !current;
  $("conflict-panel").hidden = false;
  $("conflict-panel").scrollIntoView({ block: "nearest" });
}

$("conflict-keep-mine").addEventListener("click", async () => {
  state.baseSha = state.conflict.sha;
  await save();
});

$("conflict-take-theirs").addEventListener("click", () => {
  const { current, sha } = state.conflict;
  $("conflict-mine").textContent = editor.text();
  $("conflict-panel").querySelector("h2").textContent = "Their version is loaded; your text is kept here to copy from";
  editor.setText(current.sql);
  details.load(current.properties || {});
  state.baseSha = sha;
  markSaved(current.sql, details.snapshot());
  setStatus("Their version is loaded.", "saved");
  editor.relint();
});

// --------------------------------------------------------------------------- preview

let previewing = false;

async function preview() {
  if (previewing || !state.name) return;
  previewing = true;
  const status = $("preview-status");
  status.className = "hint";
  status.textContent = "Running the preview…";
  $("preview-button").disabled = true;
  try {
    state.lastPreview = null;
    const result = await api.call("POST", "preview", { sql: editor.text(), name: state.name, change: state.change, limit: 100 });
    renderGrid(result);
  } catch (err) {
    $("preview-grid").replaceChildren();
    status.className = "error";
    if (missingEndpoint(err)) {
      status.textContent = "Preview is not available on this portal yet.";
    } else if (err instanceof ApiError && err.error.line) {
      const { line, column } = err.error;
      status.textContent = `Line ${line}${column ? `, column ${column}` : ""}: ${err.message} `;
      const jump = el("button", { type: "button", class: "link-button", text: "Go to the line" });
      jump.addEventListener("click", () => editor.jumpTo(line, column || 1));
      status.append(jump);
    } else {
      status.textContent = err.code === "timeout" ? `The preview took too long: ${err.message}` : `The preview failed: ${messageOf(err)}`;
    }
  } finally {
    previewing = false;
    $("preview-button").disabled = false;
  }
}

function cell(value) {
  if (value === null || value === undefined) return el("td", { class: "null", text: "null" });
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  return el("td", { class: typeof value === "number" ? "num" : undefined, text });
}

function renderGrid(result) {
  state.lastPreview = result;
  const columns = result.columns || [];
  const head = el(
    "tr",
    {},
    ...columns.map((c) => el("th", { scope: "col" }, el("span", { class: "col-name", text: c.name }), el("span", { class: "col-type", text: c.type || "" }))),
  );
  const body = (result.rows || []).map((row) => el("tr", {}, ...row.map(cell)));
  const count = result.row_count ?? body.length;
  const summary = result.truncated
    ? `The first ${plural(count, "row")} (there are more)`
    : plural(count, "row");
  const elapsed = `${Math.round(result.elapsed_ms || 0)} ms`;
  $("preview-status").className = "hint";
  $("preview-status").textContent = `${summary}, in ${elapsed}.`;
  $("preview-grid").replaceChildren(
    el("table", { class: "grid" }, el("caption", { class: "visually-hidden", text: `Preview: ${summary}` }), el("thead", {}, head), el("tbody", {}, ...body)),
  );
}

// --------------------------------------------------------------------------- test my model

let testing = false;

async function testModel() {
  if (testing || !state.name) return;
  const status = $("tests-status");
  if (isDirty() || !state.exists) {
    if (!(await save())) {
      status.textContent = "Save the model first: the test builds what is saved.";
      return;
    }
  }
  testing = true;
  $("test-button").disabled = true;
  status.className = "hint";
  status.textContent = "Queued…";
  $("tests-steps").replaceChildren();
  try {
    let run = await api.call("POST", `changes/${state.change}/models/${state.name}/test`);
    while (!["passed", "failed", "error"].includes(run.status)) {
      status.textContent = run.status === "running" ? "Building and testing…" : "Waiting for a worker…";
      renderSteps(run.steps || []);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      run = await api.call("GET", `test-runs/${run.id}`);
    }
    renderSteps(run.steps || []);
    const words = { passed: "Every test passed.", failed: "Some tests failed.", error: "The model could not be built." };
    status.className = run.status === "passed" ? "success-text" : "error";
    status.textContent = `${words[run.status]}${run.message ? ` ${run.message}` : ""}`;
  } catch (err) {
    status.className = "error";
    status.textContent = missingEndpoint(err)
      ? "Testing is not available on this portal yet."
      : `The test could not run: ${messageOf(err)}`;
  } finally {
    testing = false;
    $("test-button").disabled = false;
  }
}

function renderSteps(steps) {
  const words = { pending: "waiting", success: "built", pass: "passed", warn: "warning", fail: "failed", error: "error", skipped: "skipped" };
  $("tests-steps").replaceChildren(
    ...steps.map((step) => {
      const facts = [];
      if (step.seconds !== null && step.seconds !== undefined) facts.push(`${step.seconds.toFixed(2)} s`);
      if (step.rows !== null && step.rows !== undefined) facts.push(step.kind === "test" ? plural(step.rows, "failing row") : plural(step.rows, "row"));
      const item = el(
        "li",
        { class: `step step-${step.status}` },
        el("span", { class: `badge step-badge step-${step.status}`, text: words[step.status] || step.status }),
        " ",
        el("strong", { text: step.name }),
        facts.length ? el("span", { class: "hint", text: ` · ${facts.join(" · ")}` }) : null,
        step.message ? el("p", { class: "step-message", text: step.message }) : null,
      );
      if (step.failing_rows && step.failing_rows.length) {
        const cols = step.failing_columns || [];
        item.append(
          el(
            "div",
            { class: "table-wrap" },
            el(
              "table",
              { class: "grid" },
              el("caption", { text: "Some of the failing rows" }),
              cols.length ? el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { scope: "col", text: c })))) : null,
              el("tbody", {}, ...step.failing_rows.map((row) => el("tr", {}, ...row.map(cell)))),
            ),
          ),
        );
      }
      return item;
    }),
  );
}

// --------------------------------------------------------------------------- dialogs: name, delete, submit

function openDialog(dialog) {
  dialog.querySelectorAll("[data-close]").forEach((b) => (b.onclick = () => dialog.close("cancel")));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

async function askName({ heading, button, value = "", renaming = false }) {
  const dialog = $("name-dialog");
  $("name-dialog-heading").textContent = heading;
  $("name-ok").textContent = button;
  const input = $("name-input");
  input.value = value;
  $("name-error").textContent = "";
  const dependents = renaming ? dependentsOf(state.name) : [];
  $("name-dependents").hidden = !dependents.length;
  $("name-dependents").textContent = dependents.length
    ? `These models use ${state.name} and will break until they use the new name: ${dependents.join(", ")}.`
    : "";
  $("name-form").onsubmit = (event) => {
    const name = input.value.trim();
    let problem = "";
    if (!NAME.test(name)) problem = "Use letters, digits and underscores, starting with a letter.";
    else if (name !== state.name && state.models.has(name)) problem = `There is already a model called ${name}.`;
    else if (renaming && name === state.name) problem = "That is its name already.";
    if (problem) {
      event.preventDefault();
      $("name-error").textContent = problem;
      input.focus();
    }
  };
  const ok = await openDialog(dialog);
  return ok ? input.value.trim() : null;
}

$("new-model-button").addEventListener("click", async () => {
  const name = await askName({ heading: "New model", button: "Create" });
  if (name) window.location.assign(editorUrl(state.change, name));
});

$("rename-button").addEventListener("click", async () => {
  if (!state.name) return;
  const name = await askName({ heading: `Rename ${state.name}`, button: "Rename", value: state.name, renaming: true });
  if (!name) return;
  if (!state.exists) {
    state.name = name;
    history.replaceState(null, "", editorUrl(state.change, name));
    showModel();
    return;
  }
  setStatus("Renaming…", "saving");
  try {
    await ensureChange();
    const result = await api.call("POST", `changes/${state.change}/models/${state.name}/rename`, {
      new_name: name,
      base_sha: state.baseSha,
    });
    state.baseSha = result.sha;
    state.name = name;
    history.replaceState(null, "", editorUrl(state.change, name));
    const broken = result.dependents || [];
    setStatus(broken.length ? `Renamed. Change these models to use the new name: ${broken.join(", ")}.` : "Renamed.", "saved");
    showModel();
    loadCatalog();
  } catch (err) {
    setStatus(`Not renamed: ${messageOf(err)}`, "failed");
  }
});

$("delete-button").addEventListener("click", async () => {
  if (!state.name) return;
  const dependents = dependentsOf(state.name);
  $("delete-text").textContent = state.exists
    ? `${state.name} is removed in your change; it stays live until the change is approved.`
    : `${state.name} has not been saved; its text is thrown away.`;
  $("delete-dependents").hidden = !dependents.length;
  $("delete-dependents").textContent = dependents.length
    ? `These models use ${state.name} and will break: ${dependents.join(", ")}.`
    : "";
  $("delete-error").textContent = "";
  if (!(await openDialog($("delete-dialog")))) return;
  try {
    if (state.exists) {
      await ensureChange();
      await api.call("DELETE", `changes/${state.change}/models/${state.name}`, { base_sha: state.baseSha });
    }
    state.loaded = false; // nothing left to warn about
    window.location.assign(editorUrl(state.change, null));
  } catch (err) {
    setStatus(`Not deleted: ${messageOf(err)}`, "failed");
  }
});

async function validateNow() {
  if (!state.canCheck) return null;
  try {
    return await api.call("POST", "validate", { sql: editor.text(), name: state.name, change: state.change });
  } catch {
    return null;
  }
}

$("submit-button").addEventListener("click", async () => {
  if (!state.name) return;
  const problems = $("submit-problems");
  problems.replaceChildren();
  $("submit-ok").disabled = true;
  const info = state.changeInfo || {};
  $("submit-title").value = info.title || `Edit ${state.name}`;
  $("submit-description").value = info.description || "";
  const opened = openDialog($("submit-dialog"));
  problems.append(el("p", { class: "hint", text: "Saving and checking…" }));
  if ((isDirty() || !state.exists) && !(await save())) {
    problems.replaceChildren(el("p", { class: "error", text: `Save the model first. ${$("save-status").textContent}` }));
    return;
  }
  const result = await validateNow();
  const diagnostics = (result && result.diagnostics) || [];
  const errors = diagnostics.filter((d) => d.severity === "error");
  const warnings = diagnostics.filter((d) => d.severity === "warning");
  const list = (items) => el("ul", {}, ...items.map((d) => el("li", { text: `Line ${d.line}: ${d.message}` })));
  problems.replaceChildren();
  if (errors.length) {
    problems.append(el("p", { class: "error", text: `Fix ${plural(errors.length, "error")} before submitting:` }), list(errors));
  } else {
    if (warnings.length) problems.append(el("p", { class: "notice", text: `${plural(warnings.length, "warning")}: you can still submit.` }), list(warnings));
    if (!result && state.canCheck) problems.append(el("p", { class: "hint", text: "The SQL could not be checked just now." }));
    $("submit-ok").disabled = false;
  }
  if (!(await opened)) return;
  await submit($("submit-title").value.trim(), $("submit-description").value);
});

async function submit(title, description) {
  setStatus("Submitting…", "saving");
  const info = state.changeInfo || {};
  let note = "";
  if ((title && title !== info.title) || description !== (info.description || "")) {
    try {
      state.changeInfo = await api.call("PATCH", `changes/${state.change}`, { title, description });
    } catch (err) {
      note = err instanceof ApiError && err.status === 405 ? " (its title and description could not be changed here)" : ` (${messageOf(err)})`;
    }
  }
  try {
    state.changeInfo = await api.call("POST", `changes/${state.change}/submit`);
    showChange();
    setStatus(`Submitted for review${note}. A reviewer will look at it.`, "saved");
  } catch (err) {
    setStatus(`Not submitted: ${messageOf(err)}`, "failed");
  }
}

// --------------------------------------------------------------------------- wiring

const editor = createEditor($("sql-editor"), {
  doc: "",
  dialect: data.dialect,
  catalog: () => ({ models: state.models, sources: state.sources }),
  check,
  onChange: () => {
    $("problems-list").classList.add("stale"); // until the check of the new text is back
    refreshDirty();
  },
  onPreview: preview,
  onSave: save,
});
$("sql-editor").editorView = editor.view; // for tests and scripts driving the page
const details = new DetailsForm($("details-form"), {
  onChange: refreshDirty,
  modelNames: () => [...state.models.keys()],
});

$("preview-button").addEventListener("click", preview);
$("save-button").addEventListener("click", save);
$("test-button").addEventListener("click", testModel);
$("model-filter").addEventListener("input", renderModelList);
$("suggest-button").addEventListener("click", async () => {
  const status = $("suggest-status");
  if (!state.lastPreview) {
    status.textContent = "Running the preview to look at the rows…";
    await preview();
  }
  const result = state.lastPreview;
  const columns = result ? result.columns : (state.validation && state.validation.columns) || [];
  if (!columns.length) {
    status.textContent = "No columns to suggest yet: the query must preview (or check) without errors first.";
    return;
  }
  const { added, proposed } = details.suggest(columns, result ? result.rows : null);
  const sample = result ? `from ${result.truncated ? `the first ${plural(result.row_count, "row")}` : `all ${plural(result.row_count, "row")}`} of the preview` : "";
  status.textContent = `${plural(added, "column")} added${proposed ? `, tests proposed for ${plural(proposed, "column")} ${sample}` : ""}. Check them before saving.`;
  refreshDirty();
});

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || !(event.ctrlKey || event.metaKey) || !state.name) return;
  if (event.key === "s" || event.key === "S") {
    event.preventDefault();
    save();
  } else if (event.key === "Enter") {
    event.preventDefault();
    preview();
  }
});

async function start() {
  $("editor-body").hidden = false;
  showChange();
  const catalog = loadCatalog();
  if (state.name) await loadModel();
  showModel();
  await catalog;
  refreshChange();
  root.dataset.ready = "true";
}

start();
