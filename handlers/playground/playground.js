// The playground: a form over our own public API (v1/models, v1/images/generations and
// v1/images/edits), streamed results, and a gallery of this visit's images. URLs are resolved
// against the page (document.baseURI), never the site root, so a proxy's path prefix just works.

import { KeyNeeded, apiUrl, call, errorOf, hasKey, storeKey } from "./api.js";
import { MaskPainter } from "./mask.js";
import { readEvents } from "./stream.js";
import { Gallery } from "./gallery.js";
import { isLong, runJob } from "./jobs.js";

const $ = (id) => document.getElementById(id);
const PARTIAL_IMAGES = 2;
// Error params the form can point at; any other param (or none) is shown at the top.
const FIELD_ERRORS = {
  prompt: "prompt-error", model: "model-error", negative_prompt: "negative_prompt-error", size: "size-error",
  n: "n-error", quality: "quality-error", style: "style-error", output_format: "output_format-error", seed: "seed-error",
  num_inference_steps: "num_inference_steps-error", guidance_scale: "guidance_scale-error",
  image: "image-error", "image[]": "image-error", mask: "mask-error", lora: "lora-error",
};

const form = $("form");
const models = new Map(); // id -> the model object from v1/models
let inputs = []; // edit inputs, in order: [{blob, name, url}]; the first is the edited one
let running = null; // the AbortController of the request in flight
let afterKey = null; // what to retry once a key is given

const painter = new MaskPainter($("mask-canvas"), { brush: $("brush"), onChange: describeEdit });

// ---- The API key: asked for only when the server answers 401, then kept (api.js).

/** call() for this page: a 401 shows the key box, and `retry` runs once a key is given. */
function callApi(path, init, retry) {
  return call(path, init, (message) => {
    afterKey = retry;
    $("key-message").textContent = message;
    $("key-panel").hidden = false;
    $("api-key").focus();
    setStatus(`${message} Enter it in the API key box.`);
  });
}

$("key-panel").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("api-key").value.trim();
  if (!value) return $("api-key").focus();
  storeKey(value);
  $("api-key").value = "";
  $("key-panel").hidden = true;
  const retry = afterKey;
  afterKey = null;
  retry?.();
});

// ---- Status and errors: every failure is shown, next to its field when the error names one.

function setStatus(text) {
  $("status").textContent = text;
}

function showError(error) {
  const slot = $(FIELD_ERRORS[error.param] ?? "");
  // A field the page does not show (a hidden negative prompt) cannot hold its error.
  if (slot && slot.parentElement.closest("[hidden]") === null) {
    slot.textContent = error.message;
    slot.hidden = false;
    const fields = document.querySelectorAll(`[aria-describedby~="${slot.id}"]`);
    fields.forEach((field) => field.setAttribute("aria-invalid", "true"));
    [...fields].find((field) => field.offsetParent !== null)?.focus();
  } else {
    const top = $("top-error");
    top.textContent = error.param ? `${error.param}: ${error.message}` : error.message;
    top.hidden = false;
  }
  setStatus(`Failed: ${error.message}`);
}

function clearErrors() {
  for (const slot of document.querySelectorAll(".field-error, #top-error")) {
    slot.hidden = true;
    slot.textContent = "";
  }
  document.querySelectorAll("[aria-invalid]").forEach((field) => field.removeAttribute("aria-invalid"));
}

// A bug in the page must not fail silently either.
window.addEventListener("error", (event) => showError({ message: `Page error: ${event.message}` }));
window.addEventListener("unhandledrejection", (event) => {
  if (!(event.reason instanceof KeyNeeded)) showError({ message: `Page error: ${event.reason?.message ?? event.reason}` });
});

// ---- Models and the fields that follow the chosen one.

async function loadModels() {
  setStatus("Loading models…");
  const response = await callApi("v1/models?type=image_generation", {}, loadModels);
  if (!response.ok) return showError(await errorOf(response));
  const { data } = await response.json();
  const picker = $("model");
  const previous = picker.value;
  picker.replaceChildren(...data.map((model) => new Option(`${model.id} (${model.capabilities.tasks.join(", ")})`, model.id)));
  data.forEach((model) => models.set(model.id, model));
  if (models.has(previous)) picker.value = previous;
  followModel();
  setStatus(modelsSummary(data));
}

/** "8 models: 1 ready, 7 load on first use." — ready only counts the loaded ones. */
function modelsSummary(data) {
  const count = (...states) => data.filter((model) => states.includes(model.state)).length;
  const parts = [`${count("ready")} ready`];
  const later = count("not_loaded", "remote");
  if (later) parts.push(`${later} load${later === 1 ? "s" : ""} on first use`);
  if (count("loading")) parts.push(`${count("loading")} loading`);
  if (count("failed")) parts.push(`${count("failed")} failed`);
  return `${data.length} model${data.length === 1 ? "" : "s"}: ${parts.join(", ")}.`;
}

function currentModel() {
  return models.get($("model").value);
}

function followModel() {
  const model = currentModel();
  if (!model) return;
  const caps = model.capabilities;
  $("model-info").textContent = [
    model.description,
    `Tasks: ${caps.tasks.join(", ")}.`,
    `Sizes: ${caps.sizes.join(", ")} (default ${caps.default_size}), or any WxH from ${caps.min_side} to ${caps.max_side} on multiples of ${caps.size_multiple}.`,
    `Up to ${caps.max_n} images per request.`,
    `Edits take ${caps.max_input_images === 1 ? "one image" : `up to ${caps.max_input_images} images (the first is edited, the others are references)`}; without a mask: ${caps.edits === "instruction" ? "instruction edit" : "image-to-image"}.`,
  ].join(" ");

  const size = $("size");
  const chosen = size.value;
  size.replaceChildren(
    new Option(`auto (${caps.default_size}; edits: the image's size)`, "auto"),
    ...caps.sizes.map((name) => new Option(name, name)),
    new Option("Custom…", "custom"),
  );
  size.value = [...size.options].some((option) => option.value === chosen) ? chosen : "auto";
  followSize();

  const n = $("n");
  n.max = caps.max_n;
  if (Number(n.value) > caps.max_n) n.value = caps.max_n;
  $("negative-field").hidden = !caps.negative_prompt;
  // LoRAs: offered only for a model that has some (the server lists them per model).
  const loras = model.loras ?? [];
  $("lora-field").hidden = loras.length === 0;
  $("lora-names").replaceChildren(...loras.map((lora) => new Option(lora.name, lora.name)));
  $("lora-info").textContent = loras.length
    ? `${model.id} takes: ${loras.map((lora) => lora.name).join(", ")}. Several: name:scale, name:scale (scale −2 to 2, default 1).`
    : "";
  $("images").multiple = caps.max_input_images > 1;
  $("images-hint").textContent = caps.max_input_images > 1
    ? `Up to ${caps.max_input_images} images: the first is edited, the others are references the prompt can name.`
    : `${model.id} edits one image.`;
  describeEdit();
}

function followSize() {
  const custom = $("size").value === "custom";
  $("custom-size-field").hidden = !custom;
  if (custom && document.activeElement === $("size")) $("custom-size").focus();
}

function followMode() {
  const edit = form.elements.mode.value === "edit";
  $("edit-panel").hidden = !edit;
  $("run").textContent = edit ? "Edit" : "Generate";
}

$("model").addEventListener("change", followModel);
$("size").addEventListener("change", followSize);
for (const radio of form.elements.mode) radio.addEventListener("change", followMode);

// ---- Edit inputs: files chosen, dropped, or taken from the gallery; the mask over the first.

function setInputs(next) {
  const firstChanged = next[0] !== inputs[0];
  inputs.filter((input) => !next.includes(input)).forEach((input) => URL.revokeObjectURL(input.url));
  inputs = next;
  const list = $("input-list");
  list.replaceChildren(...inputs.map((input, index) => {
    const item = document.createElement("li");
    const thumb = Object.assign(document.createElement("img"), { src: input.url, alt: "" });
    const label = Object.assign(document.createElement("span"), {
      textContent: `${index === 0 ? "Edited" : "Reference"}: ${input.name}`,
    });
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "Remove" });
    remove.setAttribute("aria-label", `Remove ${input.name}`);
    remove.addEventListener("click", () => setInputs(inputs.filter((other) => other !== input)));
    item.append(thumb, label, remove);
    return item;
  }));
  if (!firstChanged) return;
  $("mask-area").hidden = inputs.length === 0;
  if (inputs.length) $("mask-image").src = inputs[0].url; // its load event resets the mask
  describeEdit();
}

function addInputs(blobs, front = false) {
  const max = currentModel()?.capabilities.max_input_images ?? 1;
  const added = [...blobs].filter((blob) => blob.type.startsWith("image/") || blob.type === "")
    .map((blob) => ({ blob, name: blob.name || "image.png", url: URL.createObjectURL(blob) }));
  if (!added.length) return showError({ param: "image", message: "Those files are not images." });
  let next = front ? [...added, ...inputs] : [...inputs, ...added];
  if (max === 1) next = front ? [added[0]] : [added[added.length - 1]]; // one image: the new one replaces the old
  setInputs(next);
  setStatus(`${inputs.length} input image${inputs.length === 1 ? "" : "s"}${inputs.length > max ? `: ${currentModel()?.id} takes at most ${max}` : ""}.`);
}

$("images").addEventListener("change", (event) => {
  addInputs(event.target.files);
  event.target.value = ""; // so choosing the same file again still fires
});
$("mask-image").addEventListener("load", (event) => painter.reset(event.target.naturalWidth, event.target.naturalHeight));
$("clear-mask").addEventListener("click", () => painter.clear());
$("invert-mask").addEventListener("click", () => painter.invert());

const zone = $("edit-panel");
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  addInputs(event.dataTransfer.files);
});

function describeEdit() {
  const caps = currentModel()?.capabilities;
  $("edit-kind").textContent = painter.painted
    ? "Masked edit: the painted area is repainted; every other pixel comes back unchanged."
    : caps?.edits === "instruction"
      ? "No mask: an instruction edit. The model follows the prompt on the whole image (\"make it night\")."
      : "No mask: image-to-image. The model re-imagines the whole image under the prompt (or only its transparent pixels, if it has any).";
}

// ---- Running a request and streaming its images into the gallery.

function fields() {
  const value = (id) => $(id).value.trim();
  const out = {
    model: value("model") || undefined,
    prompt: $("prompt").value,
    n: Number(value("n") || 1),
    size: value("size") === "custom" ? value("custom-size") : value("size"),
    quality: value("quality"),
    style: value("style"),
    response_format: "b64_json",
    stream: true,
    partial_images: PARTIAL_IMAGES,
  };
  // Optional extensions: sent only when set (an empty box means "the server decides").
  if (value("output_format") !== "png") out.output_format = value("output_format"); // png: the default
  if (value("seed")) out.seed = Number(value("seed"));
  if (!$("negative-field").hidden && value("negative_prompt")) out.negative_prompt = value("negative_prompt");
  if (!$("lora-field").hidden && value("lora")) out.lora = loraList(value("lora"));
  if (value("num_inference_steps")) out.num_inference_steps = Number(value("num_inference_steps"));
  if (value("guidance_scale")) out.guidance_scale = Number(value("guidance_scale"));
  return JSON.parse(JSON.stringify(out)); // drops the undefined model
}

/** "ink:0.8, film" -> [{name: "ink", scale: 0.8}, {name: "film"}]; a bad scale is the server's to name. */
function loraList(text) {
  return text.split(",").map((item) => item.trim()).filter(Boolean).map((item) => {
    const at = item.lastIndexOf(":");
    return at < 0 ? { name: item } : { name: item.slice(0, at).trim(), scale: Number(item.slice(at + 1)) };
  });
}

async function run() {
  clearErrors();
  const kind = form.elements.mode.value;
  const request = { kind, fields: fields(), imageNames: [], hasMask: false, keyed: hasKey() };
  const path = kind === "generate" ? "v1/images/generations" : "v1/images/edits";
  request.url = apiUrl(path);
  // A long request runs as a job (polled, with its progress shown), not streamed.
  const asJob = $("as-job").checked || isLong(request.fields);
  if (asJob) {
    delete request.fields.stream;
    delete request.fields.partial_images;
  }
  let init;
  if (kind === "generate") {
    init = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request.fields) };
  } else {
    if (!inputs.length) return showError({ param: "image", message: "Choose an image to edit first." });
    const body = new FormData();
    const part = inputs.length > 1 ? "image[]" : "image"; // as the openai SDKs send them
    inputs.forEach((input) => body.append(part, input.blob, input.name));
    request.imageNames = inputs.map((input) => input.name);
    const mask = await painter.toBlob();
    if (mask) body.append("mask", mask, "mask.png");
    request.hasMask = Boolean(mask);
    // Text parts; a list (the LoRAs) as one part holding its JSON, a spelling the server reads.
    for (const [name, value] of Object.entries(request.fields)) {
      body.append(name, typeof value === "object" ? JSON.stringify(value) : String(value));
    }
    init = { method: "POST", body };
  }

  running = new AbortController();
  setRunning(true);
  const results = gallery.run(request);
  const started = performance.now();
  const count = request.fields.n;
  setStatus(`${kind === "generate" ? "Generating" : "Editing"} ${count} image${count === 1 ? "" : "s"}…`);
  try {
    if (asJob) return await runAsJob(path, init, results, started);
    const response = await callApi(path, { ...init, signal: running.signal }, run);
    if (!response.ok) return showError(await errorOf(response));
    let failure = null;
    await readEvents(response, (event) => {
      if (event.type === "error" || event.error) failure = event.error ?? { message: "The server reported an error." };
      else if (event.type.endsWith(".partial_image")) results.partial(event);
      else if (event.type.endsWith(".completed")) results.final(event, (performance.now() - started) / 1000);
    });
    if (failure) throw Object.assign(new Error(failure.message), { api: failure });
    if (results.done < count) throw new Error(`The stream ended after ${results.done} of ${count} images.`);
    setStatus(`Done: ${count} image${count === 1 ? "" : "s"} in ${((performance.now() - started) / 1000).toFixed(2)} s.`);
  } catch (error) {
    if (error instanceof KeyNeeded) return;
    results.discardUnfinished();
    if (running.signal.aborted) setStatus("Cancelled.");
    else showError(error.api ?? { message: error instanceof TypeError ? `Could not reach the server: ${error.message}` : error.message });
  } finally {
    $("job-progress").hidden = true;
    setRunning(false);
    $("gallery-empty").hidden = $("gallery").children.length > 0;
  }
}

/** The request as a job: its progress shown as it runs, then its result's images in the gallery. */
async function runAsJob(path, init, results, started) {
  const progress = $("job-progress");
  const { response, job } = await runJob(path, init, (where, each) => callApi(where, each, run), {
    signal: running.signal,
    onProgress(job) {
      const { step, steps } = job.progress;
      progress.hidden = false;
      progress.max = steps;
      progress.value = step;
      setStatus(`Job ${job.id}: ${job.status.replace("_", " ")}, step ${step} of ${steps}.`);
    },
  });
  if (response) return showError(await errorOf(response));
  if (job.status !== "completed") {
    const failure = job.error ?? { message: `The job was ${job.status}.` };
    throw Object.assign(new Error(failure.message), { api: failure });
  }
  const { data, size, output_format } = job.result;
  const seconds = (performance.now() - started) / 1000;
  data.forEach((image, index) => results.final({ ...image, image_index: index, size, output_format }, seconds));
  setStatus(`Done: job ${job.id}, ${data.length} image${data.length === 1 ? "" : "s"} in ${seconds.toFixed(2)} s.`);
}

function setRunning(on) {
  $("run").disabled = on;
  $("cancel").hidden = !on;
  if (!on) running = null;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  run();
});
$("cancel").addEventListener("click", () => running?.abort());
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});

// ---- The gallery's actions that reach back into the form.

const gallery = new Gallery($("gallery"), $("card-template"), {
  setStatus,
  useAsInput(file) {
    form.elements.mode.value = "edit";
    followMode();
    addInputs([file], true);
    $("edit-panel").scrollIntoView({ block: "nearest" });
    $("images").focus();
  },
  reuseSeed(seed) {
    $("seed").value = seed;
    $("seed").focus();
    setStatus(`Seed ${seed} set: run again with n = 1 to remake this image.`);
  },
});

followMode();
loadModels().catch((error) => { if (!(error instanceof KeyNeeded)) showError({ message: `Could not load the models: ${error.message}` }); });
