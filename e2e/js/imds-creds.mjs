// imds-creds.mjs resolves credentials with the AWS SDK for JavaScript v3 and
// prints them as one JSON object on stdout. Used by e2e/js_test.go.
//
//   node imds-creds.mjs          fromInstanceMetadata() alone
//                                (@smithy/credential-provider-imds)
//   node imds-creds.mjs chain    fromNodeProviderChain(), the default chain an
//                                application gets (env, ini, sso, process,
//                                then IMDS); it is also what honours
//                                AWS_EC2_METADATA_DISABLED
//
// The endpoint, the IMDSv1 switch and everything else come from the
// environment (AWS_EC2_METADATA_SERVICE_ENDPOINT, AWS_EC2_METADATA_V1_DISABLED),
// as an unmodified application would see them. Provider options stay at their
// defaults (timeout 1000 ms, maxRetries 0). On failure it prints the error to
// stderr and exits 1.
import {
  fromInstanceMetadata,
  fromNodeProviderChain,
} from "@aws-sdk/credential-providers";

const mode = process.argv[2] ?? "imds";

try {
  let provider;
  if (mode === "imds") {
    provider = fromInstanceMetadata();
  } else if (mode === "chain") {
    provider = fromNodeProviderChain();
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  const creds = await provider();
  process.stdout.write(
    JSON.stringify({
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      sessionToken: creds.sessionToken,
      expiration: creds.expiration ? creds.expiration.toISOString() : null,
    }) + "\n",
  );
} catch (err) {
  process.stderr.write(`imds-creds: ${err?.name}: ${err?.message}\n`);
  process.exit(1);
}
