// Live search through fetch: the proxied copy must keep this request inside the proxy.
(function () {
  var form = document.getElementById("search-form");
  var input = document.getElementById("q");
  var list = document.getElementById("results");
  function run() {
    fetch("/api/search?q=" + encodeURIComponent(input.value), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        list.textContent = "";
        data.results.forEach(function (p) {
          var li = document.createElement("li");
          var a = document.createElement("a");
          a.href = "/product/" + p.id;
          a.textContent = p.name + " - " + p.price;
          li.appendChild(a);
          list.appendChild(li);
        });
        document.getElementById("count").textContent = data.results.length + " result(s)";
      });
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); run(); });
  input.addEventListener("input", run);
  run();
})();
