"""``cloudfront`` signer: Amazon CloudFront signed URLs, canned or custom policy.

Canned: ``?Expires=..&Signature=..&Key-Pair-Id=..`` signs a fixed policy for
one URL. Custom: ``?Policy=..&Signature=..&Key-Pair-Id=..`` carries its own
policy; here it adds an ``IpAddress`` condition (the caller's network) when
URLs are bound to the client or ``DELIVERY_CLOUDFRONT_POLICY=custom``.
The signature is RSA PKCS#1 v1.5 over SHA-1 (what CloudFront verifies), in
CloudFront's URL-safe base64 alphabet (``+ = /`` -> ``- _ ~``). The policy JSON
is byte-for-byte what ``botocore.signers.CloudFrontSigner`` produces.
"""

from __future__ import annotations

import base64
import ipaddress
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from delivery.signing.port import SigningError, UrlRequest, join_url


def cloudfront_b64(data: bytes) -> str:
    return base64.b64encode(data).decode().translate(str.maketrans("+=/", "-_~"))


def canned_policy(url: str, expires: int) -> str:
    return (
        f'{{"Statement":[{{"Resource":"{url}","Condition":'
        f'{{"DateLessThan":{{"AWS:EpochTime":{int(expires)}}}}}}}]}}'
    )


def custom_policy(url: str, expires: int, ip_range: str | None = None) -> str:
    condition: dict = {"DateLessThan": {"AWS:EpochTime": expires}}
    if ip_range:
        condition["IpAddress"] = {"AWS:SourceIp": ip_range}
    return json.dumps(
        {"Statement": [{"Resource": url, "Condition": condition}]}, separators=(",", ":")
    )


def client_network(ip: str, prefix_v4: int = 32, prefix_v6: int = 64) -> str:
    addr = ipaddress.ip_address(ip)
    prefix = prefix_v4 if addr.version == 4 else prefix_v6
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class CloudFrontSigner:
    name = "cloudfront"

    def __init__(
        self,
        base_url: str,
        key_pair_id: str,
        private_key_pem: bytes,
        *,
        policy: str = "canned",
        ip_prefix_v4: int = 32,
        ip_prefix_v6: int = 64,
    ) -> None:
        try:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningError(f"CloudFront private key: {exc}") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SigningError("CloudFront private key must be an RSA key (PEM)")
        if policy not in ("canned", "custom"):
            raise SigningError(f"unknown CloudFront policy {policy!r}")
        self.base_url = base_url.rstrip("/")
        self.key_pair_id = key_pair_id
        self._key = key
        self.policy = policy
        self._prefixes = (ip_prefix_v4, ip_prefix_v6)

    def _sign(self, message: str) -> str:
        signature = self._key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        return cloudfront_b64(signature)

    def sign_url(self, url: str, expires: int, ip_range: str | None = None) -> str:
        """Sign ``url``: canned unless an ``ip_range`` or the custom policy is asked for."""
        sep = "&" if "?" in url else "?"
        if ip_range is None and self.policy == "canned":
            signature = self._sign(canned_policy(url, expires))
            return (
                f"{url}{sep}Expires={expires}&Signature={signature}&Key-Pair-Id={self.key_pair_id}"
            )
        policy = custom_policy(url, expires, ip_range)
        return (
            f"{url}{sep}Policy={cloudfront_b64(policy.encode())}"
            f"&Signature={self._sign(policy)}&Key-Pair-Id={self.key_pair_id}"
        )

    def sign(self, request: UrlRequest) -> str:
        ip_range = None
        if request.client_ip and (request.bind_ip or self.policy == "custom"):
            ip_range = client_network(request.client_ip, *self._prefixes)
        elif request.bind_ip:
            raise SigningError("cannot bind a CloudFront URL: the client address is unknown")
        return self.sign_url(join_url(self.base_url, request.key), request.expires_at, ip_range)
