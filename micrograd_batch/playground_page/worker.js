// The page's Python: Pyodide with micrograd_batch (unzipped from the site), answering the page's calls.
// A message {id, call, arg} is answered {id, value} or {id, error: the Python traceback}; `train` also
// sends {id, progress} after each epoch.
import { loadPyodide } from "./pyodide/pyodide.mjs";

const here = (path) => new URL(path, import.meta.url).href;

const playground = (async () => {
  const pyodide = await loadPyodide({ indexURL: here("./pyodide/") });
  const archive = await fetch(here("./micrograd_batch.zip"));
  if (!archive.ok) throw new Error(`micrograd_batch.zip: HTTP ${archive.status}`);
  pyodide.unpackArchive(new Uint8Array(await archive.arrayBuffer()), "zip", { extractDir: "/home/pyodide/lib" });
  pyodide.runPython("import sys; sys.path.insert(0, '/home/pyodide/lib')");
  return pyodide.pyimport("micrograd_batch.playground");
})();

self.onmessage = async ({ data: { id, call, arg } }) => {
  try {
    const python = await playground;
    const calls = {
      ready: () => "",
      batch_state: () => python.batch_state(arg),
      train: () => python.train(arg, (progress) => self.postMessage({ id, progress })),
      run: () => python.run(arg),
    };
    self.postMessage({ id, value: calls[call]() });
  } catch (error) {
    self.postMessage({ id, error: String(error.message || error) });
  }
};
