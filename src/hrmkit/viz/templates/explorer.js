// The routing dataset explorer: pick a base scenario, switch the vehicle, and see the roads it may
// use (others greyed and hatched), jams (red dots), closures (crosses) and its optimal route.
(function () {
  var data = VIZ.data;
  if (data.page !== "routing-explorer") return;
  var size = data.size, cell = Math.max(10, Math.min(44, Math.floor(560 / size)));
  var state = {scenario: 0, vehicle: data.vehicles[0], route: true};
  var ui = {};
  var ROADS = ["lane", "street", "avenue", "highway"];

  VIZ.header(data.title, data.meta);

  function button(id, text, onClick) {
    var node = VIZ.el("button", {id: id, type: "button", text: text});
    node.addEventListener("click", onClick);
    return node;
  }

  function scenario() { return data.scenarios[state.scenario]; }
  function vehicleData() { return scenario().vehicles[state.vehicle]; }

  function buildControls() {
    var nav = document.getElementById("controls");
    ui.select = VIZ.el("select", {id: "scenario"}, data.scenarios.map(function (item, index) {
      return VIZ.el("option", {value: index, text: item.title});
    }));
    ui.select.addEventListener("change", function () { setScenario(parseInt(ui.select.value, 10)); });
    nav.appendChild(VIZ.el("div", {className: "group"}, [VIZ.el("label", {text: "base scenario"}),
      button("prev", "◀", function () { setScenario(state.scenario - 1); }), ui.select,
      button("next", "▶", function () { setScenario(state.scenario + 1); })]));
    ui.vehicles = {};
    data.vehicles.forEach(function (vehicle) {
      ui.vehicles[vehicle] = button("vehicle-" + vehicle, vehicle, function () { setVehicle(vehicle); });
    });
    nav.appendChild(VIZ.el("div", {className: "group"}, [VIZ.el("label", {text: "vehicle"})].concat(
      data.vehicles.map(function (vehicle) { return ui.vehicles[vehicle]; }))));
    ui.showRoute = VIZ.el("input", {id: "show-route", type: "checkbox", checked: "checked"});
    ui.showRoute.addEventListener("change", function () { state.route = ui.showRoute.checked; draw(); });
    nav.appendChild(VIZ.el("div", {className: "group"}, [ui.showRoute, VIZ.el("label", {"for": "show-route", text: "optimal route"})]));
  }

  function vehicleTable() {
    var head = VIZ.el("tr", {}, [VIZ.el("th", {text: "vehicle"})].concat(ROADS.map(function (road) {
      return VIZ.el("th", {text: road});
    })).concat([VIZ.el("th", {text: "jam ×"})]));
    ui.rows = {};
    var rows = data.vehicles.map(function (vehicle) {
      var spec = data.vehicle_table[vehicle];
      ui.rows[vehicle] = VIZ.el("tr", {}, [VIZ.el("td", {text: vehicle})].concat(ROADS.map(function (road) {
        return VIZ.el("td", {text: road in spec.costs ? String(spec.costs[road]) : "—"});
      })).concat([VIZ.el("td", {text: String(spec.jam_factor)})]));
      return ui.rows[vehicle];
    });
    return VIZ.el("table", {}, [head].concat(rows));
  }

  function buildContent() {
    ui.canvas = VIZ.canvas(size * cell, size * cell, true);
    ui.canvas.addEventListener("mousemove", hover);
    ui.info = VIZ.el("div", {className: "status"});
    ui.tip = VIZ.el("div", {className: "tip", text: "point at a cell to see what it costs"});
    var side = VIZ.el("div", {}, [
      VIZ.el("h2", {text: "entry cost per cell (— : may not enter)"}), vehicleTable(),
      VIZ.el("p", {className: "tip", text: "Entering G costs " + data.vehicle_table[data.vehicles[0]].goal_cost +
        "; buildings and closures are closed to every vehicle."}),
      ui.info, ui.tip,
      VIZ.legend([[VIZ.paths.ROUTING[2], "lane"], [VIZ.paths.ROUTING[3], "street"], [VIZ.paths.ROUTING[4], "avenue"],
                  [VIZ.paths.ROUTING[5], "highway"], ["#e03131", "jam (red dot)"], [VIZ.paths.ROUTING[10], "closure"],
                  [VIZ.paths.CLOSED_TO_VEHICLE, "road this vehicle may not use"], [VIZ.paths.ROUTING[11], "S"], [VIZ.paths.ROUTING[12], "G"],
                  ["#1c5fd6", "optimal route"]])]);
    side.style.maxWidth = "420px";
    document.getElementById("content").appendChild(VIZ.el("div", {className: "card explorer"}, [ui.canvas, side]));
  }

  function draw() {
    var ctx = ui.canvas.getContext("2d"), item = scenario(), vehicle = vehicleData();
    for (var index = 0; index < size * size; index++) {
      VIZ.paths.drawCell(ctx, "routing", VIZ.token(item.map, index), index, (index % size) * cell,
                         Math.floor(index / size) * cell, cell, vehicle ? vehicle.costs : null);
    }
    if (vehicle && state.route && vehicle.route.length) {
      var centre = function (cellIndex) { return [(cellIndex % size + 0.5) * cell, (Math.floor(cellIndex / size) + 0.5) * cell]; };
      ctx.strokeStyle = "rgba(28,95,214,0.85)"; ctx.lineWidth = Math.max(2, cell * 0.3);
      ctx.lineJoin = "round"; ctx.lineCap = "round";
      ctx.beginPath();
      vehicle.route.forEach(function (cellIndex, step) {
        var point = centre(cellIndex);
        if (step === 0) ctx.moveTo(point[0], point[1]); else ctx.lineTo(point[0], point[1]);
      });
      ctx.stroke();
    }
    Object.keys(ui.vehicles).forEach(function (name) {
      ui.vehicles[name].className = name === state.vehicle ? "active" : "";
      ui.vehicles[name].disabled = !(name in item.vehicles);
      ui.rows[name].className = name === state.vehicle ? "current" : "";
    });
    ui.select.value = state.scenario;
    if (!vehicle) ui.info.textContent = state.vehicle + " is not driven on this scenario";
    else if (vehicle.cost === null) ui.info.textContent = state.vehicle + " cannot reach G";
    else ui.info.textContent = state.vehicle + ": optimal route cost " + vehicle.cost + ", " + (vehicle.route.length - 1) +
      " steps" + (vehicle.optimal_routes > 1 ? "; " + vehicle.optimal_routes + " routes share this cost" : "; the only optimal route");
  }

  function hover(event) {
    var rect = ui.canvas.getBoundingClientRect();
    var column = Math.floor((event.clientX - rect.left) / cell), row = Math.floor((event.clientY - rect.top) / cell);
    if (row < 0 || column < 0 || row >= size || column >= size) return;
    var index = row * size + column, token = VIZ.token(scenario().map, index), vehicle = vehicleData();
    var cost = vehicle ? VIZ.token(vehicle.costs, index) : 0;
    ui.tip.textContent = "row " + row + ", column " + column + ": " + data.token_names[token] + " — " +
      (cost ? "costs " + state.vehicle + " " + cost + " to enter" : state.vehicle + " may not enter");
  }

  function setScenario(index) {
    state.scenario = Math.max(0, Math.min(data.scenarios.length - 1, index));
    if (!(state.vehicle in scenario().vehicles)) state.vehicle = Object.keys(scenario().vehicles)[0];
    draw();
  }

  function setVehicle(vehicle) { state.vehicle = vehicle; draw(); }

  buildControls();
  buildContent();
  var params = VIZ.hashParams();
  if (params.scenario) state.scenario = Math.max(0, Math.min(data.scenarios.length - 1, parseInt(params.scenario, 10) || 0));
  if (params.vehicle in ui.vehicles) state.vehicle = params.vehicle;
  setScenario(state.scenario);

  window.VIZ_SELFTEST = function () {
    var failures = [];
    var options = ui.select.querySelectorAll("option").length;
    if (options !== data.scenarios.length) failures.push(options + " scenarios listed for " + data.scenarios.length);
    var switches = 0;
    data.scenarios.slice(0, 3).forEach(function (item, index) {
      ui.select.value = index;
      ui.select.dispatchEvent(new Event("change"));
      var seen = {};
      Object.keys(item.vehicles).forEach(function (vehicle) {
        ui.vehicles[vehicle].click();
        if (state.vehicle !== vehicle) failures.push("the " + vehicle + " button did not select it");
        seen[vehicle] = VIZ.snapshot(document.getElementById("content"));
      });
      var names = Object.keys(seen);
      names.forEach(function (a, i) {
        names.slice(i + 1).forEach(function (b) {
          // The map shows where a vehicle may drive and its route (costs are in the table and the text).
          var drawn = function (name) {
            return item.vehicles[name].costs.replace(/[^0]/g, "1") + JSON.stringify(item.vehicles[name].route);
          };
          if (drawn(a) !== drawn(b) && seen[a] === seen[b]) failures.push(item.title + ": " + a + " and " + b + " look the same");
          if (seen[a] !== seen[b]) switches += 1;
        });
      });
    });
    return {ok: failures.length === 0, failures: failures, page: "routing-explorer", examples: options,
            vehicles: data.vehicles.length, stepping_changed_grid: switches > 0, grid_changes: switches};
  };
})();
