import sharp, { type Sharp } from 'sharp';

/** How closely a converted texture matches its source, per pixel and channel (RGBA, 0..255). */
export interface TextureFidelity {
  /** The largest difference of any channel of any pixel. */
  maxChannelError: number;
  /** Peak signal-to-noise ratio over all channels; null when the images are identical. */
  psnrDb: number | null;
}

/**
 * Textures up to this many pixels are judged by their largest error: palettes and small atlases (chr_knight's
 * 256 × 1 palette) index colours by UV, so one wrong texel is a wrong colour on the model (lossy WebP q85
 * shifted it by up to 130/255: an orange beard turned salmon).
 */
export const SMALL_TEXTURE_PIXELS = 128 * 128;
/** Largest channel error accepted in a small texture: about 3 %, below what an eye tells apart in a flat colour. */
export const MAX_SMALL_TEXTURE_ERROR = 8;
/** Lowest PSNR accepted in a larger texture: lossy encoders reach 38-45 dB on game textures; below 35 artefacts show. */
export const MIN_PSNR_DB = 35;

/** Decodes an image to raw RGBA at the given size (for a source, resized as the conversion resized it). */
export async function rawRgba(image: Uint8Array | Sharp, width: number, height: number): Promise<Buffer> {
  const pipeline = image instanceof Uint8Array ? sharp(image) : image;
  return pipeline.resize({ width, height, fit: 'fill' }).ensureAlpha().raw().toBuffer();
}

/** Compares two RGBA buffers of the same size. */
export function measureFidelity(source: Uint8Array, converted: Uint8Array): TextureFidelity {
  if (source.length !== converted.length) throw new Error(`measureFidelity: ${source.length} bytes against ${converted.length}`);
  let max = 0;
  let squares = 0;
  for (let i = 0; i < source.length; i++) {
    const d = source[i]! - converted[i]!;
    const a = d < 0 ? -d : d;
    if (a > max) max = a;
    squares += d * d;
  }
  const mse = squares / Math.max(1, source.length);
  return { maxChannelError: max, psnrDb: mse === 0 ? null : Math.round(10 * Math.log10((255 * 255) / mse) * 10) / 10 };
}

/** True when the loss would show on the model (see SMALL_TEXTURE_PIXELS, MIN_PSNR_DB). */
export function lossIsVisible(fidelity: TextureFidelity, width: number, height: number): boolean {
  if (width * height <= SMALL_TEXTURE_PIXELS) return fidelity.maxChannelError > MAX_SMALL_TEXTURE_ERROR;
  return fidelity.psnrDb !== null && fidelity.psnrDb < MIN_PSNR_DB;
}
