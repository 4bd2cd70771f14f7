"""One reading of the small values users type or send: booleans, counts, durations, rates.

The same input gets the same answer in every command and in the server's options: ``"no"`` is false
everywhere (``bool("no")`` is true in Python), ``-3`` is never a count, ``0`` is never a frame rate.
Every refusal is a :class:`~s2v_toolkit.errors.ConfigError` naming the option and the value.
"""

from __future__ import annotations

import math
from fractions import Fraction

from s2v_toolkit.errors import ConfigError

TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n", ""})


def parse_bool(value, name: str = "value") -> bool:
    """``True``/``False``, 0/1, or the words yes/no, true/false, on/off (any case); anything else refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise ConfigError(f"{name} {value!r}: not a yes/no value (use true or false)")


def parse_count(value, name: str = "count", minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number >= ``minimum`` (and <= ``maximum``)."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"{name} {value!r}: must be a whole number")
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} {value!r}: must be a whole number") from None
    if n < minimum:
        raise ConfigError(f"{name} {n}: must be at least {minimum}")
    if maximum is not None and n > maximum:
        raise ConfigError(f"{name} {n}: must be at most {maximum}")
    return n


def parse_seconds(value, name: str = "duration", allow_zero: bool = False) -> float:
    """A finite duration in seconds, > 0 (or >= 0 with ``allow_zero``)."""
    try:
        s = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{name} {value!r}: must be a number of seconds") from None
    if not math.isfinite(s) or s < 0 or (s == 0 and not allow_zero):
        raise ConfigError(f"{name} {value!r}: must be a {'non-negative' if allow_zero else 'positive'} "
                          "finite number of seconds")
    return s


def check_rate(rate, what: str = "frame rate") -> Fraction:
    """A usable frame rate: finite, > 0 and at most 1000 fps (as a Fraction)."""
    try:
        r = Fraction(rate) if not isinstance(rate, float) else Fraction(rate).limit_denominator(100000)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        raise ConfigError(f"{what} {rate!r}: not a number") from None
    if not (0 < r <= 1000):
        raise ConfigError(f"{what} {float(r):g}: must be above 0 and at most 1000 fps")
    return r
