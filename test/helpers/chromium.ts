// Real headless Chromium for the web UI tests: Debian's `chromium` package
// (.ci/run installs it), driven by playwright-core. Never Playwright's own
// downloaded browsers. One browser per test file; a fresh context per test
// keeps cookies apart.
import { access, constants } from 'node:fs/promises';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  // Only loopback names resolve: a test that went wrong (an open redirect,
  // say) fails on a name that does not resolve instead of reaching a real host.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

const LAUNCH_TIMEOUT_MS = 60_000;

export interface LaunchedChromium {
  browser: Browser;
  /** Closes the browser and every context in it; safe to call twice, and after a failed test. */
  close(): Promise<void>;
}

export async function launchChromium(): Promise<LaunchedChromium> {
  await access(CHROMIUM_PATH, constants.X_OK).catch(() => {
    throw new Error(`No Chromium at ${CHROMIUM_PATH}: install Debian's package (apt-get install chromium, as .ci/run does) or set CHROMIUM_PATH.`);
  });
  const browser = await launchOnce().catch(async (first: Error) => {
    // CI once failed a suite's set-up while the same browser served the
    // suite beside it; a second try tells a slow or unlucky cold start on a
    // loaded machine apart from a browser that cannot start.
    console.error(`Chromium did not start (${first.message.split('\n')[0]}); trying once more`);
    return launchOnce().catch((second: Error) => {
      throw new Error(`Chromium at ${CHROMIUM_PATH} did not start twice: ${second.message}\nfirst try: ${first.message}`);
    });
  });
  let closing: Promise<void> | undefined;
  return {
    browser,
    close() {
      // browser.close() ends the process even when a page hangs; contexts go with it.
      closing ??= browser.close().catch(() => undefined);
      return closing;
    },
  };
}

function launchOnce(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS, timeout: LAUNCH_TIMEOUT_MS });
}

/** True for the loopback hosts the tests serve on; anything else is a request that should never have been made. */
export function isLoopback(url: string): boolean {
  const { hostname } = new URL(url);
  return hostname === '127.0.0.1' || hostname === 'localhost' || hostname === '[::1]';
}
