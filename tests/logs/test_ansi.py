"""Terminal colours rendered as spans: SGR sequences become classes, every other escape
sequence disappears, text is escaped, and colour runs on across lines."""

from builds import ansi


def html(text: str) -> str:
    return ansi.render_line(text)[0]


def test_a_colour_becomes_a_span_and_a_reset_ends_it():
    assert html("\x1b[31mred\x1b[0m plain") == '<span class="ansi-fg-red">red</span> plain'


def test_bold_bright_and_background_combine():
    assert html("\x1b[1;92;44mok") == (
        '<span class="ansi-fg-bright-green ansi-bg-blue ansi-bold">ok</span>'
    )


def test_256_and_true_colours_are_shown_as_the_nearest_of_the_palette():
    assert html("\x1b[38;5;196mx") == '<span class="ansi-fg-red">x</span>'
    assert html("\x1b[38;5;9mx") == '<span class="ansi-fg-bright-red">x</span>'
    assert html("\x1b[38;2;250;10;10mx") == '<span class="ansi-fg-red">x</span>'


def test_other_escape_sequences_are_never_shown():
    text = "\x1b[2K\x1b[1Gdone\x1b]0;title\x07 \x1b(B\x1b=ok\x1b"
    assert html(text) == "done ok"


def test_text_is_escaped_inside_and_outside_spans():
    assert html("<b>&\x1b[33m<i>") == '&lt;b&gt;&amp;<span class="ansi-fg-yellow">&lt;i&gt;</span>'


def test_colour_runs_on_to_the_next_line_until_reset():
    lines = ansi.render_lines(["\x1b[32mgreen", "still green\x1b[39m", "plain"])
    assert lines == [
        '<span class="ansi-fg-green">green</span>',
        '<span class="ansi-fg-green">still green</span>',
        "plain",
    ]


def test_a_carriage_return_shows_what_was_written_after_it():
    assert html("10%\r\x1b[1m50%\r100%\r") == '<span class="ansi-bold">100%</span>'
