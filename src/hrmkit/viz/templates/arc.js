// ARC cards: the test input, the target and the answer voted across all augmented variants
// after the chosen segment; below, the first variants as the model saw them, each with its own
// prediction (✓ when, de-augmented, it is the target), Q logits and halting segment.
VIZ.kinds.arc = (function () {
  var EMPTY_SIDE = 28;
  function cellSize(grid, room) {
    return Math.max(3, Math.min(14, Math.floor(room / Math.max(grid.h, grid.w, 1))));
  }

  function drawGrid(canvas, grid, cell) {
    // No grid read back (the prediction does not start with a colour): a dashed empty box.
    var width = grid.h ? grid.w * cell : EMPTY_SIDE, height = grid.h ? grid.h * cell : EMPTY_SIDE;
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!grid.h) {
      ctx.strokeStyle = "#adb5bd"; ctx.setLineDash([3, 3]); ctx.strokeRect(0.5, 0.5, width - 1, height - 1);
      ctx.setLineDash([]);
      ctx.fillStyle = "#adb5bd"; ctx.font = "14px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
      ctx.fillText("∅", width / 2, height / 2);
      return;
    }
    var gap = cell >= 6 ? 1 : 0;
    for (var index = 0; index < grid.h * grid.w; index++) {
      var colour = VIZ.ARC_COLOURS[VIZ.token(grid.c, index)] || VIZ.STRANGE;
      ctx.fillStyle = colour;
      ctx.fillRect((index % grid.w) * cell, Math.floor(index / grid.w) * cell, cell - gap, cell - gap);
    }
  }

  function sized(grid, room) {
    var cell = cellSize(grid, room);
    var canvas = VIZ.canvas(1, 1);
    drawGrid(canvas, grid, cell);
    return canvas;
  }

  function sizeText(grid) { return grid.h ? grid.h + "×" + grid.w : "empty"; }

  function variantTile(variant) {
    var prediction = VIZ.canvas(1, 1, true);
    var mark = VIZ.el("span"), info = VIZ.el("div");
    var node = VIZ.el("div", {className: "variant"}, [
      VIZ.el("div", {text: variant.name}),
      VIZ.el("div", {className: "pair"}, [sized(variant.input, 70), VIZ.el("span", {text: "→"}), prediction, mark]),
      info]);
    return {
      node: node,
      show: function (segment) {
        var grid = variant.segments[segment - 1];
        drawGrid(prediction, grid, cellSize(grid, 70));
        var right = variant.right[segment - 1];
        mark.textContent = right ? "✓" : "✗";
        mark.className = right ? "mark-ok" : "mark-bad";
        info.textContent = "q_halt " + variant.q_halt[segment - 1].toFixed(2) + " · q_cont " +
          variant.q_continue[segment - 1].toFixed(2) + " · halts at " + variant.halt;
      }
    };
  }

  return {
    legend: function () {
      return VIZ.ARC_COLOURS.map(function (colour, index) { return [colour, String(index)]; });
    },
    differs: function (example, a, b) {
      if (JSON.stringify(example.voted[a].grid) !== JSON.stringify(example.voted[b].grid)) return true;
      return example.variants.some(function (variant) {
        return JSON.stringify(variant.segments[a]) !== JSON.stringify(variant.segments[b]);
      });
    },
    buildCard: function (example, body) {
      var voted = VIZ.canvas(1, 1, true), votedFigure = VIZ.figure(voted, "");
      body.appendChild(VIZ.el("div", {className: "panels"}, [
        VIZ.figure(sized(example.test_input, 150), "test input " + sizeText(example.test_input)).node,
        VIZ.figure(sized(example.target, 150), "target " + sizeText(example.target)).node,
        votedFigure.node]));
      var tiles = example.variants.map(variantTile);
      body.appendChild(VIZ.el("div", {className: "variants"}, tiles.map(function (tile) { return tile.node; })));
      if (example.variant_count > tiles.length) {
        body.appendChild(VIZ.el("div", {className: "variant",
          text: "showing " + tiles.length + " of " + example.variant_count + " variants; all of them vote"}));
      }
      return {
        show: function (segment) {
          var vote = example.voted[segment - 1];
          drawGrid(voted, vote.grid, cellSize(vote.grid, 150));
          votedFigure.caption.textContent = "voted answer after segment " + segment + " " + sizeText(vote.grid) +
            " · " + vote.votes + " of " + example.variant_count + " votes";
          tiles.forEach(function (tile) { tile.show(segment); });
        }
      };
    }
  };
})();
