"""Generated mutants of a C file: plausible one-place mistakes, each a patch.

An operator set of our own, applied to code only (not to comments, strings
or preprocessor lines), line by line as kernel style writes C:

  negate-cond  if (X) / while (X)          -> if (!(X))
  relational   == != < <= > >=              -> the opposite; and < <-> <=, > <-> >=
  logical      && ||                        -> the other
  arithmetic   a + b, a - b, a * b, a / b   -> + <-> -, * <-> /
  bound        a literal in a comparison    -> one more, one less
  errno        -EXXX                        -> another errno
  delete       a call or assignment statement on one line -> removed
  pair         X_lock(A) ... X_unlock(A), X_get(A) ... X_put(A) in one
               function                     -> both removed

A mutant is known by operator, line and place, so an id names the same
mutant in every run on the same file; a seeded sample keeps a run short.
"""

from __future__ import annotations

import difflib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

ERRNO_SWAP = {"-EINVAL": "-EIO", "-ENOMEM": "-EINVAL", "-EIO": "-EINVAL"}
RELATIONAL = {"==": ("!=",), "!=": ("==",), "<": (">=", "<="), "<=": (">", "<"),
              ">": ("<=", ">="), ">=": ("<", ">")}
# Ids name operators in words: they become file and directory names.
OP_NAMES = {"==": "eq", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
ARITHMETIC = {" + ": " - ", " - ": " + ", " * ": " / ", " / ": " * "}
TYPE_WORDS = {"int", "unsigned", "long", "char", "short", "bool", "void", "struct", "const",
              "static", "u8", "u16", "u32", "u64", "s32", "s64", "size_t", "ssize_t",
              "loff_t", "enum", "union", "return", "goto", "break", "continue", "case",
              "default", "else", "do"}
CALL_STMT = re.compile(r"^(?:\w+(?:->|\.))*\w+\s*\(.*\);$")
ASSIGN_STMT = re.compile(r"^[\w>.\-\[\]*&()]+ (?:=|\+=|-=|\|=|&=) [^=].*;$")
LITERAL = re.compile(r"(?<![\w.])(\d+)(?![\w.])")
ERRNO = re.compile(r"-E[A-Z]+\b")
PAIR = re.compile(r"^(\w*?)_?(lock|get)\((.*)\);$")


@dataclass(frozen=True)
class Mutant:
    id: str
    operator: str
    line: int               # 1-based, of the first changed line
    description: str
    lines: tuple[tuple[int, str | None], ...]   # (0-based index, new text or None to drop)

    def apply(self, source: list[str]) -> list[str]:
        changed = dict(self.lines)
        out = []
        for index, text in enumerate(source):
            if index not in changed:
                out.append(text)
            elif changed[index] is not None:
                out.append(str(changed[index]))
        return out

    def diff(self, path: str, source: list[str]) -> str:
        """A unified diff (a/ and b/ prefixes) of the mutant against source."""
        mutated = self.apply(source)
        return "".join(difflib.unified_diff(
            [f"{ln}\n" for ln in source], [f"{ln}\n" for ln in mutated],
            fromfile=f"a/{path}", tofile=f"b/{path}", n=3))


def code_mask(lines: list[str]) -> list[str]:
    """Each line with comments, string and character literals blanked (same length),
    and preprocessor lines blanked whole: what is left is code that may be mutated."""
    masked, in_comment, in_macro = [], False, False
    for line in lines:
        if in_macro or line.lstrip().startswith("#"):
            in_macro = line.rstrip().endswith("\\")
            masked.append(" " * len(line))
            continue
        out, i = [], 0
        while i < len(line):
            if in_comment:
                end = line.find("*/", i)
                stop = len(line) if end < 0 else end + 2
                out.append(" " * (stop - i))
                in_comment, i = end < 0, stop
            elif line.startswith("/*", i):
                in_comment = True
            elif line.startswith("//", i):
                out.append(" " * (len(line) - i))
                i = len(line)
            elif line[i] in "\"'":
                quote, j = line[i], i + 1
                while j < len(line) and line[j] != quote:
                    j += 2 if line[j] == "\\" else 1
                out.append(" " * (min(j + 1, len(line)) - i))
                i = j + 1
            else:
                out.append(line[i])
                i += 1
        masked.append("".join(out))
    return masked


def _finds(text: str, token: str) -> Iterator[int]:
    start = text.find(token)
    while start >= 0:
        yield start
        start = text.find(token, start + 1)


def _relational_at(code: str) -> Iterator[tuple[int, str]]:
    # Not part of a shift (<<, >>=), an arrow (->) or another operator.
    for match in re.finditer(r"==|!=|(?<![<>])<=|(?<![<>])>=|(?<![<\-])<(?![<=])"
                             r"|(?<![>\-])>(?![>=])", code):
        yield match.start(), match.group()


def _one_line(index: int, op: str, col: int, desc: str, new: str) -> Mutant:
    return Mutant(f"{op}-{index + 1}-{col}", op, index + 1, desc, ((index, new),))


def _close_paren(code: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(code)):
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        if depth == 0:
            return i
    return -1


def _line_mutants(index: int, text: str, code: str, starts: bool) -> Iterator[Mutant]:
    """starts: the line begins a statement (the code before it ended one)."""
    stripped = code.strip()
    for match in re.finditer(r"\b(if|while) \(", code):
        open_at = match.end() - 1
        close = _close_paren(code, open_at)
        if close > 0:
            new = f"{text[:open_at + 1]}!({text[open_at + 1:close]}){text[close:]}"
            yield _one_line(index, "negate-cond", match.start(),
                            f"{match.group(1)} condition negated", new)
    compares = False
    for col, op in _relational_at(code):
        compares = True
        for new_op in RELATIONAL[op]:
            new = text[:col] + new_op + text[col + len(op):]
            yield Mutant(f"relational-{index + 1}-{col}-{OP_NAMES[new_op]}", "relational",
                         index + 1,
                         f"{op} -> {new_op}", ((index, new),))
    for token, other in (("&&", "||"), ("||", "&&")):
        for col in _finds(code, token):
            yield _one_line(index, "logical", col, f"{token} -> {other}",
                            text[:col] + other + text[col + 2:])
    for token, other in ARITHMETIC.items():
        for col in _finds(code, token):
            yield _one_line(index, "arithmetic", col, f"{token.strip()} -> "
                            f"{other.strip()}", text[:col] + other + text[col + 3:])
    if compares:
        for match in LITERAL.finditer(code):
            value = int(match.group(1))
            for delta in (1, -1) if value > 0 else (1,):
                new = f"{text[:match.start()]}{value + delta}{text[match.end():]}"
                yield Mutant(f"bound-{index + 1}-{match.start()}-{delta:+d}", "bound",
                             index + 1, f"{value} -> {value + delta}", ((index, new),))
    for match in ERRNO.finditer(code):
        other = ERRNO_SWAP.get(match.group(), "-EINVAL")
        yield _one_line(index, "errno", match.start(), f"{match.group()} -> {other}",
                        text[:match.start()] + other + text[match.end():])
    first = re.split(r"\W", stripped, maxsplit=1)[0]
    if starts and first not in TYPE_WORDS and (CALL_STMT.match(stripped)
                                               or ASSIGN_STMT.match(stripped)):
        yield Mutant(f"delete-{index + 1}", "delete", index + 1, f"deleted: {text.strip()}",
                     ((index, None),))


def _functions(code: list[str]) -> Iterator[range]:
    """Line ranges of function bodies (kernel style: braces in column 0)."""
    start = None
    for index, line in enumerate(code):
        if line.startswith("{"):
            start = index
        elif line.startswith("}") and start is not None:
            yield range(start, index + 1)
            start = None


def _pair_mutants(code: list[str]) -> Iterator[Mutant]:
    for body in _functions(code):
        for i in body:
            match = PAIR.match(code[i].strip())
            if not match:
                continue
            prefix, kind, arg = match.groups()
            undo = {"lock": "unlock", "get": "put"}[kind]
            closing = f"{prefix}_{undo}({arg});" if prefix else f"{undo}({arg});"
            end = next((j for j in range(i + 1, body.stop) if code[j].strip() == closing), None)
            if end is not None:
                yield Mutant(f"pair-{i + 1}-{end + 1}", "pair", i + 1,
                             f"dropped {code[i].strip()} and {closing} (line {end + 1})",
                             ((i, None), (end, None)))


def generate(source: list[str]) -> list[Mutant]:
    """Every mutant of a file's lines (without their newlines), in file order."""
    code = code_mask(source)
    found: list[Mutant] = []
    starts = True
    for index, (text, masked) in enumerate(zip(source, code, strict=True)):
        if masked.strip():
            found += _line_mutants(index, text, masked, starts)
            starts = masked.rstrip()[-1] in ";{}:"
    found += _pair_mutants(code)
    return sorted(found, key=lambda m: (m.line, m.id))


def sample(mutants: list[Mutant], count: int | None, seed: int) -> list[Mutant]:
    """count mutants picked with seed (all of them when count is None), in file order."""
    if count is None or count >= len(mutants):
        return list(mutants)
    picked = random.Random(seed).sample(range(len(mutants)), count)
    return [mutants[i] for i in sorted(picked)]
