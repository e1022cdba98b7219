"""Moments a question names in a recording: "at 1:23", "six and a half seconds in", "2 min 30 s".

``moments(text)`` returns them in seconds. The reranker uses them to put the video keyframes,
transcript lines and clips around that moment first (it reorders; nothing is dropped).
"""

from __future__ import annotations

import re

_UNITS = {"h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
          "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
          "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0}
_SMALL = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_WORDS = {**{w: float(i) for i, w in enumerate(_SMALL)}, **{w: float(v) for w, v in _TENS.items()},
          "a": 1.0, "an": 1.0}
_WORD = "|".join(sorted(_WORDS, key=len, reverse=True))
# a number: digits ("6.5"), or words ("twenty five", "twenty-five", "six")
_NUMBER = (rf"(?:(?<![\d.])\d+(?:\.\d+)?"
           rf"|\b(?:{_WORD})(?:[\s-](?:{'|'.join(_SMALL[1:10])}))?)")
_FRACTION = r"(?:\s+and\s+(?:a\s+)?(?P<frac>half|quarter))?"
_UNIT = "|".join(sorted(_UNITS, key=len, reverse=True))
_AMOUNT = re.compile(
    rf"(?P<num>{_NUMBER}){_FRACTION}\s*(?P<unit>{_UNIT})(?![a-z])(?P<half>\s+and\s+a\s+half)?",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"(?<![\d:.])(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?:\.(\d+))?(?![\d:])")
_FRACTIONS = {"half": 0.5, "quarter": 0.25}


def _number(text: str) -> float:
    text = text.lower().replace("-", " ")
    try:
        return float(text)
    except ValueError:
        return sum(_WORDS[w] for w in text.split())


def _is_moment(m: re.Match[str], unit: float) -> bool:
    """Not "the 1990s" (a decade), nor "a second opinion" ("a" counts for minutes and hours)."""
    num = m.group("num").lower()
    if unit == 1.0 and num in ("a", "an"):
        return False
    return not (m.group("unit") == "s" and len(num) == 4 and num.isdigit()
                and m.start("unit") == m.end("num"))


def moments(text: str) -> list[float]:
    """Moments named in ``text``, in seconds, in order: clock times ("1:23", "01:02:03") and
    durations with a unit ("90 s", "6.5 seconds", "six and a half seconds", "2 min 30 s",
    "a minute and a half"); consecutive amounts add up ("1 min 30 s" is 90)."""
    found: list[tuple[int, float]] = []
    for m in _CLOCK.finditer(text):
        hours, minutes, seconds, frac = m.groups()
        value = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
        found.append((m.start(), value + float(f"0.{frac}") if frac else float(value)))
    end, total, start = -1, 0.0, -1
    for m in _AMOUNT.finditer(text):
        unit = _UNITS[m.group("unit").lower()]
        if not _is_moment(m, unit):
            continue
        amount = _number(m.group("num")) + _FRACTIONS.get((m.group("frac") or "").lower(), 0.0)
        if m.group("half"):
            amount += 0.5
        if end >= 0 and text[end:m.start()].strip(" ,") in ("", "and"):
            total += amount * unit  # "1 min 30 s", "2 minutes and 5 seconds"
        else:
            if end >= 0:
                found.append((start, total))
            total, start = amount * unit, m.start()
        end = m.end()
    if end >= 0:
        found.append((start, total))
    return [value for _, value in sorted(found)]
