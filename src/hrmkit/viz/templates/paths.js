// Maze and city-routing cards: the map, the oracle's path, and the prediction after the chosen
// segment drawn over the oracle path (green band: oracle; orange dots: predicted path; a red
// frame: a map cell the model rewrote). Routing maps grey out roads the vehicle may not use.
VIZ.paths = (function () {
  var ORACLE = "rgba(47,158,68,0.45)", PREDICTED = "#f76707", REWRITTEN = "#e03131";
  var MAZE = {1: "#343a40", 2: "#ffffff", 3: "#2b8a3e", 4: "#c2255c", 5: "#ffffff"};
  // routing tokens: 1 building, 2..5 lane/street/avenue/highway, 6..9 their jams, 10 closure, 11 S, 12 G, 13 path
  var ROUTING = {1: "#d8d2c6", 2: "#ffffff", 3: "#fff3bf", 4: "#ffd8a8", 5: "#ff922b", 6: "#ffffff", 7: "#fff3bf",
                 8: "#ffd8a8", 9: "#ff922b", 10: "#212529", 11: "#2b8a3e", 12: "#1971c2", 13: "#ffffff"};
  var PATH = {maze: 5, routing: 13};
  var CLOSED_TO_VEHICLE = "#9a9a9a";

  function colourOf(kind, token) {
    var table = kind === "maze" ? MAZE : ROUTING;
    return table[token] || VIZ.STRANGE;
  }

  function isRoad(token) { return token >= 2 && token <= 9; }

  // One cell of a map as the vehicle sees it; `costs` (routing) marks with 0 what it may not enter.
  function drawCell(ctx, kind, token, index, x, y, cell, costs) {
    ctx.fillStyle = colourOf(kind, token);
    ctx.fillRect(x, y, cell, cell);
    if (ctx.fillStyle === VIZ.STRANGE) {  // not a map token: say which one it is
      ctx.fillStyle = "#212529"; ctx.font = Math.max(6, Math.round(cell * 0.6)) + "px system-ui, sans-serif";
      ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.fillText(String(token), x + cell / 2, y + cell / 2 + 1);
      return;
    }
    if (kind !== "routing") return;
    if (isRoad(token) && costs && VIZ.token(costs, index) === 0) {
      // Closed to this vehicle: grey, hatched in the road's own colour so its type still shows.
      ctx.fillStyle = CLOSED_TO_VEHICLE; ctx.fillRect(x, y, cell, cell);
      ctx.strokeStyle = colourOf(kind, token); ctx.lineWidth = Math.max(1, cell / 8);
      ctx.beginPath();
      ctx.moveTo(x, y + cell / 2); ctx.lineTo(x + cell / 2, y);
      ctx.moveTo(x, y + cell); ctx.lineTo(x + cell, y);
      ctx.moveTo(x + cell / 2, y + cell); ctx.lineTo(x + cell, y + cell / 2);
      ctx.stroke();
    }
    if (token >= 6 && token <= 9) VIZ.dot(ctx, x, y, cell, 0.18, "#e03131");
    if (token === 10) VIZ.cross(ctx, x, y, cell, "#ffffff", Math.max(1, cell / 8));
  }

  function drawMap(canvas, page, options) {
    var size = page.size, cell = canvas.width / size, ctx = canvas.getContext("2d");
    for (var index = 0; index < size * size; index++) {
      var x = (index % size) * cell, y = Math.floor(index / size) * cell;
      var original = VIZ.token(options.map, index);
      var shown = original;
      if (options.prediction) {
        var predicted = VIZ.token(options.prediction, index);
        shown = predicted === PATH[page.kind] ? original : predicted;
      }
      drawCell(ctx, page.kind, shown, index, x, y, cell, options.costs);
      if (options.oracle && VIZ.token(options.oracle, index) === PATH[page.kind]) {
        ctx.fillStyle = ORACLE; ctx.fillRect(x + cell * 0.12, y + cell * 0.12, cell * 0.76, cell * 0.76);
      }
      if (options.prediction) {
        if (VIZ.token(options.prediction, index) === PATH[page.kind]) VIZ.dot(ctx, x, y, cell, 0.26, PREDICTED);
        else if (shown !== original) {
          ctx.strokeStyle = REWRITTEN; ctx.lineWidth = Math.max(1, cell / 7);
          ctx.strokeRect(x + 1, y + 1, cell - 2, cell - 2);
        }
      }
    }
  }

  function legend(page) {
    var common = [[ORACLE, "oracle path"], [PREDICTED, "predicted path"], ["#ffffff", "map cell rewritten by the model", "2px solid " + REWRITTEN]];
    if (page.kind === "maze") return [[MAZE[1], "wall"], [MAZE[3], "S"], [MAZE[4], "G"]].concat(common);
    return [[ROUTING[2], "lane"], [ROUTING[3], "street"], [ROUTING[4], "avenue"], [ROUTING[5], "highway"],
            ["#e03131", "jam (red dot)"], [ROUTING[10], "closure"], [CLOSED_TO_VEHICLE, "road the vehicle may not use"],
            [ROUTING[11], "S"], [ROUTING[12], "G"]].concat(common);
  }

  function cellSize(size) { return Math.max(5, Math.min(22, Math.floor(200 / size))); }

  function buildCard(example, body, page) {
    var side = cellSize(page.size) * page.size;
    var input = VIZ.canvas(side, side), target = VIZ.canvas(side, side), prediction = VIZ.canvas(side, side, true);
    drawMap(input, page, {map: example.input, costs: example.costs});
    drawMap(target, page, {map: example.input, costs: example.costs, oracle: example.label});
    var unit = page.cost_name === "steps" ? " steps" : "";
    var targetCaption = (page.kind === "maze" ? "shortest path: " : "optimal route, cost ") + example.oracle_cost + unit;
    var predicted = VIZ.figure(prediction, "");
    body.appendChild(VIZ.el("div", {className: "panels"}, [
      VIZ.figure(input, page.kind === "routing" ? "input (" + example.vehicle + ")" : "input").node,
      VIZ.figure(target, targetCaption).node, predicted.node]));
    return {
      show: function (segment) {
        drawMap(prediction, page, {map: example.input, costs: example.costs, oracle: example.label,
                                   prediction: example.segments[segment - 1]});
        var cost = example.path_costs[segment - 1];
        predicted.caption.textContent = "prediction after segment " + segment + " · " +
          (cost === null ? (page.kind === "maze" ? "no valid path" : "no legal route") : page.cost_name + " " + cost);
      }
    };
  }

  function renderer() {
    return {
      legend: legend,
      differs: function (example, a, b) { return example.segments[a] !== example.segments[b]; },
      drawAnswer: function (example, tokens, page) {
        var side = Math.max(3, Math.floor(cellSize(page.size) * 0.7)) * page.size, canvas = VIZ.canvas(side, side);
        drawMap(canvas, page, {map: example.input, costs: example.costs, oracle: example.label, prediction: tokens});
        return canvas;
      },
      buildCard: buildCard
    };
  }

  VIZ.kinds.maze = renderer();
  VIZ.kinds.routing = renderer();
  return {drawCell: drawCell, colourOf: colourOf, ROUTING: ROUTING, CLOSED_TO_VEHICLE: CLOSED_TO_VEHICLE};
})();
