"""Secrets inside URLs -- a database password in the userinfo, a token or password in the query
string -- masked wherever text is printed or stored. One function, used everywhere: console lines,
`error:` lines, run records (error and traceback fields) and the report.

Two layers, because a password may hold any character:

- patterns: the userinfo of `scheme://user:PASSWORD@host` runs to the *last* `@` of the URL (a
  generated password holds `/`, `@`, `#`, `%`), and a query value whose key names a credential runs
  to the next `&key=`;
- known secrets: the passwords of URLs the user handed us (`--storage`, the worker's storage
  variable) are registered and masked verbatim wherever they appear, spaces included, encoded
  or not, even where a library echoed them without their URL.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote

MASK = "***"
MIN_KNOWN = 4  # a shorter registered secret would mask ordinary words; the patterns still cover it

# scheme://user:PASSWORD@host: greedy to the last '@' of the URL that a host follows, so '/', '@',
# '#', '?' and '%' inside the password are masked with it (over-masking a query's '@' is the safe side)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)(?P<secret>\S*)@"
                       r"(?=[A-Za-z0-9\-._~%\[\]:]*(?:[/?#'\")\],;]|\s|$))")
# a typed password with spaces (invalid in a URL, yet users type it): a few words, no '/' or '@' among them
_SPACED = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@]*:)(?P<secret>[^\s/@]+(?: [^\s/@]+){1,3})@"
                     r"(?=[A-Za-z0-9\-._~%\[\]:]*(?:[/?#'\")\],;]|\s|$))")
# ?password=... &token=... ;api_key=...: the value runs to the next `&key=` (a '&' or '#' inside it is its own)
_QUERY = re.compile(r"(?P<head>[?&;](?P<key>[^\s=&#;?]+)=)(?P<secret>.*?)(?=[&;][^\s=&#;]+=|[\s'\"]|$)")
_CREDENTIAL_KEY = re.compile(r"(pass|pwd|secret|token|credential|signature)|(^|[_\-.])(key|auth|sig)$"
                             r"|^(apikey|sas|sig)$", re.IGNORECASE)

_known: set[str] = set()


def mask_secrets(text: str) -> str:
    """`text` with every URL password, credential-like query value and registered secret replaced by ***."""
    if not isinstance(text, str) or not text:
        return text
    # the patterns first: a URL is masked whole before a registered piece of it could split it
    for pattern in (_USERINFO, _SPACED):
        text = pattern.sub(lambda m: f"{m['head']}{MASK}@" if m["secret"] != MASK else m[0], text)
    text = _QUERY.sub(lambda m: f"{m['head']}{MASK}" if m["secret"] and m["secret"] != MASK
                      and _CREDENTIAL_KEY.search(m["key"]) else m[0], text)
    for secret in sorted(_known, key=len, reverse=True):  # longest first: an encoded form holds the plain one
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def has_secret(text: str) -> bool:
    return isinstance(text, str) and mask_secrets(text) != text


def secrets_of(url: str) -> list[str]:
    """The password of a URL the user gave whole (userinfo to the URL's last '@') and its
    credential-like query values."""
    if not isinstance(url, str) or "://" not in url:
        return []
    found = []
    rest = url.split("://", 1)[1]
    if "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    query = url.split("?", 1)[1] if "?" in url else ""
    found += [value for key, value in parse_qsl(query, keep_blank_values=False) if _CREDENTIAL_KEY.search(key)]
    return [s for s in found if s]


def register_url(url: str | None) -> None:
    """Mask this URL's secrets verbatim from now on, in this process (plain, percent-encoded and decoded).
    A password holding '@' is also registered as a parser that splits at its first '@' echoes it: the
    rest of it glued to the host ("failed to resolve host 'ss@db'")."""
    forms = set()
    for secret in secrets_of(url or ""):
        forms |= {secret, unquote(secret), quote(secret, safe=""), quote(unquote(secret), safe="")}
    rest = (url or "").split("://", 1)[-1]
    if "@" in rest:
        userinfo, hostpart = rest.rsplit("@", 1)
        host = re.split(r"[:/?#]", hostpart, maxsplit=1)[0]
        forms |= {f"{userinfo[i + 1:]}@{host}" for i, c in enumerate(userinfo) if c == "@"}
    _known.update(f for f in forms if len(f) >= MIN_KNOWN)


def needs_encoding(url: str | None) -> bool:
    """Whether a password of the URL holds characters URL syntax reads as its own ('@', '/', '#', '?',
    '%' not escaping, a space): parsers split it there, so it must be percent-encoded."""
    rest = (url or "").split("://", 1)[-1]
    userinfo = rest.rsplit("@", 1)[0] if "@" in rest else ""
    password = userinfo.split(":", 1)[1] if ":" in userinfo else ""
    return bool(re.search(r"[@/#? ]|%(?![0-9A-Fa-f]{2})", password))


def forget_registered() -> None:
    """For tests: drop every registered secret."""
    _known.clear()
