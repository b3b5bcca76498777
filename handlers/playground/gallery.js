// The gallery of this visit's images: one card per image, showing its previews as they stream
// in, then the final image with its seed, its parameters and what can be done with it.

import { madeWith } from "./made_with.js";
import { curlSnippet, pythonSnippet } from "./snippets.js";

export class Gallery {
  /** hooks: setStatus(text), useAsInput(file), reuseSeed(seed). */
  constructor(list, template, hooks) {
    this.list = list;
    this.template = template;
    this.hooks = hooks;
  }

  /** The cards of one request (`request` as snippets.js reads it). */
  run(request) {
    return new GalleryRun(this, request);
  }
}

class GalleryRun {
  constructor(gallery, request) {
    this.gallery = gallery;
    this.request = request;
    this.cards = new Map(); // image_index -> its card
  }

  get done() {
    return [...this.cards.values()].filter((card) => card.dataset.final).length;
  }

  /** Removes the cards that never got their final image (a failed or cancelled run). */
  discardUnfinished() {
    for (const card of this.cards.values()) if (!card.dataset.final) card.remove();
  }

  partial(event) {
    const card = this.#card(event.image_index);
    card.dataset.partials = String(Number(card.dataset.partials) + 1);
    card.classList.add("pending");
    showImage(card, event, `Preview ${event.partial_image_index + 1} of image ${event.image_index + 1}`);
    // Not "of 2": a run with fewer steps than the previews asked for sends fewer.
    const text = `Preview ${event.partial_image_index + 1}…`;
    card.querySelector(".card-state").textContent = text;
    this.gallery.hooks.setStatus(`Image ${event.image_index + 1}: ${text}`);
  }

  final(event, seconds) {
    const { request, gallery: { hooks } } = this;
    const card = this.#card(event.image_index);
    card.dataset.final = "true";
    card.dataset.seed = String(event.seed);
    card.classList.remove("pending");
    showImage(card, event, `Result: ${request.fields.prompt.slice(0, 120)}`);
    card.querySelector(".card-state").textContent = `Seed ${event.seed} · ${event.size} · ${seconds.toFixed(2)} s`;
    // The steps and guidance the server used, as the image says (made_with.js).
    const used = madeWith(event.b64_json, event.output_format ?? "png");
    for (const [name, value] of Object.entries(used ?? {})) {
      const shown = card.querySelector(`dd[data-param="${name}"]`);
      if (shown && value !== undefined) shown.textContent = value;
    }
    const type = `image/${event.output_format ?? "png"}`;
    const download = card.querySelector(".download");
    download.href = card.querySelector(".card-image").src;
    download.download = `imagegen-${request.fields.model ?? "image"}-${event.seed}.${event.output_format ?? "png"}`;
    card.querySelector(".card-actions").hidden = false;
    card.querySelector(".use-input").onclick = () => {
      const bytes = Uint8Array.from(atob(event.b64_json), (char) => char.charCodeAt(0));
      hooks.useAsInput(new File([bytes], download.download, { type }));
    };
    card.querySelector(".reuse-seed").onclick = () => hooks.reuseSeed(event.seed);
    // With the seed the server drew when none was sent (image i has seed + i), so a snippet
    // remakes these images rather than new ones.
    const made = request.fields.seed === undefined
      ? { ...request, fields: { ...request.fields, seed: event.seed - event.image_index } }
      : request;
    card.querySelector(".copy-curl").onclick = () => this.#copy(card, curlSnippet(made), "curl command");
    card.querySelector(".copy-python").onclick = () => this.#copy(card, pythonSnippet(made), "Python snippet");
  }

  #card(index) {
    const existing = this.cards.get(index);
    if (existing) return existing;
    const card = this.gallery.template.content.firstElementChild.cloneNode(true);
    const { kind, fields, hasMask, imageNames } = this.request;
    card.querySelector(".card-prompt").textContent = fields.prompt;
    const params = {
      Mode: kind === "generate" ? "generate" : hasMask ? "edit (masked)" : "edit (no mask)",
      Model: fields.model ?? "default", Image: `${index + 1} of ${fields.n}`, Size: fields.size,
      Quality: fields.quality, Style: fields.style, Steps: fields.num_inference_steps ?? "by quality",
      Guidance: fields.guidance_scale ?? "by style", "Negative prompt": fields.negative_prompt,
      Inputs: imageNames.join(", ") || undefined,
    };
    const list = card.querySelector("dl");
    for (const [name, value] of Object.entries(params)) {
      if (value === undefined) continue;
      const shown = Object.assign(document.createElement("dd"), { textContent: value });
      shown.dataset.param = name;
      list.append(Object.assign(document.createElement("dt"), { textContent: name }), shown);
    }
    card.dataset.partials = "0";
    // Newest request first, but its own images in order: after the card of the image before it.
    const previous = [...this.cards.keys()].filter((other) => other < index).sort((a, b) => b - a)[0];
    if (previous === undefined) this.gallery.list.prepend(card);
    else this.cards.get(previous).after(card);
    this.cards.set(index, card);
    card.scrollIntoView({ block: "nearest" }); // on a phone the results are below the form
    return card;
  }

  async #copy(card, text, what) {
    // The snippet is shown as well: the clipboard API needs a secure context (https or localhost).
    const shown = card.querySelector(".snippet");
    shown.textContent = text;
    shown.hidden = false;
    try {
      await navigator.clipboard.writeText(text);
      this.gallery.hooks.setStatus(`${what[0].toUpperCase()}${what.slice(1)} copied (also shown under the image).`);
    } catch {
      getSelection().selectAllChildren(shown);
      shown.focus();
      this.gallery.hooks.setStatus(`The clipboard is not available here: the ${what} is shown, selected, under the image.`);
    }
  }
}

function showImage(card, event, alt) {
  const image = card.querySelector(".card-image");
  image.onload = () => image.classList.toggle("small", image.naturalWidth < 256); // keep noise crisp
  image.src = `data:image/${event.output_format ?? "png"};base64,${event.b64_json}`;
  image.alt = alt;
}
