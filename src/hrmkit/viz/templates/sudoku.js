// Sudoku cards: the givens, the solution, and the grid after the chosen segment with wrong
// cells in red and cells that changed since the previous segment outlined.
VIZ.kinds.sudoku = (function () {
  var GIVEN = "#e9ecef", WRONG = "#ffd6d6", CHANGED = "#f59f00";

  function draw(canvas, page, digits, givens, label, previous) {
    var size = page.size, cell = canvas.width / size, ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.textAlign = "center"; ctx.textBaseline = "middle";
    for (var index = 0; index < size * size; index++) {
      var x = (index % size) * cell, y = Math.floor(index / size) * cell;
      var token = VIZ.token(digits, index);
      var given = VIZ.token(givens, index) !== page.blank_token;
      var wrong = label && token !== VIZ.token(label, index);
      if (given) { ctx.fillStyle = GIVEN; ctx.fillRect(x, y, cell, cell); }
      if (wrong) { ctx.fillStyle = WRONG; ctx.fillRect(x, y, cell, cell); }
      if (previous && VIZ.token(previous, index) !== token) {
        ctx.strokeStyle = CHANGED; ctx.lineWidth = 2; ctx.strokeRect(x + 2, y + 2, cell - 4, cell - 4);
      }
      // Digit d is token d + 1; a predicted blank shows as a dot, pad or a stray token as "?".
      var text = token > page.blank_token ? String(token - 1) : (token === page.blank_token ? (label ? "·" : "") : "?");
      ctx.fillStyle = wrong ? "#c92a2a" : (given ? "#212529" : "#1c5fd6");
      ctx.font = (given ? "bold " : "") + Math.round(cell * 0.55) + "px system-ui, sans-serif";
      if (text) ctx.fillText(text, x + cell / 2, y + cell / 2 + 1);
    }
    for (var line = 0; line <= size; line++) {
      var thickRow = line % page.box[0] === 0, thickColumn = line % page.box[1] === 0;
      ctx.fillStyle = thickRow ? "#343a40" : "#ced4da";
      ctx.fillRect(0, Math.min(line * cell, canvas.height - (thickRow ? 2 : 1)), canvas.width, thickRow ? 2 : 1);
      ctx.fillStyle = thickColumn ? "#343a40" : "#ced4da";
      ctx.fillRect(Math.min(line * cell, canvas.width - (thickColumn ? 2 : 1)), 0, thickColumn ? 2 : 1, canvas.height);
    }
  }

  return {
    legend: function () {
      return [[GIVEN, "given"], [WRONG, "wrong cell"], ["#ffffff", "changed since the previous segment", "2px solid " + CHANGED]];
    },
    differs: function (example, a, b) { return example.segments[a] !== example.segments[b]; },
    drawAnswer: function (example, tokens, page) {
      var side = (page.size <= 6 ? 20 : 16) * page.size, canvas = VIZ.canvas(side, side);
      draw(canvas, page, tokens, example.input, example.label);
      return canvas;
    },
    buildCard: function (example, body, page) {
      var cell = page.size <= 6 ? 30 : 24, side = cell * page.size;
      var input = VIZ.canvas(side, side), target = VIZ.canvas(side, side), prediction = VIZ.canvas(side, side, true);
      draw(input, page, example.input, example.input);
      draw(target, page, example.label, example.input);
      var predicted = VIZ.figure(prediction, "");
      body.appendChild(VIZ.el("div", {className: "panels"}, [
        VIZ.figure(input, "input").node, VIZ.figure(target, "target").node, predicted.node]));
      return {
        show: function (segment) {
          var previous = segment > 1 ? example.segments[segment - 2] : null;
          draw(prediction, page, example.segments[segment - 1], example.input, example.label, previous);
          predicted.caption.textContent = "prediction after segment " + segment;
        }
      };
    }
  };
})();
