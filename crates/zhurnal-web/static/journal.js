// Class journal entry (классный журнал). Progressive enhancement: without this file the page
// is a plain readable table. With it, marks and attendance are typed from the keyboard and
// saved through /api/v1 without reloading. Unsent changes stay in memory (never in
// localStorage: the journal is personal data) and are retried until the network is back;
// leaving the page with unsent changes asks for confirmation.
"use strict";
(function () {
  var grid = document.getElementById("jgrid");
  if (!grid) { return; }
  var assignment = grid.dataset.assignment;
  var editable = grid.dataset.editable === "true";
  var periodMarks = grid.dataset.periodMarks === "true";
  var periodId = grid.dataset.period;
  var passFail = grid.dataset.grading === "pass_fail";
  var csrfInput = document.querySelector("input[name=csrf]");
  var csrf = csrfInput ? csrfInput.value : "";
  var statusEl = document.getElementById("jstatus");
  var retryBtn = document.getElementById("jretry");
  var workSel = document.getElementById("jwork");
  var tools = document.getElementById("jtools");
  if (tools) { tools.hidden = false; }

  // ---- The save queue: one request at a time, in order, retried on network failure. ----
  var queue = [];
  var busy = false;
  var retryDelay = 0;
  var retryTimer = null;
  var retryAt = 0;
  var lastError = "";

  function setStatus() {
    if (!statusEl) { return; }
    var n = queue.length;
    if (retryTimer) {
      var s = Math.max(0, Math.round((retryAt - Date.now()) / 1000));
      statusEl.className = "jstatus offline";
      statusEl.textContent = "Нет связи с сервером: " + n + " изм. ждут отправки, повтор через " + s + " с. Не закрывайте страницу.";
      if (retryBtn) { retryBtn.hidden = false; }
      return;
    }
    if (retryBtn) { retryBtn.hidden = true; }
    if (n > 0) {
      statusEl.className = "jstatus busy";
      statusEl.textContent = "Сохраняется… (" + n + ")";
    } else if (lastError) {
      statusEl.className = "jstatus error";
      statusEl.textContent = "Не сохранено: " + lastError;
    } else {
      statusEl.className = "jstatus ok";
      statusEl.textContent = "Все изменения сохранены";
    }
  }

  // Each entry carries its own key, so a retry after a lost response creates nothing twice.
  function newKey() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
  }

  function enqueue(op) {
    if (op.method === "POST") { op.key = newKey(); }
    queue.push(op);
    setStatus();
    pump();
  }

  function scheduleRetry() {
    retryDelay = retryDelay ? Math.min(retryDelay * 2, 30000) : 2000;
    retryAt = Date.now() + retryDelay;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(function () { retryTimer = null; pump(); }, retryDelay);
    setStatus();
  }

  function retryNow() {
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    pump();
  }

  setInterval(function () { if (retryTimer) { setStatus(); } }, 1000);
  window.addEventListener("online", retryNow);
  if (retryBtn) { retryBtn.addEventListener("click", retryNow); }
  window.addEventListener("beforeunload", function (e) {
    if (queue.length > 0 || document.querySelector(".jc input, .jpm input")) {
      e.preventDefault();
      e.returnValue = "";
    }
  });

  function pump() {
    if (busy || retryTimer || queue.length === 0) { setStatus(); return; }
    busy = true;
    var op = queue[0];
    var headers = { "X-CSRF-Token": csrf };
    if (op.key) { headers["Idempotency-Key"] = op.key; }
    var body = op.body;
    if (body !== undefined && !(body instanceof Blob)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    } else if (body instanceof Blob) {
      headers["Content-Type"] = "application/octet-stream";
    }
    fetch(op.url, { method: op.method, headers: headers, body: body, credentials: "same-origin" })
      .then(function (res) {
        if (res.status >= 500 || res.status === 408 || res.status === 429) {
          throw new Error("server " + res.status);
        }
        return res.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (ignore) { data = null; }
          return { ok: res.ok, status: res.status, data: data };
        });
      })
      .then(function (r) {
        busy = false;
        retryDelay = 0;
        queue.shift();
        if (r.ok) {
          lastError = "";
          if (op.ok) { op.ok(r.data); }
        } else {
          var msg = (r.data && r.data.detail) || ("ошибка " + r.status);
          if (r.status === 401) { msg = "сессия закончилась: войдите снова в другой вкладке, изменения будут повторены"; }
          lastError = msg;
          if (op.fail) { op.fail(msg); }
        }
        setStatus();
        pump();
      }, function () {
        busy = false;
        scheduleRetry();
      });
  }

  function api(path) { return "/api/v1" + path; }

  // ---- Grid navigation. ----
  var rows = Array.prototype.slice.call(grid.tBodies[0] ? grid.tBodies[0].rows : []);
  function cellsOf(row) {
    var sel = "td.jc" + (periodMarks ? ", td.jpm" : "");
    return Array.prototype.slice.call(row.querySelectorAll(sel));
  }
  if (!editable && !periodMarks) { return; }
  var first = null;
  rows.forEach(function (row) {
    cellsOf(row).forEach(function (td) {
      if (td.classList.contains("jc") && !editable) { return; }
      td.tabIndex = -1;
      if (!first) { first = td; }
    });
  });
  if (first) { first.tabIndex = 0; }

  function focusCell(td) {
    if (!td) { return; }
    grid.querySelectorAll("[tabindex='0']").forEach(function (x) { x.tabIndex = -1; });
    td.tabIndex = 0;
    td.focus();
  }

  function move(td, dr, dc) {
    var row = td.parentElement;
    var r = rows.indexOf(row);
    var cells = cellsOf(row);
    var c = cells.indexOf(td);
    var nr = Math.max(0, Math.min(rows.length - 1, r + dr));
    var ncells = cellsOf(rows[nr]);
    var nc = Math.max(0, Math.min(ncells.length - 1, c + dc));
    focusCell(ncells[nc]);
  }

  var ATT = { "н": "absent", "n": "absent", "h": "absent", "б": "ill", "b": "ill", "уп": "valid_reason", "оп": "late" };
  var ATT_SHORT = { absent: "Н", ill: "Б", valid_reason: "УП", late: "ОП" };

  function studentOf(td) { return td.parentElement.dataset.student; }

  function failCell(td, msg) {
    td.classList.add("failed");
    td.title = msg;
  }

  function setAttendance(td, kind) {
    var span = td.querySelector(".att");
    var before = span ? span.textContent : null;
    if (kind) {
      if (!span) { span = document.createElement("span"); span.className = "att"; td.insertBefore(span, td.firstChild); }
      span.textContent = ATT_SHORT[kind];
    } else if (span) {
      span.remove();
    }
    td.classList.add("pending");
    enqueue({
      method: "PUT",
      url: api("/journal/" + assignment + "/attendance"),
      body: { date: td.dataset.date, lesson_number: Number(td.dataset.number), student: studentOf(td), kind: kind },
      ok: function () { td.classList.remove("pending", "failed"); },
      fail: function (msg) {
        td.classList.remove("pending");
        var s = td.querySelector(".att");
        if (before) {
          if (!s) { s = document.createElement("span"); s.className = "att"; td.insertBefore(s, td.firstChild); }
          s.textContent = before;
        } else if (s) { s.remove(); }
        failCell(td, msg);
      }
    });
  }

  function addMark(td, value) {
    var span = document.createElement("span");
    span.className = "mark pending";
    span.textContent = value === "pass" ? "зач" : value === "fail" ? "незач" : value;
    td.appendChild(span);
    enqueue({
      method: "POST",
      url: api("/journal/" + assignment + "/marks"),
      body: {
        date: td.dataset.date, lesson_number: Number(td.dataset.number), student: studentOf(td),
        value: value, work_type_id: Number(workSel ? workSel.value : 0), comment: null
      },
      ok: function (m) {
        span.classList.remove("pending");
        span.className = "mark w" + m.weight;
        span.dataset.id = m.id;
        span.dataset.value = m.value;
        span.dataset.wt = m.work_type_id;
        span.dataset.comment = m.comment || "";
        span.textContent = m.display;
        td.classList.remove("failed");
      },
      fail: function (msg) { span.remove(); failCell(td, msg); }
    });
  }

  function parseEntry(text) {
    var t = text.trim().toLowerCase();
    if (t === "") { return { none: true }; }
    if (t === "-" || t === "—") { return { attendance: null }; }
    if (Object.prototype.hasOwnProperty.call(ATT, t)) { return { attendance: ATT[t] }; }
    if (passFail) {
      if (t === "зач" || t === "з" || t === "+") { return { marks: ["pass"] }; }
      if (t === "незач" || t === "нз") { return { marks: ["fail"] }; }
      return { error: "по этому предмету ставится «зач» или «незач»" };
    }
    var digits = t.replace(/[\s\/,]/g, "");
    if (/^[1-5]{1,4}$/.test(digits)) { return { marks: digits.split("") }; }
    return { error: "«" + text.trim() + "» не распознано: отметки 1–5 (несколько — подряд), Н, Б, УП, ОП или «-»" };
  }

  function openEditor(td, initial) {
    if (td.querySelector("input")) { return; }
    var input = document.createElement("input");
    input.setAttribute("aria-label", td.classList.contains("jpm") ? "Итоговая отметка" : "Отметка или посещаемость");
    input.autocomplete = "off";
    input.value = initial || "";
    if (td.classList.contains("jpm") && td.dataset.suggested) { input.placeholder = td.dataset.suggested; }
    td.appendChild(input);
    input.focus();
    var done = false;
    function finish(commit, dr) {
      if (done) { return; }
      done = true;
      var text = input.value;
      input.remove();
      if (commit) {
        if (td.classList.contains("jpm")) { commitPeriodMark(td, text); } else { commitCell(td, text); }
      }
      if (dr) { move(td, dr, 0); } else { focusCell(td); }
    }
    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); finish(true, 1); }
      else if (e.key === "Escape") { e.preventDefault(); finish(false, 0); }
      e.stopPropagation();
    });
    input.addEventListener("blur", function () { finish(true, 0); });
  }

  function commitCell(td, text) {
    var p = parseEntry(text);
    if (p.none) { return; }
    if (p.error) { failCell(td, p.error); lastError = p.error; setStatus(); return; }
    if (p.marks) { p.marks.forEach(function (v) { addMark(td, v); }); return; }
    setAttendance(td, p.attendance);
  }

  function commitPeriodMark(td, text) {
    var value = text.trim();
    var old = td.textContent;
    var kind = td.dataset.kind;
    td.textContent = value;
    td.classList.add("pending");
    enqueue({
      method: "PUT",
      url: api("/journal/" + assignment + "/final-marks"),
      body: { student: studentOf(td), kind: kind, period_id: kind === "period" ? Number(periodId) : null, value: value || null },
      ok: function (r) { td.classList.remove("pending", "failed"); td.textContent = (r && r.value) || ""; },
      fail: function (msg) { td.classList.remove("pending"); td.textContent = old; failCell(td, msg); }
    });
  }

  grid.addEventListener("click", function (e) {
    var mark = e.target.closest(".mark");
    if (mark && editable && mark.dataset.id) { openDialog(mark); return; }
    var td = e.target.closest("td.jc, td.jpm");
    if (td && td.tabIndex !== undefined && td.hasAttribute("tabindex")) { focusCell(td); }
  });

  grid.addEventListener("dblclick", function (e) {
    var td = e.target.closest("td.jc, td.jpm");
    if (td && td.hasAttribute("tabindex")) { openEditor(td, ""); }
  });

  grid.addEventListener("keydown", function (e) {
    var td = e.target.closest("td.jc, td.jpm");
    if (!td || e.target.tagName === "INPUT") { return; }
    switch (e.key) {
      case "ArrowUp": e.preventDefault(); move(td, -1, 0); return;
      case "ArrowDown": e.preventDefault(); move(td, 1, 0); return;
      case "ArrowLeft": e.preventDefault(); move(td, 0, -1); return;
      case "ArrowRight": e.preventDefault(); move(td, 0, 1); return;
      case "Enter": case "F2": e.preventDefault(); openEditor(td, ""); return;
      case "Delete": case "Backspace":
        e.preventDefault();
        if (td.classList.contains("jpm")) { if (td.textContent.trim()) { commitPeriodMark(td, ""); } return; }
        var marks = td.querySelectorAll(".mark[data-id]");
        if (marks.length) { openDialog(marks[marks.length - 1]); }
        else if (td.querySelector(".att")) { setAttendance(td, null); }
        return;
      default:
        if (e.key.length === 1 && !e.ctrlKey && !e.metaKey && !e.altKey && /[1-5нНбБуУоОnNhHbBзЗ+\-]/.test(e.key)) {
          e.preventDefault();
          openEditor(td, e.key);
        }
    }
  });

  // ---- Correcting or deleting a mark: the reason is required. ----
  var dialog = document.getElementById("jdialog");
  var current = null;
  function openDialog(span) {
    if (!dialog || typeof dialog.showModal !== "function") { return; }
    current = span;
    var td = span.closest("td");
    document.getElementById("jd-value").value = span.textContent;
    document.getElementById("jd-work").value = span.dataset.wt;
    document.getElementById("jd-comment").value = span.dataset.comment || "";
    document.getElementById("jd-reason").value = "";
    document.getElementById("jdialog-error").textContent = "";
    document.getElementById("jdialog-history").textContent = td.title ? "История: " + td.title : "";
    dialog.showModal();
    document.getElementById("jd-value").focus();
  }
  if (dialog) {
    document.getElementById("jdialog-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var action = e.submitter ? e.submitter.value : "cancel";
      if (action === "cancel" || !current) { dialog.close(); return; }
      var reason = document.getElementById("jd-reason").value.trim();
      if (!reason) {
        document.getElementById("jdialog-error").textContent = "Укажите причину исправления — она сохраняется в истории отметки.";
        document.getElementById("jd-reason").focus();
        return;
      }
      var span = current;
      var td = span.closest("td");
      var id = span.dataset.id;
      var old = span.textContent;
      dialog.close();
      td.classList.add("jhist", "pending");
      if (action === "delete") {
        span.style.display = "none";
        enqueue({
          method: "DELETE", url: api("/marks/" + id), body: { reason: reason },
          ok: function () { span.remove(); td.classList.remove("pending"); td.title = (td.title ? td.title + "\n" : "") + old + " → удалена, причина: " + reason; },
          fail: function (msg) { span.style.display = ""; td.classList.remove("pending"); failCell(td, msg); }
        });
        return;
      }
      var value = document.getElementById("jd-value").value.trim();
      var wt = Number(document.getElementById("jd-work").value);
      var comment = document.getElementById("jd-comment").value.trim() || null;
      span.textContent = value;
      enqueue({
        method: "PUT", url: api("/marks/" + id),
        body: { value: value, work_type_id: wt, comment: comment, reason: reason },
        ok: function (m) {
          span.textContent = m.display; span.dataset.value = m.value; span.dataset.wt = m.work_type_id;
          span.dataset.comment = m.comment || ""; span.className = "mark w" + m.weight;
          td.classList.remove("pending");
          td.title = (td.title ? td.title + "\n" : "") + old + " → " + m.display + ", причина: " + reason;
        },
        fail: function (msg) { span.textContent = old; td.classList.remove("pending"); failCell(td, msg); }
      });
    });
  }

  // ---- Topic, homework and files of each lesson. ----
  if (!editable) { return; }
  document.querySelectorAll(".jlesson").forEach(function (box) {
    var form = box.querySelector(".jlesson-form");
    if (!form) { return; }
    form.hidden = false;
    var read = box.querySelector(".jlesson-read");
    if (read) { read.hidden = true; }
    var status = form.querySelector(".jlesson-status");
    var date = box.dataset.date;
    var number = box.dataset.number;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      status.textContent = "Сохраняется…";
      enqueue({
        method: "PUT",
        url: api("/journal/" + assignment + "/lessons/" + date + "/" + number),
        body: { topic: form.elements.topic.value, homework: form.elements.homework.value },
        ok: function (l) {
          status.textContent = "Сохранено";
          var summary = box.querySelector("summary");
          if (summary && l.topic) { summary.lastChild.textContent = " — " + l.topic; }
        },
        fail: function (msg) { status.textContent = "Не сохранено: " + msg; }
      });
      var file = form.elements.file.files[0];
      if (file) {
        var name = file.name;
        form.elements.file.value = "";
        enqueue({
          method: "POST",
          url: api("/journal/" + assignment + "/lessons/" + date + "/" + number + "/attachments?name=" + encodeURIComponent(name)),
          body: file,
          ok: function (f) {
            var li = document.createElement("li");
            var a = document.createElement("a");
            a.href = f.url; a.textContent = f.name;
            li.appendChild(a);
            li.appendChild(document.createTextNode(" (" + f.size_bytes + " байт)"));
            box.querySelector(".jfiles").appendChild(li);
            status.textContent = "Сохранено, файл прикреплён";
          },
          fail: function (msg) { status.textContent = "Файл не прикреплён: " + msg; }
        });
      }
    });
  });
  var hash = window.location.hash && document.getElementById(window.location.hash.slice(1));
  if (hash && hash.tagName === "DETAILS") { hash.open = true; }
})();
