#!/usr/bin/env python3
"""ref2man: config/examples/reference.yaml -> the manual page mqttflow.yaml(5).

The reference file is the one source of the configuration's documentation: it is a valid
config (a test checks it) whose comments say each key's default and rule. This script turns
it into a man page at build time, so the two cannot drift:

  - the comment block at the top becomes DESCRIPTION;
  - every key line (`key: value  # comment`), every commented-out key (`# key: value  #
    comment`: optional keys shown but not set) and every key of a flow mapping
    (`will: {topic: ..., qos: 1}`) becomes an entry under its section, named by its full
    path (mqtt_clients[].tls.ca); the comment lines below a key continue its text;
  - names the user chooses (callbacks and processing_chains entries) are shown as NAME.

  ref2man.py reference.yaml VERSION > mqttflow.yaml.5
  ref2man.py --keys reference.yaml     the documented key names, one per line (for the test
                                       that every key of the loader's tables is documented)
"""
import re
import sys

KEY = re.compile(r'^(- )?([A-Za-z_][A-Za-z0-9_]*):(?:\s+(.*))?$')
USER_NAMED = ("callbacks", "processing_chains")


def split_comment(rest):
    """'value  # comment' -> (value, comment), minding quotes."""
    quote = None
    for i, ch in enumerate(rest):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i + 1:].strip()
    return rest.strip(), ""


FLOW_TOKEN = re.compile(r'\s+|[{}\[\],]|([A-Za-z_][A-Za-z0-9_]*):\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|'
                        r'[^,{}\[\]]+)?|"(?:[^"\\]|\\.)*"|\'[^\']*\'|[^,{}\[\]]+')


def flow_keys(value):
    """The keys of a flow mapping {a: 1, b: {c: 2}} as (path "b.c", scalar value or None)."""
    keys, depth, path = [], 0, []
    for m in FLOW_TOKEN.finditer(value):
        tok = m.group(0)
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            path = path[:max(depth, 0)]
        elif m.group(1) and depth >= 1:
            path = path[:depth - 1] + [m.group(1)]
            v = m.group(2).strip() if m.group(2) else None
            keys.append((".".join(path), v))
    return keys


def add(entries, e):
    """Appends entry e, or merges it into an earlier one of the same path (a second list
    item shows the same keys again): its text is added, the first example is kept."""
    for old in entries:
        if old[1] == e[1]:
            old[3] += [t for t in e[3] if t not in old[3]]
            return old
    entries.append(e)
    return e


def parse(lines):
    """-> (description lines, entries [(section, path, value, text lines)])."""
    desc, entries = [], []
    i = 0
    while i < len(lines) and lines[i].startswith("#"):
        desc.append(lines[i][1:].strip())
        i += 1
    stack = []  # (indent, name)
    last = None
    for raw in lines[i:]:
        if not raw.strip():
            last = None
            continue
        indent = len(raw) - len(raw.lstrip())
        body = raw.strip()
        commented = False
        if body.startswith("#"):
            inner = body.lstrip("#")
            stripped = inner.strip()
            m = KEY.match(stripped)
            # "# key: value" right after the hash (one space) is an optional key; deeper
            # indented comment text continues the entry above
            if m and inner.startswith(" ") and not inner.startswith("  "):
                commented = True  # its column is the hash's
                body = stripped
            else:
                if last is not None and stripped:
                    last[3].append(stripped)
                continue
        m = KEY.match(body)
        if not m:
            # a list item without a key (a shorthand): its comment continues the entry above
            value, comment = split_comment(body.lstrip("- "))
            if last is not None:
                last[3].append(("also: " + value + (" (" + comment + ")" if comment else "")))
            continue
        dash, key, rest = m.group(1), m.group(2), m.group(3) or ""
        value, comment = split_comment(rest)
        if commented and key == "password" and rest.startswith("never"):
            value, comment = None, rest  # a refused key: documented, never an example
        col = indent + (2 if dash else 0)
        while stack and stack[-1][0] >= col:
            stack.pop()
        if dash and stack:  # a new list item: the list's name loses the last item's [step=]
            stack[-1] = (stack[-1][0], stack[-1][1].split("[")[0] + "[]")
        parent = [n for _, n in stack]
        if len(parent) == 1 and parent[0] in USER_NAMED:
            key_shown = "NAME"
        else:
            key_shown = key
        path = ".".join(parent + [key_shown])
        if dash and key == "step" and stack:
            # a chain step: its config keys are documented per kind
            kind = value.strip("\"'")
            path = ".".join(parent + ["step: " + kind])
            base = stack[-1][1].split("[")[0]
            stack[-1] = (stack[-1][0], base + "[step=" + kind + "]")
        section = parent[0].rstrip("[]") if parent else key
        entry = add(entries, [section, path, value, [comment] if comment else [], commented])
        last = entry
        for sub, v in flow_keys(value) if value and value.startswith("{") else []:
            add(entries, [section, path + "." + sub, v, [], commented])
        stack.append((col, key_shown))
    return desc, entries


def roff(s):
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return ("\\&" + s) if s.startswith((".", "'")) else s


def man(desc, entries, version):
    out = [
        '.TH MQTTFLOW.YAML 5 "" "mqttflow %s" "mqttflow manual"' % version,
        ".\\\" generated from config/examples/reference.yaml by scripts/ref2man.py: edit those",
        ".SH NAME",
        "mqttflow.yaml \\- configuration file of mqttflow",
        ".SH SYNOPSIS",
        ".B mqttflow check",
        ".I CONFIG",
        ".br",
        ".B mqttflow run",
        ".I CONFIG",
        ".SH DESCRIPTION",
    ]
    para = []
    for d in desc + [""]:
        if d:
            para.append(roff(d))
        elif para:
            out += [" ".join(para), ".PP"]
            para = []
    sections = []
    for e in entries:
        if e[0] not in sections:
            sections.append(e[0])
    for sec in sections:
        out.append(".SH " + roff(sec.upper()))
        for section, path, value, text, commented in entries:
            if section != sec:
                continue
            out += [".TP", ".B " + roff(path)]
            line = []
            if value is not None and value and not value.startswith("{"):
                line.append("Example: " + roff(value) + ("" if not commented else
                                                           " (optional; not set in the example)") + ".")
            elif commented and value is not None:
                line.append("Optional; not set in the example.")
            body = " ".join(t.lstrip("#").strip() for t in text if t)
            if body:
                line.append(roff(body))
            out.append(" ".join(line) if line else "(a section)")
    out += [
        ".SH FILES",
        ".TP",
        ".I /usr/share/mqttflow/examples/reference.yaml",
        "the annotated reference this page is made from (under the install prefix).",
        ".TP",
        ".I /usr/share/mqttflow/examples/config.yaml",
        "the example configuration, with its example callbacks.",
        ".SH SEE ALSO",
        ".BR mqttflow (1)",
    ]
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) == 3 and argv[1] == "--keys":
        _, entries = parse(open(argv[2], encoding="utf-8").read().splitlines())
        names = set()
        for e in entries:
            for part in e[1].split("."):
                names.add(re.sub(r"\[.*?\]|: .*", "", part))
        print("\n".join(sorted(names)))
        return 0
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    desc, entries = parse(open(argv[1], encoding="utf-8").read().splitlines())
    sys.stdout.write(man(desc, entries, argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
