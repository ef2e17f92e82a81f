"""Signs request vectors (tests/fixtures/sigv4/*.json) with botocore's S3 SigV4 signer, an
implementation that shares no code with the exporter's, and prints each request's signature
headers as JSON: {"NAME": {"authorization": ..., "x-amz-date": ..., "x-amz-content-sha256": ...}}.

Run through dev/sigv4-botocore.sh, which installs botocore. tests/sigv4.rs compares the output
with the exporter's v4 signer on the same vectors.

S3SigV4Auth is botocore's SigV4Auth as S3 uses it: the payload's SHA-256 signed in
x-amz-content-sha256, the path signed as sent (no normalization). The query is given to botocore
as decoded parameters, which it encodes canonically itself (the exporter sends some values
encoded differently on the wire, `~` as %7E, and canonicalizes them when it signs).
"""

import datetime
import json
import sys
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import botocore.auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign(vector):
    at = datetime.datetime.strptime(vector["time"], "%Y-%m-%dT%H:%M:%SZ")
    # The signing time is injected, as the exporter's is.
    botocore.auth.get_current_datetime = lambda *args, **kwargs: at
    parts = urlsplit(vector["url"])
    params = parse_qsl(parts.query, keep_blank_values=True)
    request = AWSRequest(
        method=vector["method"],
        url=urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        params=params,
        headers=dict(vector["headers"]),
        data=vector["body"].encode("utf-8"),
    )
    credentials = Credentials(vector["access_key"], vector["secret_key"])
    S3SigV4Auth(credentials, "s3", vector["region"]).add_auth(request)
    return {
        name: request.headers[name]
        for name in ("authorization", "x-amz-date", "x-amz-content-sha256")
    }


def main(paths):
    out = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            vector = json.load(f)
        out[vector["name"]] = sign(vector)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main(sys.argv[1:])
