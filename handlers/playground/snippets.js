// Copy-as-curl and copy-as-Python for one request exactly as the page sent it. The key itself
// never goes into a snippet: both read it from $OPENAI_API_KEY, as the openai SDK does.

// Fields the openai SDK takes as keyword arguments; the rest travel in extra_body.
const SDK_FIELDS = {
  generate: [
    "model", "prompt", "n", "size", "quality", "style", "response_format", "output_format", "stream", "partial_images",
  ],
  edit: ["model", "prompt", "n", "size", "quality", "response_format", "output_format", "stream", "partial_images"],
};

/** A POSIX shell word: single-quoted, with embedded single quotes closed, escaped, reopened. */
const sh = (text) => `'${String(text).replaceAll("'", `'\\''`)}'`;

/** A Python literal for a JSON value (strings via JSON, whose escapes Python reads the same). */
function py(value) {
  if (value === true) return "True";
  if (value === false) return "False";
  if (value === null) return "None";
  if (Array.isArray(value)) return `[${value.map(py).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${py(v)}`).join(", ")}}`;
  }
  return JSON.stringify(value);
}

/** `request`: {kind, url, fields, imageNames, hasMask, keyed} as recorded when it was sent. */
export function curlSnippet(request) {
  const lines = [`curl -N ${sh(request.url)}`];
  if (request.keyed) lines.push(`-H "Authorization: Bearer $OPENAI_API_KEY"`);
  if (request.kind === "generate") {
    lines.push(`-H 'Content-Type: application/json'`, `-d ${sh(JSON.stringify(request.fields, null, 2))}`);
  } else {
    const part = request.imageNames.length > 1 ? "image[]" : "image";
    for (const name of request.imageNames) lines.push(`-F ${sh(`${part}=@${name}`)}`);
    if (request.hasMask) lines.push(`-F ${sh("mask=@mask.png")}`);
    // --form-string: a prompt starting with @ or < is text, not a file to read.
    for (const [name, value] of Object.entries(request.fields)) {
      const text = typeof value === "object" ? JSON.stringify(value) : value; // the LoRAs, as the page sent them
      lines.push(`--form-string ${sh(`${name}=${text}`)}`);
    }
  }
  const note = request.hasMask ? "# mask.png: the mask painted in the playground (alpha 0 = edit)\n" : "";
  return note + lines.join(" \\\n  ");
}

export function pythonSnippet(request) {
  const { kind, fields } = request;
  const args = [];
  const extra = {};
  for (const [name, value] of Object.entries(fields)) {
    if (SDK_FIELDS[kind].includes(name)) args.push(`    ${name}=${py(value)},`);
    else extra[name] = value;
  }
  if (kind === "edit") {
    const files = request.imageNames.map((name) => `open(${py(name)}, "rb")`);
    // The SDK sends a list as image[] and a single file as image, as the page did.
    args.unshift(`    image=${files.length > 1 ? `[${files.join(", ")}]` : files[0]},`);
    if (request.hasMask) args.splice(1, 0, `    mask=open("mask.png", "rb"),  # the mask painted in the playground`);
  }
  if (Object.keys(extra).length) args.push(`    extra_body=${py(extra)},`);
  const call = kind === "generate" ? "generate" : "edit";
  const done = kind === "generate" ? "image_generation.completed" : "image_edit.completed";
  const baseUrl = request.url.replace(/\/images\/[a-z]+$/, "");
  return [
    "import base64",
    "import os",
    "",
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${py(baseUrl)}, api_key=os.environ.get("OPENAI_API_KEY", "sk-local"))`,
    `stream = client.images.${call}(`,
    ...args,
    ")",
    "for event in stream:",
    `    if event.type == ${py(done)}:`,
    `        with open(f"image-{event.image_index}-seed-{event.seed}.png", "wb") as out:`,
    "            out.write(base64.b64decode(event.b64_json))",
  ].join("\n");
}
