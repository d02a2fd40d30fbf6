// Opens the edge's API reference (/docs) in headless Chromium with every request to another
// host refused and recorded, lists the operations the page shows, authorizes with a bearer
// token and runs "Try it out" on the given operations. Prints one JSON line.
//
//   node docs.mjs <edge URL> <bearer token> <METHOD path>…
import { chromium } from "playwright-core";

const [edgeUrl, token, ...calls] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const outcome = { consoleErrors: [], pageErrors: [], external: [], calls: {} };
try {
  const context = await browser.newContext();
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url === edgeUrl || url.startsWith(`${edgeUrl}/`)) return route.continue();
    outcome.external.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") outcome.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => outcome.pageErrors.push(String(error)));

  const response = await page.goto(`${edgeUrl}/docs`);
  outcome.status = response.status();
  await page.waitForSelector(".opblock", { timeout: 30_000 });
  outcome.title = await page.locator(".info .title").first().textContent();
  outcome.operations = await page.$$eval(".opblock", (blocks) =>
    blocks.map((block) => ({
      method: block.querySelector(".opblock-summary-method")?.textContent?.trim(),
      path: block.querySelector(".opblock-summary-path")?.getAttribute("data-path"),
    })),
  );

  // "Authorize": the bearer scheme of the document.
  await page.locator("button.authorize").first().click();
  const dialog = page.locator(".dialog-ux");
  await dialog.locator("input").first().fill(token);
  await dialog.locator("button.authorize").click();
  await dialog.locator("button.btn-done").click();

  for (const call of calls) {
    const [method, path] = call.split(" ");
    const block = page
      .locator(`.opblock-${method.toLowerCase()}`)
      .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) })
      .first();
    await block.locator(".opblock-summary").first().click();
    await block.locator("button.try-out__btn").click();
    await block.locator("button.execute").click();
    const live = block.locator(".live-responses-table .response").first();
    await live.waitFor({ timeout: 30_000 });
    outcome.calls[call] = {
      status: (await live.locator(".response-col_status").first().textContent())?.trim(),
      body: await live.locator(".response-col_description pre").first().textContent(),
    };
  }
  // DOCS_SCREENSHOT=file.png keeps a picture of the page after the calls, for a person to look at.
  if (process.env.DOCS_SCREENSHOT) {
    await page.screenshot({ path: process.env.DOCS_SCREENSHOT, fullPage: false });
  }
  outcome.ok = true;
} catch (error) {
  outcome.ok = false;
  outcome.error = String(error);
} finally {
  await browser.close();
}
console.log(JSON.stringify(outcome));
