"""The simulated telephone network's dial plan: what happens when ccphost dials a number.
Deterministic, by the last four digits of an E.164 number (docs/engine.md lists it)."""

import enum
import re

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SEPARATORS = re.compile(r"[\s().-]")

# Seconds before a dialled number answers, or reports busy or a failure.
ANSWER_DELAY_SECONDS = 1.0

# Calling codes ccphost knows, for the agent's dialable countries.
COUNTRIES_BY_CALLING_CODE = {
    "+1": {"us", "ca"},
    "+33": {"fr"},
    "+44": {"gb"},
    "+49": {"de"},
    "+61": {"au"},
    "+81": {"jp"},
}


class Outcome(enum.Enum):
    ANSWER = "answer"
    BUSY = "busy"  # LineEngagedCustomer
    NO_ANSWER = "no_answer"  # rings until the instance's customer ring limit: MissedCallCustomer
    FAILED = "failed"  # FailedConnectCustomer
    INVALID = "invalid"  # BadAddressCustomer


SUFFIX_OUTCOMES = {
    "0002": Outcome.BUSY,
    "0003": Outcome.NO_ANSWER,
    "0004": Outcome.FAILED,
    "0009": Outcome.INVALID,
}

ERROR_STATE_OF_OUTCOME = {
    Outcome.BUSY: "LineEngagedCustomer",
    Outcome.NO_ANSWER: "MissedCallCustomer",
    Outcome.FAILED: "FailedConnectCustomer",
    Outcome.INVALID: "BadAddressCustomer",
}


def normalize_number(number: str) -> str:
    """Drop spaces, dots, dashes and parentheses; a leading 00 becomes +."""
    compact = SEPARATORS.sub("", number)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact


def is_e164(number: str) -> bool:
    return bool(E164.match(number))


def dial_outcome(number: str) -> Outcome:
    normalized = normalize_number(number)
    if not is_e164(normalized):
        return Outcome.INVALID
    return SUFFIX_OUTCOMES.get(normalized[-4:], Outcome.ANSWER)


def countries_of(number: str) -> set[str] | None:
    """The countries a number may belong to, or None when ccphost does not know its code."""
    for code in sorted(COUNTRIES_BY_CALLING_CODE, key=len, reverse=True):
        if number.startswith(code):
            return COUNTRIES_BY_CALLING_CODE[code]
    return None
