// The CodeMirror 6 editor: SQL in the warehouse's dialect, Jinja marked, completion of models, sources
// and columns, the checks from POST /api/v1/validate as lint underlines, and the page's shortcuts.

import { EditorView, basicSetup } from "codemirror";
import { EditorState, Prec } from "@codemirror/state";
import { Decoration, MatchDecorator, ViewPlugin, keymap, placeholder } from "@codemirror/view";
import { PostgreSQL, SQLDialect, sql } from "@codemirror/lang-sql";
import { snippetCompletion } from "@codemirror/autocomplete";
import { forceLinting, lintGutter, linter } from "@codemirror/lint";

const DuckDB = SQLDialect.define({
  ...PostgreSQL.spec,
  keywords: `${PostgreSQL.spec.keywords} qualify pivot unpivot asof positional exclude replace columns struct ` +
    "union_by_name describe summarize glob anti semi",
  types: `${PostgreSQL.spec.types} hugeint uhugeint ubigint uinteger usmallint utinyint tinyint blob struct map list uuid`,
});

export function dialectFor(name) {
  return name === "postgresql" ? PostgreSQL : DuckDB;
}

// Jinja: {{ expressions }}, {% statements %} and {# comments #} are marked over the SQL highlighting.
const jinjaMark = Decoration.mark({ class: "cm-jinja" });
const jinjaComment = Decoration.mark({ class: "cm-jinja cm-jinja-comment" });
const jinjaMatcher = new MatchDecorator({
  regexp: /\{\{[^]*?\}\}|\{%[^]*?%\}|\{#[^]*?#\}/g,
  decoration: (match) => (match[0].startsWith("{#") ? jinjaComment : jinjaMark),
});
const jinja = ViewPlugin.fromClass(
  class {
    constructor(view) {
      this.decorations = jinjaMatcher.createDeco(view);
    }
    update(update) {
      this.decorations = jinjaMatcher.updateDeco(update, this.decorations);
    }
  },
  { decorations: (plugin) => plugin.decorations },
);

const theme = EditorView.theme({
  "&": { fontSize: "0.95rem", border: "1px solid var(--line, #d9dee7)", borderRadius: "4px", background: "#fff" },
  "&.cm-focused": { outline: "3px solid #f0b429", outlineOffset: "2px" },
  ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace", minHeight: "16rem" },
  ".cm-content": { minHeight: "16rem" },
  ".cm-jinja": { backgroundColor: "#f1ecff", borderRadius: "2px" },
  ".cm-jinja, .cm-jinja span": { color: "#5b2bb5" },
  ".cm-jinja-comment, .cm-jinja-comment span": { color: "#6b7280", fontStyle: "italic" },
});

const IDENT = /^[\w.]*$/;

// Tables the text refers to: {"orders": "orders", "o": "orders", "raw.customers": ...} (aliases too).
function tablesInScope(text) {
  const found = new Map();
  const refs = /\{\{\s*(ref|source)\(\s*(['"])(\w+)\2\s*(?:,\s*(['"])(\w+)\4\s*)?\)\s*\}\}(?:\s+(?:as\s+)?(\w+))?/gi;
  let m;
  while ((m = refs.exec(text))) {
    const key = m[1].toLowerCase() === "ref" ? m[3] : m[5] ? `${m[3]}.${m[5]}` : null;
    if (!key) continue;
    found.set(key, key);
    const alias = m[6];
    if (alias && !/^(where|join|left|right|inner|outer|full|cross|on|group|order|limit|union|having|using)$/i.test(alias)) {
      found.set(alias, key);
    }
  }
  return found;
}

function columnOptions(node, boost = 0) {
  return (node.columns || []).map((col) => ({
    label: col.name,
    type: "property",
    detail: `${node.label}${col.data_type ? ` · ${col.data_type}` : ""}`,
    info: col.description || undefined,
    boost,
  }));
}

// Completion from the catalog as the change sees it; `catalog()` returns {models: Map, sources: Map}
// of name -> {label, description, columns}.
export function catalogCompletion(catalog) {
  return (context) => {
    const { models, sources } = catalog();
    const line = context.state.doc.lineAt(context.pos);
    const before = line.text.slice(0, context.pos - line.from);
    let m = /\bref\(\s*['"](\w*)$/.exec(before);
    if (m) {
      return {
        from: context.pos - m[1].length,
        validFor: /^\w*$/,
        options: [...models.values()].map((n) => ({ label: n.name, type: "class", detail: n.kind, info: n.description || undefined })),
      };
    }
    m = /\bsource\(\s*['"](\w+)['"]\s*,\s*['"](\w*)$/.exec(before);
    if (m) {
      const tables = [...sources.values()].filter((s) => s.source === m[1]);
      return {
        from: context.pos - m[2].length,
        validFor: /^\w*$/,
        options: tables.map((s) => ({ label: s.table, type: "class", detail: `table of ${s.source}`, info: s.description || undefined })),
      };
    }
    m = /\bsource\(\s*['"](\w*)$/.exec(before);
    if (m) {
      const names = [...new Set([...sources.values()].map((s) => s.source))];
      return { from: context.pos - m[1].length, validFor: /^\w*$/, options: names.map((n) => ({ label: n, type: "namespace", detail: "source" })) };
    }
    const word = context.matchBefore(/[\w.]*/);
    if (!word || (word.from === word.to && !context.explicit)) return null;
    const inScope = tablesInScope(context.state.doc.toString());
    const dot = word.text.lastIndexOf(".");
    if (dot > 0) {
      const table = inScope.get(word.text.slice(0, dot));
      const node = table && (models.get(table) || sources.get(table));
      if (node) return { from: word.from + dot + 1, validFor: /^\w*$/, options: columnOptions(node, 5) };
    }
    const options = [
      snippetCompletion("{{ ref('${model}') }}", { label: "ref", type: "keyword", detail: "use another model", boost: 10 }),
      snippetCompletion("{{ source('${source}', '${table}') }}", { label: "source", type: "keyword", detail: "use a raw table", boost: 10 }),
      snippetCompletion("{{ config(materialized='${table}') }}", { label: "config", type: "keyword", detail: "how the model is kept" }),
    ];
    for (const n of models.values()) {
      options.push({ label: n.name, apply: `{{ ref('${n.name}') }}`, type: "class", detail: `${n.kind} → ref`, info: n.description || undefined });
    }
    for (const s of sources.values()) {
      options.push({ label: s.name, apply: `{{ source('${s.source}', '${s.table}') }}`, type: "class", detail: "source", info: s.description || undefined });
    }
    const seen = new Set();
    for (const table of new Set(inScope.values())) {
      const node = models.get(table) || sources.get(table);
      if (!node) continue;
      for (const option of columnOptions(node, 2)) {
        if (!seen.has(option.label)) {
          seen.add(option.label);
          options.push(option);
        }
      }
    }
    return { from: word.from, validFor: IDENT, options };
  };
}

// The document offset of a 1-based line and column of the analyst's text, clamped into the document.
export function offsetOf(doc, line, column) {
  const target = doc.line(Math.min(Math.max(line || 1, 1), doc.lines));
  return target.from + Math.min(Math.max((column || 1) - 1, 0), target.length);
}

export function spanOf(doc, item) {
  let from = offsetOf(doc, item.line, item.column);
  let to = item.end_line ? offsetOf(doc, item.end_line, item.end_column) : from;
  if (to < from) to = from;
  if (to === from) {
    const line = doc.lineAt(from);
    if (from < line.to) to = from + 1;
    else if (from > line.from) from -= 1;
  }
  return { from, to };
}

// `check(view)` resolves to {diagnostics} from the server (or null when it cannot check); each
// diagnostic becomes an underline with its fixes as buttons.
function lintSource(check) {
  return async (view) => {
    const doc = view.state.doc;
    const result = await check(doc);
    if (!result || view.state.doc !== doc) return [];
    return result.diagnostics.map((d) => {
      const { from, to } = spanOf(doc, d);
      return {
        from,
        to,
        severity: d.severity === "info" ? "info" : d.severity === "warning" ? "warning" : "error",
        source: d.code,
        message: d.message,
        actions: (d.fixes || []).map((fix) => {
          const fixFrom = offsetOf(doc, fix.replace.line, fix.replace.column);
          const fixTo = offsetOf(doc, fix.replace.end_line, fix.replace.end_column);
          return {
            name: fix.label,
            apply(target, currentFrom) {
              const start = fixFrom + (currentFrom - from);
              target.dispatch({ changes: { from: start, to: start + (fixTo - fixFrom), insert: fix.text }, userEvent: "input.fix" });
            },
          };
        }),
      };
    });
  };
}

export function createEditor(parent, { doc, dialect, catalog, check, onChange, onPreview, onSave }) {
  const language = sql({ dialect: dialectFor(dialect), upperCaseKeywords: false });
  const extensions = [
    Prec.highest(keymap.of([
      { key: "Mod-Enter", run: () => (onPreview(), true), preventDefault: true },
      { key: "Mod-s", run: () => (onSave(), true), preventDefault: true },
    ])),
    basicSetup,
    language,
    language.language.data.of({ autocomplete: catalogCompletion(catalog) }),
    jinja,
    linter(lintSource(check), { delay: 300 }),
    lintGutter(),
    placeholder("select … from {{ ref('another_model') }}"),
    theme,
    EditorView.lineWrapping,
    EditorView.contentAttributes.of({ "aria-labelledby": "sql-label", "aria-describedby": "editor-help" }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) onChange();
    }),
  ];
  const view = new EditorView({ parent, state: EditorState.create({ doc, extensions }) });
  return {
    view,
    text: () => view.state.doc.toString(),
    setText(text) {
      view.setState(EditorState.create({ doc: text, extensions }));
    },
    jumpTo(line, column) {
      const pos = offsetOf(view.state.doc, line, column);
      view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
      view.focus();
    },
    replace(from, to, text) {
      view.dispatch({ changes: { from, to, insert: text }, userEvent: "input.fix" });
    },
    relint: () => forceLinting(view),
  };
}
