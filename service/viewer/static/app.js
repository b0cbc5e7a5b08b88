// Draws every <figure class="chart" data-chart="{title, x_label, x, series: [{label, values}]}">
// with uPlot, on page load and in content htmx swaps in. The data table in each figure stays
// the accessible form of the same numbers.
(function () {
  "use strict";
  var COLOURS = ["#0a58ca", "#1a7f37", "#b42318", "#8250df", "#bc4c00", "#1b7c83"];

  function draw(figure) {
    if (figure.dataset.drawn || typeof uPlot === "undefined") return;
    var spec = JSON.parse(figure.dataset.chart);
    if (!spec.x.length) return;
    figure.dataset.drawn = "1";
    var holder = document.createElement("div");
    holder.setAttribute("aria-hidden", "true");
    figure.insertBefore(holder, figure.querySelector("details"));
    var width = Math.max(280, Math.min(figure.clientWidth - 24, 720));
    var opts = {
      width: width,
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: spec.x_label }, {}],
      series: [{ label: spec.x_label }].concat(
        spec.series.map(function (s, i) {
          return { label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, points: { show: true, size: 5 } };
        })
      ),
    };
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    new uPlot(opts, data, holder);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("figure.chart[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:load", function (event) { drawAll(event.target); });
})();
