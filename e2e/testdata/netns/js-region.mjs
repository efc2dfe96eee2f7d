// js-region.mjs reports what the AWS SDK for JavaScript v3 learns of the
// region from IMDS, and prints it as one JSON object on stdout. Used by
// e2e/netns_test.go.
//
//   node js-region.mjs REGION...
//
// The SDK reads the region from IMDS in one place only: defaults mode "auto"
// (resolveDefaultsModeConfig of @smithy/core/config, which every generated
// client calls) asks the instance's region at
// /latest/meta-data/placement/region, with a session token, and compares it
// with the client's configured region: "in-region" when they are equal,
// "cross-region" when IMDS named another region, "standard" when IMDS
// could not be asked. For each REGION given, the output maps it to the mode
// the SDK resolves for a client configured with that region.
//
// The endpoint comes from the environment as for any application
// (AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE,
// none of them: http://169.254.169.254). The SDK is the one pinned in
// e2e/js/package-lock.json (run `make deps`). On failure it prints the error
// to stderr and exits 1.
import { createRequire } from "node:module";

const require = createRequire(new URL("../../js/package.json", import.meta.url));

try {
  const { resolveDefaultsModeConfig } = require("@smithy/core/config");
  const regions = process.argv.slice(2);
  if (regions.length === 0) {
    throw new Error("usage: js-region.mjs REGION...");
  }
  const modes = {};
  for (const region of regions) {
    modes[region] = await resolveDefaultsModeConfig({ region, defaultsMode: "auto" })();
  }
  process.stdout.write(JSON.stringify({ modes }) + "\n");
} catch (err) {
  process.stderr.write(`js-region: ${err?.name}: ${err?.message}\n`);
  process.exit(1);
}
