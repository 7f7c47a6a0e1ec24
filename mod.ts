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
 * // leading spacing, as diffusers' DDIMScheduler.set_timesteps(50): 980, 960, ..., 0
 * if (scheduler.timesteps.length !== 50 || scheduler.timesteps[0] !== 980) throw new Error("wrong timesteps");
 * ```
 *
 * @module
 */
// core: tensors, the model interface, PyTorch's random stream
export * from "./lib/core/tensor.ts";
export * from "./lib/core/model.ts";
export * from "./lib/core/torch_generator.ts";

// math: noise schedules, the paper's identities and their proofs, sample metrics
export * from "./lib/math/schedules.ts";
export * from "./lib/math/equations.ts";
export * from "./lib/math/prove.ts";
export * from "./lib/math/metrics.ts";

// schedulers: the contract, one file per sampler, the registry of diffusers class names
export * from "./lib/schedulers/scheduler.ts";
export * from "./lib/schedulers/ddpm.ts";
export * from "./lib/schedulers/ddim.ts";
export * from "./lib/schedulers/ddim_inverse.ts";
export * from "./lib/schedulers/edict.ts";
export * from "./lib/schedulers/bdia.ts";
export * from "./lib/schedulers/pndm.ts";
export * from "./lib/schedulers/euler_discrete.ts";
export * from "./lib/schedulers/heun_discrete.ts";
export * from "./lib/schedulers/dpm_solver_multistep.ts";
export * from "./lib/schedulers/registry.ts";

// models: the ONNX adapter, the checkpoint compiler and its cache, the loader, checkpoint readers, exact and learned
// builtin models, the 2-D trainer
export * from "./lib/models/onnx_unet.ts";
export * from "./lib/models/checkpoint_compile.ts";
export * from "./lib/models/load.ts";
export * from "./lib/models/unet_config.ts";
export * from "./lib/models/unet_onnx.ts";
export * from "./lib/models/onnx_graph.ts";
export * from "./lib/models/safetensors.ts";
export * from "./lib/models/torch_checkpoint.ts";
export * from "./lib/models/builtin_models.ts";
export * from "./lib/models/gaussian_mixture.ts";
export * from "./lib/models/toy_data.ts";
export * from "./lib/models/shapes_dataset.ts";
export * from "./lib/models/mlp.ts";
export * from "./lib/models/train2d.ts";
export * from "./lib/models/eps_error.ts";

// io: images, plots, notebook display, progress bars
export * from "./lib/io/image.ts";
export * from "./lib/io/plot.ts";
export * from "./lib/io/notebook.ts";
export * from "./lib/io/progress.ts";

// pipelines: sampling, inversion, interpolation and fusion
export * from "./lib/pipelines/sampling.ts";
export * from "./lib/pipelines/ddpm_pipeline.ts";
export * from "./lib/pipelines/ddim_pipeline.ts";
export * from "./lib/pipelines/inversion.ts";
export * from "./lib/pipelines/interpolation.ts";
export * from "./lib/pipelines/fuse.ts";

// the package's version (the command line, lib/cli.ts, is its own entry point)
export * from "./lib/version.ts";
