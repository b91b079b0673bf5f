import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SMALL_TEXTURE_PIXELS } from '../texture-fidelity.js';
import { lodTextureSides } from './textures.js';

describe('texture sizes of the simplified LODs', () => {
  it('gives DamagedHelmet’s 2048² textures 1448² at LOD1 (ratio 0.5) and 1024² at LOD2 (0.25)', () => {
    expect(lodTextureSides([0.5, 0.25], 2048, 2048)).toEqual([
      { level: 1, width: 1448, height: 1448 },
      { level: 2, width: 1024, height: 1024 },
    ]);
  });

  it('shrinks pixels with the LOD’s ratio, never grows a side, keeps KTX2 sides multiples of 4, and never shrinks small textures', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 0.99, noNaN: true }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 8192 }),
        fc.integer({ min: 1, max: 8192 }),
        fc.constantFrom(1, 4),
        (ratios, width, height, multiple) => {
          const sides = lodTextureSides(ratios, width, height, multiple);
          expect(sides).toHaveLength(ratios.length);
          for (const [i, size] of sides.entries()) {
            if (width * height <= SMALL_TEXTURE_PIXELS) {
              expect(size).toBeNull();
              continue;
            }
            if (!size) continue;
            expect(size.level).toBe(i + 1);
            expect(size.width <= width && size.height <= height).toBe(true);
            expect(size.width < width || size.height < height).toBe(true);
            expect(size.width % multiple).toBe(0);
            expect(size.height % multiple).toBe(0);
            // Pixels in proportion to the ratio, up to the rounding of each side.
            const expected = Math.sqrt(ratios[i]!);
            expect(Math.abs(size.width - width * expected)).toBeLessThanOrEqual(multiple);
          }
        },
      ),
      { seed: 19, numRuns: 300 },
    );
  });
});
