"""Help formatting: command docstrings keep their paragraphs and indented command lines.

argparse's default refills a description into one block (command examples run together);
RawDescriptionHelpFormatter keeps long one-line descriptions unwrapped. This refills each
prose paragraph to the terminal and leaves indented lines (examples) as written.
"""

from __future__ import annotations

import argparse
import textwrap


class DocFormatter(argparse.HelpFormatter):
    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = textwrap.dedent(text).strip().split("\n\n")
        out = []
        for paragraph in paragraphs:
            lines = paragraph.splitlines()
            if any(line.startswith((" ", "\t")) for line in lines):
                out.append("\n".join(indent + line for line in lines))
            else:
                # Never split a flag (`--feature-group`) at its hyphen.
                out.append(textwrap.fill(" ".join(line.strip() for line in lines), width, break_on_hyphens=False,
                                         initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out)
