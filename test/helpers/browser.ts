import { chromium, type Browser } from 'playwright-core';

/**
 * Debian's Chromium, headless, never one downloaded by playwright (CHROMIUM_PATH for another binary).
 * `webgl` adds SwiftShader so the page's three.js viewer draws in software.
 */
export function launchChromium({ webgl = false }: { webgl?: boolean } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...(webgl ? ['--use-angle=swiftshader', '--enable-unsafe-swiftshader'] : []),
    ],
  });
}
