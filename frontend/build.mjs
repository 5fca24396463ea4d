// Bundles the editor into ../static/editor/editor.js (committed; `npm ci && npm run build` reproduces it
// byte for byte). CodeMirror injects its own styles; the page's layout is in static/css/app.css.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));

await build({
  entryPoints: [path.join(here, "src/main.js")],
  outfile: path.join(here, "../static/editor/editor.js"),
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  legalComments: "eof",
  sourcemap: false,
  charset: "utf8",
  logLevel: "info",
});
