"""Secrets never written or printed: credentials in URLs, and keys passed where a name belongs.

    redact_url("http://user:KEY@host/v1?api_key=K2")  -> "http://***@host/v1?api_key=***"
    redact_text(message, secrets)                      -> the message with each secret as ***
    check_key_env("sk-abc...")                         -> raises, without echoing the value
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from instruct_data.errors import IdataError

MASK = "***"
# Query parameters that carry a credential (signed URLs, API gateways).
SECRET_PARAMS = re.compile(r"(key|token|secret|password|passwd|pwd|sig|signature|auth|credential)", re.I)
# user:password@ inside any URL in free text (an error message, an argv).
URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def redact_url(url: str) -> str:
    """The URL without its user:password (the whole userinfo is masked) and without the values of
    query parameters that look like credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_secrets(url: str | None) -> list[str]:
    """The secret pieces of a URL (userinfo and credential-like query values), to scrub from text
    a library produced (an error message may quote them in another form)."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found += [userinfo, *[piece for piece in userinfo.split(":") if len(piece) >= 4]]
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if SECRET_PARAMS.search(k) and v:
            found.append(v)
    return found


def redact_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Free text with URL credentials masked and each of `secrets` replaced by ***."""
    text = URL_USERINFO.sub(lambda m: m["scheme"] + MASK + "@", text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def redact_argv(argv: list[str]) -> list[str]:
    """A command line as it may be recorded: credentials in URLs masked."""
    return [redact_text(arg) for arg in argv]


def looks_like_key(value: str) -> bool:
    """A value that cannot be an environment variable's name, or that looks like a generated
    key (long, letters and digits, not upper case like a variable name)."""
    if not ENV_NAME.match(value):
        return True
    return len(value) >= 24 and any(c.isdigit() for c in value) and not value.isupper()


def check_key_env(name: str | None) -> None:
    """--judge-key-env takes a variable's NAME. A key given there by mistake is refused without
    echoing it (it would land in the terminal's scrollback, logs and CI output)."""
    if name and looks_like_key(name):
        raise IdataError("--judge-key-env takes the NAME of an environment variable that holds the key "
                         "(e.g. JUDGE_KEY), and the value given looks like a key itself; it is not shown or used. "
                         "Run `export JUDGE_KEY=...` and pass --judge-key-env JUDGE_KEY")
