/* Noriba municipality report: the interactive route map (Leaflet, vendored beside this file in leaflet/).
 *
 * Reads the map data the page carries (<script id="map-data">), draws the coverage area, the routes and the
 * stops (names on hover), and makes the route legend's checkboxes show or hide each route. OpenStreetMap tiles
 * are the basemap when the page is served over http(s) and the tiles load; opened as a file (no Referer, which
 * OSM's tile policy requires) or offline, the routes and stops draw on a plain background. Without Leaflet, the
 * SVG map of the page stays and the checkboxes hide its routes.
 */
(function () {
  "use strict";
  var dataEl = document.getElementById("map-data");
  if (!dataEl) { return; }
  var data = JSON.parse(dataEl.textContent);
  var legend = document.getElementById("route-legend");
  var svgBox = document.getElementById("svgmap");
  var mapEl = document.getElementById("map");
  var note = document.getElementById("map-note");
  var routeLayers = [];
  var stopLayers = [];
  var map = null;

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function showRoute(i, on) {
    if (map && routeLayers[i]) {
      if (on) { routeLayers[i].addTo(map); } else { map.removeLayer(routeLayers[i]); }
    }
    var lines = svgBox ? svgBox.querySelectorAll('polyline[data-route="' + i + '"]') : [];
    for (var n = 0; n < lines.length; n++) { lines[n].style.display = on ? "" : "none"; }
  }

  function say(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  if (legend) {
    legend.classList.add("live");
    legend.addEventListener("change", function (ev) {
      var box = ev.target;
      if (box && box.matches("input[data-route]")) { showRoute(Number(box.getAttribute("data-route")), box.checked); }
    });
  }
  if (!window.L || !mapEl) { return; }  // no Leaflet: the SVG map stays

  mapEl.hidden = false;
  if (svgBox) { svgBox.hidden = true; }
  map = L.map(mapEl, { zoomSnap: 0.25 });
  map.attributionControl.setPrefix("Leaflet");
  var served = location.protocol === "http:" || location.protocol === "https:";
  if (served) {
    var loaded = 0;
    var tiles = L.tileLayer(data.tiles, {
      maxZoom: 19, attribution: data.attribution, referrerPolicy: "strict-origin-when-cross-origin"
    });
    tiles.on("tileload", function () { loaded++; mapEl.classList.remove("no-tiles"); say(""); });
    tiles.on("tileerror", function () {
      if (!loaded) { mapEl.classList.add("no-tiles"); say(data.text.offline); }
    });
    tiles.addTo(map);
  } else {
    mapEl.classList.add("no-tiles");
    say(data.text.file);
  }
  data.coverage.forEach(function (rings) {
    L.polygon(rings, {
      interactive: false, color: "#6fa8dc", weight: 0.6, fillColor: "#9fc5e8", fillOpacity: 0.35
    }).addTo(map);
  });
  (data.zones || []).forEach(function (z) {  // GTFS-Flex service zones, with how to book
    var layer = L.polygon(z.rings, { color: "#e69138", weight: 1.5, fillColor: "#f6b26b", fillOpacity: 0.25, className: "zone" });
    layer.bindTooltip(esc(z.name) + (z.booking.length ? "<br>" + z.booking.map(esc).join("<br>") : ""), { sticky: true });
    layer.addTo(map);
  });
  data.routes.forEach(function (r, i) {
    var layer = L.polyline(r.lines, { color: r.color, weight: 3, opacity: 0.85, className: "route route-" + i });
    layer.bindTooltip(esc(r.name), { sticky: true });
    routeLayers.push(layer.addTo(map));
  });
  map.createPane("stops").style.zIndex = 450;  // above the routes (overlayPane, 400), below tooltips
  data.stops.forEach(function (s) {
    var m = L.circleMarker([s[0], s[1]], {
      pane: "stops", radius: 4, color: "#1b1f24", weight: 1, fillColor: "#fff", fillOpacity: 1, className: "stop"
    });
    m.bindTooltip(esc(s[2]), { direction: "top", offset: [0, -4] });
    stopLayers.push(m.addTo(map));
  });
  map.fitBounds(data.bounds, { padding: [16, 16] });
  L.control.scale({ imperial: false }).addTo(map);
  window.noribaMap = { map: map, routes: routeLayers, stops: stopLayers };
})();
