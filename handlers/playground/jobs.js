// Long requests as async jobs (Prefer: respond-async): submitted, polled for their progress,
// cancelled with a DELETE when the user cancels, their result read as the synchronous body.
// A job outlives the page's connection: Modal's 150 s web window and a proxy's timeout with it.

const POLL_MS = 500;
const ENDED = ["completed", "failed", "cancelled"];
// Images x pixels x steps past which a request runs as a job: 4 images at 1024x1024 and 30 steps.
const LONG_WORK = 4 * 1024 * 1024 * 30;

/** Whether a request of these fields is long enough to run as a job. */
export function isLong(fields) {
  const [width, height] = String(fields.size ?? "").split("x").map(Number);
  const pixels = width && height ? width * height : 1024 * 1024; // auto: about a megapixel
  return (fields.n ?? 1) * pixels * (fields.num_inference_steps ?? 30) >= LONG_WORK;
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}

/** Submits `init` to `path` as a job and polls it until it ends, telling onProgress(job) each
 * time. Resolves {job} once it has ended, or {response} when the server refused it (an error to
 * show). Aborting `signal` cancels the job on the server. */
export async function runJob(path, init, callApi, { signal, onProgress }) {
  const headers = new Headers(init.headers);
  headers.set("Prefer", "respond-async");
  const submitted = await callApi(path, { ...init, headers, signal });
  if (submitted.status !== 202) return { response: submitted };
  let job = await submitted.json();
  const where = `v1/images/jobs/${encodeURIComponent(job.id)}`;
  try {
    while (!ENDED.includes(job.status)) {
      onProgress(job);
      await pause(POLL_MS, signal);
      const polled = await callApi(where, { signal });
      if (!polled.ok) return { response: polled };
      job = await polled.json();
    }
  } catch (error) {
    if (signal.aborted) await callApi(where, { method: "DELETE" }).catch(() => {});
    throw error;
  }
  onProgress(job);
  return { job };
}
