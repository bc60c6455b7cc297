// Child process: run an ONNX model on onnxruntime-node (the version deepImageJ embeds).
// node ort_runner.js REQUEST.json ; REQUEST: {module_dir, model, input_name, input_raw, shape, output_raw}
// The input is raw little-endian float32; the output is written as raw little-endian bytes of its own element type.
// Prints one JSON line {ok, ort_version, shape, type} (type as onnxruntime names it: float32, int32, int64, uint8,
// bool, ...) or {ok:false, stage, error}.
"use strict";
const fs = require("fs");
const path = require("path");

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  let ort;
  try {
    ort = require(path.join(req.module_dir, "onnxruntime-node"));
  } catch (e) {
    return { ok: false, stage: "load runtime", error: String(e && e.message || e) };
  }
  let version = "unknown";
  try {
    version = JSON.parse(fs.readFileSync(path.join(req.module_dir, "onnxruntime-node", "package.json"), "utf8")).version;
  } catch (e) { /* keep unknown */ }
  let session;
  try {
    session = await ort.InferenceSession.create(req.model, { executionProviders: ["cpu"] });
  } catch (e) {
    return { ok: false, ort_version: version, stage: "load model", error: String(e && e.message || e) };
  }
  const buf = fs.readFileSync(req.input_raw);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const feeds = {};
  feeds[req.input_name || session.inputNames[0]] = new ort.Tensor("float32", data, req.shape);
  let results;
  try {
    results = await session.run(feeds);
  } catch (e) {
    return { ok: false, ort_version: version, stage: "run", error: String(e && e.message || e) };
  }
  const out = results[session.outputNames[0]];
  if (!out.data || !ArrayBuffer.isView(out.data)) {
    return { ok: false, ort_version: version, stage: "read output", error: `output of type ${out.type} is not numeric` };
  }
  fs.writeFileSync(req.output_raw, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength));
  return { ok: true, ort_version: version, shape: Array.from(out.dims), type: out.type };
}

main().then(
  (answer) => { process.stdout.write(JSON.stringify(answer) + "\n"); },
  (e) => { process.stdout.write(JSON.stringify({ ok: false, stage: "runner", error: String(e && e.message || e) }) + "\n"); }
);
