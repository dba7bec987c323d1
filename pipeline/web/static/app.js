// HERA review workspace: keyboard shortcuts on the queue and polling of a decision's outcome.
// The pages work without this file; it only adds speed for people who review all day.
"use strict";

(function () {
  function items() { return Array.prototype.slice.call(document.querySelectorAll("li.item")); }
  var current = -1;

  function focusItem(i) {
    var list = items();
    if (!list.length) return;
    current = Math.max(0, Math.min(list.length - 1, i));
    list.forEach(function (el, n) { el.classList.toggle("current", n === current); });
    list[current].focus();
  }

  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target) || !items().length) return;
    var list = items();
    var item = list[current];
    if (ev.key === "j") { focusItem(current + 1); ev.preventDefault(); }
    else if (ev.key === "k") { focusItem(current - 1); ev.preventDefault(); }
    else if (ev.key === "x" && item) {
      var box = item.querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
      ev.preventDefault();
    } else if (ev.key === "a" && item) {
      var approve = item.querySelector("button.approve");
      if (approve) approve.click();
      ev.preventDefault();
    } else if (ev.key === "c" && item) {
      var code = item.querySelector("input.code");
      if (code) code.focus();
      ev.preventDefault();
    }
  });

  document.addEventListener("focusin", function (ev) {
    var li = ev.target.closest ? ev.target.closest("li.item") : null;
    if (li) current = items().indexOf(li);
  });

  // The outcome of a decision: poll the JSON status until the pipeline posted or refused it.
  var status = document.getElementById("status");
  if (status && status.dataset.state === "pending") {
    var tries = 0;
    var poll = function () {
      tries += 1;
      fetch(status.dataset.url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (s && s.state !== "pending") { window.location.reload(); }
          else if (tries < 120) { window.setTimeout(poll, 1000); }
        })
        .catch(function () { if (tries < 120) window.setTimeout(poll, 2000); });
    };
    window.setTimeout(poll, 500);
  }
})();
