// Server-sent events from a fetch() response body. EventSource cannot POST or send an
// Authorization header, so the stream is read by hand: events end at a blank line, and
// each event's `data:` lines, joined by "\n", are one JSON payload.

/** Calls onEvent(payload) for every event of `response`, in order; resolves at the end. */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    // A "\r" at the very end may be the first half of "\r\n": wait for the next chunk.
    const safe = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
    const text = buffer.slice(0, safe).replace(/\r\n?/g, "\n");
    const blocks = text.split("\n\n");
    buffer = blocks.pop() + buffer.slice(safe); // the unfinished tail waits for more
    for (const block of blocks) dispatch(block, onEvent);
  }
  dispatch(buffer.replace(/\r\n?/g, "\n"), onEvent); // a last event without its blank line
}

function dispatch(block, onEvent) {
  const data = block
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""))
    .join("\n");
  if (data) onEvent(JSON.parse(data));
}
