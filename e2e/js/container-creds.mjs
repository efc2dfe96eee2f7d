// container-creds.mjs resolves credentials from the container credentials
// endpoint with the AWS SDK for JavaScript v3 and prints them as one JSON
// object on stdout. Used by e2e/containers_test.go.
//
//   node container-creds.mjs http       fromHttp() (@aws-sdk/credential-provider-http):
//                                       reads AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
//                                       or AWS_CONTAINER_AUTHORIZATION_TOKEN
//   node container-creds.mjs metadata   fromContainerMetadata()
//                                       (@smithy/credential-provider-imds): reads
//                                       only AWS_CONTAINER_AUTHORIZATION_TOKEN
//   node container-creds.mjs chain      fromNodeProviderChain(), the default chain:
//                                       with a container URI set it is
//                                       chain(fromHttp, fromContainerMetadata)
//
// The URI and the token come from the environment only
// (AWS_CONTAINER_CREDENTIALS_FULL_URI and one of the two token variables),
// as an unmodified application would see them; provider options stay at
// their defaults. On failure it prints the error to stderr and exits 1.
import {
  fromContainerMetadata,
  fromHttp,
  fromNodeProviderChain,
} from "@aws-sdk/credential-providers";

const mode = process.argv[2] ?? "http";

try {
  let provider;
  if (mode === "http") {
    provider = fromHttp();
  } else if (mode === "metadata") {
    provider = fromContainerMetadata();
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
      accountId: creds.accountId ?? null,
    }) + "\n",
  );
} catch (err) {
  process.stderr.write(`container-creds: ${err?.name}: ${err?.message}\n`);
  process.exit(1);
}
