/**
 * ddimlab: Denoising Diffusion Implicit Models (Song, Meng and Ermon, 2020, arXiv 2010.02502), formula by formula.
 *
 * DDPM, DDIM and DDIM-inversion schedulers that match HuggingFace diffusers number for number, symbolic proofs of
 * the paper's identities, a UNet2DModel compiled to ONNX and run with onnxruntime-node, exact embedded denoisers,
 * pipelines for sampling, inversion, interpolation and fusion, and plot helpers for notebooks.
 *
 * @example
 * ```ts
 * import { DDIMScheduler } from "./mod.ts";
 * const scheduler = DDIMScheduler.fromConfig({ num_train_timesteps: 1000 });
 * scheduler.setTimesteps(50);
 * ```
 *
 * @module
 */
export * from "./lib/tensor.ts";
export * from "./lib/model.ts";
export * from "./lib/torch_generator.ts";
export * from "./lib/schedules.ts";
export * from "./lib/ddpm.ts";
export * from "./lib/ddim.ts";
export * from "./lib/ddim_inverse.ts";
export * from "./lib/edict.ts";
export * from "./lib/bdia.ts";
export * from "./lib/equations.ts";
export * from "./lib/prove.ts";
export * from "./lib/sampling.ts";
export * from "./lib/ddpm_pipeline.ts";
export * from "./lib/ddim_pipeline.ts";
export * from "./lib/inversion.ts";
export * from "./lib/interpolation.ts";
export * from "./lib/fuse.ts";
export * from "./lib/unet.ts";
export * from "./lib/unet_config.ts";
export * from "./lib/unet_onnx.ts";
export * from "./lib/onnx_graph.ts";
export * from "./lib/safetensors.ts";
export * from "./lib/torch_checkpoint.ts";
export * from "./lib/builtin_models.ts";
export * from "./lib/gaussian_mixture.ts";
export * from "./lib/toy_data.ts";
export * from "./lib/shapes_dataset.ts";
export * from "./lib/mlp.ts";
export * from "./lib/train2d.ts";
export * from "./lib/metrics.ts";
export * from "./lib/eps_error.ts";
export * from "./lib/image.ts";
export * from "./lib/plot.ts";
export * from "./lib/notebook.ts";
export * from "./lib/progress.ts";
export * from "./lib/version.ts";
