/**
 * A small image data set the package draws itself: one coloured shape on a coloured background, 32x32 RGB in
 * [-1, 1], deterministic from a seed; and the Gaussian mixture fitted to it.
 *
 * | maths              | code               | meaning                                                      |
 * |--------------------|--------------------|--------------------------------------------------------------|
 * | k                  | `mode`             | the shape kind (circle, square, triangle, diamond, cross, star) |
 * | (dx, dy)           | `offset`           | shift of the centre, in pixels, ~ N(0, 0.8^2) each           |
 * | rho                | `scale`            | relative size, 1 + N(0, 0.07^2)                               |
 * | f, g               | `fg`, `bg`         | shape and background colours in [-1, 1]^3, per-kind means    |
 * | mu_k, Q_k, s2_k    | `shapesMixture`    | per kind: mean image, principal directions, residual variance |
 *
 * Every parameter is a Gaussian draw around the kind's anchor, so the images of one kind vary continuously
 * (colour, position, size), and the fitted mixture (probabilistic PCA per kind, `fitLowRankGaussian`) gives samples
 * that look like the data: colour enters the image linearly (image = mask f + (1 - mask) g), and the small shifts and
 * size changes are captured to first order by a few principal directions.
 *
 * @module
 */
import { createCanvas, type SKRSContext2D } from "@napi-rs/canvas";
import { fitLowRankGaussian, GaussianMixture } from "./gaussian_mixture.ts";
import { Tensor } from "../core/tensor.ts";
import { TorchGenerator } from "../core/torch_generator.ts";

/**
 * The shape kinds, one mixture component each, in component order.
 *
 * @example
 * ```ts
 * import { SHAPE_KINDS, shapesMixture } from "../../mod.ts";
 * if (shapesMixture({ rank: 2, samplesPerMode: 8 }).count !== SHAPE_KINDS.length) throw new Error("one per kind");
 * ```
 */
export const SHAPE_KINDS = ["circle", "square", "triangle", "diamond", "cross", "star"] as const;

/** A shape kind. */
export type ShapeKind = typeof SHAPE_KINDS[number];

/**
 * The side of the square images.
 *
 * @example
 * ```ts
 * import { drawShapes, SHAPES_IMAGE_SIZE } from "../../mod.ts";
 * const { images } = drawShapes(1, { seed: 0 });
 * if (images.shape.join() !== `1,3,${SHAPES_IMAGE_SIZE},${SHAPES_IMAGE_SIZE}`) throw new Error(`got [${images.shape}]`);
 * ```
 */
export const SHAPES_IMAGE_SIZE = 32;

/** Mean shape colour per kind (RGB in [-1, 1]); the background's mean is dark blue-grey for every kind. */
const KIND_COLOURS: Record<ShapeKind, [number, number, number]> = {
  circle: [0.85, 0.2, 0.15],
  square: [0.2, 0.75, 0.3],
  triangle: [0.25, 0.45, 0.9],
  diamond: [0.9, 0.8, 0.1],
  cross: [0.75, 0.25, 0.8],
  star: [0.95, 0.55, 0.1],
};
const BACKGROUND: [number, number, number] = [-0.7, -0.65, -0.5];
const OFFSET_STD = 0.8;
const SCALE_STD = 0.07;
const FG_STD = 0.12;
const BG_STD = 0.12;
const BASE_RADIUS = 9.5;

/** The parameters one image was drawn with. */
export interface ShapeParams {
  /** The shape kind's index in `SHAPE_KINDS`. */
  mode: number;
  /** Centre shift in pixels, [dx, dy]. */
  offset: [number, number];
  /** Relative size (1 is the kind's nominal size). */
  scale: number;
  /** Shape colour, RGB in [-1, 1]. */
  fg: [number, number, number];
  /** Background colour, RGB in [-1, 1]. */
  bg: [number, number, number];
}

/** Options of `drawShapes`. */
export interface DrawShapesOptions {
  /** The seed of the `TorchGenerator` that draws the parameters (default 0). */
  seed?: number;
  /** Draw only this kind (an index into `SHAPE_KINDS`); default: kinds in turn, image i has kind i mod 6. */
  mode?: number;
}

/**
 * Draw `count` images of the shapes data set, deterministic from the seed.
 *
 * image = mask(kind, offset, scale) f + (1 - mask) g, with offset, scale, f, g Gaussian around the kind's anchor
 *
 * Parameters come from one `TorchGenerator(seed).randn([count, 9])` draw: per image dx, dy, size, then the shape's
 * and the background's RGB (each clipped to [-1, 1]). The images are rendered with anti-aliasing by @napi-rs/canvas
 * and quantised to 8 bits, as an image file would be.
 *
 * @param count how many images
 * @param options `seed` and optionally one `mode`
 * @returns the images, shape [count, 3, 32, 32] in [-1, 1], and each image's parameters
 * @example
 * ```ts
 * import { drawShapes } from "../../mod.ts";
 * const { images, params } = drawShapes(6, { seed: 1 });
 * if (images.shape.join() !== "6,3,32,32" || params.length !== 6) throw new Error(`got [${images.shape}]`);
 * ```
 */
export function drawShapes(count: number, options: DrawShapesOptions = {}): { images: Tensor; params: ShapeParams[] } {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`The number of images must be a positive integer, got ${count}`);
  }
  const mode = options.mode;
  if (mode !== undefined && !(Number.isInteger(mode) && mode >= 0 && mode < SHAPE_KINDS.length)) {
    throw new RangeError(`The shape mode must be an integer in [0, ${SHAPE_KINDS.length - 1}], got ${mode}`);
  }
  const z = new TorchGenerator(options.seed ?? 0).randn([count, 9]).data;
  const params: ShapeParams[] = [];
  for (let i = 0; i < count; i++) {
    const k = mode ?? i % SHAPE_KINDS.length;
    const base = KIND_COLOURS[SHAPE_KINDS[k]];
    const o = i * 9;
    params.push({
      mode: k,
      offset: [OFFSET_STD * z[o], OFFSET_STD * z[o + 1]],
      scale: 1 + SCALE_STD * z[o + 2],
      fg: [0, 1, 2].map((c) => clip(base[c] + FG_STD * z[o + 3 + c])) as [number, number, number],
      bg: [0, 1, 2].map((c) => clip(BACKGROUND[c] + BG_STD * z[o + 6 + c])) as [number, number, number],
    });
  }
  return { images: renderShapes(params), params };
}

/**
 * Render images from explicit parameters (the renderer behind `drawShapes`).
 *
 * image = mask f + (1 - mask) g, 8-bit, mapped to [-1, 1] by v / 127.5 - 1
 *
 * @param params one entry per image
 * @returns the images, shape [params.length, 3, 32, 32]
 * @example
 * ```ts
 * import { renderShapes } from "../../mod.ts";
 * const image = renderShapes([{ mode: 0, offset: [0, 0], scale: 1, fg: [1, 0, 0], bg: [-1, -1, -1] }]);
 * if (image.shape.join() !== "1,3,32,32") throw new Error(`got [${image.shape}]`);
 * // every pixel is the background (-1, -1, -1) or the foreground (1, 0, 0), or a blend of the two at an edge
 * if (image.data.some((v) => v < -1 - 1e-6 || v > 1 + 1e-6)) throw new Error("a value outside [-1, 1]");
 * ```
 */
export function renderShapes(params: readonly ShapeParams[]): Tensor {
  const size = SHAPES_IMAGE_SIZE;
  const canvas = createCanvas(size, size);
  const ctx = canvas.getContext("2d");
  const out = new Float32Array(params.length * 3 * size * size);
  for (const [i, p] of params.entries()) {
    if (!(Number.isInteger(p.mode) && p.mode >= 0 && p.mode < SHAPE_KINDS.length)) {
      throw new RangeError(
        `Image ${i} has shape mode ${p.mode}, expected an integer in [0, ${SHAPE_KINDS.length - 1}]`,
      );
    }
    ctx.fillStyle = cssColour(p.bg);
    ctx.fillRect(0, 0, size, size);
    ctx.fillStyle = cssColour(p.fg);
    ctx.beginPath();
    tracePath(ctx, SHAPE_KINDS[p.mode], size / 2 + p.offset[0], size / 2 + p.offset[1], BASE_RADIUS * p.scale);
    ctx.fill();
    const rgba = ctx.getImageData(0, 0, size, size).data;
    const plane = size * size;
    for (let px = 0; px < plane; px++) {
      for (let c = 0; c < 3; c++) out[(i * 3 + c) * plane + px] = rgba[px * 4 + c] / 127.5 - 1;
    }
  }
  return new Tensor(out, [params.length, 3, size, size]);
}

/** Options of `shapesMixture`. */
export interface ShapesMixtureOptions {
  /** The low-rank part's rank per kind (default 12). */
  rank?: number;
  /** Images drawn per kind for the fit (default 96). */
  samplesPerMode?: number;
  /** The seed of the fitting images (default 1234). */
  seed?: number;
  /** Fit one Gaussian to all kinds together instead of one per kind (the `gaussian32` model). */
  single?: boolean;
}

/**
 * The Gaussian mixture fitted to the shapes data: one probabilistic-PCA component per kind, equal weights.
 *
 * p(x) = (1/6) sum_k N(x; mu_k, Q_k diag(lambda_k) Q_k^T + s2_k I), each fitted to `samplesPerMode` images of kind k
 *
 * @param options `rank`, `samplesPerMode`, `seed`, `single`
 * @returns the mixture, dimension 3 x 32 x 32 = 3072 in CHW order
 * @example
 * ```ts
 * import { shapesMixture } from "../../mod.ts";
 * const mixture = shapesMixture({ rank: 8, samplesPerMode: 32 });
 * if (mixture.count !== 6) throw new Error("one component per shape kind");
 * ```
 */
export function shapesMixture(options: ShapesMixtureOptions = {}): GaussianMixture {
  const rank = options.rank ?? 12;
  const perMode = options.samplesPerMode ?? 96;
  const seed = options.seed ?? 1234;
  const dim = 3 * SHAPES_IMAGE_SIZE * SHAPES_IMAGE_SIZE;
  if (!Number.isInteger(perMode) || perMode <= rank + 1) {
    throw new RangeError(`samplesPerMode must be an integer above rank + 1 = ${rank + 1}, got ${perMode}`);
  }
  if (options.single) {
    const { images } = drawShapes(perMode * SHAPE_KINDS.length, { seed });
    return new GaussianMixture([fitLowRankGaussian(images.data, { dim, rank, minNoiseVariance: 1e-4 })], { dim, rank });
  }
  const components = SHAPE_KINDS.map((_, mode) => {
    const { images } = drawShapes(perMode, { seed: seed + mode, mode });
    return { ...fitLowRankGaussian(images.data, { dim, rank, minNoiseVariance: 1e-4 }), weight: 1 };
  });
  return new GaussianMixture(components, { dim, rank });
}

function tracePath(ctx: SKRSContext2D, kind: ShapeKind, cx: number, cy: number, radius: number): void {
  const polygon = (points: [number, number][]) => {
    ctx.moveTo(cx + radius * points[0][0], cy + radius * points[0][1]);
    for (const [x, y] of points.slice(1)) ctx.lineTo(cx + radius * x, cy + radius * y);
    ctx.closePath();
  };
  switch (kind) {
    case "circle":
      ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
      return;
    case "square":
      return polygon([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]]);
    case "triangle":
      return polygon([[0, -1], [0.95, 0.75], [-0.95, 0.75]]);
    case "diamond":
      return polygon([[0, -1.05], [0.8, 0], [0, 1.05], [-0.8, 0]]);
    case "cross": {
      const a = 0.32;
      return polygon([
        [-a, -1],
        [a, -1],
        [a, -a],
        [1, -a],
        [1, a],
        [a, a],
        [a, 1],
        [-a, 1],
        [-a, a],
        [-1, a],
        [-1, -a],
        [-a, -a],
      ]);
    }
    case "star": {
      const points: [number, number][] = [];
      for (let j = 0; j < 10; j++) {
        const angle = -Math.PI / 2 + (Math.PI * j) / 5;
        const r = j % 2 === 0 ? 1.05 : 0.45;
        points.push([r * Math.cos(angle), r * Math.sin(angle)]);
      }
      return polygon(points);
    }
  }
}

function cssColour(rgb: readonly number[]): string {
  const byte = (v: number) => Math.round(((v + 1) / 2) * 255);
  return `rgb(${byte(rgb[0])}, ${byte(rgb[1])}, ${byte(rgb[2])})`;
}

function clip(v: number): number {
  return Math.min(1, Math.max(-1, v));
}
