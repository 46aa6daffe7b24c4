// Shared by every page: the embedded data, small DOM and canvas helpers, colours.
var VIZ = window.VIZ = {
  data: JSON.parse(document.getElementById("viz-data").textContent),
  kinds: {},  // run pages: one card renderer per puzzle family, registered by its script

  // Grids travel as strings with one base-36 digit per token (see hrmkit/viz/page_data.py).
  token: function (text, index) { return parseInt(text.charAt(index), 36); },

  sigmoid: function (x) { return 1 / (1 + Math.exp(-x)); },

  el: function (tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === "text") node.textContent = attributes[name];
      else if (name === "className") node.className = attributes[name];
      else node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  },

  // A canvas whose drawing can change with the segment carries class "grid": the self-test
  // compares their pixels before and after stepping.
  canvas: function (width, height, dynamic) {
    var canvas = VIZ.el("canvas", {width: Math.max(1, width), height: Math.max(1, height)});
    if (dynamic) canvas.className = "grid";
    return canvas;
  },

  figure: function (canvas, caption) {
    var text = VIZ.el("figcaption", {text: caption});
    return {node: VIZ.el("figure", {}, [canvas, text]), caption: text};
  },

  snapshot: function (root) {
    return Array.prototype.map.call(root.querySelectorAll("canvas.grid"), function (canvas) {
      return canvas.toDataURL();
    }).join("|");
  },

  hashParams: function () {
    var params = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      if (!part) return;
      var pieces = part.split("=");
      params[decodeURIComponent(pieces[0])] = pieces.length > 1 ? decodeURIComponent(pieces[1]) : "1";
    });
    return params;
  },

  header: function (title, meta) {
    var header = document.getElementById("page-header");
    header.appendChild(VIZ.el("h1", {text: title}));
    header.appendChild(VIZ.el("div", {className: "meta"}, (meta || []).map(function (item) {
      return VIZ.el("span", {text: item[0] + ": " + item[1]});
    })));
  },

  legend: function (items) {
    return VIZ.el("div", {className: "legend"}, items.map(function (item) {
      var swatch = VIZ.el("span", {className: "swatch"});
      swatch.style.background = item[0];
      if (item[2]) swatch.style.border = item[2];
      return VIZ.el("span", {}, [swatch, document.createTextNode(item[1])]);
    }));
  },

  cross: function (ctx, x, y, size, colour, width) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(x + size * 0.25, y + size * 0.25); ctx.lineTo(x + size * 0.75, y + size * 0.75);
    ctx.moveTo(x + size * 0.75, y + size * 0.25); ctx.lineTo(x + size * 0.25, y + size * 0.75);
    ctx.stroke();
  },

  dot: function (ctx, x, y, size, radius, colour) {
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.arc(x + size / 2, y + size / 2, Math.max(1.5, size * radius), 0, 2 * Math.PI);
    ctx.fill();
  },

  // ARC colours 0..9, as the ARC-AGI task viewer draws them.
  ARC_COLOURS: ["#000000", "#0074d9", "#ff4136", "#2ecc40", "#ffdc00", "#aaaaaa", "#f012be", "#ff851b", "#7fdbff", "#870c25"],
  STRANGE: "#e599f7"  // a token that does not belong where it is drawn (pad, or a stray id)
};
