"""An independent check of Google Cloud Storage V4 signed URLs (GOOG4-RSA-SHA256).

Rebuilds the canonical request and the string-to-sign from the URL and the request headers,
as https://cloud.google.com/storage/docs/authentication/canonical-requests describes, and
verifies the signature with the service account's public key. Written from the spec, not
from google-cloud-storage, so it checks the library rather than repeating it.
"""

import hashlib
from urllib.parse import parse_qsl, quote, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _encode(value: str) -> str:
    # RFC 3986 unreserved characters stay; everything else is percent-encoded.
    return quote(value, safe="-_.~")


def query_params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def verify_v4_signed_url(
    url: str, *, method: str, headers: dict[str, str], public_key: rsa.RSAPublicKey
) -> None:
    """Raise `cryptography.exceptions.InvalidSignature` unless the URL's signature holds
    for this method and these headers."""
    parts = urlsplit(url)
    params = query_params(url)
    signature = bytes.fromhex(params.pop("X-Goog-Signature"))
    canonical_query = "&".join(
        f"{_encode(key)}={_encode(value)}" for key, value in sorted(params.items())
    )
    signed_headers = params["X-Goog-SignedHeaders"]
    sent = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    sent.setdefault("host", parts.netloc)
    canonical_headers = "".join(
        f"{name}:{sent.get(name, '')}\n" for name in signed_headers.split(";")
    )
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, canonical_headers, signed_headers, "UNSIGNED-PAYLOAD"]
    )
    scope = params["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        [
            params["X-Goog-Algorithm"],
            params["X-Goog-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    public_key.verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
