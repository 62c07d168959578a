// A tiny client-side router: each step is a history.pushState URL (/tour/1, /tour/2, ...).
(function () {
  var steps = {
    "1": ["Step 1: pick a product", "Browse the catalogue and open a product page."],
    "2": ["Step 2: fill the cart", "Add what you like; the cart lives in a cookie."],
    "3": ["Step 3: check out", "Sign in and confirm. Your agent can follow along if you accept."]
  };
  var title = document.getElementById("step-title");
  var body = document.getElementById("step-body");
  function show(n) {
    var s = steps[n] || steps["1"];
    title.textContent = s[0];
    body.textContent = s[1];
    document.title = s[0] + " - Demo Shop";
  }
  function current() {
    var m = location.pathname.match(/\/tour\/(\d+)/);
    return m ? m[1] : "1";
  }
  document.querySelectorAll("[data-step]").forEach(function (a) {
    a.addEventListener("click", function (e) {
      e.preventDefault();
      var n = a.getAttribute("data-step");
      history.pushState({ step: n }, "", "/tour/" + n);
      show(n);
    });
  });
  window.addEventListener("popstate", function () { show(current()); });
  show(current());
})();
