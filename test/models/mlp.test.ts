import { describe, expect, test } from "bun:test";
import { Adam, Mlp } from "../../lib/models/mlp.ts";
import { TorchGenerator } from "../../lib/core/torch_generator.ts";

describe("Mlp", () => {
  test("a 1-2-1 network computes W_1 silu(W_0 x + b_0) + b_1, worked by hand", () => {
    const net = new Mlp([1, 2, 1]);
    // W_0 = [[1], [-1]], b_0 = [0, 0], W_1 = [[1, 1]], b_1 = [0.5]
    net.parameters.set([1, -1, 0, 0, 1, 1, 0.5]);
    // silu(2) + silu(-2) = 2 sigma(2) - 2 sigma(-2) = 2 tanh(1), so y = 2 tanh(1) + 0.5 = 2.0231883119115295
    expect(net.forward(new Float64Array([2]), 1).output[0]).toBeCloseTo(2.0231883119115295, 14);
    expect(net.parameterCount).toBe(7);
  });

  test("backpropagation equals central finite differences for every parameter", () => {
    const generator = new TorchGenerator(3);
    const net = new Mlp([3, 5, 4, 2], { generator });
    // non-zero biases, so that their gradients are tested away from the initial point
    for (let i = 0; i < net.parameterCount; i++) net.parameters[i] += 0.1 * Math.sin(i);
    const batch = 4;
    const input = Float64Array.from(generator.randn([batch, 3]).data);
    const target = Float64Array.from(generator.randn([batch, 2]).data);
    // L = sum (y - target)^2 / 2, dL/dy = y - target
    const loss = (parameters: Float64Array) => {
      const { output } = net.forward(input, batch, parameters);
      let sum = 0;
      for (let i = 0; i < output.length; i++) sum += 0.5 * (output[i] - target[i]) ** 2;
      return sum;
    };
    const pass = net.forward(input, batch);
    const gradOutput = pass.output.map((y, i) => y - target[i]);
    const gradient = net.backward(pass, gradOutput);
    const h = 1e-6;
    let worst = 0;
    for (let i = 0; i < net.parameterCount; i++) {
      const plus = Float64Array.from(net.parameters);
      const minus = Float64Array.from(net.parameters);
      plus[i] += h;
      minus[i] -= h;
      const numeric = (loss(plus) - loss(minus)) / (2 * h);
      worst = Math.max(worst, Math.abs(numeric - gradient[i]) / Math.max(1, Math.abs(numeric)));
    }
    // central differences are exact to O(h^2) ~ 1e-12 plus rounding ~ 1e-16 / h ~ 1e-10
    expect(worst).toBeLessThan(1e-7);
    expect(gradient.some((g) => Math.abs(g) > 1e-3)).toBe(true);
  });

  test("initial weights are N(0, 1 / fan-in) from the generator, biases zero, and seeded", () => {
    const a = new Mlp([64, 128, 2], { generator: new TorchGenerator(0) });
    const b = new Mlp([64, 128, 2], { generator: new TorchGenerator(0) });
    expect(a.parameters).toEqual(b.parameters);
    const weights = a.parameters.subarray(0, 64 * 128);
    let sumSquares = 0;
    for (const w of weights) sumSquares += w * w;
    // E w^2 = 1/64; with 8192 draws the sample mean is within 5% of it (standard error sqrt(2/8192) = 1.6%)
    expect(Math.abs(sumSquares / weights.length - 1 / 64)).toBeLessThan(0.05 / 64);
    expect([...a.parameters.subarray(64 * 128, 64 * 128 + 128)].every((v) => v === 0)).toBe(true);
  });

  test("bad widths, inputs and gradients are refused with the value named", () => {
    expect(() => new Mlp([2])).toThrow("at least two widths");
    expect(() => new Mlp([2, 0, 1])).toThrow("Width 1 of the MLP must be a positive integer, got 0");
    const net = new Mlp([2, 3, 1]);
    expect(() => net.forward(new Float64Array(3), 2)).toThrow("The input holds 3 values");
    expect(() => net.forward(new Float64Array(2), 0)).toThrow("The batch must be a positive integer, got 0");
    const pass = net.forward(new Float64Array(4), 2);
    expect(() => net.backward(pass, new Float64Array(3))).toThrow("dL/dy holds 3 values");
  });
});

describe("Adam", () => {
  test("three steps equal Algorithm 1 of Kingma and Ba worked by hand", () => {
    // alpha = 0.1, beta_1 = 0.9, beta_2 = 0.999, eps = 1e-8, theta_0 = 0.5, gradients 1, -2, 0.5.
    // By hand (bc -l, 30 digits) from m_k = beta_1 m + (1 - beta_1) g, v_k = beta_2 v + (1 - beta_2) g^2,
    // theta_k = theta - alpha (m_k / (1 - beta_1^k)) / (sqrt(v_k / (1 - beta_2^k)) + eps):
    // theta_1 = 0.400000000999999990, theta_2 = 0.436610353472075088, theta_3 = 0.450279419673821726.
    // The second parameter sees a constant gradient g = -3, for which m-hat = g and v-hat = g^2 exactly, so every
    // step moves it by alpha * 3 / (3 + eps).
    const theta = new Float64Array([0.5, -1]);
    const adam = new Adam(2, { learningRate: 0.1 });
    const expected = [0.400000000999999990, 0.436610353472075088, 0.450279419673821726];
    for (const [k, g] of [1, -2, 0.5].entries()) {
      adam.step(theta, new Float64Array([g, -3]));
      expect(theta[0]).toBeCloseTo(expected[k], 14);
      expect(theta[1]).toBeCloseTo(-1 + ((k + 1) * 0.1 * 3) / (3 + 1e-8), 14);
    }
    expect(adam.steps).toBe(3);
  });

  test("a per-step learning rate replaces alpha for that step only", () => {
    const a = new Float64Array([1]);
    const b = new Float64Array([1]);
    new Adam(1, { learningRate: 0.1 }).step(a, [4], 0.01);
    new Adam(1, { learningRate: 0.01 }).step(b, [4]);
    expect(a[0]).toBe(b[0]);
  });

  test("bad settings and gradients are refused with the value named", () => {
    expect(() => new Adam(2, { learningRate: NaN })).toThrow(
      "The Adam learning rate must be a positive finite number, got NaN",
    );
    expect(() => new Adam(2, { learningRate: Infinity })).toThrow("got Infinity");
    expect(() => new Adam(2, { learningRate: 0 })).toThrow("got 0");
    expect(() => new Adam(2, { beta1: 1 })).toThrow("Adam's beta1 must be in [0, 1), got 1");
    expect(() => new Adam(0)).toThrow("positive integer parameter count, got 0");
    const adam = new Adam(2);
    expect(() => adam.step(new Float64Array(2), [1, NaN])).toThrow("The gradient is not finite at index 1: NaN");
    expect(() => adam.step(new Float64Array(3), [1, 2, 3])).toThrow("Adam was built for 2 parameters");
  });
});
