"""An FCPXML document as elements with their exact character positions in the file's text.

The reader needs the element tree; the surgical writer needs to know where each element starts and
ends in the original text, so that it can insert its additions and leave every other byte alone.
One small tokenizer gives both (document order is the same for both, so an element's index is a
stable locator). It is lenient where Final Cut Pro's exports are not well-formed (a real export has an
attribute value pasted over by a path): the damaged start tag keeps the attributes that can be read,
and the damage is reported as one line naming the line number.
"""

from __future__ import annotations

import html
import re
import xml.parsers.expat
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"<!--.*?-->"
    r"|<!\[CDATA\[.*?\]\]>"
    r"|<\?.*?\?>"
    r"|<!DOCTYPE(?:[^\[>]|\[.*?\])*>"
    r"|</(?P<close>[^\s>]+)\s*>"
    r"|<(?P<open>[^\s/>!?]+)(?P<attrs>(?:\"[^\"]*\"|'[^']*'|[^'\">])*?)(?P<selfclose>/?)>",
    re.S,
)
_ATTR = re.compile(r"([^\s=/\"']+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


@dataclass(eq=False)
class Node:
    """One element: tag, attributes and where it sits in the text."""

    tag: str
    attrib: dict
    start: int                    # index of '<' of the start tag
    head_end: int                 # index just after the start tag's '>'
    self_closing: bool
    index: int                    # position in document order (0 = root)
    parent: "Node | None" = None
    children: list = field(default_factory=list)
    close_start: int | None = None  # index of '</' of the end tag
    end: int | None = None          # index just after the end tag
    text: str = ""                  # character data directly inside (titles, notes)
    damaged: str | None = None      # unreadable attribute text, when the start tag is not well-formed

    def get(self, key: str, default=None):
        return self.attrib.get(key, default)

    def __iter__(self):
        return iter(self.children)

    def find(self, tag: str) -> "Node | None":
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list:
        return [c for c in self.children if c.tag == tag]

    def iter(self, tag: str | None = None):
        if tag is None or self.tag == tag:
            yield self
        for c in self.children:
            yield from c.iter(tag)

    def line(self, text: str) -> int:
        return text.count("\n", 0, self.start) + 1


@dataclass
class Document:
    text: str
    root: Node
    nodes: list                       # every element in document order
    problems: list = field(default_factory=list)   # not-well-formed findings, one line each


def well_formed_error(text: str) -> str | None:
    """expat's verdict on the text: None, or 'line L, column C: message'."""
    p = xml.parsers.expat.ParserCreate()
    try:
        p.Parse(text.encode("utf-8"), True)
    except xml.parsers.expat.ExpatError as exc:
        return f"line {exc.lineno}, column {exc.offset + 1}: {xml.parsers.expat.ErrorString(exc.code)}"
    return None


def parse(text: str) -> Document:
    """Elements with positions; raises ValueError when the text holds no element at all."""
    nodes: list[Node] = []
    stack: list[Node] = []
    problems: list[str] = []
    root: Node | None = None
    last = 0
    for m in _TOKEN.finditer(text):
        if stack and m.start() > last:
            stack[-1].text += html.unescape(text[last:m.start()]) if "<" not in text[last:m.start()] else ""
        last = m.end()
        if m.group("open"):
            attr_text = m.group("attrs")
            attrib = {}
            for a in _ATTR.finditer(attr_text):
                attrib[a.group(1)] = html.unescape(a.group(2) if a.group(2) is not None else a.group(3))
            leftover = _ATTR.sub("", attr_text).strip()
            node = Node(m.group("open"), attrib, m.start(), m.end(), bool(m.group("selfclose")), len(nodes),
                        parent=stack[-1] if stack else None)
            if leftover:
                node.damaged = leftover[:120]
                problems.append(f"line {node.line(text)}: <{node.tag}> has unreadable attribute text "
                                f"'{node.damaged}'")
            nodes.append(node)
            if node.parent is not None:
                node.parent.children.append(node)
            elif root is None:
                root = node
            if node.self_closing:
                node.end = m.end()
            else:
                stack.append(node)
        elif m.group("close"):
            tag = m.group("close")
            if stack and stack[-1].tag == tag:
                node = stack.pop()
                node.close_start, node.end = m.start(), m.end()
            elif any(n.tag == tag for n in stack):
                while stack and stack[-1].tag != tag:  # unclosed elements: close them here
                    n = stack.pop()
                    problems.append(f"line {n.line(text)}: <{n.tag}> is never closed")
                    n.close_start = n.end = m.start()
                node = stack.pop()
                node.close_start, node.end = m.start(), m.end()
            else:
                problems.append(f"line {text.count(chr(10), 0, m.start()) + 1}: stray </{tag}>")
    if root is None:
        raise ValueError("no XML element found")
    for n in stack:
        problems.append(f"line {n.line(text)}: <{n.tag}> is never closed")
        n.close_start = n.end = len(text)
    return Document(text, root, nodes, problems)
