/**
 * A small multilayer perceptron with hand-written backpropagation, and the Adam optimiser (Kingma and Ba, 2015,
 * arXiv 1412.6980, Algorithm 1): what a learned 2-D noise predictor eps_theta(x_t, t) is made of.
 *
 * | maths                         | code                 | meaning                                                  |
 * |-------------------------------|----------------------|----------------------------------------------------------|
 * | n_0, n_1, ..., n_L            | `sizes`              | widths: inputs, hidden layers, outputs                   |
 * | h_0                           | `input`              | the batch, [batch, n_0] row-major                        |
 * | W_l, b_l                      | `weight`, `bias`     | layer l: W_l [n_{l+1}, n_l] (`nn.Linear`), b_l [n_{l+1}] |
 * | z_l = h_l W_l^T + b_l         | `preActivations[l]`  | the layer's affine output                                |
 * | h_{l+1} = silu(z_l)           | `activations[l + 1]` | hidden layers; the last layer stays linear (y = z_{L-1}) |
 * | silu(z) = z sigma(z)          |                      | the DDPM network's nonlinearity (swish)                  |
 * | dL/dz_l, dL/dh_l              | `gradZ`, `gradH`     | backpropagated gradients                                 |
 * | theta                         | `parameters`         | all W_l and b_l, one flat Float64Array                   |
 * | g_k, m_k, v_k                 | `gradient`, `m`, `v` | Adam: gradient, first and second moment estimates        |
 * | alpha, beta_1, beta_2, eps    | `learningRate`, ...  | Adam's step size, decay rates and fudge term             |
 *
 * Why a hand-written network rather than TensorFlow.js: the 2-D denoisers need about ten thousand parameters, so
 * plain Float64Array loops train them in seconds to a minute, with no new dependency and no backend to choose; and
 * every line of the chain rule is here to read, next to the equation it implements, which is what a student of the
 * DDPM objective needs to see. `test/models/mlp.test.ts` checks the gradient against finite differences and Adam against
 * the paper's update worked by hand.
 *
 * @module
 */

/** Anything that draws standard normal tensors, such as a `TorchGenerator`. */
export interface MlpNormalSource {
  /** Draw independent N(0, 1) values, row-major over `shape`. */
  randn(shape: readonly number[]): { data: Float32Array };
}

/** Options of the `Mlp` constructor. */
export interface MlpOptions {
  /**
   * Where the initial weights come from: W_l ~ N(0, 1 / n_l) (LeCun normal), b_l = 0. Without one, every parameter
   * starts at 0 (set `parameters` yourself, e.g. from a saved file).
   */
  generator?: MlpNormalSource;
}

/** One forward pass, kept for the backward pass. */
export interface MlpPass {
  /** Rows of the batch. */
  readonly batch: number;
  /** h_l for l = 0 .. L-1: the input, then each hidden layer's output ([batch, n_l] each). */
  readonly activations: readonly Float64Array[];
  /** z_l for l = 0 .. L-1 ([batch, n_{l+1}] each). */
  readonly preActivations: readonly Float64Array[];
  /** y = z_{L-1}, [batch, n_L]. */
  readonly output: Float64Array;
  /** The parameters the pass used. */
  readonly parameters: Float64Array;
}

/**
 * A fully connected network with SiLU hidden layers and a linear output layer.
 *
 * h_0 = x,  h_{l+1} = silu(h_l W_l^T + b_l) for l < L - 1,  y = h_{L-1} W_{L-1}^T + b_{L-1}
 *
 * @example
 * ```ts
 * import { Mlp, TorchGenerator } from "../../mod.ts";
 * const net = new Mlp([2, 16, 1], { generator: new TorchGenerator(0) });
 * const { output } = net.forward(new Float64Array([0.5, -0.5]), 1); // one row in, one value out
 * if (output.length !== 1 || !Number.isFinite(output[0])) throw new Error(`got ${output}`);
 * ```
 */
export class Mlp {
  /** Widths n_0 .. n_L. */
  readonly sizes: readonly number[];
  /** The number of parameters, sum_l (n_l + 1) n_{l+1}. */
  readonly parameterCount: number;
  /** Where W_l starts inside `parameters`; b_l follows it. */
  readonly offsets: readonly number[];
  /** All weights and biases: for each layer W_l (row-major [n_{l+1}, n_l]) then b_l. */
  readonly parameters: Float64Array;

  /**
   * Build a network.
   *
   * @param sizes the widths n_0, ..., n_L (at least two, each a positive integer)
   * @param options `generator` for the initial weights
   * @throws RangeError naming the value when a width is not a positive integer or fewer than two are given
   */
  constructor(sizes: readonly number[], options: MlpOptions = {}) {
    if (!Array.isArray(sizes) || sizes.length < 2) {
      throw new RangeError(`An MLP needs at least two widths (inputs and outputs), got [${String(sizes)}]`);
    }
    for (const [l, n] of sizes.entries()) {
      if (!Number.isInteger(n) || n < 1) {
        throw new RangeError(`Width ${l} of the MLP must be a positive integer, got ${n}`);
      }
    }
    this.sizes = Object.freeze([...sizes]);
    const offsets: number[] = [];
    let count = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      offsets.push(count);
      count += (sizes[l] + 1) * sizes[l + 1];
    }
    this.offsets = Object.freeze(offsets);
    this.parameterCount = count;
    this.parameters = new Float64Array(count);
    if (options.generator) {
      // LeCun normal: Var(W_l) = 1 / n_l keeps the pre-activations of unit scale through the layers
      for (let l = 0; l + 1 < sizes.length; l++) {
        const fanIn = sizes[l];
        const z = options.generator.randn([sizes[l + 1], fanIn]).data;
        const scale = 1 / Math.sqrt(fanIn);
        for (let i = 0; i < z.length; i++) this.parameters[offsets[l] + i] = scale * z[i];
      }
    }
  }

  /**
   * The number of layers L (affine maps).
   *
   * @example
   * ```ts
   * import { Mlp } from "../../mod.ts";
   * if (new Mlp([2, 16, 16, 1]).layers !== 3) throw new Error("sizes 2, 16, 16, 1 make three affine maps");
   * ```
   */
  get layers(): number {
    return this.sizes.length - 1;
  }

  /**
   * Run the network on a batch, keeping what the backward pass needs.
   *
   * z_l = h_l W_l^T + b_l,  h_{l+1} = silu(z_l),  y = z_{L-1}
   *
   * @param input the batch, [batch, n_0] row-major
   * @param batch the number of rows
   * @param parameters the parameters to use (default: this network's own)
   * @returns the pass: activations, pre-activations and the output y
   * @throws RangeError when the input or the parameters have the wrong length
   * @example
   * ```ts
   * import { Mlp } from "../../mod.ts";
   * const net = new Mlp([1, 1]);
   * net.parameters.set([2, 1]); // W = [[2]], b = [1]
   * const y = net.forward(new Float64Array([3]), 1).output[0]; // 2 * 3 + 1
   * if (y !== 7) throw new Error(`got ${y}`);
   * ```
   */
  forward(input: ArrayLike<number>, batch: number, parameters: Float64Array = this.parameters): MlpPass {
    const { sizes } = this;
    if (!Number.isInteger(batch) || batch < 1) {
      throw new RangeError(`The batch must be a positive integer, got ${batch}`);
    }
    if (input.length !== batch * sizes[0]) {
      throw new RangeError(
        `The input holds ${input.length} values; a batch of ${batch} rows of ${sizes[0]} needs ${batch * sizes[0]}`,
      );
    }
    if (parameters.length !== this.parameterCount) {
      throw new RangeError(`The MLP has ${this.parameterCount} parameters, got an array of ${parameters.length}`);
    }
    const activations: Float64Array[] = [Float64Array.from(input)];
    const preActivations: Float64Array[] = [];
    for (let l = 0; l < this.layers; l++) {
      const nIn = sizes[l];
      const nOut = sizes[l + 1];
      const h = activations[l];
      const weight = this.offsets[l];
      const bias = weight + nIn * nOut;
      const z = new Float64Array(batch * nOut);
      // 1. z_l = h_l W_l^T + b_l
      for (let b = 0; b < batch; b++) {
        const row = b * nIn;
        for (let o = 0; o < nOut; o++) {
          let sum = parameters[bias + o];
          const w = weight + o * nIn;
          for (let i = 0; i < nIn; i++) sum += parameters[w + i] * h[row + i];
          z[b * nOut + o] = sum;
        }
      }
      preActivations.push(z);
      // 2. h_{l+1} = silu(z_l) = z_l sigma(z_l), except after the last layer
      if (l + 1 < this.layers) {
        const next = new Float64Array(z.length);
        for (let i = 0; i < z.length; i++) next[i] = z[i] / (1 + Math.exp(-z[i]));
        activations.push(next);
      }
    }
    return { batch, activations, preActivations, output: preActivations[this.layers - 1], parameters };
  }

  /**
   * Backpropagate dL/dy through a forward pass: the gradient of a loss L with respect to every parameter.
   *
   * dL/dz_{L-1} = dL/dy;  dL/dW_l = (dL/dz_l)^T h_l;  dL/db_l = sum_batch dL/dz_l;
   * dL/dh_l = dL/dz_l W_l;  dL/dz_{l-1} = dL/dh_l * silu'(z_{l-1}),  silu'(z) = sigma(z) (1 + z (1 - sigma(z)))
   *
   * @param pass the forward pass (from `forward`)
   * @param gradOutput dL/dy, [batch, n_L]
   * @param gradient where to write dL/dtheta (default: a new array); it is overwritten, not accumulated
   * @returns dL/dtheta, laid out like `parameters`
   * @throws RangeError when `gradOutput` or `gradient` has the wrong length
   * @example
   * ```ts
   * import { Mlp } from "../../mod.ts";
   * const net = new Mlp([1, 1]);
   * net.parameters.set([2, 1]);
   * const pass = net.forward(new Float64Array([3]), 1);
   * const gradient = net.backward(pass, new Float64Array([1])); // dy/dW = x = 3, dy/db = 1
   * if (gradient.join() !== "3,1") throw new Error(`got ${gradient}`);
   * ```
   */
  backward(pass: MlpPass, gradOutput: ArrayLike<number>, gradient?: Float64Array): Float64Array {
    const { sizes } = this;
    const { batch, parameters } = pass;
    if (gradOutput.length !== batch * sizes[this.layers]) {
      throw new RangeError(
        `dL/dy holds ${gradOutput.length} values; a batch of ${batch} rows of ${sizes[this.layers]} needs ${
          batch * sizes[this.layers]
        }`,
      );
    }
    const grad = gradient ?? new Float64Array(this.parameterCount);
    if (grad.length !== this.parameterCount) {
      throw new RangeError(`The gradient array must hold ${this.parameterCount} values, got ${grad.length}`);
    }
    grad.fill(0);
    let gradZ = Float64Array.from(gradOutput);
    for (let l = this.layers - 1; l >= 0; l--) {
      const nIn = sizes[l];
      const nOut = sizes[l + 1];
      const h = pass.activations[l];
      const weight = this.offsets[l];
      const bias = weight + nIn * nOut;
      // 1. dL/dW_l = (dL/dz_l)^T h_l and dL/db_l = sum over the batch of dL/dz_l
      for (let b = 0; b < batch; b++) {
        const row = b * nIn;
        for (let o = 0; o < nOut; o++) {
          const g = gradZ[b * nOut + o];
          if (g === 0) continue;
          grad[bias + o] += g;
          const w = weight + o * nIn;
          for (let i = 0; i < nIn; i++) grad[w + i] += g * h[row + i];
        }
      }
      if (l === 0) break;
      // 2. dL/dh_l = dL/dz_l W_l
      const gradH = new Float64Array(batch * nIn);
      for (let b = 0; b < batch; b++) {
        const row = b * nIn;
        for (let o = 0; o < nOut; o++) {
          const g = gradZ[b * nOut + o];
          if (g === 0) continue;
          const w = weight + o * nIn;
          for (let i = 0; i < nIn; i++) gradH[row + i] += g * parameters[w + i];
        }
      }
      // 3. dL/dz_{l-1} = dL/dh_l * silu'(z_{l-1})
      const z = pass.preActivations[l - 1];
      for (let i = 0; i < gradH.length; i++) {
        const sigma = 1 / (1 + Math.exp(-z[i]));
        gradH[i] *= sigma * (1 + z[i] * (1 - sigma));
      }
      gradZ = gradH;
    }
    return grad;
  }
}

/** Options of `Adam`. */
export interface AdamOptions {
  /** The step size alpha (default 1e-3, the paper's). */
  learningRate?: number;
  /** The first moment's decay rate beta_1 (default 0.9). */
  beta1?: number;
  /** The second moment's decay rate beta_2 (default 0.999). */
  beta2?: number;
  /** The fudge term eps added to sqrt(v-hat) (default 1e-8). */
  epsilon?: number;
}

/**
 * The Adam optimiser, Algorithm 1 of Kingma and Ba (arXiv 1412.6980), as PyTorch's `torch.optim.Adam` applies it.
 *
 * m_k = beta_1 m_{k-1} + (1 - beta_1) g_k,  v_k = beta_2 v_{k-1} + (1 - beta_2) g_k^2,
 * m-hat = m_k / (1 - beta_1^k),  v-hat = v_k / (1 - beta_2^k),
 * theta_k = theta_{k-1} - alpha m-hat / (sqrt(v-hat) + eps)
 *
 * @example
 * ```ts
 * import { Adam } from "../../mod.ts";
 * const theta = new Float64Array([1]);
 * const adam = new Adam(1, { learningRate: 0.1 });
 * adam.step(theta, new Float64Array([2 * theta[0]])); // one step on theta^2
 * // Adam's first step is learningRate * g / (|g| + eps): theta = 1 - 0.1, to within eps
 * if (Math.abs(theta[0] - 0.9) > 1e-6) throw new Error(`got ${theta[0]}`);
 * ```
 */
export class Adam {
  /** The first moment estimates m. */
  readonly m: Float64Array;
  /** The second moment estimates v. */
  readonly v: Float64Array;
  /** alpha. */
  readonly learningRate: number;
  /** beta_1. */
  readonly beta1: number;
  /** beta_2. */
  readonly beta2: number;
  /** eps. */
  readonly epsilon: number;
  #steps = 0;

  /**
   * An optimiser for `size` parameters, with zero moments.
   *
   * @param size the number of parameters
   * @param options alpha, beta_1, beta_2 and eps
   * @throws RangeError naming the value when `size` is not a positive integer, alpha or eps is not a positive finite
   *   number, or a beta is outside [0, 1)
   */
  constructor(size: number, options: AdamOptions = {}) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`Adam needs a positive integer parameter count, got ${size}`);
    }
    this.learningRate = checkPositiveFinite(options.learningRate ?? 1e-3, "Adam learning rate");
    this.beta1 = checkBeta(options.beta1 ?? 0.9, "beta1");
    this.beta2 = checkBeta(options.beta2 ?? 0.999, "beta2");
    this.epsilon = checkPositiveFinite(options.epsilon ?? 1e-8, "Adam epsilon");
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /**
   * The number of steps taken, k.
   *
   * @example
   * ```ts
   * import { Adam } from "../../mod.ts";
   * const adam = new Adam(1);
   * adam.step(new Float64Array([1]), new Float64Array([1]));
   * if (adam.steps !== 1) throw new Error(`one step taken, got ${adam.steps}`);
   * ```
   */
  get steps(): number {
    return this.#steps;
  }

  /**
   * One update of `parameters` in place from the gradient g_k.
   *
   * theta_k = theta_{k-1} - alpha (m_k / (1 - beta_1^k)) / (sqrt(v_k / (1 - beta_2^k)) + eps)
   *
   * @param parameters theta, updated in place
   * @param gradient g_k = dL/dtheta at theta_{k-1}
   * @param learningRate alpha for this step (default: the optimiser's)
   * @throws RangeError when the lengths differ from the optimiser's size or the gradient is not finite
   * @example
   * ```ts
   * import { Adam } from "../../mod.ts";
   * const theta = new Float64Array([1, -1]);
   * new Adam(2, { learningRate: 0.01 }).step(theta, new Float64Array([5, -5]));
   * // the first step moves each parameter by the learning rate against its gradient's sign, whatever the gradient's size
   * if (Math.abs(theta[0] - 0.99) > 1e-9 || Math.abs(theta[1] + 0.99) > 1e-9) throw new Error(`got ${theta}`);
   * ```
   */
  step(parameters: Float64Array, gradient: ArrayLike<number>, learningRate: number = this.learningRate): void {
    const size = this.m.length;
    if (parameters.length !== size || gradient.length !== size) {
      throw new RangeError(
        `Adam was built for ${size} parameters, got ${parameters.length} parameters and ${gradient.length} gradients`,
      );
    }
    checkPositiveFinite(learningRate, "Adam learning rate");
    for (let i = 0; i < size; i++) {
      if (!Number.isFinite(gradient[i])) {
        throw new RangeError(`The gradient is not finite at index ${i}: ${gradient[i]}`);
      }
    }
    const { m, v, beta1, beta2, epsilon } = this;
    const k = ++this.#steps;
    // 1. bias corrections 1 - beta^k of the zero-initialised moments
    const correction1 = 1 - beta1 ** k;
    const correction2 = 1 - beta2 ** k;
    for (let i = 0; i < size; i++) {
      const g = gradient[i];
      // 2. moment estimates m_k and v_k
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      // 3. theta_k = theta_{k-1} - alpha m-hat / (sqrt(v-hat) + eps)
      parameters[i] -= (learningRate * (m[i] / correction1)) / (Math.sqrt(v[i] / correction2) + epsilon);
    }
  }
}

function checkPositiveFinite(value: number, name: string): number {
  if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) {
    throw new RangeError(`The ${name} must be a positive finite number, got ${value}`);
  }
  return value;
}

function checkBeta(value: number, name: string): number {
  if (!(typeof value === "number" && value >= 0 && value < 1)) {
    throw new RangeError(`Adam's ${name} must be in [0, 1), got ${value}`);
  }
  return value;
}
