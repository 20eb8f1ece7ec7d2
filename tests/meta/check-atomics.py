#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every non-relaxed atomic in src/ and node/src/ (the Node kit) says its memory order and what it pairs
with, in a comment on its line or in the comment just above its statement
(within 8 lines, nothing but code of the same statement or other commented
atomics between). A comment counts when it names an order (acquire, release,
seq_cst, acq_rel) or a pairing (pairs, Dekker). The library has one atomic
dialect: no __atomic_* builtins.

usage: check-atomics.py SRCROOT [--plant]
--plant adds one uncommented acquire load to what is checked: the meson test
'atomics-planted' expects that run to fail, so this check can fail."""
import glob
import os
import re
import sys

ORDER = re.compile(r'memory_order_(acquire|release|seq_cst|acq_rel)')
SAYS = re.compile(r'acquire|release|seq_cst|acq_rel|pairs|dekker', re.I)


def main():
    root = sys.argv[1]
    bad = []
    sources = [(os.path.relpath(p, root), open(p, encoding='utf-8').read())
               for d in ('src', os.path.join('node', 'src'))
               for p in sorted(glob.glob(os.path.join(root, d, '*.[ch]')))]
    if '--plant' in sys.argv[2:]:
        sources.append(('planted.c', 'int f(void)\n{\n    x = 1;\n'
                        '    return atomic_load_explicit(&a, memory_order_acquire);\n}\n'))
    for rel, text in sources:
        lines = text.split('\n')
        for i, line in enumerate(lines):
            if '__atomic_' in line and not line.lstrip().startswith(('/*', '*')):
                bad.append('%s:%d: __atomic builtin (use C11 atomic_*_explicit)' % (rel, i + 1))
            if not ORDER.search(line):
                continue
            ok = False
            for j in range(i, max(-1, i - 9), -1):
                if '/*' in lines[j] or '*/' in lines[j] or lines[j].lstrip().startswith('*'):
                    # the comment block this line belongs to, or just above it
                    k = j
                    text = []
                    while k >= 0 and ('/*' not in lines[k] or k == j and '*/' in lines[k] and '/*' not in lines[k]):
                        text.append(lines[k])
                        k -= 1
                    if k >= 0:
                        text.append(lines[k])
                    if SAYS.search('\n'.join(text)):
                        ok = True
                    break
            if not ok:
                bad.append('%s:%d: non-relaxed atomic without a comment saying its order and '
                           'partner: %s' % (rel, i + 1, line.strip()))
    for b in bad:
        print('FAIL:', b)
    print('%d findings' % len(bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
