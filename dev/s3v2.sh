#!/usr/bin/env bash
# dev/s3v2.sh METHOD /bucket/key[?query] [BODY_FILE [CONTENT_TYPE]]
# One S3 or RGW admin request signed with AWS signature v2 by openssl and sent by curl: a client
# independent of the exporter's own signer, which the tests use to read back what it wrote.
# Keys: S3V2_ACCESS / S3V2_SECRET, else EXPORTER_ACCESS_KEY / EXPORTER_SECRET_KEY; endpoint:
# RGW_ENDPOINT. Prints the body; exits 22 on an HTTP error (curl --fail-with-body).
# The path must be sent percent-encoded, and is signed as sent; the query is not signed.
set -euo pipefail
method=$1; path=$2; body=${3:-}; ctype=${4:-}
access=${S3V2_ACCESS:-$EXPORTER_ACCESS_KEY}
secret=${S3V2_SECRET:-$EXPORTER_SECRET_KEY}
date=$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')
md5=""
[ -n "$body" ] && md5=$(openssl md5 -binary < "$body" | base64)
sts="$method"$'\n'"$md5"$'\n'"$ctype"$'\n'"$date"$'\n'"${path%%\?*}"
sig=$(printf '%s' "$sts" | openssl dgst -sha1 -hmac "$secret" -binary | base64)
args=(-sS --fail-with-body -X "$method" -H "Date: $date" -H "Authorization: AWS $access:$sig" -H "Content-Type: $ctype")
[ -n "$md5" ] && args+=(-H "Content-MD5: $md5" --data-binary "@$body")
exec curl "${args[@]}" "$RGW_ENDPOINT$path"
