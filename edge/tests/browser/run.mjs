// Loads the test page from an allowed and from a disallowed origin in headless Chromium and
// calls UserService through the edge from each, over gRPC-web (the default) or the Connect
// protocol ("connect-json", "connect-proto"). Prints one JSON line.
//
//   node run.mjs <allowed page URL> <disallowed page URL> <edge URL> <password> [protocol]
import { chromium } from "playwright-core";

const [allowedPage, deniedPage, edgeUrl, password, protocol = "grpc-web"] = process.argv.slice(2);
// The gRPC-web accounts keep their historical names; other protocols get their own.
const mail = (who) =>
  protocol === "grpc-web" ? `browser-${who}@example.com` : `browser-${protocol}-${who}@example.com`;
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
      ([edge, address, secret, over]) => window.runmesh.run(edge, address, secret, over),
      [edgeUrl, email, password, protocol],
    );
    await page.close();
    return { ...outcome, consoleErrors };
  };
  const allowed = await callFrom(allowedPage, mail("allowed"));
  const denied = await callFrom(deniedPage, mail("denied"));
  console.log(JSON.stringify({ allowed, denied }));
} finally {
  await browser.close();
}
