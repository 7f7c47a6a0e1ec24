import { describe, expect, test } from "bun:test";
import { createCanvas } from "@napi-rs/canvas";
import { Buffer } from "node:buffer";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { crc32, deflateSync } from "node:zlib";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  centerCropResize,
  compareImages,
  decodeImage,
  encodePng,
  imageGrid,
  imageToTensor,
  loadImageTensor,
  readImage,
  type RgbaImage,
  savePng,
  tensorToImages,
} from "../../lib/io/image.ts";
import { Tensor } from "../../lib/core/tensor.ts";

function solid(width: number, height: number, rgb: [number, number, number]): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([...rgb, 255], 4 * p);
  return { width, height, data };
}

function gradient(width: number, height: number): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      data.set([(x * 37 + y) % 256, (y * 53) % 256, (x * y) % 256, 255], 4 * (y * width + x));
    }
  }
  return { width, height, data };
}

describe("tensor conversion follows diffusers' image processor", () => {
  test("imageToTensor maps 0, 255 and 128 as 2 * (v / 255) - 1 in float32 (VaeImageProcessor.normalize)", () => {
    const image: RgbaImage = {
      width: 3,
      height: 1,
      data: new Uint8ClampedArray([0, 0, 0, 255, 255, 255, 255, 255, 128, 128, 128, 255]),
    };
    const x = imageToTensor(image);
    expect(x.shape).toEqual([1, 3, 1, 3]);
    expect(Array.from(x.data.subarray(0, 3))).toEqual([-1, 1, Math.fround(2 * Math.fround(128 / 255) - 1)]);
  });

  test("tensorToImages maps -1, 0, 1 to 0, 128, 255 and clamps outside [-1, 1] (numpy_to_pil after clamp)", () => {
    const x = Tensor.from([-1, 0, 1, -3, 7, Number.NaN], [1, 1, 1, 6]);
    const [image] = tensorToImages(x);
    const reds = Array.from({ length: 6 }, (_, p) => image.data[4 * p]);
    // (0 / 2 + 0.5) * 255 = 127.5, numpy rounds half to even: 128
    expect(reds).toEqual([0, 128, 255, 0, 255, 0]);
    expect(image.data[3]).toBe(255);
  });

  test("tensorToImages rounds exact halves to even, as numpy's round does", () => {
    // find a float32 x whose float32 byte value (x / 2 + 0.5) * 255 is exactly 126.5: numpy.round(126.5) = 126
    let x = Math.fround(2 * (126.5 / 255) - 1);
    let scaled = Math.fround(Math.fround(Math.fround(x / 2) + 0.5) * 255);
    for (let k = 0; k < 64 && scaled !== 126.5; k++) {
      x = Math.fround(x + (scaled < 126.5 ? 1e-8 : -1e-8));
      scaled = Math.fround(Math.fround(Math.fround(x / 2) + 0.5) * 255);
    }
    expect(scaled).toBe(126.5);
    expect(tensorToImages(Tensor.from([x], [1, 1, 1, 1]))[0].data[0]).toBe(126);
  });

  test("8-bit pictures survive tensor and PNG round trips byte for byte", async () => {
    const image = gradient(9, 7);
    const back = tensorToImages(imageToTensor(image))[0];
    expect(back.data).toEqual(image.data);
    const decoded = await decodeImage(encodePng(image));
    expect(decoded.width).toBe(9);
    expect(decoded.data).toEqual(image.data);
  });

  test("a one-channel tensor becomes a grey picture and a grey image a one-channel tensor", () => {
    const [image] = tensorToImages(Tensor.from([1, -1], [1, 1, 1, 2]));
    expect(Array.from(image.data)).toEqual([255, 255, 255, 255, 0, 0, 0, 255]);
    expect(imageToTensor(solid(2, 2, [30, 60, 90]), { channels: 1 }).shape).toEqual([1, 1, 2, 2]);
  });

  test("pictures of different sizes cannot be batched, and the error names both sizes", () => {
    expect(() => imageToTensor([solid(2, 2, [0, 0, 0]), solid(3, 2, [0, 0, 0])])).toThrow(/2x2.*3x2/);
    expect(() => tensorToImages(Tensor.zeros([1, 2, 4, 4]))).toThrow(/\[1, 2, 4, 4\]/);
  });
});

describe("decoding", () => {
  test("JPEG and WebP files decode to their size and colour", async () => {
    const canvas = createCanvas(20, 10);
    const context = canvas.getContext("2d");
    context.fillStyle = "rgb(200, 40, 90)";
    context.fillRect(0, 0, 20, 10);
    for (const format of ["jpeg", "webp"] as const) {
      const image = await decodeImage(new Uint8Array(canvas.encodeSync(format, 95)));
      expect([image.width, image.height]).toEqual([20, 10]);
      expect(Math.abs(image.data[0] - 200) + Math.abs(image.data[1] - 40) + Math.abs(image.data[2] - 90)).toBeLessThan(
        12,
      );
    }
  });

  test("bytes that are not an image, a truncated PNG and an empty file are refused with a clear error", async () => {
    await expect(decodeImage(new TextEncoder().encode("this is not a picture"))).rejects.toThrow(
      /Cannot decode .* as a PNG, JPEG or WebP image/,
    );
    const png = encodePng(gradient(16, 16));
    await expect(decodeImage(png.subarray(0, 40), { name: "cut.png" })).rejects.toThrow(/Cannot decode cut\.png/);
    await expect(decodeImage(new Uint8Array(0))).rejects.toThrow(/empty/);
  });

  test("a truncated PNG is refused, wherever it is cut, instead of decoding to a black picture", async () => {
    const png = encodePng(gradient(64, 64));
    // cut inside the pixel data, just before the IEND chunk (12 bytes), and one byte short
    for (const length of [png.length >> 1, png.length - 12, png.length - 1]) {
      await expect(decodeImage(png.subarray(0, length), { name: "cut.png" })).rejects.toThrow(
        /Cannot decode cut\.png: the PNG file is truncated/,
      );
    }
  });

  test("a PNG with a flipped bit, or whose pixel data ends early, is refused", async () => {
    const png = new Uint8Array(encodePng(gradient(64, 64)));
    const idat = Buffer.from(png).indexOf("IDAT");
    const flipped = png.slice();
    flipped[idat + 20] ^= 0x04;
    await expect(decodeImage(flipped, { name: "flip.png" })).rejects.toThrow(
      `Cannot decode flip.png: the PNG file is damaged (chunk IDAT at byte ${idat - 4} fails its CRC check)`,
    );
    // A well-formed PNG (good CRCs, IEND present) whose compressed rows stop after 10 of the 64 rows.
    const chunk = (type: string, data: Uint8Array) => {
      const body = Buffer.concat([Buffer.from(type, "latin1"), data]);
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      body.copy(out, 4);
      out.writeUInt32BE(crc32(body), 8 + data.length); // zlib's CRC-32, as the PNG specification defines it
      return out;
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(64, 0);
    ihdr.writeUInt32BE(64, 4);
    ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, no interlace
    const rows = deflateSync(new Uint8Array(10 * (1 + 64 * 4)));
    const short = Buffer.concat([
      png.subarray(0, 8),
      chunk("IHDR", ihdr),
      chunk("IDAT", rows),
      chunk("IEND", new Uint8Array(0)),
    ]);
    await expect(decodeImage(short, { name: "short.png" })).rejects.toThrow(
      "Cannot decode short.png: the PNG file's pixel data holds 2570 bytes but a 64x64 picture needs 16448",
    );
    // and the same file with all 64 rows decodes (to transparent black)
    const whole = Buffer.concat([
      png.subarray(0, 8),
      chunk("IHDR", ihdr),
      chunk("IDAT", deflateSync(new Uint8Array(64 * (1 + 64 * 4)))),
      chunk("IEND", new Uint8Array(0)),
    ]);
    expect((await decodeImage(whole)).width).toBe(64);
  });

  test("a picture over PIL's MAX_IMAGE_PIXELS is refused from its header, before decoding", async () => {
    const png = new Uint8Array(encodePng(gradient(16, 16)));
    const view = new DataView(png.buffer);
    view.setUint32(16, 20000); // IHDR width
    view.setUint32(20, 20000); // IHDR height
    await expect(decodeImage(png, { name: "bomb.png" })).rejects.toThrow(
      "Cannot decode bomb.png: it is 20000x20000 = 400000000 pixels, more than the limit of 89478485 (PIL's MAX_IMAGE_PIXELS)",
    );
    // the same limit for JPEG (SOF0 height, width) and WebP (VP8X canvas size) headers
    const canvas = createCanvas(8, 8);
    const jpeg = new Uint8Array(canvas.encodeSync("jpeg", 90));
    const sof = Buffer.from(jpeg).indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(0);
    new DataView(jpeg.buffer).setUint16(sof + 5, 30000);
    new DataView(jpeg.buffer).setUint16(sof + 7, 30000);
    await expect(decodeImage(jpeg, { name: "bomb.jpg" })).rejects.toThrow(/30000x30000 = 900000000 pixels/);
  });

  test("transparency: a pixel is composited over black, so alpha 0 is black and opaque pixels are unchanged", () => {
    // colour (200, 100, 50) at alpha 0, 51 and 255: v = colour x alpha / 255, then 2 v / 255 - 1
    const data = new Uint8ClampedArray([200, 100, 50, 0, 200, 100, 50, 51, 200, 100, 50, 255]);
    const x = imageToTensor({ width: 3, height: 1, data });
    const expected = (v: number) => Math.fround(2 * Math.fround(v / 255) - 1);
    // channel-major: R of the 3 pixels, then G, then B (alpha 51 = 0.2: 40, 20, 10)
    expect([...x.data]).toEqual([0, 40, 200, 0, 20, 100, 0, 10, 50].map(expected));
  });

  test("a missing file is refused with its path", async () => {
    await expect(readImage("/nonexistent/picture.png")).rejects.toThrow(/\/nonexistent\/picture\.png/);
  });
});

describe("centre crop and resize", () => {
  test("a wide picture keeps its centre square: blue centre, red sides cut away", () => {
    const image = solid(4, 2, [255, 0, 0]);
    for (const x of [1, 2]) for (const y of [0, 1]) image.data.set([0, 0, 255, 255], 4 * (y * 4 + x));
    const cropped = centerCropResize(image, 2);
    expect([cropped.width, cropped.height]).toEqual([2, 2]);
    for (let p = 0; p < 4; p++) expect(Array.from(cropped.data.subarray(4 * p, 4 * p + 3))).toEqual([0, 0, 255]);
  });

  test("resizing a uniform picture keeps it uniform, and a bad size is refused", () => {
    const resized = centerCropResize(solid(64, 48, [10, 120, 250]), [32, 32]);
    expect([resized.width, resized.height]).toEqual([32, 32]);
    for (let p = 0; p < 32 * 32; p++) {
      expect(Array.from(resized.data.subarray(4 * p, 4 * p + 3))).toEqual([10, 120, 250]);
    }
    expect(() => centerCropResize(solid(4, 4, [0, 0, 0]), 0)).toThrow(/size must be a positive integer/);
  });

  test("loadImageTensor reads a file, crops and resizes it to the model's size in [-1, 1]", async () => {
    const folder = mkdtempSync(join(tmpdir(), "ddimlab-image-"));
    try {
      const path = join(folder, "wide.png");
      await savePng(solid(50, 30, [255, 0, 255]), path);
      const x = await loadImageTensor(path, { size: 16 });
      expect(x.shape).toEqual([1, 3, 16, 16]);
      expect([x.data[0], x.data[256], x.data[512]]).toEqual([1, -1, 1]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe("saving and layout", () => {
  test("savePng writes a whole file through a rename and leaves no temporary file behind", async () => {
    const folder = mkdtempSync(join(tmpdir(), "ddimlab-image-"));
    try {
      const path = join(folder, "nested", "grey.png");
      await savePng(Tensor.zeros([2, 3, 8, 8]), path);
      expect(readdirSync(join(folder, "nested"))).toEqual(["grey.png"]);
      const image = await decodeImage(new Uint8Array(await readFile(path)));
      expect([image.width, image.height]).toEqual([8 * 2 + 2, 8]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test("savePng refuses a bad picture or a non-PNG name before writing anything", async () => {
    const folder = mkdtempSync(join(tmpdir(), "ddimlab-image-"));
    try {
      await expect(savePng(Tensor.zeros([1, 3, 4, 4]), join(folder, "a.jpg"))).rejects.toThrow(/\.png files only/);
      await expect(savePng(Tensor.zeros([1, 5, 4, 4]), join(folder, "sub", "b.png"))).rejects.toThrow(/\[1, 5, 4, 4\]/);
      expect(readdirSync(folder)).toEqual([]);
      expect(existsSync(join(folder, "sub"))).toBe(false);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  test("compareImages puts pictures side by side at the requested scale, with titles above", () => {
    const red = solid(8, 8, [255, 0, 0]);
    const blue = solid(8, 8, [0, 0, 255]);
    const side = compareImages([red, blue], ["red", "blue"], { scale: 4, gap: 4 });
    expect(side.width).toBe(4 + 2 * (32 + 4));
    const top = side.height - 4 - 32; // the pictures sit at the bottom of the layout
    const at = (x: number, y: number) =>
      Array.from(side.data.subarray(4 * (y * side.width + x), 4 * (y * side.width + x) + 3));
    expect(at(4 + 16, top + 16)).toEqual([255, 0, 0]);
    expect(at(4 + 36 + 16, top + 16)).toEqual([0, 0, 255]);
    // the title strip holds dark text pixels above the pictures
    let dark = 0;
    for (let y = 0; y < top - 2; y++) for (let x = 0; x < side.width; x++) if (at(x, y)[0] < 128) dark++;
    expect(dark).toBeGreaterThan(10);
    expect(() => compareImages([red, blue], ["only one"])).toThrow(/2 images but 1 titles/);
  });

  test("imageGrid lays out rows and columns and checks its titles", () => {
    const cell = solid(4, 4, [0, 255, 0]);
    const grid = imageGrid([[cell, cell, cell], [cell, cell, cell]], { scale: 2, gap: 2 });
    expect([grid.width, grid.height]).toEqual([2 + 3 * (8 + 2), 2 + 2 * (8 + 2)]);
    const titled = imageGrid([[cell, cell], [cell, cell]], { rowTitles: ["eta 0", "eta 1"], colTitles: ["10", "50"] });
    expect(titled.width).toBeGreaterThan(2 * 128);
    expect(() => imageGrid([[cell]], { rowTitles: ["a", "b"] })).toThrow(/1 rows but 2 row titles/);
    expect(() => imageGrid([])).toThrow(/at least one picture/);
  });
});
