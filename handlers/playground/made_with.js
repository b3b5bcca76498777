// How an image says it was made: the steps and guidance the server used, read from the image
// itself, where A1111 and the server put its `parameters` text ("…\nSteps: 2, CFG scale: 0.0, …"):
// a PNG's text chunk, a JPEG's or WebP's EXIF UserComment.

/** {Steps, Guidance} from the image's parameters; null where it has none (IMAGEGEN_PNG_PARAMETERS=false). */
export function madeWith(b64, format) {
  const bytes = Uint8Array.from(atob(b64), (char) => char.charCodeAt(0));
  const text = format === "png" ? pngText(bytes) : exifComment(exifOf(bytes, format));
  if (text == null) return null;
  const found = (key) => text.match(new RegExp(`${key}: ([^,\\n]+)`))?.[1];
  return { Steps: found("Steps"), Guidance: found("CFG scale") };
}

const ascii = (bytes, at, length) => String.fromCharCode(...bytes.subarray(at, at + length));

/** A PNG's `parameters` iTXt or tEXt chunk (the server writes its text before the pixels). */
function pngText(bytes) {
  const view = new DataView(bytes.buffer);
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = ascii(bytes, at + 4, 4);
    if (type === "IDAT") break;
    const text = new TextDecoder().decode(bytes.subarray(at + 8, at + 8 + length));
    if ((type === "iTXt" || type === "tEXt") && text.startsWith("parameters\0")) return text;
    at += 12 + length;
  }
  return null;
}

/** The EXIF (a TIFF structure) in a JPEG's APP1 segment or a WebP's EXIF chunk; null if none. */
function exifOf(bytes, format) {
  const view = new DataView(bytes.buffer);
  if (format === "jpeg") {
    for (let at = 2; at + 4 <= bytes.length && bytes[at] === 0xff; at += 2 + view.getUint16(at + 2)) {
      const marker = bytes[at + 1];
      if (marker === 0xda) break; // the pixels start: no EXIF before them
      if (marker === 0xe1 && ascii(bytes, at + 4, 6) === "Exif\0\0") return bytes.subarray(at + 10);
    }
  } else if (format === "webp") {
    for (let at = 12, size = 0; at + 8 <= bytes.length; at += 8 + size + (size % 2)) { // RIFF chunks, padded to even
      size = view.getUint32(at + 4, true);
      if (ascii(bytes, at, 4) !== "EXIF") continue;
      const chunk = bytes.subarray(at + 8, at + 8 + size);
      return ascii(chunk, 0, 6) === "Exif\0\0" ? chunk.subarray(6) : chunk;
    }
  }
  return null;
}

/** The UserComment (tag 0x9286 in the Exif IFD, which IFD0's tag 0x8769 points to), as A1111
 * writes it: "UNICODE\0", then UTF-16 big-endian (or "ASCII\0\0\0", then ASCII). */
function exifComment(tiff) {
  if (!tiff) return null;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const little = ascii(tiff, 0, 2) === "II";
  const entry = (ifd, tag) => {
    const count = view.getUint16(ifd, little);
    for (let at = ifd + 2; at < ifd + 2 + 12 * count; at += 12) {
      if (view.getUint16(at, little) === tag) return at;
    }
    return null;
  };
  const pointer = entry(view.getUint32(4, little), 0x8769);
  const comment = pointer === null ? null : entry(view.getUint32(pointer + 8, little), 0x9286);
  if (comment === null) return null;
  const length = view.getUint32(comment + 4, little);
  const data = tiff.subarray(length > 4 ? view.getUint32(comment + 8, little) : comment + 8).subarray(0, length);
  const prefix = ascii(data, 0, 8);
  if (prefix === "UNICODE\0") return new TextDecoder("utf-16be").decode(data.subarray(8));
  return prefix.startsWith("ASCII") ? ascii(data, 8, data.length - 8) : null;
}
