// The page's Python: Pyodide with micrograd_batch (unzipped from the site), answering the page's calls.
// A message {id, call, arg} is answered {id, value} or {id, error: the Python traceback}; `train` also
// sends {id, progress} after each epoch; `run` runs source in a fresh namespace and answers what it printed.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const here = (path) => new URL(path, import.meta.url).href;

const playground = (async () => {
  const download = fetch(here("./micrograd_batch.zip")); // while Pyodide starts
  const pyodide = await loadPyodide({ indexURL: here("./pyodide/") });
  const archive = await download;
  if (!archive.ok) throw new Error(`micrograd_batch.zip: HTTP ${archive.status}`);
  pyodide.unpackArchive(new Uint8Array(await archive.arrayBuffer()), "zip", { extractDir: "/home/pyodide/lib" });
  pyodide.runPython("import sys; sys.path.insert(0, '/home/pyodide/lib')");
  return pyodide;
})();

function run(pyodide, source) {
  const printed = [];
  const write = { batched: (line) => printed.push(line) };
  pyodide.setStdout(write);
  pyodide.setStderr(write);
  try {
    pyodide.runPython(source, { globals: pyodide.toPy({ __name__: "__main__" }), filename: "<code cell>" });
  } catch (error) { // the traceback from the cell on, without Pyodide's own frames
    throw new Error(error.message.replace(/(most recent call last\):\n)[\s\S]*?(?= {2}File "<code cell>")/, "$1"));
  } finally {
    pyodide.setStdout();
    pyodide.setStderr();
  }
  return printed.length ? printed.join("\n") + "\n" : "";
}

self.onmessage = async ({ data: { id, call, arg } }) => {
  try {
    const pyodide = await playground;
    const python = pyodide.pyimport("micrograd_batch.playground");
    const calls = {
      ready: () => "",
      batch_state: () => python.batch_state(arg),
      train: () => python.train(arg, (progress) => self.postMessage({ id, progress })),
      run: () => run(pyodide, arg),
    };
    self.postMessage({ id, value: calls[call]() });
  } catch (error) {
    self.postMessage({ id, error: String(error.message || error) });
  }
};
