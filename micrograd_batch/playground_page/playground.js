// The playground page: a batch editor, the explorer's stepping, training you watch and a code cell.
// Every number comes from Python (worker.js runs micrograd_batch.playground in Pyodide); this file only
// moves text between the page and Python and draws.
/* global startExplorer */

const START = [["0.5", "-1.0", "1.0"], ["-0.3", "0.8", "-0.5"], ["1.2", "0.4", "0.2"]]; // lesson 1's batch
const FIELDS = ["x1", "x2", "y"];
const COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#8C6D31", "#7F7F7F"];
const $ = (selector) => document.querySelector(selector);
const lastLine = (text) => text.trim().split("\n").pop();
const short = (repr) => (Number(repr) === 0 ? "0" : Number(repr).toPrecision(4));

/** The number typed in a box, or an Error naming the box: Python gets numbers, never text. */
function number(text, what) {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value)) throw new Error(`${what}: expected a number, got "${text}"`);
  return value;
}

/** One Pyodide in a Web Worker; `call(name, arg, progress)` resolves to its answer, rejects with the traceback. */
class Python {
  constructor() {
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.pending = new Map();
    this.next = 0;
    this.worker.onmessage = ({ data }) => {
      const call = this.pending.get(data.id);
      if (!call) return;
      if ("progress" in data) return call.progress?.(data.progress);
      this.pending.delete(data.id);
      if ("error" in data) call.reject(new Error(data.error));
      else call.resolve(data.value);
    };
    this.worker.onerror = (event) => this.stop(`Python's worker failed: ${event.message}`);
  }
  call(name, arg = "", progress = null) {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, progress });
      this.worker.postMessage({ id, call: name, arg });
    });
  }
  stop(reason) {
    this.worker.terminate();
    for (const call of this.pending.values()) call.reject(new Error(reason));
    this.pending.clear();
  }
}

const python = new Python();
window.playground = { run: (source) => python.call("run", String(source)) };

// 1. The batch editor ------------------------------------------------------------------------------------
const rows = $("#batch tbody");

function addRow(values = ["0", "0", "0"]) {
  const row = rows.insertRow();
  row.insertCell().className = "number";
  FIELDS.forEach((field, k) => {
    const input = Object.assign(document.createElement("input"), { value: values[k], size: 7 });
    input.dataset.field = field;
    input.setAttribute("aria-label", field);
    row.insertCell().append(input);
  });
  const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "✕",
                                                                   title: "remove this example", className: "remove" });
  row.insertCell().append(remove);
  renumber();
}

function renumber() {
  [...rows.rows].forEach((row, i) => {
    row.dataset.example = String(i + 1);
    row.cells[0].textContent = `ex ${i + 1}`;
    row.style.color = COLOURS[i % COLOURS.length];
  });
}

function batch() {
  if (!rows.rows.length) throw new Error("The batch is empty: add an example.");
  return [...rows.rows].map((row, i) =>
    FIELDS.map((field) => number(row.querySelector(`[data-field="${field}"]`).value, `example ${i + 1}, ${field}`)));
}

let latest = 0;
async function recompute() {
  const ticket = ++latest;
  const params = $("#params");
  params.classList.add("busy");
  try {
    const state = JSON.parse(await python.call("batch_state", JSON.stringify(batch())));
    if (ticket !== latest) return;
    showParams(state);
    showExplorer(state);
    $("#batch-error").hidden = true;
  } catch (error) {
    if (ticket !== latest) return;
    params.replaceChildren();
    $("#batch-summary").textContent = "";
    clearExplorer();
    Object.assign($("#batch-error"), { hidden: false, textContent: lastLine(error.message) });
  } finally {
    if (ticket === latest) {
      params.classList.remove("busy");
      params.dataset.updates = String(Number(params.dataset.updates || 0) + 1);
    }
  }
}

function showParams({ m, loss, params }) {
  const head = ["parameter", "value", `grad = Σ ex i`, ...Array.from({ length: m }, (_, i) => `ex ${i + 1}`)];
  const table = $("#params");
  table.replaceChildren();
  table.createTBody();
  const top = table.createTHead().insertRow();
  head.forEach((text) => (top.appendChild(document.createElement("th")).textContent = text));
  for (const p of params) {
    const row = table.tBodies[0].insertRow();
    const cell = row.insertCell();
    Object.assign(cell.dataset, { label: p.label, value: p.value, grad: p.grad });
    cell.textContent = p.label;
    cell.className = "param";
    [p.value, p.grad, ...p.shares].forEach((repr, k) => {
      const td = row.insertCell();
      Object.assign(td, { textContent: short(repr), title: repr, className: k === 1 ? "num total" : "num" });
      if (k >= 2) td.style.color = COLOURS[(k - 2) % COLOURS.length];
    });
  }
  $("#batch-summary").textContent = `m = ${m} examples, so 1/m = ${short(String(1 / m))} on each edge into the mean; ` +
    `loss = ${short(loss)}. Column "ex i" is (1/m)·∂L_i/∂θ, what example i adds to the gradient.`;
}

rows.addEventListener("change", recompute);
rows.addEventListener("click", (event) => {
  if (!event.target.classList.contains("remove")) return;
  event.target.closest("tr").remove();
  renumber();
  recompute();
});
$("#add-example").addEventListener("click", () => {
  addRow();
  recompute();
});

// 2. The explorer's stepping: the explorer page's own markup (explorer.html) and code (explorer.js) on the
// scene Python sent, its DOT laid out by Graphviz in the browser.
let layout = null;
let controls = null;
let stepping = null;

async function explorerControls() {
  const page = new DOMParser().parseFromString(await (await fetch("explorer.html")).text(), "text/html");
  const markup = page.querySelector(".mb-explorer");
  markup.querySelector("header").remove();
  return markup;
}

function showExplorer({ explorer, dot }) {
  clearExplorer();
  const root = $("#explorer-root");
  root.replaceChildren(...controls.cloneNode(true).childNodes);
  root.querySelector(".mb-graph").replaceChildren(layout.renderSVGElement(dot));
  $("#explorer-summary").textContent = explorer.summary;
  stepping = startExplorer(root, explorer);
}

function clearExplorer() {
  stepping?.stop();
  stepping = null;
  $("#explorer-root").replaceChildren();
  $("#explorer-summary").textContent = "";
}

// 3. Training you watch ---------------------------------------------------------------------------------
let trainer = null;
const STOPPED = "stopped";
const runs = [];

$("#train").addEventListener("click", async () => {
  $("#train-error").hidden = true;
  const run = { colour: COLOURS[runs.length % COLOURS.length], loss: [] };
  try {
    const settings = Object.fromEntries(["lr", "momentum", "batch-size", "epochs"].map((name) =>
      [name.replace("-", "_"), number($(`#${name}`).value, $(`#${name}`).parentElement.textContent.trim())]));
    run.label = `batch ${settings.batch_size}, lr ${settings.lr}, momentum ${settings.momentum}`;
    trainer ??= new Python();
    runs.push(run);
    training(true);
    $("#loss-history").dataset.lossHistory = "[]";
    $("#train-status").textContent = "Starting Python for training…";
    await trainer.call("train", JSON.stringify(settings), (text) => {
      const epoch = JSON.parse(text);
      run.loss = epoch.loss;
      $("#loss-history").dataset.lossHistory = JSON.stringify(epoch.loss);
      $("#train-status").textContent = `${run.label}: epoch ${epoch.epoch} of ${settings.epochs}, ` +
        `loss ${epoch.loss.at(-1).toFixed(4)}`;
      drawLoss();
      drawBoundary(epoch);
    });
    $("#train-status").textContent += " (done)";
  } catch (error) {
    if (!run.loss.length && runs.includes(run)) runs.splice(runs.indexOf(run), 1);
    if (error.message === STOPPED) $("#train-status").textContent += ` (${STOPPED})`;
    else {
      $("#train-status").textContent = "";
      Object.assign($("#train-error"), { hidden: false, textContent: lastLine(error.message) });
    }
    drawLoss();
  } finally {
    training(false);
  }
});

$("#stop").addEventListener("click", () => {
  trainer.stop(STOPPED);
  trainer = null;
});

$("#clear-runs").addEventListener("click", () => {
  runs.splice(0, runs.length);
  drawLoss();
});

function training(busy) {
  $("#train").disabled = busy;
  $("#stop").disabled = !busy;
}

function drawLoss() {
  const canvas = $("#loss-chart");
  const g = canvas.getContext("2d");
  const [w, h, left, bottom] = [canvas.width, canvas.height, 44, 26];
  g.clearRect(0, 0, w, h);
  const epochs = Math.max(2, ...runs.map((run) => run.loss.length));
  const top = Math.max(1e-9, ...runs.flatMap((run) => run.loss));
  const x = (e) => left + ((e - 1) / (epochs - 1)) * (w - left - 10);
  const y = (v) => h - bottom - (v / top) * (h - bottom - 10);
  g.strokeStyle = "#999";
  g.fillStyle = "#333";
  g.font = "11px system-ui, sans-serif";
  g.strokeRect(left, 10, w - left - 10, h - bottom - 10);
  g.fillText("0", left - 14, h - bottom + 4);
  g.fillText(top.toPrecision(3), 2, 18);
  g.fillText(`epoch 1 … ${epochs}`, w / 2 - 30, h - 6);
  runs.forEach((run, k) => {
    g.strokeStyle = g.fillStyle = run.colour;
    g.beginPath();
    run.loss.forEach((v, e) => (e ? g.lineTo(x(e + 1), y(v)) : g.moveTo(x(1), y(v))));
    g.stroke();
    g.fillText(run.label, w - 220, 26 + 14 * k);
  });
}

function drawBoundary({ box, grid, above, data }) {
  const canvas = $("#boundary");
  const g = canvas.getContext("2d");
  const [w, h] = [canvas.width, canvas.height];
  above.forEach((up, k) => {
    g.fillStyle = up ? "#d6e8f5" : "#fbe6cc";
    g.fillRect(((k % grid) * w) / grid, (Math.floor(k / grid) * h) / grid, w / grid + 1, h / grid + 1);
  });
  for (const [[x1, x2], label] of data) {
    g.fillStyle = label > 0 ? COLOURS[0] : COLOURS[1];
    g.beginPath();
    g.arc(((x1 - box[0]) / (box[2] - box[0])) * w, ((box[3] - x2) / (box[3] - box[1])) * h, 3.5, 0, 2 * Math.PI);
    g.fill();
  }
}

// 4. The code cell ----------------------------------------------------------------------------------------
$("#run-code").addEventListener("click", async () => {
  const output = $("#output");
  Object.assign(output, { textContent: "Running…", className: "" });
  try {
    output.textContent = (await window.playground.run($("#code").value)) || "(nothing printed)";
  } catch (error) {
    Object.assign(output, { textContent: error.message, className: "error" });
  }
});

// Ready: Python, the package and the first batch's numbers ----------------------------------------------
START.forEach((values) => addRow(values));
drawLoss();
try {
  const graphviz = import("./viz/viz.js").then((viz) => viz.instance()); // after the worker has started
  [layout, controls] = await Promise.all([graphviz, explorerControls(), python.call("ready")]);
  await recompute();
  $("#progress").hidden = true;
  document.body.dataset.ready = "1";
} catch (error) {
  $("#progress").textContent = `The playground could not start: ${error.message}`;
}
