"""``nginx`` signer: ``secure_link_md5`` URLs (``?md5=...&expires=...``).

nginx side (the expression must match ``DELIVERY_NGINX_EXPRESSION`` with the
secret written out where we write ``$secret``)::

    location /tracks/ {
        secure_link $arg_md5,$arg_expires;
        secure_link_md5 "$secure_link_expires$uri SECRET";
        if ($secure_link = "")  { return 403; }   # missing or wrong hash
        if ($secure_link = "0") { return 410; }   # expired
    }

MD5 is what nginx computes; it is a keyed-prefix hash here, not our choice.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

from delivery.signing.port import SigningError, UrlRequest, join_url

VARIABLES = ("$secure_link_expires", "$uri", "$remote_addr", "$secret")
_VARIABLE_RE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def secure_link_md5(string_to_hash: str) -> str:
    """nginx's ``secure_link`` hash: base64url of MD5, without padding."""
    digest = hashlib.md5(string_to_hash.encode(), usedforsecurity=False).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_expression(expression: str) -> str:
    """Refuse variables we cannot fill in (start-up, not first request)."""
    for var in _VARIABLE_RE.findall(expression):
        if var not in VARIABLES:
            raise SigningError(
                f"nginx expression uses {var}; only {', '.join(VARIABLES)} can be signed"
            )
    if "$secure_link_expires" not in expression:
        raise SigningError("nginx expression must contain $secure_link_expires")
    return expression


def string_to_hash(
    expression: str, *, expires: int, uri: str, secret: str, remote_addr: str | None
) -> str:
    if "$remote_addr" in expression and not remote_addr:
        raise SigningError(
            "the nginx expression binds $remote_addr but the client address is unknown"
        )
    # The secret goes in last so a secret that happens to contain "$uri" stays literal.
    out = expression.replace("$secure_link_expires", str(expires)).replace("$uri", uri)
    return out.replace("$remote_addr", remote_addr or "").replace("$secret", secret)


class NginxSecureLinkSigner:
    name = "nginx"

    def __init__(self, base_url: str, secret: str, expression: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._path_prefix = urlsplit(self.base_url).path.rstrip("/")
        self._secret = secret
        self.expression = check_expression(expression)

    def sign(self, request: UrlRequest) -> str:
        uri = f"{self._path_prefix}/{request.key}"
        md5 = secure_link_md5(
            string_to_hash(
                self.expression,
                expires=request.expires_at,
                uri=uri,
                secret=self._secret,
                remote_addr=request.client_ip,
            )
        )
        return f"{join_url(self.base_url, request.key)}?md5={md5}&expires={request.expires_at}"
