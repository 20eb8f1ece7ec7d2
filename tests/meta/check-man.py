#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages are the one place the contract is written; check that they
stay true to the library.

usage: check-man.py SRCROOT [--plant-error FUNC CODE]

Fails (exit 1, one line per finding) when
  - an exported symbol (src/wpool.sym) has no page man/<symbol>.3, or a page
    documents a function that is not exported;
  - man/meson.build does not install exactly the pages in man/;
  - a page lacks one of NAME, SYNOPSIS, DESCRIPTION, RETURN VALUE, ERRORS,
    THREADS, SEE ALSO (in that order), or its NAME line does not name it;
  - a page's SYNOPSIS prototype differs from the declaration in
    include/wpool.h (whitespace aside);
  - a page's ERRORS section documents a code the function cannot return, or
    leaves out one it can (NOT_RETURNED lists the exceptions, with reasons):
    a code counts as returnable when it is written (E...) in the body of the
    function or of any function of src/ it calls or passes by pointer, other
    than as the operand of an == or != test,
    directly or not, or comes from a system call it reaches (SYSTEM_ERRORS);
  - docs/reference.md or wpool(7)'s FUNCTIONS section misses a page.
--plant-error adds CODE to FUNC's documented errors in memory: the meson test
'man-pages-planted' runs it expecting failure, so this check can fail.
SYSTEM_ERRORS and NOT_RETURNED are the hand-kept parts; everything else is
read from the tree.
"""
import os
import re
import sys

SECTIONS = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'RETURN VALUE', 'ERRORS', 'THREADS', 'SEE ALSO']
# Errors that come from the system rather than from a literal in src/: the
# function in src/ that calls these may return what they set.
SYSTEM_ERRORS = {
    'pthread_create': {'EAGAIN', 'EPERM', 'EINVAL'},
    'eventfd': {'EMFILE', 'ENFILE', 'ENOMEM', 'ENODEV', 'EINVAL'},
    'setpriority': {'EPERM', 'EACCES', 'EINVAL', 'ESRCH'},
}
# Codes that a function reaches in its code but never returns, and why.
# Every other reachable code must be documented in the function's ERRORS.
NOT_RETURNED = {
    ('wpool_cancel', 'ECANCELED'): 'the status of the completion it posts',
    ('wpool_cancel_all', 'ECANCELED'): 'the status of the completions it posts',
    ('wpool_token_cancel', 'ECANCELED'): 'the status of the completions it posts',
    ('wpool_token_cancel', 'EBUSY'): 'a task another canceller won is skipped',
    ('wpool_group_cancel', 'ECANCELED'): 'the status of the completions it posts',
    ('wpool_group_cancel', 'EBUSY'): 'a task another canceller won is skipped',
    ('wpool_close', 'ETIMEDOUT'): 'it is wpool_shutdown without a time limit',
    ('wpool_destroy', 'ETIMEDOUT'): 'it joins without a time limit',
    ('wpool_create', 'ECANCELED'): 'a completion status of the worker loop it starts',
    ('wpool_create', 'ETIMEDOUT'): 'a completion status of the worker loop it starts',
    ('wpool_create', 'ESRCH'): 'setpriority on the calling worker itself',
    ('wpool_create', 'ESHUTDOWN'): 'a closed ring seen by a worker moving overflow tasks',
    ('wpool_port_create', 'ENODEV'): 'eventfd(2) fails so only without anonymous inodes',
    ('wpool_port_wait', 'EINTR'): 'a signal restarts the wait',
    ('wpool_port_settle', 'EINTR'): 'a signal restarts the wait',
    ('wpool_submit_wait', 'EAGAIN'): 'it waits for room instead',
}
# Ending a strand's head hands the strand's next task to the workers: a full
# or closed ring sends it to the lane's overflow instead (wp_place_released),
# and a canceller that finds a task moved on from its strand looks again.
for f in ('wpool_cancel', 'wpool_cancel_all', 'wpool_group_cancel', 'wpool_token_cancel',
          'wpool_task_complete'):
    NOT_RETURNED[(f, 'EAGAIN')] = 'a strand\'s next task meets a full ring: the overflow takes it'
    NOT_RETURNED[(f, 'ESHUTDOWN')] = 'a strand\'s next task meets a closed ring: the overflow takes it'
C_KEYWORDS = {'if', 'for', 'while', 'switch', 'return', 'sizeof', 'do', 'case'}


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def exported(root):
    text = re.sub(r'/\*.*?\*/', '', read(os.path.join(root, 'src/wpool.sym')), flags=re.S)
    return set(re.findall(r'\b(wpool_\w+);', text))


def functions(root):
    """name -> body text, for every function defined in src/*.c"""
    defs = {}
    src = os.path.join(root, 'src')
    for name in sorted(os.listdir(src)):
        if not name.endswith('.c'):
            continue
        text = read(os.path.join(src, name))
        # A definition: a line at column 0 naming a function, then its body
        # from a '{' at column 0 to the next '}' at column 0.
        for m in re.finditer(r'^[A-Za-z_][^;{}()\n]*?\b(\w+)\([^;{}]*?\)\s*\n\{\n(.*?)^\}', text,
                             re.S | re.M):
            defs[m.group(1)] = defs.get(m.group(1), '') + m.group(2)
    return defs


def returnable(defs):
    """function -> set of error codes it may return (transitively)"""
    direct, calls = {}, {}
    for fn, body in defs.items():
        body = re.sub(r'/\*.*?\*/', '', body, flags=re.S)
        # A code the body only tests for (== or != a status) is not one it
        # produces.
        produced = re.sub(r'[=!]=\s*-?E[A-Z]{2,}\b', '', body)
        codes = set(re.findall(r'\b(E[A-Z]{2,})\b', produced))
        # A call, or a function passed by pointer (a thread's start routine).
        callees = set(re.findall(r'\b([A-Za-z_]\w*)\b', body)) - C_KEYWORDS
        for sysfn, errs in SYSTEM_ERRORS.items():
            if sysfn in callees:
                codes |= errs
        direct[fn] = codes
        calls[fn] = callees & set(defs)
    result = {}
    for fn in defs:
        seen, todo, codes = {fn}, [fn], set()
        while todo:
            f = todo.pop()
            codes |= direct[f]
            for c in calls[f] - seen:
                seen.add(c)
                todo.append(c)
        result[fn] = codes
    return result


def sections(page):
    """section title -> roff text"""
    out, cur = {}, None
    order = []
    for line in page.split('\n'):
        m = re.match(r'^\.SH\s+"?([^"]+?)"?\s*$', line)
        if m:
            cur = m.group(1)
            order.append(cur)
            out[cur] = ''
        elif cur:
            out[cur] += line + '\n'
    return order, out


def plain(roff):
    """roff to text, enough for comparing prototypes and finding codes"""
    t = re.sub(r'\\f\[[A-Z]*\]|\\f[BIRP]', '', roff)
    t = t.replace('\\-', '-').replace('\\[aq]', "'").replace('\\[dq]', '"')
    t = t.replace('\\[rs]', '\\').replace('\\ ', ' ').replace('\\&', '')
    t = re.sub(r'^\.(IP|PP|TP|nf|fi|RS|RE|EX|EE|hy|nh|ad|na|LP|P)\b.*$', '', t, flags=re.M)
    return t


def norm(decl):
    decl = re.sub(r'\s+', ' ', decl).strip()
    decl = re.sub(r'\s*([(),*;])\s*', r'\1', decl)
    return decl


def header_decls(root):
    text = re.sub(r'/\*.*?\*/', '', read(os.path.join(root, 'include/wpool.h')), flags=re.S)
    decls = {}
    for m in re.finditer(r'WPOOL_API\s+([^;]*?\b(wpool_\w+)\s*\([^;]*\));', text):
        decls[m.group(2)] = norm(m.group(1))
    return decls


def main():
    root = sys.argv[1]
    planted = None
    if len(sys.argv) == 5 and sys.argv[2] == '--plant-error':
        planted = (sys.argv[3], sys.argv[4])
    bad = []
    syms = exported(root)
    mandir = os.path.join(root, 'man')
    pages = {f[:-2] for f in os.listdir(mandir) if f.endswith('.3')}
    for s in sorted(syms - pages):
        bad.append('%s is exported but has no page man/%s.3' % (s, s))
    for p in sorted(pages - syms):
        bad.append('man/%s.3 documents a function the library does not export' % p)
    installed = set(re.findall(r"'([\w.]+\.[37])'", read(os.path.join(mandir, 'meson.build'))))
    present = {f for f in os.listdir(mandir) if re.match(r'.*\.[37]$', f)}
    for f in sorted(present ^ installed):
        bad.append('man/meson.build and man/ disagree about %s' % f)
    decls = header_decls(root)
    codes = returnable(functions(root))
    reference = read(os.path.join(root, 'docs/reference.md'))
    _, seven = sections(read(os.path.join(mandir, 'wpool.7')))
    for p in sorted(pages & syms):
        order, sec = sections(read(os.path.join(mandir, p + '.3')))
        if order != SECTIONS:
            bad.append('%s(3): sections %s, expected %s' % (p, order, SECTIONS))
            continue
        if not re.match(r'\s*(\.PP\s*)?%s\s+\\?-' % re.escape(p).replace('_', r'\\?_'),
                        sec['NAME'].replace('\\_', '_')):
            bad.append('%s(3): NAME does not start with the function name' % p)
        syn = norm(plain(sec['SYNOPSIS']))
        if p not in decls:
            bad.append('%s(3): no WPOOL_API declaration in include/wpool.h' % p)
        elif decls[p] not in syn:
            bad.append('%s(3): SYNOPSIS does not show the header declaration %r' % (p, decls[p]))
        documented = set(re.findall(r'-(E[A-Z]{2,})\b', plain(sec['ERRORS'])))
        if planted and planted[0] == p:
            documented.add(planted[1])
        if p not in codes:
            bad.append('%s(3): no definition of %s in src/' % (p, p))
        else:
            for c in sorted(documented - codes[p]):
                bad.append('%s(3) documents -%s, which %s cannot return' % (p, c, p))
            for c in sorted(codes[p] - documented):
                if (p, c) not in NOT_RETURNED:
                    bad.append('%s may return -%s (its code reaches it), but %s(3) does not '
                               'document it' % (p, c, p))
        if not re.search(r'\b%s\b' % p, reference):
            bad.append('docs/reference.md does not list %s' % p)
        if p.replace('_', '\\_') not in seven.get('FUNCTIONS', '') and p not in seven.get('FUNCTIONS', ''):
            bad.append('wpool(7) FUNCTIONS does not list %s' % p)
    for b in bad:
        print('FAIL:', b)
    print('%d pages, %d exported functions, %d findings' % (len(pages), len(syms), len(bad)))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
