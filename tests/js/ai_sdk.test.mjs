// The Vercel AI SDK's OpenAI provider (`ai` 6 with `@ai-sdk/openai` 3, the last majors that run on
// Node 20) against a running imagegen server: generateImage exactly as an app calls it.
// Run by tests/test_js_sdk.py, which starts the server and passes these variables.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import { generateImage } from "ai";

const provider = createOpenAI({ apiKey: process.env.IMAGEGEN_KEY, baseURL: `${process.env.IMAGEGEN_URL}/v1` });

function pngSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

test("generateImage with a GPT image model name gets base64 images", async () => {
  // Sends {"model":"gpt-image-1","prompt":…,"n":1,"size":…}: no response_format, and validates b64_json.
  const { image } = await generateImage({ model: provider.image("gpt-image-1"), prompt: "a red fox", size: "256x256",
    maxRetries: 0 });
  assert.equal(image.mediaType, "image/png");
  assert.deepEqual(pngSize(image.uint8Array), [256, 256]);
});

test("generateImage with a served model id asks for b64_json, one image per call", async () => {
  const { images } = await generateImage({ model: provider.image("tiny-sdxl"), prompt: "a boat", n: 2,
    size: "64x64", maxRetries: 0 });
  assert.equal(images.length, 2);
  assert.notDeepEqual(images[0].uint8Array, images[1].uint8Array);
});

test("an edit with two images and a mask", async () => {
  // multipart: image[] twice (filename "blob") and mask, n, size; no response_format.
  const photo = await readFile(process.env.IMAGEGEN_IMAGE);
  const { image } = await generateImage({
    model: provider.image("gpt-image-1"),
    prompt: { text: "put the cat from the second image on the sofa", images: [photo, photo], mask:
      await readFile(process.env.IMAGEGEN_MASK) },
    maxRetries: 0,
  });
  assert.deepEqual(pngSize(image.uint8Array), [96, 64]);
  await writeFile(join(process.env.IMAGEGEN_OUT, "ai-sdk-edit.png"), image.uint8Array); // its pixels: checked in Python
});

test("an edit with one image and no mask follows the instruction", async () => {
  const { image } = await generateImage({
    model: provider.image("gpt-image-1"),
    prompt: { text: "make it night", images: [await readFile(process.env.IMAGEGEN_IMAGE)] },
    maxRetries: 0,
  });
  assert.deepEqual(pngSize(image.uint8Array), [96, 64]);
});
