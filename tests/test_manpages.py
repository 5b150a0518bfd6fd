"""Man pages are generated from the CLI; this fails when man/ drifts from it (fix: `make man`)."""

from pathlib import Path

from blurtools.cli.manpages import render_all

MAN = Path(__file__).resolve().parents[1] / "man"


def test_man_pages_match_cli():
    pages = render_all()
    on_disk = {p.name for p in MAN.glob("*.1")}
    assert on_disk == set(pages), "man/ lists other commands than the CLI; run `make man`"
    for name, text in pages.items():
        assert (MAN / name).read_text() == text, f"man/{name} drifted from the CLI; run `make man`"


def test_pages_have_required_sections():
    for name, text in render_all().items():
        for section in (".SH NAME", ".SH SYNOPSIS", ".SH EXIT STATUS", ".SH FILES", ".SH EXAMPLES"):
            assert section in text, f"{name} lacks {section}"
