// Opened with #selftest in the address, the page checks itself and writes a JSON verdict into
// <pre id="selftest-result"> and "SELFTEST PASS" or "SELFTEST FAIL" into the title, for a
// headless browser's --dump-dom to read. Any error the page logged fails the verdict.
(function () {
  // Reads the address itself: it must report even when the page's own scripts failed to load.
  if (!/^#(.*&)?selftest(=[^&]*)?(&|$)/.test(location.hash)) return;
  var verdict;
  try {
    verdict = window.VIZ_SELFTEST ? window.VIZ_SELFTEST() : {ok: false, failures: ["the page script did not load"]};
  } catch (error) {
    verdict = {ok: false, failures: ["the self-test threw: " + error]};
  }
  verdict.errors = (window.vizErrors || ["the error capture did not load"]).slice();
  verdict.ok = Boolean(verdict.ok) && verdict.errors.length === 0;
  var out = document.getElementById("selftest-result");
  out.textContent = JSON.stringify(verdict);
  document.title = "SELFTEST " + (verdict.ok ? "PASS" : "FAIL");
})();
