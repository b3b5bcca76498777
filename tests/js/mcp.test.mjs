// The official MCP TypeScript SDK's client (npm `@modelcontextprotocol/sdk`) against a running
// imagegen server's /mcp, configured as an agent is: the URL and the key as a header.
// Run by tests/test_js_sdk.py, which starts the server and passes these variables.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const URL_ = new URL(`${process.env.IMAGEGEN_URL}/mcp`);

async function connect(key) {
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const transport = new StreamableHTTPClientTransport(URL_, { requestInit: { headers } });
  const client = new Client({ name: "imagegen-js-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

function pngSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

test("connects, lists the tools and generates an image with progress", async () => {
  const client = await connect(process.env.IMAGEGEN_KEY);
  try {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((tool) => tool.name).sort(), ["cancel_job", "edit_image", "generate_image", "get_job", "list_models"]);
    const progress = [];
    const result = await client.callTool(
      { name: "generate_image", arguments: { prompt: "a fox", model: "tiny-sd", size: "96x64", num_inference_steps: 4, seed: 3 } },
      undefined,
      { onprogress: (update) => progress.push(update) },
    );
    assert.equal(result.isError ?? false, false);
    const [image, text] = result.content;
    assert.equal(image.type, "image");
    assert.equal(image.mimeType, "image/png");
    assert.deepEqual(pngSize(Buffer.from(image.data, "base64")), [96, 64]);
    assert.match(text.text, /seed 3/);
    assert.ok(progress.length >= 2, `progress: ${JSON.stringify(progress)}`);
    assert.deepEqual(progress.at(-1), { progress: 4, total: 4, message: "step 4 of 4" });
  } finally {
    await client.close();
  }
});

test("a bad size is a tool error naming the param", async () => {
  const client = await connect(process.env.IMAGEGEN_KEY);
  try {
    const result = await client.callTool({ name: "generate_image", arguments: { prompt: "x", model: "tiny-sd", size: "65x64" } });
    assert.equal(result.isError, true);
    assert.equal(result.structuredContent.error.param, "size");
  } finally {
    await client.close();
  }
});

test("without the key the connection is refused with a 401", async () => {
  await assert.rejects(connect(undefined), (error) => {
    assert.equal(error.code, 401);
    assert.match(error.message, /invalid_api_key/); // our OpenAI error body, as the SDK shows it
    return true;
  });
});
