/**
 * Classic 2-D toy distributions as Gaussian mixtures, for trajectory plots with an exact model.
 *
 * | maths         | code             | meaning                                              |
 * |---------------|------------------|------------------------------------------------------|
 * | K             | `count`          | number of components                                  |
 * | mu_k          | a point          | a component's centre, inside [-1, 1]^2                |
 * | s             | `std`            | each component's isotropic standard deviation         |
 * | u_k           | a tangent        | moons only: a rank-1 direction along the arc           |
 *
 * Every distribution sits well inside [-1, 1]^2, the range a DDPM scheduler with `clip_sample` keeps, so clipping
 * the predicted x0 never changes the exact model's answers by much. As images they are tensors of shape
 * [batch, 2, 1, 1] (two channels, one pixel), the layout `builtinModel("ring2d")` and friends use.
 *
 * @module
 */
import { GaussianMixture } from "./gaussian_mixture.ts";

/** Options of `ringMixture`. */
export interface RingOptions {
  /** Number of Gaussians around the ring (default 8). */
  count?: number;
  /** The ring's radius (default 0.7). */
  radius?: number;
  /** Each Gaussian's standard deviation (default 0.06). */
  std?: number;
}

/**
 * Equal Gaussians evenly spaced on a circle.
 *
 * mu_k = radius (cos(2 pi k / K), sin(2 pi k / K)),  Sigma_k = std^2 I
 *
 * @param options `count`, `radius`, `std`
 * @returns the mixture, dimension 2
 * @example
 * ```ts
 * import { ringMixture } from "../../mod.ts";
 * const ring = ringMixture({ count: 8 });
 * if (ring.count !== 8) throw new Error("one component per point of the ring");
 * ```
 */
export function ringMixture(options: RingOptions = {}): GaussianMixture {
  const count = checkCount(options.count ?? 8, "ring count");
  const radius = checkPositive(options.radius ?? 0.7, "ring radius");
  const std = checkPositive(options.std ?? 0.06, "ring std");
  return new GaussianMixture(
    Array.from({ length: count }, (_, k) => ({
      weight: 1,
      mean: [radius * Math.cos((2 * Math.PI * k) / count), radius * Math.sin((2 * Math.PI * k) / count)],
      noiseVariance: std * std,
    })),
    { dim: 2 },
  );
}

/** Options of `gridMixture`. */
export interface GridOptions {
  /** Gaussians per side (default 5, so 25 in all). */
  side?: number;
  /** The outermost centres sit at +-extent (default 0.75). */
  extent?: number;
  /** Each Gaussian's standard deviation (default 0.05). */
  std?: number;
}

/**
 * Equal Gaussians on a square grid.
 *
 * mu_(i,j) = (-extent + 2 extent i / (side - 1), -extent + 2 extent j / (side - 1)),  Sigma = std^2 I
 *
 * @param options `side`, `extent`, `std`
 * @returns the mixture, dimension 2
 * @example
 * ```ts
 * import { gridMixture } from "../../mod.ts";
 * if (gridMixture({ side: 3 }).count !== 9) throw new Error("a 3x3 grid has 9 components");
 * ```
 */
export function gridMixture(options: GridOptions = {}): GaussianMixture {
  const side = checkCount(options.side ?? 5, "grid side");
  if (side < 2) throw new RangeError(`A grid needs at least 2 Gaussians per side, got ${side}`);
  const extent = checkPositive(options.extent ?? 0.75, "grid extent");
  const std = checkPositive(options.std ?? 0.05, "grid std");
  const coord = (i: number) => -extent + (2 * extent * i) / (side - 1);
  const components = [];
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) components.push({ weight: 1, mean: [coord(i), coord(j)], noiseVariance: std * std });
  }
  return new GaussianMixture(components, { dim: 2 });
}

/** Options of `moonsMixture`. */
export interface MoonsOptions {
  /** Gaussians along each half-moon (default 12). */
  perMoon?: number;
  /** The isotropic standard deviation across the arc (default 0.04). */
  std?: number;
}

/**
 * Two interleaved half-moons (as scikit-learn's `make_moons` draws them), each approximated by Gaussians along its
 * arc with a rank-1 direction along the tangent so that neighbours overlap into a continuous band.
 *
 * arc 1: (cos theta, sin theta), arc 2: (1 - cos theta, 1/2 - sin theta), theta in [0, pi], mapped by
 * p -> 0.5 (p - (1/2, 1/4)) into [-0.75, 0.75] x [-0.375, 0.375]; Sigma_k = tau^2 u_k u_k^T + std^2 I
 *
 * @param options `perMoon` and `std`
 * @returns the mixture, dimension 2, with 2 `perMoon` components
 * @example
 * ```ts
 * import { moonsMixture } from "../../mod.ts";
 * const moons = moonsMixture();
 * if (moons.count !== 24) throw new Error(`two moons of 12 components each, got ${moons.count}`);
 * ```
 */
export function moonsMixture(options: MoonsOptions = {}): GaussianMixture {
  const perMoon = checkCount(options.perMoon ?? 12, "moons perMoon");
  if (perMoon < 2) throw new RangeError(`Each moon needs at least 2 Gaussians, got ${perMoon}`);
  const std = checkPositive(options.std ?? 0.04, "moons std");
  const scale = 0.5;
  // Half the spacing between neighbouring centres along the arc, as the tangent standard deviation.
  const tangentStd = (0.5 * scale * Math.PI) / (perMoon - 1);
  const components = [];
  for (const moon of [0, 1]) {
    for (let i = 0; i < perMoon; i++) {
      const theta = (Math.PI * i) / (perMoon - 1);
      const point = moon === 0 ? [Math.cos(theta), Math.sin(theta)] : [1 - Math.cos(theta), 0.5 - Math.sin(theta)];
      const tangent = moon === 0 ? [-Math.sin(theta), Math.cos(theta)] : [Math.sin(theta), -Math.cos(theta)];
      components.push({
        weight: 1,
        mean: [scale * (point[0] - 0.5), scale * (point[1] - 0.25)],
        factor: [tangentStd * tangent[0], tangentStd * tangent[1]],
        noiseVariance: std * std,
      });
    }
  }
  return new GaussianMixture(components, { dim: 2 });
}

function checkCount(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`The ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

function checkPositive(value: number, name: string): number {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`The ${name} must be a positive number, got ${value}`);
  }
  return value;
}
