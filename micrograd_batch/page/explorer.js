"use strict";
// Steps through backprop on a batch scene. startExplorer(root, data): `root` holds an SVG drawn from
// viz.scene_dot (node ids v<i>, edge ids e<i>_<k>) in .mb-graph, the buttons [data-action], .mb-status,
// .mb-now, .mb-params, .mb-note, and the checkboxes .mb-shortcut and .mb-fit; `data` is explore.page_data(scene).
// Returns {go(n), steps(), stop()}: stop() removes its key listener (call it before starting again).
function startExplorer(root, data) {
  const steps = data.steps;
  const svg = root.querySelector(".mb-graph svg");
  const found = new Map();
  let at = 0;

  function buildPanel() {  // one row per parameter: a cell per example, the running grad, the shortcut
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    const cell = (row, tag, text, className) => {
      const el = document.createElement(tag);
      el.textContent = text;
      if (className) el.className = className;
      row.appendChild(el);
      return el;
    };
    cell(head, "th", "parameter");
    data.columns.forEach((c) => { cell(head, "th", c === "o" ? "other" : "ex " + c).style.color = data.colours[c]; });
    cell(head, "th", "grad");
    cell(head, "th", "shortcut", "sc");
    cell(head, "th", "difference", "sc");
    const body = table.createTBody();
    data.params.forEach((p, r) => {
      const row = body.insertRow();
      cell(row, "th", p.name);
      data.columns.forEach((c) => { cell(row, "td", "").id = "p" + r + "-e" + c; });
      const total = cell(row, "td", "", "total");
      total.id = "p" + r + "-t";
      total.setAttribute("data-label", p.label);
      if (data.shortcut) {
        const shortcut = Number(data.shortcut[r]);
        cell(row, "td", shortcut.toPrecision(4), "sc").setAttribute("data-shortcut", data.shortcut[r]);
        cell(row, "td", (shortcut - Number(data.grads[p.node])).toPrecision(3), "sc");
      }
    });
    const box = root.querySelector(".mb-params");
    box.replaceChildren(table);
    table.querySelectorAll("td[id]").forEach((td) => found.set(td.id, td));
  }
  function element(key) {  // "d5"/"g5": the data/grad text of node v5 in the SVG; "p2-e1": a panel cell
    if (!found.has(key)) {
      const texts = svg.querySelectorAll("#v" + key.slice(1) + " > text");
      found.set(key, texts[key[0] === "d" ? 1 : 2]);  // the lines: name = formula, data, grad
    }
    return found.get(key);
  }
  const node = (i) => svg.querySelector("#v" + i);
  const natural = parseFloat(svg.getAttribute("width")) * 4 / 3;  // pt -> CSS px
  if (natural) {  // fitted to the width, but never below 3/4 nor above 5/4 of its natural size
    svg.style.minWidth = (0.75 * natural).toFixed(0) + "px";
    svg.style.maxWidth = (1.25 * natural).toFixed(0) + "px";
  }
  buildPanel();
  root.querySelector(".mb-note").textContent = data.note;
  root.querySelector(".mb-shortcut").disabled = !data.shortcut;
  const keys = [...found.keys()];
  data.drawn.forEach((i) => keys.push("d" + i, "g" + i));

  function stateAt(count) {  // key -> [key, repr, shown] after the first `count` steps
    const values = new Map(data.initial.map((change) => [change[0], change]));
    for (let s = 0; s < count; s++) steps[s].set.forEach((change) => values.set(change[0], change));
    return values;
  }
  function show(key, change) {
    const el = element(key);
    if (!el) return;
    const prefix = key[0] === "d" ? "data " : key[0] === "g" ? "grad " : "";
    el.textContent = prefix + (change ? change[2] : prefix ? "·" : "");
    if (key[0] === "p") el.title = change ? change[1] : "";
    if (el.hasAttribute("data-label")) {
      if (change) el.setAttribute("data-grad", change[1]); else el.removeAttribute("data-grad");
    }
  }
  function mark(step, values) {
    svg.querySelectorAll(".cur, .upd, .todo, .hot").forEach((el) => el.classList.remove("cur", "upd", "todo", "hot"));
    root.querySelectorAll(".mb-params .fresh").forEach((el) => el.classList.remove("fresh"));
    data.drawn.forEach((i) => { if (!values.has("d" + i) && node(i)) node(i).classList.add("todo"); });
    if (!step) return;
    if (node(step.node)) node(step.node).classList.add("cur");
    step.touch.forEach((i) => { if (node(i)) node(i).classList.add("upd"); });
    svg.querySelectorAll('[id^="e' + step.node + '_"]').forEach((el) => el.classList.add("hot"));
    step.set.forEach((change) => { if (change[0][0] === "p") element(change[0]).classList.add("fresh"); });
  }
  function statusText() {
    const forward = data.backward;
    if (at === 0) return "Start: the inputs and parameters are known. Press Step (→).";
    if (at <= forward) return "Forward pass: value " + at + " of " + forward;
    const done = at === steps.length ? " (done: every gradient is final)" : "";
    return "Backward pass: node " + (at - forward) + " of " + (steps.length - forward) + done;
  }
  function reveal(step) {  // scroll the graph just enough to show the current node and its inputs
    const near = (i) => !data.far.includes(i);  // the parameters' box is often far away: only the node's own inputs
    const parts = step ? [step.node, ...step.touch.filter(near)].map(node).filter(Boolean) : [];
    if (!parts.length) return;
    const box = root.querySelector(".mb-graph");
    const seen = box.getBoundingClientRect();
    const rects = parts.map((el) => el.getBoundingClientRect());
    const top = Math.min(...rects.map((r) => r.top)), bottom = Math.max(...rects.map((r) => r.bottom));
    const left = Math.min(...rects.map((r) => r.left)), right = Math.max(...rects.map((r) => r.right));
    if (top < seen.top || bottom > seen.bottom) box.scrollTop += (top + bottom) / 2 - (seen.top + seen.bottom) / 2;
    if (left < seen.left || right > seen.right) box.scrollLeft += (left + right) / 2 - (seen.left + seen.right) / 2;
  }
  function describe(step) {
    root.querySelector(".mb-status").textContent = statusText();
    const lines = step ? step.lines : ["Step walks the forward pass, then the backward pass."];
    root.querySelector(".mb-now").replaceChildren(...lines.map((line) => {
      const div = document.createElement("div");
      div.textContent = line;
      return div;
    }));
  }
  function render() {
    const values = stateAt(at);
    keys.forEach((key) => show(key, values.get(key)));
    const step = at > 0 ? steps[at - 1] : null;
    mark(step, values);
    describe(step);
    reveal(step);
    root.querySelectorAll("[data-action=reset], [data-action=back]").forEach((b) => { b.disabled = at === 0; });
    root.querySelectorAll("[data-action=step], [data-action=run]").forEach((b) => { b.disabled = at === steps.length; });
  }
  function go(count) {
    at = Math.max(0, Math.min(steps.length, count));
    render();
  }
  const actions = { step: () => go(at + 1), back: () => go(at - 1), run: () => go(steps.length), reset: () => go(0) };
  const keyActions = { ArrowRight: "step", ArrowLeft: "back", End: "run", Home: "reset" };
  root.querySelectorAll("button[data-action]").forEach((button) => {
    button.addEventListener("click", actions[button.dataset.action]);
  });
  function onKey(event) {  // keys anywhere but in a text field
    const action = keyActions[event.key];
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (action && !event.altKey && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      actions[action]();
    }
  }
  document.addEventListener("keydown", onKey);
  root.querySelector(".mb-shortcut").addEventListener("change", (event) => {
    root.classList.toggle("shortcut", event.target.checked);
  });
  root.querySelector(".mb-fit").addEventListener("change", (event) => {
    root.querySelector(".mb-graph").classList.toggle("natural", !event.target.checked);
  });
  render();
  return { go, steps: () => steps.length, stop: () => document.removeEventListener("keydown", onKey) };
}
