"""Terminal colours in build logs, rendered as HTML spans on the server.

A step's output often carries ANSI escape sequences (``ESC[31m`` for red, ``ESC[1m`` for
bold...). :func:`render_lines` turns the SGR sequences (colour, bold, dim, italic,
underline) into ``<span class="ansi-…">`` and drops every other escape sequence (cursor
moves, OSC titles, lone ESC), so an escape sequence is never shown raw. Text is HTML-escaped.

Colour state runs on from line to line as in a terminal; each line's spans are closed at its
end and reopened on the next line, so every line is well-formed HTML on its own (the log
viewer shows lines in rows, each with its number). No library on the package lists fits
(the known ones are GPL or render whole documents), so this is a small converter of our own.
"""

import re
from dataclasses import dataclass, replace

from django.utils.html import escape

# CSI sequences (ESC [ params intermediates final), OSC (ESC ] ... BEL or ESC \), other
# two-character escapes, and C1 CSI (U+009B). The first group captures SGR parameters.
ESCAPE = re.compile(
    r"\x1b\[([0-9;:]*)m"  # SGR: the only sequence rendered
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # any other CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, e.g. a window title or hyperlink
    r"|\x1b[ -/]*[0-~]"  # other escapes (ESC = , ESC ( B ...)
    r"|\x1b"  # a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
# Other control characters a terminal would not print (tab, newline and CR are kept).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Style:
    """The SGR state: foreground and background colour names (``red``, ``bright-blue``)
    and text attributes."""

    fg: str = ""
    bg: str = ""
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False

    def classes(self) -> str:
        """The span's CSS classes, e.g. ``"ansi-fg-red ansi-bold"``; "" for plain text."""
        names = [f"ansi-fg-{self.fg}" if self.fg else "", f"ansi-bg-{self.bg}" if self.bg else ""]
        for flag in ("bold", "dim", "italic", "underline"):
            if getattr(self, flag):
                names.append(f"ansi-{flag}")
        return " ".join(name for name in names if name)


PLAIN = Style()
COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
FLAGS = {1: ("bold", True), 2: ("dim", True), 3: ("italic", True), 4: ("underline", True)}
FLAGS.update({22: ("bold", False), 23: ("italic", False), 24: ("underline", False)})


def apply_sgr(style: Style, params: str) -> Style:
    """``style`` after the SGR sequence with parameters ``params`` (e.g. ``"1;31"``; ``""``
    resets). Unknown codes are ignored, as terminals do."""
    codes = [int(code) if code.isdigit() else 0 for code in re.split("[;:]", params or "0")]
    index = 0
    while index < len(codes):
        code = codes[index]
        index += 1
        if code in (38, 48) and index < len(codes):
            colour, index = _extended_colour(codes, index)
            style = replace(style, **{"fg" if code == 38 else "bg": colour})
        else:
            style = _simple_code(style, code)
    return style


def _extended_colour(codes: list[int], index: int) -> tuple[str, int]:
    """A 256-colour (``5;n``) or true-colour (``2;r;g;b``) parameter at ``codes[index]``:
    (colour name, index after it). Colours beyond the 16 are shown as the nearest of the 8
    (the page's palette is the 16 a terminal theme defines)."""
    if codes[index] == 5 and index + 1 < len(codes):
        number = min(codes[index + 1], 255)
        if number < 16:
            return (COLOURS[number] if number < 8 else f"bright-{COLOURS[number - 8]}"), index + 2
        if number >= 232:  # the grey ramp
            return ("white" if number >= 244 else "black"), index + 2
        cube = number - 16  # a 6×6×6 cube: red, green, blue from 0 to 5
        return _nearest(cube // 36 * 51, cube // 6 % 6 * 51, cube % 6 * 51), index + 2
    if codes[index] == 2 and index + 3 < len(codes):
        return _nearest(*codes[index + 1 : index + 4]), index + 4
    return "", len(codes)


def _nearest(red: int, green: int, blue: int) -> str:
    """The one of the 8 colours nearest to ``red``, ``green``, ``blue`` (each 0-255)."""
    return COLOURS[(red > 127) + 2 * (green > 127) + 4 * (blue > 127)]


def _simple_code(style: Style, code: int) -> Style:
    if code == 0:
        return PLAIN
    if code in FLAGS:
        name, value = FLAGS[code]
        changes = {name: value, "dim": False} if code == 22 else {name: value}
        return replace(style, **changes)
    if 30 <= code <= 37 or 90 <= code <= 97:
        bright = "bright-" if code >= 90 else ""
        return replace(style, fg=bright + COLOURS[code % 10])
    if 40 <= code <= 47 or 100 <= code <= 107:
        bright = "bright-" if code >= 100 else ""
        return replace(style, bg=bright + COLOURS[code % 10])
    if code == 39:
        return replace(style, fg="")
    if code == 49:
        return replace(style, bg="")
    return style


def render_line(text: str, style: Style = PLAIN) -> tuple[str, Style]:
    """One line of log text as HTML (escaped, SGR as spans, other escapes dropped), given
    the ``style`` in force at its start: (html, style in force at its end)."""
    if "\r" in text.rstrip("\r"):
        # A carriage return rewinds the line (progress bars): a terminal shows what was
        # written after the last one, in the style the overwritten part left in force.
        overwritten, text = text.rstrip("\r").rsplit("\r", 1)
        _, style = render_line(overwritten, style)
    parts: list[str] = []
    position = 0
    for match in ESCAPE.finditer(text):
        parts.append(_span(text[position : match.start()], style))
        if match.group(1) is not None:
            style = apply_sgr(style, match.group(1))
        position = match.end()
    parts.append(_span(text[position:], style))
    return "".join(parts), style


def render_lines(lines: list[str], style: Style = PLAIN) -> list[str]:
    """Each of ``lines`` (without their newlines) as HTML, colour state running on from one
    line to the next, starting from ``style``."""
    rendered = []
    for line in lines:
        html, style = render_line(line, style)
        rendered.append(html)
    return rendered


def _span(text: str, style: Style) -> str:
    if not text:
        return ""
    text = escape(CONTROL.sub("", text.replace("\r", "")))
    classes = style.classes()
    return f'<span class="{classes}">{text}</span>' if classes else text
