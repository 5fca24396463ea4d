// Bundles the front-end into ../static/ (committed; `npm ci && npm run build` reproduces it byte for
// byte): the analysts' editor (src/main.js -> static/editor/editor.js; CodeMirror injects its own
// styles, the page's layout is in static/css/app.css) and the SLA dashboard's charts (src/sla.js ->
// static/sla/sla.js, Chart.js with only the parts it draws with) and the explore panel's rows, profiles
// and charts (src/explore.js -> static/explore/explore.js).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));

const BUNDLES = [
  { entry: "src/main.js", out: "../static/editor/editor.js" },
  { entry: "src/sla.js", out: "../static/sla/sla.js" },
  { entry: "src/explore.js", out: "../static/explore/explore.js" },
];

for (const { entry, out } of BUNDLES) {
  await build({
    entryPoints: [path.join(here, entry)],
    outfile: path.join(here, out),
    bundle: true,
    minify: true,
    format: "iife",
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    legalComments: "eof",
    sourcemap: false,
    charset: "utf8",
    logLevel: "info",
  });
}
