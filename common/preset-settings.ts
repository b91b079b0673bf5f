import type { Preset } from './jobs.js';
import type { PipelineSettings } from './pipeline.js';

/*
 * The presets' settings as plain data, and how options apply on top of them: no zod, as the workflow
 * bundle imports this and evaluates every module it imports again for each workflow it creates. The
 * checked form is common/pipeline.ts resolveSettings.
 */

export const PRESET_SETTINGS: Record<Preset, PipelineSettings> = {
  'game-ready': {
    lodRatios: [0.5, 0.25],
    maxTextureSize: 2048,
    textureFormat: 'webp',
    textureQuality: 85,
    geometryCompression: 'meshopt',
    quantize: true,
    retentionDays: 7,
    compareWithGltfpack: false,
  },
  mobile: {
    lodRatios: [0.5, 0.25, 0.1],
    maxTextureSize: 1024,
    textureFormat: 'webp',
    textureQuality: 75,
    geometryCompression: 'meshopt',
    quantize: true,
    retentionDays: 7,
    compareWithGltfpack: false,
  },
  archive: {
    lodRatios: [],
    maxTextureSize: 8192,
    textureFormat: 'keep',
    textureQuality: 100,
    geometryCompression: 'none',
    quantize: false,
    retentionDays: 30,
    compareWithGltfpack: false,
  },
};

/** A job's options as far as its settings go: a preset, and any setting given explicitly. */
export type SettingsOptions = { preset: Preset } & Partial<PipelineSettings>;

/**
 * The preset's values with every explicit option on top, and nothing else (the options' other fields,
 * such as hpcQueue and priority, are not settings). Unchecked: resolveSettings parses the result; an
 * unknown preset throws here.
 */
export function mergeSettings(options: SettingsOptions): PipelineSettings {
  const { preset, ...explicit } = options;
  const base: PipelineSettings | undefined = Object.hasOwn(PRESET_SETTINGS, preset) ? PRESET_SETTINGS[preset] : undefined;
  if (!base) throw new Error(`unknown preset ${JSON.stringify(preset)}; use one of ${Object.keys(PRESET_SETTINGS).join(', ')}`);
  const given = explicit as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...base };
  for (const key of Object.keys(base)) if (given[key] !== undefined) merged[key] = given[key];
  return merged as PipelineSettings;
}
