// Injected first in <head> of a copy of an HTML report (tests/test_html_report.py): records script
// errors, console.error calls and Content-Security-Policy violations before the page's own script runs.
window.__ukdsErrors = [];
window.addEventListener("error", function (e) { window.__ukdsErrors.push("error: " + e.message); });
window.addEventListener("securitypolicyviolation", function (e) { window.__ukdsErrors.push("csp: " + e.violatedDirective + " " + e.blockedURI); });
(function () { var orig = console.error; console.error = function () { window.__ukdsErrors.push("console.error: " + Array.prototype.join.call(arguments, " ")); return orig.apply(console, arguments); }; })();
