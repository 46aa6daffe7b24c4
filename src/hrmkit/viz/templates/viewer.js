// Run pages: one card per example, a segment slider shared by all cards, a solved/unsolved filter.
// A kind's script registers VIZ.kinds[kind] = {legend, differs(example, a, b),
// buildCard(example, body) -> {show(segment)}, optional check(data, cards) -> [failures] for the
// self-test, optional drawAnswer(example, tokens, page) -> canvas for the candidates of --tta}; segments
// count from 1, arrays from 0. Pages without segments (code evaluation) have no slider and never call
// show or differs.
(function () {
  var data = VIZ.data;
  if (data.page !== "run") return;
  var kind = VIZ.kinds[data.kind];
  if (!kind) throw new Error("no renderer for kind " + data.kind);
  var segments = data.segments || 0;
  var state = {segment: segments, atHalt: false, filter: "all"};
  var cards = [];
  var controls = {};

  VIZ.header(data.title, data.meta);

  function button(id, text, onClick) {
    var node = VIZ.el("button", {id: id, type: "button", text: text});
    node.addEventListener("click", onClick);
    return node;
  }

  function buildControls() {
    var nav = document.getElementById("controls");
    if (segments) {
      controls.slider = VIZ.el("input", {id: "segment", type: "range", min: 1, max: segments, step: 1, value: segments});
      controls.slider.addEventListener("input", function () { setSegment(parseInt(controls.slider.value, 10)); });
      controls.label = VIZ.el("span", {id: "segment-label"});
      controls.atHalt = VIZ.el("input", {id: "at-halt", type: "checkbox"});
      controls.atHalt.addEventListener("change", function () { state.atHalt = controls.atHalt.checked; update(); });
      controls.play = button("play", "▶ play", play);
      nav.appendChild(VIZ.el("div", {className: "group"}, [
        VIZ.el("label", {text: "ACT segment"}),
        button("prev", "◀", function () { setSegment(state.segment - 1); }),
        controls.slider,
        button("next", "▶", function () { setSegment(state.segment + 1); }),
        controls.play, controls.label]));
      nav.appendChild(VIZ.el("div", {className: "group"}, [controls.atHalt,
        VIZ.el("label", {"for": "at-halt", text: "each example at its halting segment"})]));
    }
    var solved = data.examples.filter(function (example) { return example.solved; }).length;
    controls.filters = {};
    [["all", "all " + data.examples.length], ["solved", "solved " + solved],
     ["unsolved", "unsolved " + (data.examples.length - solved)]].forEach(function (choice) {
      controls.filters[choice[0]] = button("filter-" + choice[0], choice[1], function () { setFilter(choice[0]); });
    });
    nav.appendChild(VIZ.el("div", {className: "group", title: "solved: " + data.solved_means}, [
      VIZ.el("label", {text: "show"}), controls.filters.all, controls.filters.solved, controls.filters.unsolved]));
    nav.appendChild(VIZ.legend(kind.legend(data)));
  }

  function qLine(example, segment) {
    var at = segment - 1;
    return "q_halt <b>" + example.q_halt[at].toFixed(2) + "</b> (σ " + VIZ.sigmoid(example.q_halt[at]).toFixed(2) +
      ") · q_continue <b>" + example.q_continue[at].toFixed(2) + "</b> (σ " + VIZ.sigmoid(example.q_continue[at]).toFixed(2) +
      ") · would halt at segment <b>" + example.halt + "</b> of " + segments;
  }

  // sigmoid(q_halt) (orange) and sigmoid(q_continue) (blue) by segment; a bar marks the segment shown, a triangle the halt.
  function drawQ(canvas, example, segment) {
    var ctx = canvas.getContext("2d"), width = canvas.width, height = canvas.height, pad = 4;
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "#f8f9fa"; ctx.fillRect(0, 0, width, height);
    var x = function (s) { return pad + (segments > 1 ? (s - 1) * (width - 2 * pad) / (segments - 1) : (width - 2 * pad) / 2); };
    var y = function (p) { return height - pad - p * (height - 2 * pad); };
    ctx.strokeStyle = "#dee2e6"; ctx.beginPath(); ctx.moveTo(0, y(0.5)); ctx.lineTo(width, y(0.5)); ctx.stroke();
    ctx.fillStyle = "rgba(28,95,214,0.15)"; ctx.fillRect(x(segment) - 3, 0, 6, height);
    [["q_halt", "#e8590c"], ["q_continue", "#1c5fd6"]].forEach(function (series) {
      ctx.strokeStyle = series[1]; ctx.lineWidth = 1.5; ctx.beginPath();
      example[series[0]].forEach(function (logit, index) {
        var px = x(index + 1), py = y(VIZ.sigmoid(logit));
        if (index === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      });
      ctx.stroke();
    });
    ctx.fillStyle = "#e8590c"; ctx.beginPath();
    ctx.moveTo(x(example.halt) - 5, 0); ctx.lineTo(x(example.halt) + 5, 0); ctx.lineTo(x(example.halt), 7); ctx.fill();
  }

  // hrm viz --tta K: an example's candidate answers from K symmetric guesses, best first; the first is
  // the vote's answer (most votes, then mean sigmoid(q_halt)).
  function buildCandidates(example) {
    var figures = example.candidates.map(function (candidate, rank) {
      var caption = (rank === 0 ? "voted · " : "") + candidate.votes + " of " + example.guesses + " votes · σ(q_halt) " +
        candidate.confidence.toFixed(2) + " · " + (candidate.correct ? "right" : "wrong") +
        (candidate.obeys_rules ? "" : " · breaks the rules");
      var node = VIZ.figure(kind.drawAnswer(example, candidate.answer, data), caption).node;
      node.className = "candidate" + (rank === 0 ? " voted" : "") + (candidate.correct ? " ok" : " bad");
      return node;
    });
    var hidden = example.candidate_count - example.candidates.length;
    var summary = example.guesses + " guesses, " + example.candidate_count + " different answer" +
      (example.candidate_count > 1 ? "s" : "") + (hidden > 0 ? " (the best " + example.candidates.length + " shown)" : "");
    return VIZ.el("div", {className: "candidates"}, [VIZ.el("div", {className: "status", text: summary}),
                                                      VIZ.el("div", {className: "panels"}, figures)]);
  }

  function buildCards() {
    var content = document.getElementById("content");
    if (!data.examples.length) content.appendChild(VIZ.el("div", {className: "empty", text: "no examples"}));
    data.examples.forEach(function (example, index) {
      var body = VIZ.el("div");
      var badge = VIZ.el("span", {className: "badge " + (example.solved ? "ok" : "bad"), text: example.solved ? "solved" : "unsolved"});
      var card = VIZ.el("section", {className: "card kind-" + data.kind, "data-index": index, "data-solved": example.solved ? "1" : "0"},
                        [VIZ.el("h2", {}, [document.createTextNode(example.title), badge]), body]);
      var entry = {example: example, card: card, view: kind.buildCard(example, body, data)};
      if (segments) {
        entry.status = VIZ.el("div", {className: "status"});
        entry.qCanvas = VIZ.canvas(150, 40, false);
        entry.qText = VIZ.el("span");
        card.appendChild(entry.status);
        card.appendChild(VIZ.el("div", {className: "q"}, [entry.qCanvas, entry.qText]));
      }
      if (example.candidates && kind.drawAnswer) card.appendChild(buildCandidates(example));
      content.appendChild(card);
      cards.push(entry);
    });
  }

  function update() {
    if (segments) {
      controls.slider.value = state.segment;
      controls.slider.disabled = state.atHalt;
      controls.label.textContent = state.atHalt ? "each at its halting segment" : "segment " + state.segment + " of " + segments;
    }
    Object.keys(controls.filters).forEach(function (name) {
      controls.filters[name].className = name === state.filter ? "active" : "";
    });
    cards.forEach(function (entry) {
      var example = entry.example;
      var visible = state.filter === "all" || (state.filter === "solved") === example.solved;
      entry.card.classList.toggle("hidden", !visible);
      if (!segments) return;
      var segment = state.atHalt ? example.halt : state.segment;
      entry.view.show(segment);
      entry.status.textContent = "segment " + segment + ": " + example.status[segment - 1];
      entry.status.className = "status " + (example.correct[segment - 1] ? "ok" : "bad");
      entry.qText.innerHTML = qLine(example, segment);
      drawQ(entry.qCanvas, example, segment);
    });
  }

  function setSegment(segment) {
    state.segment = Math.max(1, Math.min(segments, segment || 1));
    update();
  }

  function setFilter(filter) {
    state.filter = filter;
    update();
  }

  var timer = null;
  function play() {
    if (timer) { clearInterval(timer); timer = null; controls.play.textContent = "▶ play"; return; }
    state.atHalt = false; controls.atHalt.checked = false;
    setSegment(state.segment >= segments ? 1 : state.segment + 1);
    controls.play.textContent = "❚❚ pause";
    timer = setInterval(function () {
      if (state.segment >= segments) { play(); return; }
      setSegment(state.segment + 1);
    }, 700);
  }

  document.addEventListener("keydown", function (event) {
    if (!segments || event.target.tagName === "SELECT") return;
    if (event.key === "ArrowLeft") setSegment(state.segment - 1);
    if (event.key === "ArrowRight") setSegment(state.segment + 1);
  });

  buildControls();
  buildCards();
  var params = VIZ.hashParams();
  if (params.segment) state.segment = Math.max(1, Math.min(segments, parseInt(params.segment, 10) || segments));
  if (params.filter in controls.filters) state.filter = params.filter;
  if (params.halt && segments) { state.atHalt = true; controls.atHalt.checked = true; }
  update();

  // The self-test drives the page as a user would (buttons, slider, filter) and checks what it shows.
  window.VIZ_SELFTEST = function () {
    var failures = [];
    var shown = document.querySelectorAll("#content .card");
    if (shown.length !== data.examples.length) failures.push(shown.length + " cards for " + data.examples.length + " examples");
    if (!data.examples.length) failures.push("no examples");
    var changes = 0, dataChanges = 0;
    if (segments) {
      controls.filters.all.click();
      if (controls.atHalt.checked) controls.atHalt.click();
      controls.slider.value = 1;
      controls.slider.dispatchEvent(new Event("input"));
      var before = cards.map(function (entry) { return VIZ.snapshot(entry.card); });
      for (var segment = 2; segment <= segments; segment++) {
        document.getElementById("next").click();
        if (parseInt(controls.slider.value, 10) !== segment) failures.push("next did not move the slider to segment " + segment);
        if (controls.label.textContent.indexOf("segment " + segment + " ") !== 0) failures.push("label does not say segment " + segment);
        var after = cards.map(function (entry) { return VIZ.snapshot(entry.card); });
        cards.forEach(function (entry, index) {
          var differs = kind.differs(entry.example, segment - 2, segment - 1);
          var redrawn = after[index] !== before[index];
          dataChanges += differs ? 1 : 0;
          changes += redrawn ? 1 : 0;
          if (differs && !redrawn) failures.push(entry.example.title + ": segment " + segment + " differs but the grid shown did not change");
        });
        before = after;
      }
      document.getElementById("prev").click();
      if (segments > 1 && parseInt(controls.slider.value, 10) !== segments - 1) failures.push("prev did not step back");
    }
    var counts = {};
    ["solved", "unsolved", "all"].forEach(function (filter) {
      controls.filters[filter].click();
      var visible = document.querySelectorAll("#content .card:not(.hidden)").length;
      var expected = data.examples.filter(function (example) {
        return filter === "all" || (filter === "solved") === example.solved;
      }).length;
      counts[filter] = visible;
      if (visible !== expected) failures.push("filter " + filter + " shows " + visible + " cards, expected " + expected);
    });
    cards.forEach(function (entry) {  // --tta: every candidate drawn, the vote's answer first, the votes adding up
      var example = entry.example;
      if (!example.candidates) return;
      var shown = entry.card.querySelectorAll(".candidate"), voted = entry.card.querySelectorAll(".candidate.voted");
      var votes = example.candidates.reduce(function (sum, candidate) { return sum + candidate.votes; }, 0);
      if (shown.length !== example.candidates.length) failures.push(example.title + ": " + shown.length + " candidates drawn of " + example.candidates.length);
      if (voted.length !== 1 || shown[0] !== voted[0]) failures.push(example.title + ": the voted answer is not the first candidate");
      if (votes > example.guesses || (example.candidate_count === example.candidates.length && votes !== example.guesses)) {
        failures.push(example.title + ": " + votes + " votes for " + example.guesses + " guesses");
      }
    });
    if (kind.check) failures = failures.concat(kind.check(data, cards));  // the kind's own checks of its cards
    return {ok: failures.length === 0, failures: failures, page: "run", kind: data.kind, examples: shown.length,
            segments: segments, shown_by_filter: counts, grid_changes: changes, data_changes: dataChanges,
            stepping_changed_grid: changes > 0};
  };
})();
