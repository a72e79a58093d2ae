// The gateway's status page in headless Chromium (Debian's chromium, driven
// by playwright-core): reads the families, groups and rejections tables,
// opens a family into its series,
// deletes one group through the page with admin credentials, and saves a
// screenshot. Every request the page makes and every console error is
// recorded, so the test can check that nothing left the gateway.
// Usage: node status_page.js <page url> <user> <password> <group to delete> <screenshot path>
// Prints one JSON object.
'use strict';

const { launch } = require('./chromium');

async function cells(page, tbody) {
  return page.$$eval(`#${tbody} tr`, (rows) =>
    rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent)));
}

async function main() {
  const [url, user, password, doomed, screenshot] = process.argv.slice(2);
  const browser = await launch();
  const requests = [];
  const consoleErrors = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    page.on('dialog', (d) => d.accept());
    const response = await page.goto(url);
    const csp = response.headers()['content-security-policy'];
    await page.waitForSelector('#family-rows tr td code');
    const families = await cells(page, 'family-rows');
    const summary = await page.textContent('#summary');
    // A family opens into its series.
    await page.click('#family-rows button:has-text("web_clicks_total")');
    await page.waitForSelector('#family-rows tr.detail');
    const series = await page.$$eval('#family-rows tr.detail', (rows) =>
      rows.map((r) => Array.from(r.querySelectorAll('td')).map((td) => td.textContent)));

    await page.click('nav button[data-tab="groups"]');
    await page.waitForSelector('#group-rows tr td code');
    const groupsBefore = await cells(page, 'group-rows');

    await page.click('nav button[data-tab="rejections"]');
    await page.waitForSelector('#rejection-rows tr td code');
    const rejections = await cells(page, 'rejection-rows');

    await page.click('nav button[data-tab="cardinality"]');
    await page.waitForSelector('#card-pairs tr td code');
    const pairs = await cells(page, 'card-pairs');

    // Delete one group through the page, as an admin.
    await page.fill('#user', user);
    await page.fill('#password', password);
    await page.click('nav button[data-tab="groups"]');
    await page.waitForSelector('#group-rows tr td code');
    const button = page.locator(`#group-rows button[data-labels='${doomed}']`);
    await button.click();
    await page.waitForFunction(
      (labels) => !document.querySelector(`#group-rows button[data-labels='${labels}']`),
      doomed,
    );
    const message = await page.textContent('#message');
    const groupsAfter = await cells(page, 'group-rows');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify({
      csp,
      summary,
      families,
      series,
      groupsBefore,
      groupsAfter,
      rejections,
      pairs,
      message,
      requests,
      consoleErrors,
    }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
