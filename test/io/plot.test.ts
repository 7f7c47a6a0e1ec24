import { describe, expect, test } from "bun:test";
import { parseHTML } from "linkedom";
import {
  createDocument,
  markdownTable,
  mimeBundle,
  plotCurves,
  plotEtaCurves,
  plotHistogram,
  plotPixelTraces,
  plotSchedule,
  plotTimesteps,
  plotTrajectories2D,
  type StepRecord,
  svgString,
  svgToPng,
} from "../../mod.ts";
import { Tensor } from "../../lib/core/tensor.ts";

// A seeded linear congruential generator (Park-Miller), so every figure is drawn from the same data on every run.
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  };
}

// The linear beta schedule of google/ddpm-* (1e-4 to 0.02 over 1000 steps) and its cumulative product alphaBar_t.
function linearAlphaBar(): number[] {
  let product = 1;
  return Array.from({ length: 1000 }, (_, t) => (product *= 1 - (1e-4 + ((0.02 - 1e-4) * t) / 999)));
}

function seededSteps(seed: number, count: number, batch: number, jitter: number): StepRecord[] {
  const random = lcg(seed);
  return Array.from({ length: count }, (_, i) => {
    const data = new Float32Array(batch * 2);
    for (let k = 0; k < data.length; k++) data[k] = Math.cos(k + i / 4) * (1 - i / count) + jitter * (random() - 0.5);
    return {
      i,
      t: 999 - 100 * i,
      x: new Tensor(data, [batch, 2, 1, 1]),
      predX0: new Tensor(data.map((v) => v / 2), [batch, 2, 1, 1]),
    };
  });
}

// The marks of one kind in a figure, found by the aria-label Plot gives each mark's group.
function markGroup(svg: Element, label: string): Element[] {
  return [...svg.querySelectorAll(`g[aria-label="${label}"]`)];
}

// The points of an SVG path made only of M/L commands.
function pathPoints(d: string): [number, number][] {
  return [...d.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

describe("plotCurves", () => {
  test("the same seeded data gives the same SVG text, in fresh documents", () => {
    const random = lcg(7);
    const series = { a: Array.from({ length: 30 }, random), b: Array.from({ length: 30 }, random) };
    const first = svgString(plotCurves(series, { title: "seeded", document: createDocument() }));
    const second = svgString(plotCurves(series, { title: "seeded", document: createDocument() }));
    expect(first).toBe(second);
    expect(first.length).toBeGreaterThan(1000);
  });

  test("draws one line per curve with one vertex per point, labelled by name", () => {
    const random = lcg(11);
    const series = { first: Array.from({ length: 25 }, random), second: Array.from({ length: 25 }, random) };
    const svg = plotCurves(series, { xLabel: "step i", yLabel: "value" });
    const lines = markGroup(svg, "line")[0].querySelectorAll("path");
    expect(lines.length).toBe(2);
    for (const path of lines) expect(pathPoints(path.getAttribute("d")!).length).toBe(25);
    const labels = markGroup(svg, "text")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(labels).toEqual(["first", "second"]);
  });

  test("labels each curve at its rightmost point, also when x runs backwards (descending timesteps)", () => {
    const svg = plotCurves({ a: [0.1, 0.5, 0.9], b: [0.8, 0.5, 0.2] }, { x: [980, 500, 0] });
    const paths = markGroup(svg, "line")[0].querySelectorAll("path");
    const rightmost = Math.max(...pathPoints(paths[0].getAttribute("d")!).map((p) => p[0]));
    const texts = markGroup(svg, "text")[0].querySelectorAll("text");
    for (const text of texts) {
      const x = Number(/translate\(([-\d.]+)/.exec(text.getAttribute("transform")!)![1]);
      expect(x).toBeCloseTo(rightmost, 2);
    }
  });

  test("labels both axes with the given names", () => {
    const svg = plotCurves({ y: [1, 2, 3] }, { xLabel: "timestep t", yLabel: "alphaBar" });
    expect(markGroup(svg, "x-axis label")[0].textContent).toContain("timestep t");
    expect(markGroup(svg, "y-axis label")[0].textContent).toContain("alphaBar");
  });

  test("maps larger values higher on the page and later x further right", () => {
    const svg = plotCurves({ rising: [0, 1, 2, 3] }, { x: [10, 20, 30, 40] });
    const points = pathPoints(markGroup(svg, "line")[0].querySelector("path")!.getAttribute("d")!);
    for (let k = 1; k < points.length; k++) {
      expect(points[k][0]).toBeGreaterThan(points[k - 1][0]);
      expect(points[k][1]).toBeLessThan(points[k - 1][1]);
    }
  });

  test("rejects mismatched x, NaN values and an empty series with errors naming them", () => {
    expect(() => plotCurves({ a: [1, 2] }, { x: [1, 2, 3] })).toThrow('Curve "a" has 2 points but options.x has 3');
    expect(() => plotCurves({ a: [1, NaN] })).toThrow('curve "a" has a non-number value NaN at index 1');
    expect(() => plotCurves({})).toThrow("needs at least one curve");
  });

  test("reverse: true draws the largest x on the left and labels each curve at its smallest x", () => {
    const svg = plotCurves({ a: [0.1, 0.5, 0.9] }, { x: [999, 500, 0], reverse: true });
    const points = pathPoints(markGroup(svg, "line")[0].querySelector("path")!.getAttribute("d")!);
    // the first point (t = 999) is leftmost, then x grows along the path
    for (let k = 1; k < points.length; k++) expect(points[k][0]).toBeGreaterThan(points[k - 1][0]);
    const text = markGroup(svg, "text")[0].querySelector("text")!;
    const x = Number(/translate\(([-\d.]+)/.exec(text.getAttribute("transform")!)![1]);
    expect(x).toBeCloseTo(points[2][0], 2);
  });

  test("a log y axis leaves room left of the plot for its longest tick label (10px digits, about 6px each)", () => {
    const svg = plotCurves({ a: [1e-4, 1, 1e4] }, { yType: "log" });
    const labels = markGroup(svg, "y-axis tick label")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(labels).toContain("0.0001");
    const longest = Math.max(...labels.map((label: string) => label.length));
    const plotLeft = Number(markGroup(svg, "y-grid")[0].querySelector("line")!.getAttribute("x1"));
    expect(plotLeft).toBeGreaterThanOrEqual(6 * longest + 9); // the tick (6px) and its padding (3px) come first
    const wider = plotCurves({ a: [1e-4, 1, 1e4] }, { yType: "log", marginLeft: 90 });
    expect(Number(markGroup(wider, "y-grid")[0].querySelector("line")!.getAttribute("x1"))).toBe(90);
  });

  test("draws in a document the caller passes", () => {
    const { document } = parseHTML("<!DOCTYPE html><html><body></body></html>");
    const svg = plotCurves({ a: [1, 2] }, { document: document as unknown as Document });
    expect(svg.ownerDocument as unknown).toBe(document);
  });
});

describe("schedule and eta helpers", () => {
  test("plotSchedule spans the 1000 training timesteps and labels the axis with t", () => {
    const alphaBar = linearAlphaBar();
    const svg = plotSchedule({ alphaBar_t: alphaBar, "sqrt(1 - alphaBar_t)": alphaBar.map((a) => Math.sqrt(1 - a)) });
    expect(markGroup(svg, "x-axis label")[0].textContent).toContain("timestep t");
    const ticks = markGroup(svg, "x-axis tick label")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(ticks).toContain("800");
    expect(ticks).not.toContain("1,200");
  });

  test("plotEtaCurves names each curve after its eta", () => {
    const svg = plotEtaCurves(new Map([[0, [0, 0, 0]], [0.5, [0.1, 0.2, 0.3]], [1, [0.2, 0.4, 0.6]]]));
    const labels = markGroup(svg, "text")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(labels).toEqual(["eta = 0", "eta = 0.5", "eta = 1"]);
  });
});

describe("plotTimesteps", () => {
  test("draws one tick per timestep, with 0 and T - 1 at the two ends of the axis", () => {
    const leading = Array.from({ length: 10 }, (_, k) => 900 - 100 * k); // diffusers "leading", 10 of 1000 steps
    const trailing = Array.from({ length: 10 }, (_, k) => 999 - 100 * k); // diffusers "trailing"
    const svg = plotTimesteps({ leading, trailing }, { numTrainTimesteps: 1000, width: 600 });
    const ticks = markGroup(svg, "tick")[0].querySelectorAll("line");
    expect(ticks.length).toBe(20);
    const xs = ticks.map((line: Element) => Number(line.getAttribute("x1") ?? line.getAttribute("x2")));
    const xOf = (k: number) => xs[k] as number;
    // leading ends at t = 0 (the left edge), trailing starts at t = 999 (the right edge)
    expect(xOf(9)).toBeLessThan(xOf(10));
    expect(Math.min(...xs)).toBe(xOf(9));
    expect(Math.max(...xs)).toBe(xOf(10));
    const rows = markGroup(svg, "y-axis tick label")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(rows).toEqual(["leading", "trailing"]);
  });

  test("rejects a numTrainTimesteps not above the largest timestep", () => {
    expect(() => plotTimesteps({ a: [0, 999] }, { numTrainTimesteps: 999 })).toThrow(
      "numTrainTimesteps must be an integer above the largest timestep 999, got 999",
    );
  });
});

describe("plotTrajectories2D", () => {
  test("draws one path per sample per run, side by side, each through every step", () => {
    const svg = plotTrajectories2D({ DDIM: seededSteps(1, 12, 5, 0), DDPM: seededSteps(2, 12, 5, 0.4) });
    const paths = markGroup(svg, "line").flatMap((g) => [...g.querySelectorAll("path")]);
    expect(paths.length).toBe(10);
    for (const path of paths) expect(pathPoints(path.getAttribute("d")!).length).toBe(12);
    const facets = markGroup(svg, "fx-axis tick label")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(facets).toEqual(["DDIM", "DDPM"]);
  });

  test("follows predX0 when asked, and caps the number of paths", () => {
    const steps = seededSteps(3, 6, 8, 0);
    const svg = plotTrajectories2D(steps, { field: "predX0", maxPaths: 3 });
    expect(markGroup(svg, "line")[0].querySelectorAll("path").length).toBe(3);
    const endDots = markGroup(svg, "dot").at(-1)!.querySelectorAll("circle");
    expect(endDots.length).toBe(3);
  });

  test("accepts plain [x, y] points and rejects tensors that are not 2-D points", () => {
    const svg = plotTrajectories2D([{ x: [[0, 0], [1, 1]] }, { x: [[0.5, 0.1], [0.2, 0.9]] }]);
    expect(markGroup(svg, "line")[0].querySelectorAll("path").length).toBe(2);
    const bad = [{ i: 0, t: 999, x: Tensor.zeros([4, 3, 1, 1]) }];
    expect(() => plotTrajectories2D(bad)).toThrow("must hold two numbers per batch item, got shape [4, 3, 1, 1]");
  });
});

describe("plotPixelTraces", () => {
  test("traces the chosen pixels of the chosen batch item through the steps", () => {
    // Batch of 2 images 1x2x2; pixel p of item 1 at step i holds 10 * i + p.
    const steps: StepRecord[] = [0, 1, 2, 3].map((i) => ({
      i,
      t: 999 - 250 * i,
      x: Tensor.from([0, 0, 0, 0, 10 * i, 10 * i + 1, 10 * i + 2, 10 * i + 3], [2, 1, 2, 2]),
    }));
    const svg = plotPixelTraces(steps, { pixels: [0, 3], batchIndex: 1 });
    const paths = markGroup(svg, "line")[0].querySelectorAll("path");
    expect(paths.length).toBe(2);
    const labels = markGroup(svg, "text")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(labels).toEqual(["pixel (c 0, y 0, x 0)", "pixel (c 0, y 1, x 1)"]);
    // Both traces rise by 10 per step: equal vertical steps on the page.
    const points = pathPoints(paths[0].getAttribute("d")!);
    const rises = points.slice(1).map((p, k) => points[k][1] - p[1]);
    for (const rise of rises) expect(rise).toBeCloseTo(rises[0], 2); // Plot writes path coordinates to 3 decimals
    expect(markGroup(svg, "x-axis label")[0].textContent).toContain("step i");
  });

  test("against t, the first (noisiest) step is on the left: sampling reads left to right", () => {
    const steps: StepRecord[] = [0, 1, 2].map((i) => ({ i, t: 999 - 400 * i, x: Tensor.from([i], [1, 1]) }));
    const svg = plotPixelTraces(steps, { against: "t", pixels: [0] });
    const points = pathPoints(markGroup(svg, "line")[0].querySelector("path")!.getAttribute("d")!);
    for (let k = 1; k < points.length; k++) expect(points[k][0]).toBeGreaterThan(points[k - 1][0]);
    expect(markGroup(svg, "x-axis label")[0].textContent).toContain("timestep t");
  });

  test("rejects a pixel outside the image and a batch index outside the batch", () => {
    const steps = [{ i: 0, t: 999, x: Tensor.zeros([1, 1, 2, 2]) }];
    expect(() => plotPixelTraces(steps, { pixels: [4] })).toThrow("Pixel index must be an integer in [0, 3], got 4");
    expect(() => plotPixelTraces(steps, { batchIndex: 1 })).toThrow("batchIndex must be an integer in [0, 0], got 1");
  });
});

describe("plotHistogram", () => {
  test("bins every value: the bar heights, read on the count axis, add up to the number of values", () => {
    const random = lcg(5);
    const values = Array.from({ length: 400 }, () => random() - 0.5);
    const svg = plotHistogram(values, { bins: 10, xLabel: "difference" });
    const bars = markGroup(svg, "rect")[0].querySelectorAll("rect");
    expect(bars.length).toBeGreaterThanOrEqual(8);
    expect(bars.length).toBeLessThanOrEqual(12);
    // Pixels per count, from two labelled ticks of the linear count axis.
    const ticks = markGroup(svg, "y-axis tick label")[0].querySelectorAll("text");
    const tickY = (t: Element) => Number(/translate\([-\d.]+,([-\d.]+)\)/.exec(t.getAttribute("transform")!)![1]);
    const first = ticks[0], last = ticks[ticks.length - 1];
    const pixelsPerCount = (tickY(first) - tickY(last)) / (Number(last.textContent) - Number(first.textContent));
    const heights = bars.map((r: Element) => Number(r.getAttribute("height")));
    const total = heights.reduce((a: number, b: number) => a + b, 0) / pixelsPerCount;
    expect(total).toBeCloseTo(400, 6);
    expect(markGroup(svg, "x-axis label")[0].textContent).toContain("difference");
  });

  test("a log count axis still draws a bar for every non-empty bin (a bar from 0 has no place on it)", () => {
    // most values near 0, a few large: counts span three decades, where a log axis is the point
    const values = Array.from({ length: 2000 }, (_, k) => (k % 50 === 0 ? 0.4 : 0.002) * Math.sin(1.7 * k));
    const linear = markGroup(plotHistogram(values, { bins: 30 }), "rect")[0].querySelectorAll("rect");
    const nonEmpty = linear.filter((r: Element) => Number(r.getAttribute("height")) > 0).length;
    expect(nonEmpty).toBeGreaterThan(5);
    const log = markGroup(plotHistogram(values, { bins: 30, yType: "log" }), "rect")[0].querySelectorAll("rect");
    expect(log.length).toBe(nonEmpty);
    for (const bar of log) expect(Number(bar.getAttribute("height"))).toBeGreaterThan(0);
  });
});

describe("svgString and svgToPng", () => {
  test("svgString declares the SVG namespace and keeps the figure's size", () => {
    const text = svgString(plotCurves({ a: [1, 2] }, { width: 500, height: 200 }));
    expect(text.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(text).toContain('width="500"');
    expect(text).toContain('height="200"');
  });

  test("svgToPng makes a PNG of scale x the figure's size with the line drawn in its colour", async () => {
    const { loadImage, createCanvas } = await import("@napi-rs/canvas");
    const png = await svgToPng(plotCurves({ a: [0, 1, 0.5, 2] }, { width: 300, height: 150 }), { scale: 2 });
    expect([...png.slice(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const image = await loadImage(Buffer.from(png));
    expect([image.width, image.height]).toEqual([600, 300]);
    const canvas = createCanvas(600, 300);
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, 600, 300).data;
    // The first curve is drawn in #4e79a7 = (78, 121, 167); anti-aliasing blends it with white.
    let blue = 0;
    for (let k = 0; k < pixels.length; k += 4) {
      if (Math.abs(pixels[k] - 78) < 20 && Math.abs(pixels[k + 1] - 121) < 20 && Math.abs(pixels[k + 2] - 167) < 20) {
        blue++;
      }
    }
    expect(blue).toBeGreaterThan(200);
    expect(pixels[0]).toBe(255); // white background in the corner
  });

  test("svgToPng rejects text that is not SVG", async () => {
    await expect(svgToPng("<div></div>")).rejects.toThrow('svgToPng needs SVG markup, got "<div></div>"');
  });
});

describe("notebook helpers", () => {
  test("mimeBundle sends a figure as image/svg+xml and PNG bytes as base64 image/png", async () => {
    const figure = plotCurves({ a: [1, 2] });
    expect(Object.keys(mimeBundle(figure))).toEqual(["image/svg+xml"]);
    const png = await svgToPng(figure, { scale: 1 });
    const bundle = mimeBundle(png);
    expect(Buffer.from(bundle["image/png"], "base64").equals(Buffer.from(png))).toBe(true);
    expect(() => mimeBundle(new Uint8Array([1, 2, 3, 4]))).toThrow(
      "show takes PNG bytes, but these start with 1, 2, 3, 4",
    );
  });

  test("markdownTable escapes a | inside a cell so the row keeps its columns", () => {
    const [header, , row] = markdownTable([{ "max |A - B|": 0.5, run: "a|b" }]).split("\n");
    expect(header).toBe("| max \\|A - B\\| | run  |");
    expect(row.split(/(?<!\\)\|/).length).toBe(4); // "", two cells, ""
  });

  test("markdownTable lines up columns and keeps the given significant digits", () => {
    const table = markdownTable([{ steps: 10, error: 0.014 }, { steps: 1000, error: 0.00012345 }], { digits: 2 });
    expect(table.split("\n")).toEqual([
      "| steps | error  |",
      "| ----- | ------ |",
      "| 10    | 0.014  |",
      "| 1000  | 1.2e-4 |",
    ]);
  });
});

describe("plotCurves reading aids", () => {
  test("reverse puts the largest x on the left and labels each curve at its visually rightmost point", () => {
    const svg = plotCurves({ a: [0.1, 0.5, 0.9] }, { x: [999, 500, 0], reverse: true });
    const points = pathPoints(markGroup(svg, "line")[0].querySelector("path")!.getAttribute("d")!);
    // x = 999 comes first in the data and is drawn leftmost
    expect(points[0][0]).toBeLessThan(points[1][0]);
    expect(points[1][0]).toBeLessThan(points[2][0]);
    const label = markGroup(svg, "text")[0].querySelector("text")!;
    const labelX = Number(/translate\(([-\d.]+)/.exec(label.getAttribute("transform")!)![1]);
    expect(labelX).toBeCloseTo(points[2][0], 2);
  });

  test("errors draw one bar per point from y - e to y + e, centred on the curve", () => {
    const svg = plotCurves({ a: [1, 2, 3] }, { errors: { a: [0.5, 0.5, 0.5] }, yDomain: [0, 4] });
    const points = pathPoints(markGroup(svg, "line")[0].querySelector("path")!.getAttribute("d")!);
    const bars = markGroup(svg, "rule")[0].querySelectorAll("line");
    expect(bars.length).toBe(3);
    bars.forEach((bar: Element, k: number) => {
      const [y1, y2] = [Number(bar.getAttribute("y1")), Number(bar.getAttribute("y2"))];
      expect(Number(bar.getAttribute("x1"))).toBeCloseTo(points[k][0], 2);
      expect((y1 + y2) / 2).toBeCloseTo(points[k][1], 2);
    });
    // on the domain [0, 4] a half-width of 0.5 is an eighth of the axis, so every bar has the same length
    const lengths = bars.map((bar: Element) =>
      Math.abs(Number(bar.getAttribute("y1")) - Number(bar.getAttribute("y2")))
    );
    for (const length of lengths) expect(length).toBeCloseTo(lengths[0], 6);
  });

  test("yDomain fixes the axis: a curve from 40 to 60 on [0, 60] spans the top third of the plot area", () => {
    const svg = plotCurves({ a: [40, 60] }, { yDomain: [0, 60], height: 320 });
    const ticks = markGroup(svg, "y-axis tick label")[0].querySelectorAll("text").map((t: Element) => t.textContent);
    expect(ticks[0]).toBe("0");
    expect(ticks.at(-1)).toBe("60");
    const grid = markGroup(svg, "y-grid")[0].querySelectorAll("line").map((l: Element) => Number(l.getAttribute("y1")));
    const [zero, top] = [grid[0], grid.at(-1)!]; // the grid lines at 0 and at 60
    const [low, high] = pathPoints(markGroup(svg, "line")[0].querySelector("path")!.getAttribute("d")!);
    expect(high[1]).toBeCloseTo(top, 2);
    expect((zero - low[1]) / (zero - top)).toBeCloseTo(40 / 60, 4);
  });

  test("labels of curves that end close together stay about a line of text apart, also on a wide yDomain", () => {
    const svg = plotCurves({ a: [40, 55], b: [30, 55.2], c: [20, 55.4] }, { yDomain: [0, 60], height: 320 });
    const texts = markGroup(svg, "text")[0].querySelectorAll("text");
    const ys = texts.map((text: Element) =>
      Number(/translate\([-\d.]+,([-\d.]+)/.exec(text.getAttribute("transform")!)![1])
    );
    ys.sort((p: number, q: number) => p - q);
    expect(ys.length).toBe(3);
    for (let k = 1; k < ys.length; k++) expect(ys[k] - ys[k - 1]).toBeGreaterThanOrEqual(11);
  });

  test("rules draw a dashed, labelled line at each reference level", () => {
    const svg = plotCurves({ a: [0, 2] }, { rules: { "exact samples": 1 } });
    const [low, high] = pathPoints(markGroup(svg, "line")[0].querySelector("path")!.getAttribute("d")!);
    const group = markGroup(svg, "rule")[0];
    const rule = group.querySelector("line")!;
    expect(group.getAttribute("stroke-dasharray")).toBe("4,3");
    expect(Number(rule.getAttribute("y1"))).toBeCloseTo((low[1] + high[1]) / 2, 2);
    expect(markGroup(svg, "text").some((g) => g.textContent!.includes("exact samples"))).toBe(true);
  });

  test("marginLeft widens the room for the y tick labels", () => {
    const plotLeft = (svg: Element) => Number(markGroup(svg, "y-grid")[0].querySelector("line")!.getAttribute("x1"));
    expect(plotLeft(plotCurves({ a: [1e-6, 1] }, { yType: "linear" }))).toBe(40);
    expect(plotLeft(plotCurves({ a: [1e-6, 1] }, { yType: "log" }))).toBe(56); // room for "0.0001"
    expect(plotLeft(plotCurves({ a: [1e-6, 1] }, { yType: "log", marginLeft: 70 }))).toBe(70);
  });

  test("rejects errors for a curve that is not plotted, of the wrong length, or negative, naming them", () => {
    expect(() => plotCurves({ a: [1, 2] }, { errors: { b: [1, 1] } })).toThrow('names a curve "b" that is not plotted');
    expect(() => plotCurves({ a: [1, 2] }, { errors: { a: [1] } })).toThrow('Curve "a" has 2 points but 1 errors');
    expect(() => plotCurves({ a: [1, 2] }, { errors: { a: [1, -1] } })).toThrow("got -1 at index 1");
  });
});
