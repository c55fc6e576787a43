#!/usr/bin/env python3
"""Checks every relative Markdown link in README.md and docs/*.md: the target
file exists and, for `path#anchor` or `#anchor`, the anchor is one of the
target's headings as GitHub slugs them (lowercase; punctuation other than
`-` and `_` dropped; spaces to `-`; a repeated slug gets -1, -2, ...).
Usage: python3 docs/check-links.py [--allow-missing PATH ...]  (run from the repository root)
Exit 1 and a line per broken link when any is broken."""
import glob, os, re, sys

def slugs(path):
    out, seen, fence = set(), {}, False
    for line in open(path, encoding='utf-8'):
        if line.lstrip().startswith('```'):
            fence = not fence
            continue
        m = re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
        if fence or not m:
            continue
        text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', m.group(1))
        s = re.sub(r'[^\w\- ]', '', text.lower()).replace(' ', '-')
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f'{s}-{n}')
    return out

def links(path):
    fence = False
    for no, line in enumerate(open(path, encoding='utf-8'), 1):
        if line.lstrip().startswith('```'):
            fence = not fence
            continue
        if fence:
            continue
        line = re.sub(r'`[^`]*`', '', line)
        for target in re.findall(r'\]\(([^)\s]+)\)', line):
            yield no, target

allow = set(sys.argv[sys.argv.index('--allow-missing') + 1:]) if '--allow-missing' in sys.argv else set()
bad = 0
for md in ['README.md'] + sorted(glob.glob('docs/*.md')):
    for no, target in links(md):
        if re.match(r'^[a-z]+:', target):
            continue
        path, _, anchor = target.partition('#')
        full = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
        if not os.path.exists(full):
            if full in allow:
                print(f'{md}:{no}: {target}: missing, allowed')
                continue
            print(f'{md}:{no}: {target}: no such file'); bad += 1
        elif anchor and (not full.endswith('.md') or anchor not in slugs(full)):
            print(f'{md}:{no}: {target}: no such heading'); bad += 1
sys.exit(1 if bad else 0)
