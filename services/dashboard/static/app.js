// New signals without a reload: poll the session-protected feed and prepend rows to #signals.
// Pages work without this script; it only adds rows the next reload would show anyway.
(function () {
  "use strict";
  var table = document.getElementById("signals");
  if (!table) { return; }
  var body = table.tBodies[0];
  var seconds = Number(document.currentScript.dataset.pollSeconds) || 5;
  var newest = 0;
  Array.prototype.forEach.call(body.rows, function (row) { newest = Math.max(newest, Number(row.dataset.seq) || 0); });
  function cell(row, value) { var td = row.insertCell(-1); td.textContent = value == null ? "" : String(value); return td; }
  function add(signal) {
    var row = body.insertRow(0);
    row.className = "new sev-" + signal.severity;
    row.dataset.seq = signal.seq;
    [signal.seq, signal.observed_at, signal.rule_id, signal.severity, signal.status].forEach(function (v) { cell(row, v); });
    var who = cell(row, "");
    if (signal.subject_id) { var a = document.createElement("a"); a.href = "/participants/" + encodeURIComponent(signal.subject_id); a.textContent = signal.subject_id; who.appendChild(a); }
    var code = document.createElement("code"); code.textContent = JSON.stringify(signal.detail); cell(row, "").appendChild(code);
  }
  function poll() {
    fetch("/signals/feed?after=" + newest, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : { signals: [] }; })
      .then(function (data) {
        data.signals.slice().reverse().forEach(function (signal) { add(signal); newest = Math.max(newest, signal.seq); });
        var live = document.getElementById("live"); if (live) { live.hidden = false; }
      })
      .catch(function () {})
      .finally(function () { setTimeout(poll, seconds * 1000); });
  }
  setTimeout(poll, seconds * 1000);
})();
