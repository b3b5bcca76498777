// The mask painter: a canvas of the edited image's own size, laid over it and stretched by CSS.
// What is painted is the area to edit. The API wants the opposite encoding (a PNG whose
// alpha = 0 pixels are edited, all others kept), so toBlob() converts on export.

const PAINT = [230, 30, 120]; // shown at half opacity over the image (see .mask-stage canvas)

export class MaskPainter {
  constructor(canvas, { brush, onChange }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.brush = brush; // a range input: the brush diameter in on-screen pixels
    this.onChange = onChange;
    this.painted = false;
    this.last = null;
    canvas.addEventListener("pointerdown", (event) => this.#down(event));
    canvas.addEventListener("pointermove", (event) => this.#move(event));
    for (const type of ["pointerup", "pointercancel"]) canvas.addEventListener(type, () => this.#up());
  }

  /** Starts a fresh, empty mask at the image's natural size. */
  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.clear();
  }

  clear() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.#changed(false);
  }

  invert() {
    const image = this.ctx.getImageData(0, 0, this.canvas.width, this.canvas.height);
    let any = false;
    for (let i = 0; i < image.data.length; i += 4) {
      const on = image.data[i + 3] < 128;
      image.data.set(on ? [...PAINT, 255] : [0, 0, 0, 0], i);
      any ||= on;
    }
    this.ctx.putImageData(image, 0, 0);
    this.#changed(any);
  }

  /** The mask as the API takes it: painted pixels alpha 0, the rest alpha 255 (no soft edges,
   * so "edited" is exactly what was painted at least half-way). Null when nothing is painted. */
  async toBlob() {
    if (!this.painted) return null;
    const { width, height } = this.canvas;
    const source = this.ctx.getImageData(0, 0, width, height);
    const out = new ImageData(width, height);
    for (let i = 0; i < source.data.length; i += 4) out.data[i + 3] = source.data[i + 3] >= 128 ? 0 : 255;
    const canvas = document.createElement("canvas");
    Object.assign(canvas, { width, height });
    canvas.getContext("2d").putImageData(out, 0, 0);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  }

  #point(event) {
    // The canvas is scaled by CSS: map screen pixels to image pixels.
    const box = this.canvas.getBoundingClientRect();
    const scale = this.canvas.width / box.width;
    return { x: (event.clientX - box.left) * scale, y: (event.clientY - box.top) * scale, scale };
  }

  #down(event) {
    if (event.button !== 0) return;
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.#point(event);
    this.#stroke(this.last, this.last);
  }

  #move(event) {
    if (!this.last) return;
    const point = this.#point(event);
    this.#stroke(this.last, point);
    this.last = point;
  }

  #up() {
    if (!this.last) return;
    this.last = null;
    this.#changed(true);
  }

  #stroke(from, to) {
    const ctx = this.ctx;
    ctx.strokeStyle = `rgb(${PAINT.join(",")})`;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineWidth = Number(this.brush.value) * to.scale;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x + 0.01, to.y); // a zero-length line draws nothing: nudge it into a dot
    ctx.stroke();
  }

  #changed(painted) {
    this.painted = painted;
    this.onChange(painted);
  }
}
