"""Print the credentials (and region) boto3 resolves from IMDS as JSON.

Run by e2e/boto3_test.go with /usr/bin/python3 -I and a scrubbed environment:
AWS_EC2_METADATA_SERVICE_ENDPOINT points at imdsd, HOME is empty, no shared
config or credentials file exists, so the default chain ends at IMDS.
Exit status 1 (message on stderr) when no credentials are found.
"""
import json
import sys

import boto3
import botocore.session
import botocore.utils

session = boto3.Session()
credentials = session.get_credentials()
if credentials is None:
    sys.stderr.write("boto3_creds: no credentials found\n")
    sys.exit(1)
frozen = credentials.get_frozen_credentials()

# RefreshableCredentials keeps the expiry privately; it is how botocore
# parsed the served Expiration (SPEC.md R5.4), so report it when present.
expiry = getattr(credentials, "_expiry_time", None)

# boto3.Session().region_name does not consult IMDS in botocore 1.29 (Debian 12):
# IMDSRegionProvider is wired only into the "smart defaults" of
# defaults_mode=auto. Call that provider directly; it reads the same
# configuration (AWS_EC2_METADATA_SERVICE_ENDPOINT, timeouts) and asks
# latest/meta-data/placement/availability-zone/ minus its last character.
region = botocore.utils.IMDSRegionProvider(botocore.session.get_session()).provide()

json.dump(
    {
        "access_key": frozen.access_key,
        "secret_key": frozen.secret_key,
        "token": frozen.token,
        "expiry": expiry.isoformat() if expiry is not None else None,
        "session_region": session.region_name,
        "imds_region": region,
        "botocore": botocore.__version__,
    },
    sys.stdout,
)
sys.stdout.write("\n")
