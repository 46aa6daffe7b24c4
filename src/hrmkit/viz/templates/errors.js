// Runs first: every script error, failed resource, rejected promise and console.error of the
// page lands in window.vizErrors, which the self-test reports (a page that logs errors fails it).
window.vizErrors = [];
window.addEventListener("error", function (event) {
  var where = event.filename ? " (" + event.filename.split("/").pop() + ":" + event.lineno + ")" : "";
  var what = event.message || ("failed to load " + ((event.target && (event.target.src || event.target.href)) || "a resource"));
  window.vizErrors.push(what + where);
}, true);
window.addEventListener("unhandledrejection", function (event) {
  window.vizErrors.push("unhandled promise rejection: " + event.reason);
});
(function () {
  var original = console.error;
  console.error = function () {
    window.vizErrors.push("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return original.apply(console, arguments);
  };
})();
