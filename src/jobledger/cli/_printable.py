"""Making text from the ledger safe to print: the one place that escapes control characters.

Jobs, runs and task errors hold text anybody with write access chose. Printed
as it is, an escape sequence in a display name could clear the screen, set the
window title or hide what follows; rich markup in a job's type could restyle
or break the output. Every command shows such text through :func:`printable`
(or :func:`literal`), on consoles that never read markup.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text

__all__ = ["literal", "printable"]

# Characters that are not control characters in Unicode's categories yet change
# how a terminal lays out text: line and paragraph separators, bidirectional
# overrides and isolates (which reorder what is shown).
_LAYOUT_CONTROLS = frozenset(
    "\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _escaped(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:  # noqa: PLR2004  (the Latin-1 range has the short escape)
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: str) -> str:
    r"""``text`` with every control character written as an escape (``\x1b``, ``\x9b``, ``\u202e``).

    Control characters are C0 and C1 (ESC, CSI, BEL, newline and tab among
    them), DEL, the separators and the bidirectional controls. Everything else,
    including markup such as ``[bold]``, is kept as it is: the consoles of the
    command line never interpret markup.

    >>> printable("Nightly\x1b]0;pwned\x07 [bold]sync\u009b")
    'Nightly\\x1b]0;pwned\\x07 [bold]sync\\x9b'
    """
    if text.isprintable():
        return text
    return "".join(
        _escaped(character)
        if unicodedata.category(character) in {"Cc", "Zl", "Zp"} or character in _LAYOUT_CONTROLS
        else character
        for character in text
    )


def literal(text: str, style: str = "") -> Text:
    r"""A rich ``Text`` showing ``text`` exactly, its control characters escaped.

    >>> literal("[red]x\x1b").plain
    '[red]x\\x1b'
    """
    return Text(printable(text), style=style)
