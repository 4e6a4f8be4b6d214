"""Secrets inside URLs -- a database password in the userinfo, a token or password in the query
string -- masked wherever text is printed or stored. One function, used everywhere: console lines,
`error:` lines, run records (error and traceback fields) and the report."""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:PASSWORD@host  (the password ends at the last '@' before the path)
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<secret>[^\s@/]*)@")
# ?password=... &token=... ;api_key=...  (a query key that names a credential)
_QUERY = re.compile(r"(?P<head>[?&;](?P<key>[^\s=&#;]+)=)(?P<secret>[^\s&#;'\"]*)")
_CREDENTIAL_KEY = re.compile(r"(pass|pwd|secret|token|credential|signature)|(^|[_\-.])(key|auth|sig)$"
                             r"|^(apikey|sas|sig)$", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    """`text` with every URL password and credential-like query value replaced by ***."""
    if not isinstance(text, str) or not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@" if m["secret"] else m[0], text)
    return _QUERY.sub(lambda m: f"{m['head']}{MASK}" if m["secret"] and _CREDENTIAL_KEY.search(m["key"])
                      else m[0], text)


def has_secret(text: str) -> bool:
    return isinstance(text, str) and mask_secrets(text) != text
