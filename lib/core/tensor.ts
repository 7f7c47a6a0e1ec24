/**
 * A minimal dense float32 tensor: a flat `Float32Array` in row-major (C) order plus its shape.
 *
 * Images are batch-first NCHW, as in PyTorch and diffusers: `[batch, channels, height, width]`.
 * Arithmetic lives in the algorithm files that need it; this class only holds data and checks shapes.
 *
 * @module
 */

/**
 * A float32 array with a shape, row-major, batch-first (NCHW for images).
 *
 * The element count is the product of the shape: size = prod_i shape[i].
 *
 * @example
 * ```ts
 * import { Tensor } from "./tensor.ts";
 * const x = new Tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [1, 2, 3]);
 * if (x.size !== 6) throw new Error(`size ${x.size}, expected 1 * 2 * 3 = 6`);
 * ```
 */
export class Tensor {
  /** The elements, row-major over `shape`. */
  readonly data: Float32Array;
  /** The dimensions, outermost first. */
  readonly shape: readonly number[];

  /**
   * Wrap `data` (not copied) with `shape`.
   *
   * @param data the elements, row-major over `shape`
   * @param shape the dimensions; their product must equal `data.length`
   * @throws RangeError if a dimension is not a non-negative integer or the sizes disagree
   */
  constructor(data: Float32Array, shape: readonly number[]) {
    if (!(data instanceof Float32Array)) {
      throw new TypeError(`Tensor data must be a Float32Array, got ${describe(data)}`);
    }
    const size = shapeSize(shape);
    if (size !== data.length) {
      throw new RangeError(
        `Tensor shape [${shape.join(", ")}] holds ${size} elements but the data has ${data.length}`,
      );
    }
    this.data = data;
    // a frozen shape (another tensor's) cannot change, so it is shared rather than copied and frozen again
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze([...shape]);
  }

  /**
   * The number of elements.
   *
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * if (Tensor.zeros([2, 3, 4]).size !== 24) throw new Error("2 * 3 * 4 = 24 elements");
   * ```
   */
  get size(): number {
    return this.data.length;
  }

  /**
   * A tensor of zeros with the given shape.
   *
   * @param shape the dimensions
   * @returns a new zero-filled tensor
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const z = Tensor.zeros([2, 3]);
   * if (z.data.length !== 6 || z.data.some((v) => v !== 0)) throw new Error("expected six zeros");
   * ```
   */
  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(new Float32Array(shapeSize(shape)), shape);
  }

  /**
   * A tensor from nested plain numbers or a flat list with a shape.
   *
   * @param values the elements, row-major
   * @param shape the dimensions (defaults to `[values.length]`)
   * @returns a new tensor holding `values` rounded to float32
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const m = Tensor.from([1, 2, 3, 4], [2, 2]);
   * if (m.shape.join() !== "2,2" || m.data[3] !== 4) throw new Error("expected [[1, 2], [3, 4]]");
   * ```
   */
  static from(values: ArrayLike<number>, shape: readonly number[] = [values.length]): Tensor {
    return new Tensor(Float32Array.from(values), shape);
  }

  /**
   * A deep copy, with its own buffer.
   *
   * @returns a new tensor with the same shape and values
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const x = Tensor.from([1, 2]);
   * const y = x.clone();
   * y.data[0] = 5;
   * if (x.data[0] !== 1) throw new Error("the clone shares its data with the original");
   * ```
   */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape);
  }

  /**
   * The same data seen with another shape of equal size.
   *
   * @param shape the new dimensions
   * @returns a tensor sharing this buffer
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const r = Tensor.from([1, 2, 3, 4]).reshape([2, 2]);
   * if (r.shape.join() !== "2,2" || r.data[2] !== 3) throw new Error("expected [[1, 2], [3, 4]]");
   * ```
   */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape);
  }

  /**
   * The batch items as separate tensors of batch size 1, copies in batch order (`torch.split(x, 1)`).
   *
   * items[b] = x[b : b + 1], shape [1, ...shape.slice(1)]
   *
   * @returns one tensor per item along the first dimension
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * const [first, second] = Tensor.from([1, 2, 3, 4], [2, 2]).splitBatch();
   * if (second.shape.join() !== "1,2" || second.data[0] !== 3 || first.data[1] !== 2) throw new Error("wrong");
   * ```
   */
  splitBatch(): Tensor[] {
    const [batch, ...rest] = this.shape;
    const size = this.size / batch;
    return Array.from({ length: batch }, (_, b) => new Tensor(this.data.slice(b * size, (b + 1) * size), [1, ...rest]));
  }

  /**
   * Whether another tensor has exactly this shape.
   *
   * @param other the tensor to compare with
   * @returns true when both shapes have the same rank and dimensions
   * @example
   * ```ts
   * import { Tensor } from "./tensor.ts";
   * if (Tensor.zeros([2, 2]).sameShape(Tensor.zeros([4]))) throw new Error("[2, 2] and [4] differ");
   * if (!Tensor.zeros([2, 2]).sameShape(Tensor.zeros([2, 2]))) throw new Error("[2, 2] and [2, 2] agree");
   * ```
   */
  sameShape(other: Tensor): boolean {
    return this.shape.length === other.shape.length && this.shape.every((d, i) => d === other.shape[i]);
  }
}

/**
 * The number of elements a shape holds, after checking every dimension.
 *
 * size = prod_i shape[i]
 *
 * @param shape the dimensions
 * @returns their product
 * @throws RangeError naming the first dimension that is not a non-negative integer
 * @example
 * ```ts
 * import { shapeSize } from "./tensor.ts";
 * if (shapeSize([2, 3, 4]) !== 24) throw new Error("2 * 3 * 4 = 24");
 * ```
 */
export function shapeSize(shape: readonly number[]): number {
  if (!Array.isArray(shape)) throw new TypeError(`A shape must be an array of integers, got ${describe(shape)}`);
  let size = 1;
  for (let axis = 0; axis < shape.length; axis++) {
    const dim = shape[axis];
    if (!Number.isInteger(dim) || dim < 0) {
      throw new RangeError(`Shape [${shape.join(", ")}] has an invalid dimension ${dim} at axis ${axis}`);
    }
    size *= dim;
  }
  return size;
}

/**
 * Throw unless two tensors have the same shape, naming both and what they are.
 *
 * @param a the first tensor
 * @param b the second tensor
 * @param names how to call them in the error, e.g. `["modelOutput", "sample"]` (optional)
 * @throws RangeError when the shapes differ
 * @example
 * ```ts
 * import { assertSameShape, Tensor } from "./tensor.ts";
 * assertSameShape(Tensor.zeros([2]), Tensor.zeros([2]), ["a", "b"]); // the same shape: no error
 * let refused = false;
 * try {
 *   assertSameShape(Tensor.zeros([2]), Tensor.zeros([3]), ["a", "b"]);
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("shapes [2] and [3] were accepted");
 * ```
 */
export function assertSameShape(
  a: Tensor,
  b: Tensor,
  names: readonly [string, string] = ["the first tensor", "the second tensor"],
): void {
  if (!a.sameShape(b)) {
    throw new RangeError(
      `${names[0]} has shape [${a.shape.join(", ")}] but ${names[1]} has shape [${b.shape.join(", ")}]`,
    );
  }
}

/**
 * Throw if any element is NaN or infinite, naming the tensor and the first bad index.
 *
 * @param x the tensor to check
 * @param name what to call it in the error
 * @throws RangeError at the first non-finite element
 * @example
 * ```ts
 * import { assertFinite, Tensor } from "./tensor.ts";
 * assertFinite(Tensor.from([0, 1]), "modelOutput"); // finite: no error
 * let refused = false;
 * try {
 *   assertFinite(Tensor.from([0, NaN]), "modelOutput");
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("a NaN was accepted");
 * ```
 */
export function assertFinite(x: Tensor, name: string): void {
  const data = x.data;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      throw new RangeError(
        `${name} is not finite: element ${i} (index [${unravel(i, x.shape).join(", ")}]) is ${data[i]}`,
      );
    }
  }
}

function unravel(flat: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    index[axis] = flat % shape[axis];
    flat = Math.floor(flat / shape[axis]);
  }
  return index;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return `${typeof value} ${String(value)}`;
}
