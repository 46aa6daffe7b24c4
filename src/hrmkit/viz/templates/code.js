// Code-evaluation cards: per task the samples passed / n, the prompt, and every sample's sandbox
// verdict, seconds and failure detail, with its completion and the code that ran. Everything in a
// card is untrusted model output: it is set as text (textContent), never parsed as markup.
VIZ.kinds.code = (function () {
  var COLOURS = {"passed": "#1f8a3b", "failed": "#c92a2a", "timeout": "#e8590c", "error": "#862e9c",
                 "killed": "#5c0f0f", "output-limit": "#8d6e63"};
  var UNKNOWN = "#868e96";

  function colour(verdict) { return COLOURS[verdict] || UNKNOWN; }

  function codeBlock(label, text) {
    return VIZ.el("figure", {className: "code-block"}, [VIZ.el("figcaption", {text: label}),
                                                        VIZ.el("pre", {className: "code", text: text})]);
  }

  // One line per sample (verdict, seconds, failure detail); it opens onto the completion and,
  // when sanitising changed it, the code that ran, side by side.
  function sampleRow(sample, open) {
    var badge = VIZ.el("span", {className: "verdict", text: sample.verdict});
    badge.style.background = colour(sample.verdict);
    var head = VIZ.el("summary", {className: "sample-head"}, [
      badge,
      VIZ.el("span", {text: "sample " + sample.sample}),
      VIZ.el("span", {className: "seconds", text: sample.seconds.toFixed(2) + " s"}),
      sample.detail ? VIZ.el("span", {className: "detail", text: sample.detail}) : null]);
    var blocks = sample.code === undefined ? [codeBlock("completion (ran as it is)", sample.completion)]
                                           : [codeBlock("completion", sample.completion), codeBlock("code that ran (sanitised)", sample.code)];
    var row = VIZ.el("details", {className: "sample " + (sample.passed ? "ok" : "bad"), "data-verdict": sample.verdict},
                     [head, VIZ.el("div", {className: "code-pair"}, blocks)]);
    row.open = Boolean(open);
    return row;
  }

  return {
    legend: function (page) {
      return page.verdicts.map(function (verdict) { return [colour(verdict), verdict]; });
    },
    differs: function () { return false; },  // no segments
    buildCard: function (example, body) {
      body.appendChild(VIZ.el("div", {className: "status " + (example.solved ? "ok" : "bad"),
        text: example.passed + " of " + example.n + " samples passed (" + (100 * example.rate).toFixed(0) + " %)"}));
      if (example.prompt !== null) {
        var prompt = VIZ.el("details", {className: "prompt"}, [VIZ.el("summary", {text: "prompt"}),
                                                                VIZ.el("pre", {className: "prompt-text", text: example.prompt})]);
        prompt.open = true;
        body.appendChild(prompt);
      }
      // The first sample's code shows at once; the others open on a click on their line.
      body.appendChild(VIZ.el("div", {className: "samples"}, example.samples.map(function (sample, index) {
        return sampleRow(sample, index === 0);
      })));
      return {};
    },
    // Self-test: every text the data holds is on the page exactly as text, and none of it became markup.
    check: function (page, cards) {
      var failures = [];
      cards.forEach(function (entry) {
        var example = entry.example, card = entry.card;
        var expected = [];
        example.samples.forEach(function (sample) {
          expected.push(sample.completion);
          if (sample.code !== undefined) expected.push(sample.code);
        });
        var shown = Array.prototype.map.call(card.querySelectorAll("pre.code"), function (node) { return node.textContent; });
        if (JSON.stringify(shown) !== JSON.stringify(expected)) failures.push(example.title + ": the code shown is not the code in the data");
        var verdicts = card.querySelectorAll(".sample .verdict").length;
        if (verdicts !== example.samples.length) failures.push(example.title + ": " + verdicts + " verdicts for " + example.samples.length + " samples");
        var prompt = card.querySelector("pre.prompt-text");
        if ((prompt ? prompt.textContent : null) !== example.prompt) failures.push(example.title + ": the prompt shown differs from the data");
        if (card.querySelector("script, img, iframe, object, embed, svg, style, link")) failures.push(example.title + ": sample text became markup");
      });
      return failures;
    }
  };
})();
