"""Personal data scrubbed out of free text: each match replaced by a typed marker (``[email]``), counted by kind.

Each detector pairs a pattern with a check where the format has one, so near misses stay as they are: a card
number must pass the Luhn check, an IBAN the ISO 7064 mod-97 check, an IP address must parse, a US Social
Security number must not use an area or group never issued. Cheap tests (an ``@``, a digit, a ``:``) skip
detectors that cannot match, so most strings cost a few character scans.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

__all__ = ["SCRUBBED_KINDS", "luhn_valid", "scrub"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
# 13 to 19 digits, optionally grouped by single spaces or dashes (as cards are printed).
_CARD = re.compile(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")
# International (+ and 8-15 digits) or North American ((555) 123-4567, 555-123-4567, 555.123.4567).
_PHONE = re.compile(
    r"(?<![\w+])\+\d(?:[ .()-]{0,2}\d){7,14}(?!\d)|(?<![\w(])(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-. ]\d{4}(?!\d)"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: str) -> bool:
    digits = re.sub(r"[ -]", "", match)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _iban(match: str) -> bool:
    compact = match.replace(" ", "")
    rotated = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rotated)) % 97 == 1
    except ValueError:
        return False


def _ip(match: str) -> bool:
    try:
        ipaddress.ip_address(match.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _always(match: str) -> bool:
    return True


#: Detectors in the order they run: the more specific first, so an IBAN's digits are not taken for a phone.
_DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[str], bool], Callable[[str], bool]], ...] = (
    ("email", _EMAIL, _always, lambda s: "@" in s),
    ("iban", _IBAN, _iban, lambda s: True),
    ("card", _CARD, _card, lambda s: True),
    ("ssn", _SSN, _always, lambda s: "-" in s),
    ("ip", _IPV4, _ip, lambda s: "." in s),
    ("ip", _IPV6, _ip, lambda s: s.count(":") >= 2),
    ("phone", _PHONE, _always, lambda s: True),
)
SCRUBBED_KINDS = ("email", "iban", "card", "ssn", "ip", "phone")
#: Shorter strings hold none of the above (the shortest, an IPv6 ``::1``, is 3 characters).
_MIN_LENGTH = 3


def scrub(text: str, counts: dict[str, int] | None = None) -> str:
    """``text`` with every detected item replaced by ``[kind]``; ``counts[kind]`` grows by each replacement."""
    if len(text) < _MIN_LENGTH:
        return text
    has_digit = any(ch.isdigit() for ch in text)
    if not has_digit and "@" not in text and ":" not in text:
        return text
    for kind, pattern, check, may_match in _DETECTORS:
        if kind != "email" and kind != "ip" and not has_digit:
            continue
        if not may_match(text):
            continue
        found = 0

        def replace(match: re.Match[str], kind: str = kind, check: Callable[[str], bool] = check) -> str:
            nonlocal found
            if not check(match.group(0)):
                return match.group(0)
            found += 1
            return f"[{kind}]"

        text = pattern.sub(replace, text)
        if found and counts is not None:
            counts[kind] = counts.get(kind, 0) + found
    return text
