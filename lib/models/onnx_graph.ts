/**
 * A small builder for ONNX graphs, encoded with `onnx-proto` into the bytes onnxruntime loads.
 *
 * The UNet compiler (`unet_onnx.ts`) and the embedded exact denoisers (`builtin_models.ts`) both describe their
 * computation as ONNX nodes through this one builder, so every model this package runs goes through the same
 * onnxruntime code path as an exported checkpoint.
 *
 * @module
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

/** Element types this builder writes. */
export type OnnxElementType = "float32" | "int64";

/** A dimension: a fixed size or the name of a dynamic one (e.g. `"batch"`). */
export type OnnxDim = number | string;

/** An attribute value, typed by its JavaScript form. */
export type OnnxAttribute =
  | number
  | string
  | number[]
  | { ints: number[] }
  | { floats: number[] }
  | { tensor: { data: Float32Array | BigInt64Array; dims: number[] } };

const elementCode: Record<OnnxElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
};

/**
 * Builds one ONNX graph node by node and encodes it as a `ModelProto`.
 *
 * Names of intermediate values are made unique automatically from a readable prefix.
 *
 * @example
 * ```ts
 * import * as ort from "onnxruntime-node";
 * import { OnnxGraphBuilder } from "./onnx_graph.ts";
 * const g = new OnnxGraphBuilder("double");
 * const x = g.input("x", ["batch", 4]);
 * const two = g.constant(new Float32Array([2]), []);
 * g.output(g.node("Mul", [x, two]), "y", ["batch", 4]);
 * const session = await ort.InferenceSession.create(g.encode());
 * const feed = new ort.Tensor("float32", Float32Array.from([1, 2, 3, 4]), [1, 4]);
 * const { y } = await session.run({ x: feed });
 * await session.release();
 * if ([...(y.data as Float32Array)].join() !== "2,4,6,8") throw new Error(`y = 2 x, got ${y.data}`);
 * ```
 */
export class OnnxGraphBuilder {
  readonly name: string;
  #nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  #initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  #inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  #outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  #used = new Map<string, number>();

  /**
   * Start an empty graph.
   *
   * @param name the graph's name, stored in the model
   */
  constructor(name: string) {
    this.name = name;
  }

  /**
   * Declare a graph input.
   *
   * @param name the input's name as onnxruntime will see it
   * @param dims its dimensions, numbers or names of dynamic axes
   * @param type its element type
   * @returns the input's name, to feed into nodes
   * @example
   * ```ts
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * if (g.input("x", ["batch", 3]) !== "x") throw new Error("an input is fed by its own name");
   * ```
   */
  input(name: string, dims: OnnxDim[], type: OnnxElementType = "float32"): string {
    this.#claim(name);
    this.#inputs.push(valueInfo(name, dims, type));
    return name;
  }

  /**
   * Declare a value as a graph output under a given name (adds an Identity when the names differ).
   *
   * @param value the value to expose
   * @param name the output's name
   * @param dims its dimensions, or `null` to leave the shape undeclared
   * @param type its element type
   * @returns the output's name
   * @example
   * ```ts
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * const x = g.input("x", [2]);
   * g.output(x, "y", [2]); // a different name: one Identity node
   * if (g.nodeCount !== 1) throw new Error(`expected one Identity node, got ${g.nodeCount}`);
   * ```
   */
  output(value: string, name: string, dims: OnnxDim[] | null, type: OnnxElementType = "float32"): string {
    if (value !== name) {
      this.#claim(name);
      this.#nodes.push(onnx.NodeProto.create({ opType: "Identity", input: [value], output: [name], name }));
    }
    this.#outputs.push(valueInfo(name, dims, type));
    return name;
  }

  /**
   * Add a weight (an initializer) to the graph.
   *
   * @param name a readable prefix; a numeric suffix is added if it is taken
   * @param data the values, row-major
   * @param dims the dimensions
   * @returns the initializer's unique name
   * @example
   * ```ts
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * const a = g.initializer("w", new Float32Array(6), [2, 3]);
   * const b = g.initializer("w", new Float32Array(6), [2, 3]);
   * if (a === b) throw new Error("a taken name gets a suffix");
   * ```
   */
  initializer(name: string, data: Float32Array | BigInt64Array, dims: number[]): string {
    const unique = this.#fresh(name);
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== data.length) {
      throw new RangeError(`Initializer ${name} has ${data.length} values but dims [${dims.join(", ")}]`);
    }
    this.#initializers.push(tensorProto(unique, data, dims));
    return unique;
  }

  /**
   * Add a constant (an initializer with an automatic name).
   *
   * @param data the values
   * @param dims the dimensions (`[]` for a scalar)
   * @returns the constant's name
   * @example
   * ```ts
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * if (g.constant([1, 2]) === g.constant([1, 2])) throw new Error("each constant has its own name");
   * ```
   */
  constant(data: Float32Array | BigInt64Array | number[], dims: number[] = [data.length]): string {
    const values = Array.isArray(data) ? Float32Array.from(data) : data;
    return this.initializer("const", values, dims);
  }

  /**
   * An int64 constant, e.g. for Reshape's shape or Unsqueeze's axes.
   *
   * @param values the integers
   * @returns the constant's name
   * @example
   * ```ts
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * const shape = g.ints([1, -1]);
   * if (typeof shape !== "string" || shape.length === 0) throw new Error("expected the constant's name");
   * ```
   */
  ints(values: number[]): string {
    return this.initializer("ints", BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  /**
   * Add a node with one output.
   *
   * @param opType the ONNX operator, e.g. `"Conv"`
   * @param inputs the names of its inputs (`""` for an omitted optional input)
   * @param attributes its attributes by name
   * @param name a readable prefix for the output's name
   * @returns the output's name
   * @example
   * ```ts
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * const y = g.node("Relu", [g.input("x", [4])]);
   * if (g.nodeCount !== 1 || y === "x") throw new Error("one node with a fresh output name");
   * ```
   */
  node(opType: string, inputs: string[], attributes: Record<string, OnnxAttribute> = {}, name = opType): string {
    return this.nodeOutputs(opType, inputs, 1, attributes, name)[0];
  }

  /**
   * Add a node with several outputs (e.g. `Split`).
   *
   * @param opType the ONNX operator
   * @param inputs the names of its inputs
   * @param count how many outputs it has
   * @param attributes its attributes by name
   * @param name a readable prefix for the outputs' names
   * @returns the outputs' names
   * @example
   * ```ts
   * import * as ort from "onnxruntime-node";
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * const [left, right] = g.nodeOutputs("Split", [g.input("x", [4])], 2, { axis: 0 }, "half");
   * g.output(left, "left", [2]);
   * g.output(right, "right", [2]);
   * const session = await ort.InferenceSession.create(g.encode());
   * const out = await session.run({ x: new ort.Tensor("float32", Float32Array.from([1, 2, 3, 4]), [4]) });
   * await session.release();
   * if ([...(out.right.data as Float32Array)].join() !== "3,4") throw new Error(`right half ${out.right.data}`);
   * ```
   */
  nodeOutputs(
    opType: string,
    inputs: string[],
    count: number,
    attributes: Record<string, OnnxAttribute> = {},
    name = opType,
  ): string[] {
    const outputs = Array.from({ length: count }, () => this.#fresh(name));
    this.#nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outputs,
        name: outputs[0],
        attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
      }),
    );
    return outputs;
  }

  /**
   * The number of nodes so far.
   *
   * @example
   * ```ts
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * g.node("Neg", [g.node("Abs", [g.input("x", [1])])]);
   * if (g.nodeCount !== 2) throw new Error(`two nodes, got ${g.nodeCount}`);
   * ```
   */
  get nodeCount(): number {
    return this.#nodes.length;
  }

  /**
   * Encode the graph as an ONNX `ModelProto`.
   *
   * @param options `opset` (default 17) and `docString`
   * @returns the model's bytes
   * @example
   * ```ts
   * import * as ort from "onnxruntime-node";
   * import { OnnxGraphBuilder } from "../../mod.ts";
   * const g = new OnnxGraphBuilder("g");
   * g.output(g.node("Abs", [g.input("x", [2])]), "y", [2]);
   * const session = await ort.InferenceSession.create(g.encode({ opset: 17 }));
   * const { y } = await session.run({ x: new ort.Tensor("float32", Float32Array.from([-3, 2]), [2]) });
   * await session.release();
   * if ([...(y.data as Float32Array)].join() !== "3,2") throw new Error(`|x| gave ${y.data}`);
   * ```
   */
  encode(options: { opset?: number; docString?: string } = {}): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: "ddimlab",
      docString: options.docString ?? "",
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: "", version: options.opset ?? 17 })],
      graph: onnx.GraphProto.create({
        name: this.name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }

  #claim(name: string): void {
    if (this.#used.has(name)) throw new Error(`ONNX graph ${this.name} already has a value named ${name}`);
    this.#used.set(name, 0);
  }

  #fresh(prefix: string): string {
    const count = this.#used.get(prefix);
    if (count === undefined) {
      this.#used.set(prefix, 0);
      return prefix;
    }
    let next = count + 1;
    while (this.#used.has(`${prefix}_${next}`)) next++;
    this.#used.set(prefix, next);
    const name = `${prefix}_${next}`;
    this.#used.set(name, 0);
    return name;
  }
}

function valueInfo(name: string, dims: OnnxDim[] | null, type: OnnxElementType) {
  if (dims === null) {
    return onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: elementCode[type] }) }),
    });
  }
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: elementCode[type],
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            typeof d === "number"
              ? onnx.TensorShapeProto.Dimension.create({ dimValue: d })
              : onnx.TensorShapeProto.Dimension.create({ dimParam: d })
          ),
        }),
      }),
    }),
  });
}

function tensorProto(name: string, data: Float32Array | BigInt64Array, dims: number[]) {
  return onnx.TensorProto.create({
    name,
    dims,
    dataType: data instanceof Float32Array ? elementCode.float32 : elementCode.int64,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  });
}

function attribute(name: string, value: OnnxAttribute) {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === "number") {
    return Number.isInteger(value) && !Object.is(value, -0)
      ? onnx.AttributeProto.create({ name, type: AttributeType.INT, i: value })
      : onnx.AttributeProto.create({ name, type: AttributeType.FLOAT, f: value });
  }
  if (typeof value === "string") {
    return onnx.AttributeProto.create({ name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });
  }
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: AttributeType.INTS, ints: value });
  if ("ints" in value) return onnx.AttributeProto.create({ name, type: AttributeType.INTS, ints: value.ints });
  if ("floats" in value) {
    return onnx.AttributeProto.create({ name, type: AttributeType.FLOATS, floats: value.floats });
  }
  return onnx.AttributeProto.create({
    name,
    type: AttributeType.TENSOR,
    t: tensorProto(name, value.tensor.data, value.tensor.dims),
  });
}
