/**
 * Private: the sizes ddimlab refuses to go past, checked before anything is allocated, so a hostile or damaged file
 * costs an error message rather than gigabytes of memory. Each limit is far above what any real checkpoint, config
 * or picture needs; docs/reliability.md lists them with the reasons.
 *
 * @module
 */

/**
 * Most pixels in one decoded picture: PIL's `Image.MAX_IMAGE_PIXELS` (89,478,485, "decompression bomb" guard), so a
 * picture PIL opens without a warning opens here too.
 */
export const MAX_IMAGE_PIXELS = 89_478_485;

/** Most elements in one tensor read from a checkpoint: 2^30 (4 GiB as float32; the largest real UNet tensor is ~1e7). */
export const MAX_TENSOR_ELEMENTS = 2 ** 30;

/** Most bytes one zip member of a PyTorch checkpoint may inflate to: 8 GiB (torch.save stores members uncompressed). */
export const MAX_ZIP_MEMBER_BYTES = 8 * 2 ** 30;

/**
 * Largest expansion of a deflated zip member (inflated / compressed bytes). Float weights barely compress, and
 * torch.save writes members uncompressed; a member that expands more than this is a zip bomb.
 */
export const MAX_ZIP_EXPANSION = 100;

/** Most training timesteps T a scheduler config may ask for (the DDPM/DDIM checkpoints use 1000; a few use 4000). */
export const MAX_TRAIN_TIMESTEPS = 100_000;

/** Largest `sample_size` (height or width) in a UNet config (the largest public DDPM checkpoints are 1024). */
export const MAX_SAMPLE_SIZE = 8192;

/** Most channels of any UNet layer in a config (`in_channels`, `out_channels`, `block_out_channels`). */
export const MAX_CHANNELS = 16_384;

/** A byte count for messages: "611 KB", "600 MB", "8 GiB"-style, with the exact count. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) (value /= 1024), unit++;
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]} (${bytes} bytes)`;
}
