import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's Chromium (scripts/services.sh --browser installs it); playwright-core never downloads one. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Launches headless Chromium for a test file. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/** Resolves once the element of `testid` shows exactly `text` (fails after `timeoutMs`). */
export async function waitForText(page: Page, testid: string, text: string, timeoutMs = 10_000): Promise<void> {
  await page.waitForFunction(
    ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.textContent === want,
    [testid, text] as const,
    { timeout: timeoutMs },
  );
}

/** Seconds shown by a timer text, `m:ss` or `h:mm:ss`; NaN for anything else. */
export function timerSeconds(text: string | null): number {
  if (text === null || !/^(\d+:)?\d{1,2}:\d{2}$/.test(text)) return NaN;
  return text.split(':').reduce((total, part) => total * 60 + Number(part), 0);
}

/** Where the screenshots go: E2E_SCREENSHOT_DIR (npm run screenshots: docs/), else .data/e2e. */
export function screenshotPath(name: string): string {
  const dir = path.resolve(__dirname, '../..', process.env.E2E_SCREENSHOT_DIR ?? '.data/e2e');
  mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
