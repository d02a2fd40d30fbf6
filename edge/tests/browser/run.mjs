// Loads the test page from an allowed and from a disallowed origin in headless Chromium and
// calls UserService through the edge's gRPC-web from each. Prints one JSON line.
//
//   node run.mjs <allowed page URL> <disallowed page URL> <edge URL> <password>
import { chromium } from "playwright-core";

const [allowedPage, deniedPage, edgeUrl, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  // Background networking would be refused on a machine without a network; the sandbox needs
  // privileges a container or CI runner may lack.
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
try {
  const callFrom = async (url, email) => {
    const page = await browser.newPage();
    const consoleErrors = [];
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    await page.goto(url);
    const outcome = await page.evaluate(
      ([edge, mail, secret]) => window.runmesh.run(edge, mail, secret),
      [edgeUrl, email, password],
    );
    await page.close();
    return { ...outcome, consoleErrors };
  };
  const allowed = await callFrom(allowedPage, "browser-allowed@example.com");
  const denied = await callFrom(deniedPage, "browser-denied@example.com");
  console.log(JSON.stringify({ allowed, denied }));
} finally {
  await browser.close();
}
