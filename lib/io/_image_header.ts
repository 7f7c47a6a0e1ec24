/**
 * Private: read a PNG, JPEG or WebP file's size from its header, before any pixel is decoded, and check that a PNG
 * is whole (every chunk present with a good CRC, and its compressed pixels inflating to exactly the bytes its size
 * implies), so a truncated or damaged PNG is refused instead of decoding to a black picture.
 *
 * @module
 */
import { inflateSync } from "node:zlib";
import { MAX_IMAGE_PIXELS } from "../core/_limits.ts";

/** What the header says. */
export interface ImageHeader {
  format: "png" | "jpeg" | "webp";
  width: number;
  height: number;
}

/**
 * The format and size of an encoded picture, refusing a picture above `MAX_IMAGE_PIXELS`, one whose size cannot be
 * read, and a PNG that is truncated or damaged.
 *
 * @param bytes the encoded file
 * @param name what to call it in errors
 */
export function readImageHeader(bytes: Uint8Array, name: string): ImageHeader {
  const header = sniff(bytes, name);
  const { width, height } = header;
  if (!(width > 0 && height > 0)) {
    throw new Error(`Cannot decode ${name}: its header gives a ${width}x${height} picture`);
  }
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new Error(
      `Cannot decode ${name}: it is ${width}x${height} = ${
        width * height
      } pixels, more than the limit of ${MAX_IMAGE_PIXELS} (PIL's MAX_IMAGE_PIXELS)`,
    );
  }
  if (header.format === "png") checkPng(bytes, name, width, height);
  return header;
}

function sniff(bytes: Uint8Array, name: string): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (at: number, length: number) => String.fromCharCode(...bytes.subarray(at, at + length));
  if (bytes.length >= 8 && bytes[0] === 0x89 && ascii(1, 3) === "PNG") {
    if (bytes.length < 24 || ascii(12, 4) !== "IHDR") {
      throw new Error(`Cannot decode ${name}: it is a PNG file whose header (IHDR chunk) is missing or cut short`);
    }
    return { format: "png", width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    // JPEG: walk the marker segments to the first start-of-frame (SOF0..SOF15 but DHT C4, JPG C8, DAC CC).
    let p = 2;
    while (p + 4 <= bytes.length) {
      if (bytes[p] !== 0xff) break;
      const marker = bytes[p + 1];
      if (marker === 0xff) {
        p += 1;
        continue;
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        p += 2;
        continue;
      }
      const length = view.getUint16(p + 2);
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        if (p + 9 > bytes.length) break;
        return { format: "jpeg", width: view.getUint16(p + 7), height: view.getUint16(p + 5) };
      }
      if (marker === 0xda || marker === 0xd9) break; // scan data or end before any frame header
      p += 2 + length;
    }
    throw new Error(`Cannot decode ${name}: it is a JPEG file with no readable frame header (truncated or damaged)`);
  }
  if (bytes.length >= 16 && ascii(0, 4) === "RIFF" && ascii(8, 4) === "WEBP") {
    const chunk = ascii(12, 4);
    if (chunk === "VP8 " && bytes.length >= 30) {
      return { format: "webp", width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
    }
    if (chunk === "VP8L" && bytes.length >= 25) {
      const bits = view.getUint32(21, true);
      return { format: "webp", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (chunk === "VP8X" && bytes.length >= 30) {
      const u24 = (at: number) => bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);
      return { format: "webp", width: u24(24) + 1, height: u24(27) + 1 };
    }
    throw new Error(`Cannot decode ${name}: it is a WebP file with no readable frame header (truncated or damaged)`);
  }
  throw new Error(`Cannot decode ${name} as a PNG, JPEG or WebP image: its first bytes are none of these formats`);
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Channels per PNG colour type (PNG specification, table 11.1). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function checkPng(bytes: Uint8Array, name: string, width: number, height: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  let p = 8;
  let ended = false;
  while (p < bytes.length) {
    if (p + 12 > bytes.length) {
      throw new Error(`Cannot decode ${name}: the PNG file is truncated (a chunk header at byte ${p} is cut short)`);
    }
    const length = view.getUint32(p);
    const type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    if (p + 12 + length > bytes.length) {
      throw new Error(
        `Cannot decode ${name}: the PNG file is truncated (chunk ${type} at byte ${p} needs ${12 + length} bytes, ${
          bytes.length - p
        } remain)`,
      );
    }
    if (crc32(bytes.subarray(p + 4, p + 8 + length)) !== view.getUint32(p + 8 + length)) {
      throw new Error(
        `Cannot decode ${name}: the PNG file is damaged (chunk ${type} at byte ${p} fails its CRC check)`,
      );
    }
    if (type === "IDAT") idat.push(bytes.subarray(p + 8, p + 8 + length));
    p += 12 + length;
    if (type === "IEND") {
      ended = true;
      break;
    }
  }
  if (!ended) throw new Error(`Cannot decode ${name}: the PNG file is truncated (it has no IEND chunk)`);
  // The pixel rows, filter byte first, for the whole picture (interlaced: the 7 Adam7 passes).
  const bitDepth = bytes[24];
  const channels = PNG_CHANNELS[bytes[25]];
  if (channels === undefined || ![1, 2, 4, 8, 16].includes(bitDepth)) {
    throw new Error(`Cannot decode ${name}: PNG colour type ${bytes[25]} with bit depth ${bitDepth} is not valid`);
  }
  const rowBytes = (w: number) => 1 + Math.ceil((w * channels * bitDepth) / 8);
  let expected = 0;
  if (bytes[28] === 1) {
    const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
    for (const [x0, y0, dx, dy] of passes) {
      const w = width > x0 ? Math.ceil((width - x0) / dx) : 0;
      const h = height > y0 ? Math.ceil((height - y0) / dy) : 0;
      if (w > 0 && h > 0) expected += h * rowBytes(w);
    }
  } else {
    expected = height * rowBytes(width);
  }
  const compressed = new Uint8Array(idat.reduce((sum, chunk) => sum + chunk.length, 0));
  idat.reduce((at, chunk) => (compressed.set(chunk, at), at + chunk.length), 0);
  let inflated: Uint8Array;
  try {
    inflated = inflateSync(compressed, { maxOutputLength: expected + 1 });
  } catch (error) {
    throw new Error(
      `Cannot decode ${name}: the PNG file's pixel data is damaged or cut short (${
        error instanceof Error ? error.message : error
      })`,
    );
  }
  if (inflated.length !== expected) {
    throw new Error(
      `Cannot decode ${name}: the PNG file's pixel data holds ${inflated.length} bytes but a ${width}x${height} picture needs ${expected}`,
    );
  }
}
