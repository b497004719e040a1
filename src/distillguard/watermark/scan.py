"""What may never change: code (fenced, indented, unfenced lines), inline code, quotes, JSON, gsm8k answers.

``Protector`` sees the text as (whitespace, chunk) pairs in order and says for each chunk whether it is
protected. It only looks at the input so far, so it gives the same answers for any split of a stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# a chunk that can take part in an alternation: punctuation around one plain word
WORD_RE = re.compile(r"^([(\[\"“‘'*_]*)([A-Za-z]+(?:['’][A-Za-z]+)?)([)\]\"”’'*_.,;:!?]*)$")
# chunks that mark the rest of their line as code
CODE_CHUNK_RE = re.compile(r"[{}=<>\\^~]|;\S|\w\(|\w\.\w+\(|::|->|=>|\w_\w|\$\w|\w\[|^#!")
CODE_LINE_RE = re.compile(
    r"^(?:def|class|import|from|return|elif|else:|try:|except|raise|print\(|#include|//|/\*|\*/|public|private|"
    r"static|void|const|let|var|function|package|SELECT|>>>|[{}\[\]<]|@\w|####)"
)
STICKY_CODE_RE = re.compile(r"^(?:def|class|import|from|#include|package|function|public|using)\b")
LIST_MARKER_RE = re.compile(r"^(?:[-*+•>]|\d{1,3}[.)]|#{1,3})$")
SENT_END_RE = re.compile(r"[.!?:][)\]\"”’'*_]*$")
# abbreviations whose period does not end a sentence (a capitalised word after them is a name)
ABBREVIATIONS = frozenset(["mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "jr.", "sr.", "vs.", "e.g.", "i.e.", "fig.", "no.", "mt.", "gen.", "col.", "capt.", "lt.", "sgt."])


@dataclass(slots=True)
class Protector:
    fence: str | None = None  # the open code fence marker (``` or ~~~), if any
    code_mode: bool = False  # the text looks like code: protect everything from here on
    line_code: bool = False  # rest of the current line is code
    inline_code: bool = False  # inside `...`
    dquote: bool = False  # inside "..." or “...”
    squote: bool = False  # inside '...' or ‘...’
    started: bool = False
    line_start: bool = True  # the next chunk is the first of its line
    list_start: bool = False  # previous chunk was a list marker opening the line
    sentence_start: bool = True  # the next chunk starts a sentence

    def see(self, ws: str, chunk: str) -> tuple[bool, bool]:
        """Update the state with one pair; return (protected, starts_sentence) for ``chunk``."""
        if "\n" in ws or not self.started:
            if ws.count("\n") >= 2:
                self.inline_code = False
            self.line_start, self.line_code, self.dquote, self.squote = True, False, False, False
        first_chunk = not self.started
        self.started = True
        at_line_start = self.line_start
        self.line_start = False
        sent = self.sentence_start or at_line_start or self.list_start
        self.list_start = False
        self.sentence_start = bool(SENT_END_RE.search(chunk)) and chunk.lower().lstrip("(['\"") not in ABBREVIATIONS
        if first_chunk and chunk[:1] in "{[":
            self.code_mode = True
        if self.code_mode:
            return True, sent
        if at_line_start:
            if chunk.startswith(("```", "~~~")):
                marker = chunk[:3]
                if self.fence is None:
                    self.fence = marker
                elif self.fence == marker:
                    self.fence = None
                self.line_code = True
                return True, sent
            if self.fence is None:
                indent = ws.rsplit("\n", 1)[-1].replace("\t", "    ")
                is_marker = bool(LIST_MARKER_RE.match(chunk)) and not chunk.startswith("####")
                if STICKY_CODE_RE.match(chunk) and not chunk[0].isupper():
                    self.code_mode = True
                    return True, sent
                if (len(indent) >= 4 and not is_marker) or CODE_LINE_RE.match(chunk):
                    self.line_code = True
                self.list_start = is_marker
        if self.fence is not None or self.line_code:
            return True, sent
        protected = self.inline_code or self.dquote or self.squote
        if "`" in chunk:
            protected = True
            if chunk.count("`") % 2:
                self.inline_code = not self.inline_code
        if CODE_CHUNK_RE.search(chunk) and not WORD_RE.match(chunk):
            self.line_code = True
            return True, sent
        if '"' in chunk or "“" in chunk or "”" in chunk:
            for ch in chunk:
                if ch == '"':
                    self.dquote = not self.dquote
                    protected = True
                elif ch == "“":
                    self.dquote, protected = True, True
                elif ch == "”":
                    self.dquote, protected = False, True
        if chunk[:1] in "'‘" and not self.squote:
            self.squote = protected = True
        if self.squote and chunk[-1:] in "'’" and len(chunk) > 1:
            self.squote, protected = False, True
        return protected, sent
