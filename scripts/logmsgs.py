#!/usr/bin/env python3
"""logmsgs: every warning and error mqttflow can log, from its sources, against the
troubleshooting guide (docs/troubleshooting.md).

A log call is log_warn(COMP, FORMAT, ...), log_error(COMP, FORMAT, ...) or
log_msg(MF_LOG_WARNING|MF_LOG_ERROR, COMP, FORMAT, ...) in a .c file of the program (not the
tests). FORMAT is read the way the compiler reads it: adjacent string literals (over any number
of lines, with comments between) are joined, C escapes undone, and inttypes macros (PRIu64, ...)
are conversions. A message is compared by its text with every conversion (%s, %d, %zu, %.*s,
%" PRIu64 ", ...) replaced by one placeholder and runs of white space made one, so the guide
may write any conversion and wrap nothing.

The guide lists a message as a list item ("- `" at the start of a line, continued on indented
lines) whose code spans before the first " — " are messages:
  - `WARN` `sched_setaffinity(pid %d, cpu %d) for %s: %s; running unpinned` — meaning, action
Several messages may share one item. Level spans (`WARN`, `ERROR`) are skipped.

  logmsgs.py [--root DIR] list         every message: file:line LEVEL component: format
  logmsgs.py check docs/troubleshooting.md
                                       exit 1 naming each message the guide lacks (and
                                       listing, without failing, guide entries no source has)
"""
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
NOT_PROGRAM = ("tests", "scripts", "docs", "config/examples")  # and build*/, hidden folders


def source_files():
    """Every .c file of the program, in any folder (a new module or stage is picked up)."""
    out = []
    for d, subdirs, files in os.walk(ROOT):
        rel = os.path.relpath(d, ROOT)
        subdirs[:] = sorted(s for s in subdirs if not s.startswith((".", "build"))
                            and os.path.join(rel, s).lstrip("./") not in NOT_PROGRAM)
        out += [os.path.join(d, f) for f in sorted(files) if f.endswith(".c")]
    return out
CALL = re.compile(r"\blog_(warn|error)\s*\(|\blog_msg\s*\(\s*MF_LOG_(WARNING|ERROR)\s*,")
CONV = re.compile(r"%[-+ #0']*(\*|[0-9]+)?(\.(\*|[0-9]+))?(hh|h|ll|l|z|j|t|L)?[diouxXeEfgGaAcspn]"
                  r"|%(\*|[0-9]+)?(\.(\*|[0-9]+))?\x00")
ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "0": "\0"}


def tokens_of_args(src, i):
    """From just after the call's '(' (index i): the raw text of each argument, split on
    top-level commas, until the matching ')'. Strings, chars and comments are respected."""
    args, cur, depth = [], [], 0
    while i < len(src):
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < len(src) and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            cur.append(src[i:j + 1])
            i = j + 1
            continue
        if src.startswith("/*", i):
            i = src.index("*/", i) + 2
            continue
        if src.startswith("//", i):
            i = src.index("\n", i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(c)
        i += 1
    return args


def literal_text(expr):
    """The string a C expression of adjacent literals and PRI macros denotes, or None."""
    out, pos = [], 0
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(PRI[diouxX](8|16|32|64|MAX|PTR))|(\S)', expr):
        if m.group(4):
            return None  # something else than literals: not a constant format
        if m.group(2):
            out.append("\0")  # finishes a conversion: "%" PRIu64
            continue
        s = m.group(1)
        s = re.sub(r"\\(x[0-9a-fA-F]{2}|.)",
                   lambda e: chr(int(e.group(1)[1:], 16)) if e.group(1)[0] == "x"
                   else ESCAPES.get(e.group(1), e.group(1)), s)
        out.append(s)
        pos = m.end()
    return "".join(out) if out else None


def normalize(fmt):
    fmt = CONV.sub("\x01", fmt.replace("%%", "%"))
    fmt = fmt.replace("\0", "")
    return re.sub(r"\s+", " ", fmt).strip()


def shown(fmt):
    """The format as the guide writes it (inttypes conversions as %llu)."""
    return re.sub(r"%([-+ #0]*[0-9*]*(\.[0-9*]+)?)\x00", r"%\1llu", fmt).replace("\n", " ").strip()


def blank_comments(src):
    """src with every comment replaced by spaces and its newlines (string and character
    literals respected), so a call named in a comment is not taken for one and line
    numbers stay right."""
    def blank(m):
        t = m.group(0)
        return t if t[0] in "\"'" else re.sub(r"[^\n]", " ", t)
    return re.sub(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|/\*.*?\*/|//[^\n]*', blank, src,
                  flags=re.S)


def messages():
    found = []
    for path in source_files():
        src = blank_comments(open(path, encoding="utf-8").read())
        comps = {}
        for h in glob.glob(os.path.join(os.path.dirname(path), "*.h")):  # a folder's COMP
            comps.update(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', open(h).read()))
        comps.update(re.findall(r'#define\s+(\w+)\s+"([^"]*)"', src))
        comps.update(re.findall(r'static const char (\w+)\[\] = "([^"]*)"', src))
        for var in ("comp", "t->comp"):  # a caller's component (common/mqtt_tls.c)
            comps.setdefault(var, "ingress|relay")
        rel = os.path.relpath(path, ROOT)
        for m in CALL.finditer(src):
            level = "WARN" if (m.group(1) == "warn" or m.group(2) == "WARNING") else "ERROR"
            args = tokens_of_args(src, m.end())
            # log_msg's level was consumed by the pattern: its args start at COMP too
            if len(args) < 2:
                continue
            comp = literal_text(args[0]) or comps.get(args[0], args[0])
            fmt = literal_text(args[1])
            line = src.count("\n", 0, m.start()) + 1
            if fmt is None:
                print("%s:%d: the format is not a literal: %s" % (rel, line, args[1]),
                      file=sys.stderr)
                continue
            found.append((rel, line, level, comp, fmt))
    return found


def guide_entries(path):
    """(line, span) of every message of the guide: the code spans of a list item (its first
    line "- `" and its indented continuation lines) before the first " — "."""
    entries, item, start = [], None, 0

    def flush():
        if item is not None:
            head = " ".join(item).split(" — ", 1)[0]
            for span in re.findall(r"`([^`]+)`", head):
                if span not in ("WARN", "ERROR"):
                    entries.append((start, span))

    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if line.startswith("- `"):
            flush()
            item, start = [line], n
        elif item is not None and line.startswith("  ") and line.strip():
            item.append(line.strip())
        else:
            flush()
            item = None
    flush()
    return entries


def main(argv):
    global ROOT
    if len(argv) >= 3 and argv[1] == "--root":  # tests of the extractor on other sources
        ROOT = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) == 2 and argv[1] == "list":
        for rel, line, level, comp, fmt in messages():
            print("%s:%d %s %s: %s" % (rel, line, level, comp, shown(fmt)))
        return 0
    if len(argv) != 3 or argv[1] != "check":
        sys.stderr.write(__doc__)
        return 2
    msgs = messages()
    documented = {}
    for n, span in guide_entries(argv[2]):
        documented.setdefault(normalize(span), n)
    missing = [m for m in msgs if normalize(m[4]) not in documented]
    in_sources = {normalize(m[4]) for m in msgs}
    stale = [(n, s) for s, n in documented.items() if s not in in_sources]
    for n, s in sorted(stale):
        print("note: %s:%d documents a message no source logs any more: %s"
              % (argv[2], n, s.replace("\x01", "%s")))
    for rel, line, level, comp, fmt in missing:
        print("MISSING from %s: %s:%d %s %s:\n  - `%s` `%s` — (what it means; what to do)"
              % (argv[2], rel, line, level, comp, level, shown(fmt)))
    print("%d log messages in the sources, %d missing from %s, %d documented entries"
          % (len(msgs), len(missing), argv[2], len(documented)))
    if len(msgs) < 50:
        print("found only %d log calls: the extraction is broken" % len(msgs), file=sys.stderr)
        return 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
