// The official OpenAI JavaScript SDK against a running imagegen server, as a JS user would use it.
// Run by tests/test_js_sdk.py, which starts the server and passes these variables.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import OpenAI, { toFile } from "openai";

const client = new OpenAI({
  apiKey: process.env.IMAGEGEN_KEY,
  baseURL: `${process.env.IMAGEGEN_URL}/v1`,
  maxRetries: 0,
});
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];

function pngSize(bytes) {
  // Width and height are big-endian at bytes 16-23 of a PNG (the IHDR chunk).
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

test("generate returns a URL that fetches a PNG", async () => {
  const response = await client.images.generate({
    model: "dall-e-3", prompt: "A futuristic city with flying cars", size: "256x256", quality: "hd", n: 1,
  });
  const url = response.data[0].url;
  assert.match(url, /\/v1\/temp-images\/[A-Za-z0-9_-]+\.png$/);
  const fetched = await fetch(url); // no key: a capability URL
  assert.equal(fetched.status, 200);
  assert.equal(fetched.headers.get("content-type"), "image/png");
  const bytes = new Uint8Array(await fetched.arrayBuffer());
  assert.deepEqual([...bytes.slice(0, 4)], PNG_SIGNATURE);
  assert.deepEqual(pngSize(bytes), [256, 256]);
});

test("edit with toFile keeps the size and answers b64_json", async () => {
  const image = await toFile(await readFile(process.env.IMAGEGEN_IMAGE), "photo.png", { type: "image/png" });
  const mask = await toFile(await readFile(process.env.IMAGEGEN_MASK), "mask.png", { type: "image/png" });
  const response = await client.images.edit({
    model: "tiny-sd", image, mask, prompt: "a red door", response_format: "b64_json",
  });
  const bytes = Buffer.from(response.data[0].b64_json, "base64");
  assert.deepEqual(pngSize(bytes), [96, 64]);
});

test("stream yields partial images then the completed image", async () => {
  const stream = await client.images.generate({
    model: "tiny-sd", prompt: "a harbour", size: "128x128", stream: true, partial_images: 2,
    num_inference_steps: 6,
  });
  const types = [];
  for await (const event of stream) {
    types.push(event.type);
    assert.ok(Buffer.from(event.b64_json, "base64").length > 0);
  }
  assert.deepEqual(types, [
    "image_generation.partial_image", "image_generation.partial_image", "image_generation.completed",
  ]);
});

test("errors arrive as typed SDK errors naming the field", async () => {
  await assert.rejects(
    client.images.generate({ model: "tiny-flux", prompt: "x", size: "72x72" }),
    (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError);
      assert.equal(error.status, 400);
      assert.equal(error.param, "size");
      return true;
    },
  );
  await assert.rejects(client.images.generate({ model: "nope", prompt: "x" }), OpenAI.NotFoundError);
});

test("a GPT image model name without response_format answers b64_json, with its seed", async () => {
  const response = await client.images.generate({ model: "gpt-image-2", prompt: "a lighthouse", size: "64x64" });
  assert.equal(response.data[0].url, undefined);
  assert.deepEqual(pngSize(Buffer.from(response.data[0].b64_json, "base64")), [64, 64]);
  assert.ok(Number.isInteger(response.data[0].seed));
});

test("an edit with a list of two images sends image[] twice and edits the first", async () => {
  const photo = await readFile(process.env.IMAGEGEN_IMAGE);
  const images = [await toFile(photo, "photo.png", { type: "image/png" }),
    await toFile(photo, "reference.png", { type: "image/png" })];
  const response = await client.images.edit({ model: "gpt-image-2", image: images, prompt: "the same, at night" });
  assert.deepEqual(pngSize(Buffer.from(response.data[0].b64_json, "base64")), [96, 64]);
});
