/**
 * The schedulers a diffusers `scheduler_config.json` can name: `_class_name` picks the class, and the class's
 * `fromConfig` reads the rest. A new scheduler is one file in this folder plus one line in `SCHEDULERS`.
 *
 * @module
 */
import { DDIMScheduler } from "./ddim.ts";
import { DDIMInverseScheduler } from "./ddim_inverse.ts";
import { DDPMScheduler } from "./ddpm.ts";
import { DPMSolverMultistepScheduler } from "./dpm_solver_multistep.ts";
import { EulerDiscreteScheduler } from "./euler_discrete.ts";
import { HeunDiscreteScheduler } from "./heun_discrete.ts";
import { PNDMScheduler } from "./pndm.ts";

/**
 * The scheduler classes a config can name, by diffusers' class name.
 *
 * @example
 * ```ts
 * import { schedulerFromConfig, SCHEDULERS } from "../../mod.ts";
 * // each key is the class's own name, as diffusers writes it in _class_name, and builds that class
 * for (const [name, SchedulerClass] of Object.entries(SCHEDULERS)) {
 *   if (SchedulerClass.name !== name) throw new Error(`${name} names ${SchedulerClass.name}`);
 *   if (!(schedulerFromConfig({ _class_name: name }) instanceof SchedulerClass)) throw new Error(`${name} built wrong`);
 * }
 * ```
 */
export const SCHEDULERS = {
  DDPMScheduler,
  DDIMScheduler,
  DDIMInverseScheduler,
  PNDMScheduler,
  EulerDiscreteScheduler,
  HeunDiscreteScheduler,
  DPMSolverMultistepScheduler,
} as const;

/** A scheduler `schedulerFromConfig` (and so `fromPretrained`) can return. */
export type PretrainedScheduler = InstanceType<(typeof SCHEDULERS)[keyof typeof SCHEDULERS]>;

/**
 * Build the scheduler a diffusers config names by its `_class_name`, as diffusers' `SchedulerMixin.from_config` does.
 *
 * scheduler = SCHEDULERS[config._class_name].fromConfig(config)
 *
 * @param config a `scheduler_config.json` object, with `_class_name`
 * @param options `source`: where the config came from, for the error message
 * @returns the scheduler
 * @throws Error naming the class name and the supported ones when the class is unknown
 * @example
 * ```ts
 * import { DDIMScheduler, schedulerFromConfig } from "../../mod.ts";
 * const scheduler = schedulerFromConfig({ _class_name: "DDIMScheduler", num_train_timesteps: 1000 });
 * if (!(scheduler instanceof DDIMScheduler)) throw new Error("_class_name picks the class");
 * ```
 */
export function schedulerFromConfig(
  config: Record<string, unknown>,
  options: { source?: string } = {},
): PretrainedScheduler {
  const name = config?._class_name;
  if (typeof name !== "string" || !Object.hasOwn(SCHEDULERS, name)) {
    throw new Error(
      `${options.source ?? "scheduler config"}: unsupported scheduler _class_name ${JSON.stringify(name)}; ` +
        `supported: ${Object.keys(SCHEDULERS).join(", ")}`,
    );
  }
  return SCHEDULERS[name as keyof typeof SCHEDULERS].fromConfig(config);
}
