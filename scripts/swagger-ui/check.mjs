// Opens the service's Swagger UI in headless Chromium and checks that it renders offline,
// lists every operation, and that "Try it out" on the balance endpoint gets an answer.
// Usage: node check.mjs BASE_URL WALLET_ID BALANCE SCREENSHOT.png (see check-swagger-ui.sh)
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, wallet, balance, screenshot] = process.argv.slice(2);
const expected = [
  'POST /api/v1/wallet',
  'GET /api/v1/wallets/{walletId}/operations',
  'GET /api/v1/wallets/{walletId}/operations/{operationId}',
  'POST /api/v1/wallets',
  'GET /api/v1/wallets/{walletId}',
  'GET /health/live',
  'GET /health/ready',
];

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exitCode = 1;
}

// A fresh profile, and no network chatter of Chromium's own.
const profile = mkdtempSync(join(tmpdir(), 'swagger-ui-check-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

try {
  // Everything must come from the service: any other request is refused and reported.
  const outside = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(base)) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));

  await page.goto(`${base}/swagger-ui/`);
  await page.waitForSelector('.opblock', { timeout: 30_000 });
  const title = (await page.textContent('.info .title')) ?? '';
  if (!title.includes('Wallet API')) fail(`title is ${JSON.stringify(title)}`);

  const listed = await page.$$eval('.opblock .opblock-summary', (summaries) =>
    summaries.map((s) => {
      const method = s.querySelector('.opblock-summary-method')?.textContent?.trim();
      const path = s.querySelector('.opblock-summary-path')?.getAttribute('data-path');
      return `${method} ${path}`;
    }),
  );
  for (const operation of expected) {
    if (!listed.includes(operation)) fail(`${operation} is not listed (listed: ${listed.join(', ')})`);
  }
  if (listed.length !== expected.length) fail(`${listed.length} operations listed, expected ${expected.length}`);
  console.log(`listed ${listed.length} operations`);

  const balanceOp = page.locator('#operations-wallets-getWallet');
  await balanceOp.locator('.opblock-summary').click();
  await balanceOp.locator('button.try-out__btn').click();
  await balanceOp.locator('tr[data-param-name="walletId"] input').fill(wallet);
  await balanceOp.locator('button.execute').click();
  const status = balanceOp.locator('.live-responses-table .response .response-col_status').first();
  await status.waitFor({ timeout: 30_000 });
  const code = (await status.textContent())?.trim();
  const body = (await balanceOp.locator('.live-responses-table .response-col_description pre').first().textContent()) ?? '';
  if (code !== '200') fail(`Try it out answered ${code}: ${body}`);
  if (!body.includes(wallet) || !body.includes(`"balance": ${balance}`)) fail(`unexpected body: ${body}`);
  console.log(`Try it out on GET /api/v1/wallets/{walletId}: ${code} ${body.replace(/\s+/g, ' ')}`);

  if (outside.length) fail(`requests outside the service: ${outside.join(', ')}`);
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);

  await balanceOp.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`screenshot: ${screenshot}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (!process.exitCode) console.log('Swagger UI: OK');
