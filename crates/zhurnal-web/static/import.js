// Area `import`: the upload form shows how much of the file has been sent. Without this
// script (or without XMLHttpRequest) the form posts as usual and the page is the answer.
(function () {
  "use strict";
  var form = document.getElementById("import-form");
  var box = document.getElementById("import-progress");
  if (!form || !box || !window.XMLHttpRequest || !window.FormData) { return; }
  var bar = box.querySelector("progress");
  var text = box.querySelector("span");
  function mb(n) { return (n / 1048576).toFixed(1).replace(".", ","); }
  form.addEventListener("submit", function (ev) {
    var file = document.getElementById("import-file");
    if (!file || !file.files || !file.files.length) { return; }
    ev.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    box.hidden = false;
    bar.removeAttribute("value");
    text.textContent = "Отправка файла…";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) { return; }
      bar.max = e.total;
      bar.value = e.loaded;
      // Kept on <html>, which outlives the page swap below (the browser test reads it).
      document.documentElement.setAttribute("data-import-sent", String(e.loaded));
      text.textContent = "Отправлено " + mb(e.loaded) + " из " + mb(e.total) + " МБ";
    };
    xhr.upload.onload = function () {
      bar.removeAttribute("value");
      text.textContent = "Файл отправлен, идёт проверка всех строк…";
    };
    xhr.onload = function () {
      // The answer is the whole page (the report of errors or of what was loaded).
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      document.title = doc.title;
      document.body.replaceWith(document.adoptNode(doc.body));
      var found = document.getElementById("import-errors") || document.getElementById("import-done");
      if (found) { found.setAttribute("tabindex", "-1"); found.focus(); }
    };
    xhr.onerror = function () {
      if (button) { button.disabled = false; }
      text.textContent = "Файл не отправлен: нет связи с сервером. Попробуйте ещё раз.";
    };
    xhr.send(new FormData(form));
  });
})();
