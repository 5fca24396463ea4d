// The model's details as a form: description, columns with their tests, how the model is kept, tags and
// owner. It reads the model's properties (its yml entry) and gives back the save body's fields, so the
// analyst never sees YAML. Tests the form does not know are kept as they are.

const KNOWN = ["unique", "not_null", "accepted_values", "relationships"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function testName(test) {
  if (typeof test === "string") return test;
  if (test && typeof test === "object" && Object.keys(test).length === 1) return Object.keys(test)[0];
  return null;
}

// The arguments of a test written as {name: {...}} or, as dbt 1.10 writes them, {name: {arguments: {...}}}.
function argsOf(test) {
  const name = testName(test);
  const body = typeof test === "object" && test[name] && typeof test[name] === "object" ? test[name] : {};
  return body.arguments && typeof body.arguments === "object" ? body.arguments : body;
}

function withArgs(original, name, args) {
  if (!original || typeof original !== "object") return { [name]: args };
  const copy = structuredClone(original);
  const body = copy[name] && typeof copy[name] === "object" ? copy[name] : (copy[name] = {});
  const target = body.arguments && typeof body.arguments === "object" ? body.arguments : body;
  Object.assign(target, args);
  return copy;
}

function refName(to) {
  const m = /ref\(\s*['"](\w+)['"]\s*\)/.exec(String(to || ""));
  return m ? m[1] : String(to || "");
}

function splitList(text) {
  return String(text || "")
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean);
}

let counter = 0;

export class DetailsForm {
  constructor(root, { onChange, modelNames }) {
    this.root = root;
    this.onChange = onChange;
    this.modelNames = modelNames;
    this.list = root.querySelector("#columns-list");
    this.description = root.querySelector("#detail-description");
    this.materialized = root.querySelector("#detail-materialized");
    this.uniqueKey = root.querySelector("#detail-unique-key");
    this.uniqueKeyRow = root.querySelector("#unique-key-row");
    this.owner = root.querySelector("#detail-owner");
    this.tags = root.querySelector("#detail-tags");
    this.rows = [];
    this.properties = {};
    root.addEventListener("input", () => this.onChange());
    root.addEventListener("change", () => this.onChange());
    this.materialized.addEventListener("change", () => this.showUniqueKey());
    root.querySelector("#add-column").addEventListener("click", () => {
      const row = this.addColumn({ name: "" });
      row.name.focus();
      this.onChange();
    });
  }

  showUniqueKey() {
    this.uniqueKeyRow.hidden = this.materialized.value !== "incremental";
  }

  load(properties) {
    const props = properties || {};
    this.properties = props;
    const config = props.config || {};
    const meta = config.meta || props.meta || {};
    this.description.value = props.description || "";
    const materialized = config.materialized || "";
    if (materialized && ![...this.materialized.options].some((o) => o.value === materialized)) {
      this.materialized.append(el("option", { value: materialized, text: materialized }));
    }
    this.materialized.value = materialized;
    const key = config.unique_key;
    this.uniqueKey.value = Array.isArray(key) ? key.join(", ") : key || "";
    this.owner.value = meta.owner || "";
    const tags = config.tags || props.tags || [];
    this.tags.value = (Array.isArray(tags) ? tags : [tags]).join(", ");
    this.showUniqueKey();
    this.list.replaceChildren();
    this.rows = [];
    for (const column of props.columns || []) this.addColumn(column);
  }

  columnNames() {
    return this.rows.map((row) => row.name.value.trim()).filter(Boolean);
  }

  addColumn(column) {
    const index = ++counter;
    const tests = column.data_tests || column.tests || [];
    const found = {};
    const other = [];
    for (const test of tests) {
      const name = testName(test);
      if (KNOWN.includes(name) && !(name in found)) found[name] = test;
      else other.push(test);
    }
    const id = (part) => `col${index}-${part}`;
    const field = (part, labelText, input, hint) =>
      el("p", { class: `column-field column-${part}` }, el("label", { for: id(part), text: labelText }), input, hint);
    const name = el("input", { type: "text", id: id("name"), value: column.name || "", autocomplete: "off" });
    const description = el("input", { type: "text", id: id("description"), value: column.description || "" });
    const check = (part, labelText, checked) => {
      const box = el("input", { type: "checkbox", id: id(part) });
      box.checked = Boolean(checked);
      return { box, wrap: el("span", { class: "check" }, box, el("label", { for: id(part), text: labelText })) };
    };
    const unique = check("unique", "Unique", found.unique);
    const notNull = check("not-null", "Never empty", found.not_null);
    const accepted = check("accepted", "Only these values", found.accepted_values);
    const values = el("input", {
      type: "text",
      id: id("values"),
      value: found.accepted_values ? (argsOf(found.accepted_values).values || []).join(", ") : "",
      "aria-label": "Allowed values, separated by commas",
      placeholder: "placed, shipped, returned",
    });
    const related = check("related", "Refers to", found.relationships);
    const relArgs = found.relationships ? argsOf(found.relationships) : {};
    const listId = "model-names-list";
    const toModel = el("input", {
      type: "text", id: id("to"), value: refName(relArgs.to), list: listId, "aria-label": "Model it refers to",
      placeholder: "model",
    });
    const toField = el("input", {
      type: "text", id: id("field"), value: relArgs.field || "", "aria-label": "Column in that model", placeholder: "column",
    });
    const valuesWrap = el("span", { class: "test-args" }, values);
    const relWrap = el("span", { class: "test-args" }, toModel, el("span", { "aria-hidden": "true", text: "." }), toField);
    const sync = () => {
      valuesWrap.hidden = !accepted.box.checked;
      relWrap.hidden = !related.box.checked;
    };
    accepted.box.addEventListener("change", sync);
    related.box.addEventListener("change", sync);
    sync();
    const remove = el("button", { type: "button", class: "link-button", text: "Remove" });
    const legend = el("legend", { text: `Column ${this.rows.length + 1}` });
    const kept = other.length
      ? el("p", { class: "hint", text: `Also tested: ${other.map((t) => testName(t) || "a custom test").join(", ")} (kept as is).` })
      : null;
    const fieldset = el(
      "fieldset",
      { class: "column" },
      legend,
      field("name", "Name", name),
      field("description", "Description", description),
      el(
        "div",
        { class: "column-tests", role: "group", "aria-label": "Tests" },
        unique.wrap,
        notNull.wrap,
        el("span", { class: "test-with-args" }, accepted.wrap, valuesWrap),
        el("span", { class: "test-with-args" }, related.wrap, relWrap),
      ),
      kept,
      remove,
    );
    const row = { fieldset, legend, name, description, unique, notNull, accepted, values, related, toModel, toField, found, other, column };
    remove.setAttribute("aria-label", `Remove column ${this.rows.length + 1}`);
    remove.addEventListener("click", () => {
      this.rows = this.rows.filter((r) => r !== row);
      fieldset.remove();
      this.renumber();
      this.onChange();
    });
    this.rows.push(row);
    this.list.append(fieldset);
    this.ensureModelList();
    return row;
  }

  // Columns from the query (with their types) and tests from a sample of its rows: values always
  // present -> never empty; always distinct (and not a measure or a date) -> unique; a few text values
  // repeated -> only these values.
  // Only columns without any test get proposals, so nothing the analyst chose is undone.
  suggest(columns, rows) {
    const byName = new Map(this.rows.map((row) => [row.name.value.trim(), row]));
    let added = 0;
    let proposed = 0;
    columns.forEach((column, i) => {
      let row = byName.get(column.name);
      if (!row) {
        row = this.addColumn({ name: column.name, data_type: column.type || undefined });
        added += 1;
      }
      const untested = ![row.unique, row.notNull, row.accepted, row.related].some((t) => t.box.checked) && !row.other.length;
      if (!rows || !rows.length || !untested) return;
      const values = rows.map((r) => r[i]);
      const present = values.filter((v) => v !== null && v !== undefined);
      const distinct = new Set(present.map((v) => JSON.stringify(v)));
      if (present.length === values.length) row.notNull.box.checked = true;
      const measure = /decimal|numeric|double|float|real|date|time/i.test(column.type || "");
      if (!measure && present.length === values.length && distinct.size === values.length && values.length > 1) {
        row.unique.box.checked = true;
      }
      else if (distinct.size > 0 && distinct.size <= 6 && present.length >= 2 * distinct.size && present.every((v) => typeof v === "string")) {
        row.accepted.box.checked = true;
        row.values.value = [...distinct].map((v) => JSON.parse(v)).sort().join(", ");
        row.accepted.box.dispatchEvent(new Event("change"));
      }
      proposed += 1;
    });
    return { added, proposed };
  }

  renumber() {
    this.rows.forEach((row, i) => {
      row.legend.textContent = `Column ${i + 1}`;
    });
  }

  ensureModelList() {
    let list = document.getElementById("model-names-list");
    if (!list) {
      list = el("datalist", { id: "model-names-list" });
      this.root.append(list);
    }
    list.replaceChildren(...this.modelNames().map((name) => el("option", { value: name })));
  }

  columnTests(row) {
    const tests = [];
    if (row.unique.box.checked) tests.push(row.found.unique || "unique");
    if (row.notNull.box.checked) tests.push(row.found.not_null || "not_null");
    if (row.accepted.box.checked) {
      const before = row.found.accepted_values ? argsOf(row.found.accepted_values).values || [] : [];
      const numeric = before.length > 0 && before.every((v) => typeof v === "number");
      const values = splitList(row.values.value).map((v) => (numeric && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v));
      if (values.length) tests.push(withArgs(row.found.accepted_values, "accepted_values", { values }));
    }
    if (row.related.box.checked && row.toModel.value.trim() && row.toField.value.trim()) {
      tests.push(withArgs(row.found.relationships, "relationships", {
        to: `ref('${row.toModel.value.trim()}')`,
        field: row.toField.value.trim(),
      }));
    }
    return [...tests, ...row.other];
  }

  // The save body's description, columns, data_tests and config.
  value() {
    const props = this.properties || {};
    const config = {};
    const oldConfig = props.config || {};
    if (this.materialized.value) config.materialized = this.materialized.value;
    if (this.materialized.value === "incremental" && this.uniqueKey.value.trim()) {
      const keys = splitList(this.uniqueKey.value);
      config.unique_key = keys.length === 1 ? keys[0] : keys;
    }
    const tags = splitList(this.tags.value);
    if (tags.length || oldConfig.tags) config.tags = tags;
    const owner = this.owner.value.trim();
    if (owner || (oldConfig.meta && oldConfig.meta.owner)) config.meta = { ...(oldConfig.meta || {}), owner };
    return {
      description: this.description.value,
      columns: this.rows
        .filter((row) => row.name.value.trim())
        .map((row) => {
          const column = { name: row.name.value.trim(), description: row.description.value, data_tests: this.columnTests(row) };
          if (row.column.data_type) column.data_type = row.column.data_type;
          return column;
        }),
      data_tests: props.data_tests || props.tests || [],
      config,
    };
  }

  snapshot() {
    return JSON.stringify(this.value());
  }
}
