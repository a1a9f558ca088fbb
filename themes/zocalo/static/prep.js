// Progressive enhancement only: every figure is in the HTML. This reads the pointer to tell readers
// whether a newer corte exists and to show avisos on pages that were not re-rendered.
(function () {
  "use strict";
  var body = document.body;
  var base = body.getAttribute("data-base") || "/";
  var own = body.getAttribute("data-corte");
  var ownText = body.getAttribute("data-corte-texto");
  var timer = null;
  function show(id, text) {
    var el = document.getElementById(id);
    if (!el) return;
    el.textContent = text;
    el.hidden = !text;
  }
  function check() {
    fetch(base + "json/main.json", { cache: "no-cache" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (main) {
        if (!main) return;
        if (main.corte_id && main.corte_id !== own) {
          show("corte-js", "Sin cambios desde el corte " + ownText + " · último corte " + main.corte_texto);
        } else {
          show("corte-js", "");
        }
        show("aviso-js", main.aviso || (main["final"] ? "Resultados finales del PREP." : ""));
        if (main["final"] && timer) { clearInterval(timer); timer = null; }
      })
      .catch(function () { /* offline or blocked: the static page stays valid */ });
  }
  check();
  timer = setInterval(check, 60000);
})();
