/**
 * Images in and out: decode PNG/JPEG/WebP, centre-crop and resize to a model's size, convert to and from the
 * [-1, 1] tensors DDPM models work in, save PNG files safely, and lay images out side by side or in a titled grid.
 *
 * | formula                              | code               | meaning                                  |
 * |--------------------------------------|--------------------|------------------------------------------|
 * | x = 2 v / 255 - 1                    | `imageToTensor`    | 8-bit pixel v to the model's range       |
 * | v = round(255 clamp(x / 2 + 0.5))    | `tensorToImages`   | model range back to 8-bit, as diffusers  |
 *
 * Both conversions follow diffusers' image processor (`VaeImageProcessor.normalize` and `numpy_to_pil`) in float32,
 * with numpy's round-half-to-even, so a tensor that diffusers would turn into a picture gives the same bytes here.
 * Everything is drawn with `@napi-rs/canvas`, which runs under Bun, Deno and Node alike.
 *
 * @module
 */
import { type Canvas, createCanvas, type Image, loadImage } from "@napi-rs/canvas";
import { Buffer } from "node:buffer";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Tensor } from "../core/tensor.ts";
import { readImageHeader } from "./_image_header.ts";

/** An 8-bit RGBA picture: `data` holds width * height * 4 bytes, row-major, alpha last. */
export interface RgbaImage {
  /** Columns. */
  readonly width: number;
  /** Rows. */
  readonly height: number;
  /** R, G, B, A for every pixel, row by row. */
  readonly data: Uint8ClampedArray;
}

/** Something that can be shown as one picture: an 8-bit image or a tensor in [-1, 1] (its batch laid in a row). */
export type Picture = RgbaImage | Tensor;

/**
 * Decode PNG, JPEG or WebP bytes into an RGBA image.
 *
 * pixels = decode(bytes)
 *
 * The size is read from the header first, and a picture of more than 89,478,485 pixels (PIL's
 * `MAX_IMAGE_PIXELS`) is refused before any pixel is decoded. A PNG must be whole: a truncated one, a failed
 * chunk CRC or pixel data that ends early is an error, not a black picture. The pixels come back un-premultiplied,
 * as a canvas gives them; a fully transparent pixel has no colour left and reads (0, 0, 0, 0).
 *
 * @param bytes the encoded file
 * @param options `name` to call the image in errors (a file name, say)
 * @returns the decoded pixels
 * @throws Error naming the image when the bytes are not a picture the decoder understands, are truncated or
 *   damaged, or hold more pixels than the limit
 * @example
 * ```ts
 * import { decodeImage, encodePng } from "./image.ts";
 * const png = encodePng({ width: 1, height: 1, data: new Uint8ClampedArray([255, 0, 0, 255]) });
 * const image = await decodeImage(png);
 * if (image.width !== 1 || image.data.join() !== "255,0,0,255") throw new Error("expected one opaque red pixel");
 * ```
 */
export async function decodeImage(bytes: Uint8Array, options: { name?: string } = {}): Promise<RgbaImage> {
  const name = options.name ?? `image of ${bytes.length} bytes`;
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`Cannot decode ${name}: expected bytes (a Uint8Array)`);
  if (bytes.length === 0) throw new Error(`Cannot decode ${name}: it is empty`);
  readImageHeader(bytes, name);
  let image: Image;
  try {
    image = await loadImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    throw new Error(`Cannot decode ${name} as a PNG, JPEG or WebP image: ${(error as Error).message}`);
  }
  if (!(image.width > 0 && image.height > 0)) {
    throw new Error(`Cannot decode ${name}: it decodes to a ${image.width}x${image.height} picture`);
  }
  const canvas = createCanvas(image.width, image.height);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height);
  return { width: image.width, height: image.height, data: new Uint8ClampedArray(pixels.data) };
}

/**
 * Read and decode a PNG, JPEG or WebP file.
 *
 * pixels = decode(readFile(path))
 *
 * @param path the file to read
 * @returns the decoded pixels
 * @throws Error naming the file when it cannot be read or decoded
 * @example
 * ```ts
 * import { encodePng, readImage } from "./image.ts";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const path = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "photo.png");
 * writeFileSync(path, encodePng({ width: 2, height: 1, data: new Uint8ClampedArray([0, 0, 255, 255, 9, 9, 9, 255]) }));
 * const image = await readImage(path);
 * if (image.width !== 2 || image.data[2] !== 255 || image.data[4] !== 9) throw new Error("the pixels did not survive");
 * ```
 */
export async function readImage(path: string): Promise<RgbaImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new Error(`Cannot read image file ${path}: ${(error as Error).message}`);
  }
  return await decodeImage(bytes, { name: `image file ${path}` });
}

/**
 * Centre-crop to the target aspect ratio, then resize (high-quality smoothing) to `size`.
 *
 * crop = the largest centred window of aspect width/height; out = resize(crop, size)
 *
 * @param image the picture
 * @param size a square side, or `[height, width]`
 * @returns a new picture of the requested size
 * @throws RangeError when the size is not a positive integer (or pair of them)
 * @example
 * ```ts
 * import { centerCropResize } from "./image.ts";
 * const wide = { width: 4, height: 2, data: new Uint8ClampedArray(32).fill(255) };
 * const square = centerCropResize(wide, 2);
 * if (square.width !== 2 || square.height !== 2 || square.data.some((v) => v !== 255)) throw new Error("expected 2x2 white");
 * ```
 */
export function centerCropResize(image: RgbaImage, size: number | readonly [number, number]): RgbaImage {
  const [height, width] = sizePair(size, "size");
  const targetAspect = width / height;
  let cropWidth = image.width;
  let cropHeight = image.height;
  if (image.width / image.height > targetAspect) cropWidth = Math.max(1, Math.round(image.height * targetAspect));
  else cropHeight = Math.max(1, Math.round(image.width / targetAspect));
  const left = Math.floor((image.width - cropWidth) / 2);
  const top = Math.floor((image.height - cropHeight) / 2);
  if (cropWidth === width && cropHeight === height) return cropPixels(image, left, top, width, height);
  const canvas = createCanvas(width, height);
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(toCanvas(image), left, top, cropWidth, cropHeight, 0, 0, width, height);
  return readCanvas(canvas);
}

/**
 * Convert pictures to a batch tensor in the model's range [-1, 1], as diffusers' image processor does.
 *
 * x = 2 (v / 255) - 1, in float32, NCHW, where v = colour x alpha / 255 (the picture composited over black)
 *
 * Transparency: a pixel is composited over black, so a fully transparent pixel is black and a half-transparent
 * one has half its colour; opaque pictures are unchanged. PIL's `convert("RGB")`, which diffusers' examples use,
 * instead drops alpha and keeps whatever colour a transparent pixel stores; flatten such a picture onto the
 * background you want before loading it if the two must agree.
 *
 * @param images one picture or several of the same size
 * @param options `channels`: 3 for RGB (default) or 1 for grey (the mean of R, G, B)
 * @returns a tensor of shape [count, channels, height, width]
 * @throws RangeError when the pictures differ in size or `channels` is not 1 or 3
 * @example
 * ```ts
 * import { imageToTensor } from "./image.ts";
 * const white = { width: 1, height: 1, data: new Uint8ClampedArray([255, 255, 255, 255]) };
 * const x = imageToTensor(white); // 255 maps to 255 / 127.5 - 1 = 1
 * if (x.shape.join() !== "1,3,1,1" || x.data.join() !== "1,1,1") throw new Error(`got ${x.data.join()}`);
 * ```
 */
export function imageToTensor(images: RgbaImage | readonly RgbaImage[], options: { channels?: number } = {}): Tensor {
  const list = Array.isArray(images) ? images as readonly RgbaImage[] : [images as RgbaImage];
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3) throw new RangeError(`channels must be 1 or 3, got ${channels}`);
  if (list.length === 0) throw new RangeError("imageToTensor needs at least one image, got none");
  const { width, height } = list[0];
  const plane = width * height;
  const out = new Float32Array(list.length * channels * plane);
  for (const [n, image] of list.entries()) {
    if (image.width !== width || image.height !== height) {
      throw new RangeError(
        `Images to batch must share one size: image 0 is ${width}x${height} but image ${n} is ` +
          `${image.width}x${image.height}`,
      );
    }
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < channels; c++) {
        const colour = channels === 3
          ? image.data[4 * p + c]
          : (image.data[4 * p] + image.data[4 * p + 1] + image.data[4 * p + 2]) / 3;
        const alpha = image.data[4 * p + 3];
        const value = alpha === 255 ? colour : (colour * alpha) / 255;
        // float32 as diffusers: images / 255.0, then 2.0 * images - 1.0
        out[(n * channels + c) * plane + p] = Math.fround(2 * Math.fround(value / 255) - 1);
      }
    }
  }
  return new Tensor(out, [list.length, channels, height, width]);
}

/**
 * Convert a batch tensor in [-1, 1] to 8-bit pictures, as diffusers' pipelines do before saving.
 *
 * v = round_half_even(255 clamp(x / 2 + 0.5, 0, 1)), in float32
 *
 * @param tensor shape [batch, 1 or 3, height, width] (or [1 or 3, height, width])
 * @returns one picture per batch item, opaque
 * @throws RangeError when the shape is not an image batch
 * @example
 * ```ts
 * import { Tensor, tensorToImages } from "../../mod.ts";
 * const [image] = tensorToImages(Tensor.zeros([1, 3, 2, 2]));
 * // (0 / 2 + 0.5) * 255 = 127.5, rounded half to even as numpy does: 128; alpha is opaque
 * if (image.data[0] !== 128 || image.data[3] !== 255) throw new Error(`got ${image.data[0]}, ${image.data[3]}`);
 * ```
 */
export function tensorToImages(tensor: Tensor): RgbaImage[] {
  const shape = tensor.shape.length === 3 ? [1, ...tensor.shape] : tensor.shape;
  if (shape.length !== 4 || (shape[1] !== 1 && shape[1] !== 3)) {
    throw new RangeError(
      `An image tensor must have shape [batch, 1 or 3, height, width], got [${tensor.shape.join(", ")}]`,
    );
  }
  const [batch, channels, height, width] = shape;
  const plane = height * width;
  const images: RgbaImage[] = [];
  for (let n = 0; n < batch; n++) {
    const data = new Uint8ClampedArray(plane * 4);
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) {
        const x = tensor.data[(n * channels + (channels === 3 ? c : 0)) * plane + p];
        data[4 * p + c] = toByte(x);
      }
      data[4 * p + 3] = 255;
    }
    images.push({ width, height, data });
  }
  return images;
}

/**
 * Read an image file (or bytes), centre-crop and resize it to the model's size, and convert it to [-1, 1].
 *
 * x = 2 resize(crop(decode(file))) / 255 - 1
 *
 * @param source a file path or the encoded bytes
 * @param options `size` (square side or `[height, width]`, default: keep the picture's own size), `channels`
 * @returns a tensor of shape [1, channels, height, width]
 * @throws Error when the file cannot be read or decoded, RangeError for a bad size
 * @example
 * ```ts
 * import { encodePng, loadImageTensor } from "./image.ts";
 * import { mkdtempSync, writeFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const path = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "black.png");
 * writeFileSync(path, encodePng({ width: 8, height: 4, data: new Uint8ClampedArray(128).fill(255).map((v, i) => i % 4 === 3 ? v : 0) }));
 * const x0 = await loadImageTensor(path, { size: 2 });
 * // black is -1 in [-1, 1]; the 8x4 picture is cropped to 4x4 and resized to 2x2
 * if (x0.shape.join() !== "1,3,2,2" || x0.data.some((v) => v !== -1)) throw new Error(`got ${x0.shape}`);
 * ```
 */
export async function loadImageTensor(
  source: string | Uint8Array,
  options: { size?: number | readonly [number, number]; channels?: number } = {},
): Promise<Tensor> {
  let image = typeof source === "string" ? await readImage(source) : await decodeImage(source);
  if (options.size !== undefined) image = centerCropResize(image, options.size);
  return imageToTensor(image, { channels: options.channels });
}

/**
 * Encode a picture as PNG bytes.
 *
 * bytes = png(pixels)
 *
 * @param picture an 8-bit image, or a tensor in [-1, 1] (its batch is laid out in one row)
 * @returns the PNG file's bytes
 * @example
 * ```ts
 * import { encodePng } from "./image.ts";
 * const png = encodePng({ width: 1, height: 1, data: new Uint8ClampedArray([0, 0, 0, 255]) });
 * // every PNG file starts with the signature 137 80 78 71 13 10 26 10
 * if (png.slice(0, 8).join() !== "137,80,78,71,13,10,26,10") throw new Error("not a PNG signature");
 * ```
 */
export function encodePng(picture: Picture): Uint8Array {
  return new Uint8Array(toCanvas(toRgba(picture)).toBuffer("image/png"));
}

/**
 * Save a picture as a PNG file, creating its folder; the file appears whole or not at all.
 *
 * The bytes go to a temporary file in the same folder, which is then renamed over `path`.
 *
 * @param picture an 8-bit image, or a tensor in [-1, 1] (its batch is laid out in one row)
 * @param path where to write, ending in `.png`
 * @returns the path written
 * @throws RangeError when the path does not end in `.png`
 * @example
 * ```ts
 * import { readImage, savePng, Tensor } from "../../mod.ts";
 * import { mkdtempSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const path = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "grey.png");
 * await savePng(Tensor.zeros([1, 3, 8, 8]), path);
 * const image = await readImage(path);
 * if (image.width !== 8 || image.data[0] !== 128) throw new Error("expected an 8x8 mid-grey picture");
 * ```
 */
export async function savePng(picture: Picture, path: string): Promise<string> {
  if (!path.toLowerCase().endsWith(".png")) throw new RangeError(`savePng writes .png files only, got ${path}`);
  const bytes = encodePng(picture);
  await writeFileAtomic(path, bytes);
  return path;
}

/**
 * Write bytes to a file through a temporary file and a rename, so a reader never sees half a file.
 *
 * @param path the destination (its folder is created)
 * @param bytes the content
 * @returns nothing once the file is in place
 * @example
 * ```ts
 * import { writeFileAtomic } from "./image.ts";
 * import { mkdtempSync, readFileSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * const path = join(mkdtempSync(join(tmpdir(), "ddimlab-")), "notes", "hello.txt");
 * await writeFileAtomic(path, new TextEncoder().encode("hello"));
 * if (readFileSync(path, "utf8") !== "hello") throw new Error("the file does not hold what was written");
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const folder = dirname(path);
  await mkdir(folder, { recursive: true });
  const temporary = join(folder, `.${basename(path)}.${Date.now()}-${Math.random().toString(36).slice(2)}.tmp`);
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Layout options shared by `compareImages` and `imageGrid`. */
export interface LayoutOptions {
  /** Nearest-neighbour magnification of every picture (default: enough to make a 32-pixel image 128 pixels). */
  scale?: number;
  /** Pixels between pictures (default 4). */
  gap?: number;
  /** Font size of titles in pixels (default 12). */
  fontSize?: number;
}

/**
 * Lay pictures side by side, each with its title above it, on a white background.
 *
 * @param images the pictures (tensors show their whole batch as a row)
 * @param titles one title per picture (or none)
 * @param options scale, gap, font size
 * @returns the combined picture
 * @throws RangeError when the number of titles and pictures differ
 * @example
 * ```ts
 * import { compareImages, Tensor } from "../../mod.ts";
 * const side = compareImages([Tensor.zeros([1, 3, 8, 8]), Tensor.zeros([1, 3, 8, 8])], ["before", "after"]);
 * if (!(side.width >= 16 && side.height > 8)) throw new Error("two 8x8 pictures side by side, titled above");
 * ```
 */
export function compareImages(
  images: readonly Picture[],
  titles: readonly string[] = [],
  options: LayoutOptions = {},
): RgbaImage {
  if (titles.length !== 0 && titles.length !== images.length) {
    throw new RangeError(`compareImages got ${images.length} images but ${titles.length} titles`);
  }
  return imageGrid([images], { ...options, colTitles: titles });
}

/** Options of `imageGrid`: titles for rows (left) and columns (top), plus layout. */
export interface ImageGridOptions extends LayoutOptions {
  /** One title per row, drawn to its left. */
  rowTitles?: readonly string[];
  /** One title per column, drawn above it. */
  colTitles?: readonly string[];
}

/**
 * Lay pictures out in a grid with optional row and column titles (the eta x steps figure, for instance).
 *
 * @param rows the pictures, row by row (rows may differ in length; tensors show their batch as a row)
 * @param options `rowTitles`, `colTitles`, scale, gap, font size
 * @returns the grid as one picture
 * @throws RangeError when there are no pictures or the titles do not match the rows and columns
 * @example
 * ```ts
 * import { imageGrid, Tensor } from "../../mod.ts";
 * const cell = Tensor.zeros([1, 3, 8, 8]);
 * const grid = imageGrid([[cell, cell], [cell, cell]], { rowTitles: ["eta 0", "eta 1"], colTitles: ["10", "50"] });
 * if (!(grid.width >= 16 && grid.height >= 16)) throw new Error("a 2x2 grid of 8x8 pictures, with titles");
 * ```
 */
export function imageGrid(rows: readonly (readonly Picture[])[], options: ImageGridOptions = {}): RgbaImage {
  if (rows.length === 0 || rows.every((row) => row.length === 0)) {
    throw new RangeError("imageGrid needs at least one picture, got none");
  }
  const columns = Math.max(...rows.map((row) => row.length));
  const rowTitles = options.rowTitles ?? [];
  const colTitles = options.colTitles ?? [];
  if (rowTitles.length !== 0 && rowTitles.length !== rows.length) {
    throw new RangeError(`imageGrid got ${rows.length} rows but ${rowTitles.length} row titles`);
  }
  if (colTitles.length !== 0 && colTitles.length !== columns) {
    throw new RangeError(`imageGrid got ${columns} columns but ${colTitles.length} column titles`);
  }
  const cells = rows.map((row) => row.map(toRgba));
  const all = cells.flat();
  const largest = Math.max(...all.map((image) => Math.max(image.width, image.height)));
  const scale = options.scale ?? Math.max(1, Math.floor(128 / largest));
  if (!Number.isInteger(scale) || scale < 1) throw new RangeError(`scale must be a positive integer, got ${scale}`);
  const gap = options.gap ?? 4;
  const fontSize = options.fontSize ?? 12;
  const font = `${fontSize}px sans-serif`;
  const measure = createCanvas(1, 1).getContext("2d");
  measure.font = font;
  const cellWidth = Math.max(...all.map((image) => image.width)) * scale;
  const cellHeight = Math.max(...all.map((image) => image.height)) * scale;
  const columnWidth = Math.max(cellWidth, ...colTitles.map((title) => Math.ceil(measure.measureText(title).width)));
  const left = rowTitles.length ? Math.ceil(Math.max(...rowTitles.map((t) => measure.measureText(t).width))) + gap : 0;
  const top = colTitles.length ? Math.ceil(fontSize * 1.4) + 2 : 0;
  const width = gap + left + columns * (columnWidth + gap);
  const height = gap + top + rows.length * (cellHeight + gap);
  const canvas = createCanvas(width, height);
  const context = canvas.getContext("2d");
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, width, height);
  context.fillStyle = "#000000";
  context.font = font;
  context.textBaseline = "middle";
  context.imageSmoothingEnabled = false;
  for (const [c, title] of colTitles.entries()) {
    const x = gap + left + c * (columnWidth + gap) + (columnWidth - measure.measureText(title).width) / 2;
    context.fillText(title, x, gap + top / 2);
  }
  for (const [r, row] of cells.entries()) {
    const y = gap + top + r * (cellHeight + gap);
    if (rowTitles.length) context.fillText(rowTitles[r], gap, y + cellHeight / 2);
    for (const [c, image] of row.entries()) {
      const x = gap + left + c * (columnWidth + gap) + Math.floor((columnWidth - image.width * scale) / 2);
      context.drawImage(toCanvas(image), x, y, image.width * scale, image.height * scale);
    }
  }
  return readCanvas(canvas);
}

// float32 as diffusers: (x / 2 + 0.5).clamp(0, 1), then (v * 255).round() with numpy's half-to-even
function toByte(x: number): number {
  let v = Math.fround(Math.fround(x / 2) + 0.5);
  if (!(v > 0)) v = 0; // NaN goes to 0 too
  if (v > 1) v = 1;
  const scaled = Math.fround(v * 255);
  const floor = Math.floor(scaled);
  const fraction = scaled - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function toRgba(picture: Picture): RgbaImage {
  if (picture instanceof Tensor) {
    const images = tensorToImages(picture);
    if (images.length === 1) return images[0];
    return tileRow(images, 2);
  }
  if (
    !picture || !(picture.data instanceof Uint8ClampedArray) ||
    picture.data.length !== picture.width * picture.height * 4
  ) {
    throw new TypeError("A picture must be a Tensor or an RGBA image with width * height * 4 bytes");
  }
  return picture;
}

function tileRow(images: readonly RgbaImage[], gap: number): RgbaImage {
  const height = Math.max(...images.map((image) => image.height));
  const width = images.reduce((sum, image) => sum + image.width, 0) + gap * (images.length - 1);
  const data = new Uint8ClampedArray(width * height * 4).fill(255);
  let x0 = 0;
  for (const image of images) {
    for (let y = 0; y < image.height; y++) {
      data.set(image.data.subarray(y * image.width * 4, (y + 1) * image.width * 4), (y * width + x0) * 4);
    }
    x0 += image.width + gap;
  }
  return { width, height, data };
}

function cropPixels(image: RgbaImage, left: number, top: number, width: number, height: number): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    const start = ((top + y) * image.width + left) * 4;
    data.set(image.data.subarray(start, start + width * 4), y * width * 4);
  }
  return { width, height, data };
}

function toCanvas(image: RgbaImage): Canvas {
  const canvas = createCanvas(image.width, image.height);
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(image.width, image.height);
  pixels.data.set(image.data);
  context.putImageData(pixels, 0, 0);
  return canvas;
}

function readCanvas(canvas: Canvas): RgbaImage {
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  return { width: canvas.width, height: canvas.height, data: new Uint8ClampedArray(pixels.data) };
}

function sizePair(size: number | readonly [number, number], name: string): [number, number] {
  const pair: readonly number[] = typeof size === "number" ? [size, size] : size;
  if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`${name} must be a positive integer or [height, width] of them, got ${JSON.stringify(size)}`);
  }
  return [pair[0], pair[1]];
}
