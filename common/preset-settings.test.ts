import { describe, expect, it } from 'vitest';
import { seededRandom } from '../bench/assets/seeded-random.js';
import { JobOptions, PRESETS } from './jobs.js';
import { GeometryCompression, PipelineSettings, resolveSettings, TextureFormat } from './pipeline.js';
import { mergeSettings, PRESET_SETTINGS } from './preset-settings.js';

/** Options as an artist or the API may give them: a preset, some settings, and the options that are not settings. */
function randomOptions(random: () => number): Record<string, unknown> {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const options: Record<string, unknown> = { preset: pick(PRESETS) };
  const maybe = (key: string, value: () => unknown) => {
    const roll = random();
    if (roll < 0.4) options[key] = value();
    else if (roll < 0.5) options[key] = undefined;
  };
  maybe('lodRatios', () => Array.from({ length: Math.floor(random() * 4) }, () => 0.05 + random() * 0.9));
  maybe('maxTextureSize', () => pick([16, 256, 1000, 4096, 16384]));
  maybe('textureFormat', () => pick(TextureFormat.options));
  maybe('textureQuality', () => 1 + Math.floor(random() * 100));
  maybe('geometryCompression', () => pick(GeometryCompression.options));
  maybe('quantize', () => random() < 0.5);
  maybe('retentionDays', () => pick([0.5, 1, 7, 30, 365]));
  maybe('compareWithGltfpack', () => random() < 0.5);
  maybe('hpcQueue', () => pick(['hpc-gpu-01', 'render.farm_2']));
  maybe('priority', () => pick(['urgent', 'normal', 'background']));
  return options;
}

describe("the presets' settings", () => {
  it('give every setting a value in every preset, so merging options over a preset misses none', () => {
    for (const preset of PRESETS) expect(Object.keys(PRESET_SETTINGS[preset]).sort()).toEqual(Object.keys(PipelineSettings.shape).sort());
  });

  it('merged with valid options are what the checked resolution gives: the settings a run from before the input check replays with', () => {
    const random = seededRandom(22);
    let explicit = 0;
    for (let i = 0; i < 500; i++) {
      const options = JobOptions.parse(randomOptions(random));
      const merged = mergeSettings(options);
      expect(merged).toEqual(resolveSettings(options));
      // Only settings: the options' queue and priority stay out of them.
      expect(Object.keys(merged).sort()).toEqual(Object.keys(PipelineSettings.shape).sort());
      if (merged.maxTextureSize !== PRESET_SETTINGS[options.preset].maxTextureSize) explicit++;
    }
    // The options did override presets, often.
    expect(explicit).toBeGreaterThan(100);
  });

  it('refuses an unknown preset by name, and resolution refuses a bad value that merging alone lets through', () => {
    for (const preset of ['ultra', '', 'constructor', '__proto__', 'toString']) {
      expect(() => mergeSettings({ preset } as never)).toThrow(/unknown preset .*use one of game-ready, mobile, archive/);
    }
    for (const bad of [
      { retentionDays: -1 },
      { textureQuality: 0 },
      { lodRatios: [1.5] },
      { textureFormat: 'gif' },
      { maxTextureSize: 8.5 },
    ]) {
      const options = { preset: 'mobile', ...bad } as never;
      expect(mergeSettings(options)).toMatchObject(bad);
      expect(() => resolveSettings(options)).toThrow();
    }
  });
});
