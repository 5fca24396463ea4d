// The lineage page: draws each <figure class="lineage-graph" data-src="..."> as a layered graph in SVG.
// Layers are columns (upstream to the left, downstream to the right), nodes are boxes that link to
// their own lineage, edges are curves from a parent's right side to its child's left side. The JSON
// is the API's (GET /api/v1/catalog/<name>/lineage): {nodes: [{name|id, layer, kind, ...}], edges:
// [{from, to}]}. Without JS, or when the request fails, the list inside the figure stays.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var BOX_W = 190, BOX_H = 44, GAP_X = 70, GAP_Y = 14, PAD = 12, MAX_LABEL = 26;

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function short(text) {
    text = String(text || "");
    return text.length > MAX_LABEL ? text.slice(0, MAX_LABEL - 1) + "…" : text;
  }

  function idOf(n) { return n.id || n.name; }

  // Order the nodes of each layer so edges cross less: two sweeps of the barycentre heuristic.
  function order(layers, keys, parents, children) {
    var pos = {};
    function place() {
      keys.forEach(function (k) { layers[k].forEach(function (id, i) { pos[id] = i; }); });
    }
    function sweep(list, neighbours) {
      list.forEach(function (k) {
        var ids = layers[k];
        var centre = {};
        ids.forEach(function (id, i) {
          var near = (neighbours[id] || []).filter(function (n) { return n in pos; });
          centre[id] = near.length ? near.reduce(function (s, n) { return s + pos[n]; }, 0) / near.length : i;
        });
        ids.sort(function (a, b) { return centre[a] - centre[b] || (a < b ? -1 : a > b ? 1 : 0); });
        ids.forEach(function (id, i) { pos[id] = i; });
      });
    }
    place();
    for (var round = 0; round < 2; round++) {
      sweep(keys, parents);
      sweep(keys.slice().reverse(), children);
    }
  }

  function linkFor(node, figure) {
    if (!node.lineage_url) return null;
    var url = new URL(node.lineage_url, window.location.href);
    url.searchParams.set("up", figure.dataset.up || "2");
    url.searchParams.set("down", figure.dataset.down || "2");
    return url.pathname + url.search;
  }

  function draw(figure, data) {
    var nodes = data.nodes || [];
    if (!nodes.length) return;
    var byId = {}, layers = {}, parents = {}, children = {};
    nodes.forEach(function (n) {
      byId[idOf(n)] = n;
      (layers[n.layer] = layers[n.layer] || []).push(idOf(n));
    });
    var edges = (data.edges || []).filter(function (e) { return e.from in byId && e.to in byId; });
    edges.forEach(function (e) {
      (parents[e.to] = parents[e.to] || []).push(e.from);
      (children[e.from] = children[e.from] || []).push(e.to);
    });
    var keys = Object.keys(layers).map(Number).sort(function (a, b) { return a - b; });
    keys.forEach(function (k) { layers[k].sort(); });
    order(layers, keys, parents, children);

    var tallest = Math.max.apply(null, keys.map(function (k) { return layers[k].length; }));
    var height = PAD * 2 + tallest * BOX_H + (tallest - 1) * GAP_Y;
    var width = PAD * 2 + keys.length * BOX_W + (keys.length - 1) * GAP_X;
    var at = {};
    keys.forEach(function (k, col) {
      var ids = layers[k];
      var column = ids.length * BOX_H + (ids.length - 1) * GAP_Y;
      var top = PAD + (height - PAD * 2 - column) / 2;
      ids.forEach(function (id, row) {
        at[id] = {x: PAD + col * (BOX_W + GAP_X), y: top + row * (BOX_H + GAP_Y)};
      });
    });

    var wrap = document.createElement("div");
    wrap.className = "lineage-canvas";
    var svg = el("svg", {viewBox: "0 0 " + width + " " + height, width: width, height: height, role: "group",
                         "aria-label": figure.getAttribute("aria-label") || "Lineage"});
    var defs = el("defs", {}, svg);
    var marker = el("marker", {id: figure.id + "-arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
                               markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse"}, defs);
    el("path", {d: "M 0 0 L 10 5 L 0 10 z", "class": "lineage-arrow"}, marker);

    var edgeLayer = el("g", {"class": "lineage-edges"}, svg);
    var paths = [];
    edges.forEach(function (e) {
      var a = at[e.from], b = at[e.to];
      var x1 = a.x + BOX_W, y1 = a.y + BOX_H / 2, x2 = b.x, y2 = b.y + BOX_H / 2;
      var bend = Math.max(30, (x2 - x1) / 2);
      var path = el("path", {d: "M " + x1 + " " + y1 + " C " + (x1 + bend) + " " + y1 + ", " + (x2 - bend) + " " +
                                y2 + ", " + x2 + " " + y2, "class": "lineage-edge",
                             "marker-end": "url(#" + figure.id + "-arrow)"}, edgeLayer);
      path.dataset.from = e.from;
      path.dataset.to = e.to;
      paths.push(path);
    });

    var nodeLayer = el("g", {"class": "lineage-nodes"}, svg);
    nodes.forEach(function (n) {
      var id = idOf(n), p = at[id];
      var href = n.focus ? null : linkFor(n, figure);
      var holder = href ? el("a", {href: href, "class": "lineage-link"}, nodeLayer) : el("g", {}, nodeLayer);
      var box = el("g", {"class": "lineage-node kind-" + (n.kind || "model") + (n.focus ? " focus" : "") +
                                  (n.known === false ? " unknown" : ""),
                         transform: "translate(" + p.x + "," + p.y + ")"}, holder);
      box.dataset.node = id;
      var label = n.column ? n.column : n.name;
      var sub = n.column ? n.model : [n.kind, n.materialized].filter(Boolean).join(" · ");
      el("rect", {width: BOX_W, height: BOX_H, rx: 6, ry: 6}, box);
      var title = el("title", {}, box);
      title.textContent = id + (n.description ? ": " + n.description : "") + (n.expression ? " = " + n.expression : "");
      var t1 = el("text", {x: 10, y: 18, "class": "lineage-label"}, box);
      t1.textContent = short(label);
      var t2 = el("text", {x: 10, y: 34, "class": "lineage-sub"}, box);
      t2.textContent = short(sub + (n.transform && n.transform !== "copy" ? " · " + n.transform : ""));
      function mark(on) {
        paths.forEach(function (path) {
          if (path.dataset.from === id || path.dataset.to === id) path.classList.toggle("near", on);
        });
      }
      holder.addEventListener("mouseenter", function () { mark(true); });
      holder.addEventListener("mouseleave", function () { mark(false); });
      holder.addEventListener("focus", function () { mark(true); });
      holder.addEventListener("blur", function () { mark(false); });
    });

    wrap.appendChild(svg);
    figure.insertBefore(wrap, figure.firstChild);
    figure.classList.add("drawn");
    var list = figure.querySelector("details.lineage-list");
    if (list) list.open = false;
  }

  document.querySelectorAll("figure.lineage-graph[data-src]").forEach(function (figure) {
    fetch(figure.dataset.src, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) { draw(figure, data); })
      .catch(function () { /* the list stays */ });
  });
})();
