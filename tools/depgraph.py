#!/usr/bin/env python3
"""The module graph of the C sources, from #include lines and from the objects.

    tools/depgraph.py [--check] [--build DIR] [--level include|link|both] [-I DIR]... [ROOT...]

A module is a .c file and the .h file of the same path stem (src/nn/engine.c
and src/nn/engine.h: module nn/engine, named as it is #included), or either
alone. Every module under the ROOTs (default: src) is listed, one line each,
sorted, with the modules it depends on:

  include level  A -> B when A.c or A.h has #include "B.h". A quoted name is
                 looked up as the compiler does: beside the including file,
                 then in each -I folder (default: include, src). Headers found
                 outside those folders (build/gen's protobuf code) and <...>
                 includes are left out.
  link level     A -> B when A's object (BUILD/<path of A.c>.o, default BUILD
                 build) has an undefined symbol that B's object defines (nm).
                 Only the ROOTs' objects are read, so `depgraph.py src/server`
                 leaves out its links into src/nn. A module without a .c has
                 no object; a missing object is named (run make first).

--check exits 1 when either graph has a cycle, naming each one: the modules
of every strongly connected component and the edges among them, which are
what would have to go. Without --check the exit status is 0 (2 for bad
arguments). Python 3 standard library and nm (binutils).
"""
import argparse
import os
import re
import signal
import subprocess
import sys

INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)
COMMENT_RE = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def module_name(path, idirs):
    """The name a header or source is #included by: its path stem relative to
    the -I folder that holds it (the first, so "src/server/api.c" in -I src is
    "server/api"), else relative to the repository."""
    stem = os.path.splitext(os.path.normpath(path))[0]
    for d in idirs:
        d = os.path.normpath(d)
        if stem.startswith(d + os.sep):
            return stem[len(d) + 1:]
    return stem


def find_sources(roots):
    files = []
    for root in roots:
        if os.path.isfile(root):
            files.append(os.path.normpath(root))
            continue
        for dirpath, dirnames, names in os.walk(root):
            dirnames.sort()
            files += [os.path.normpath(os.path.join(dirpath, n)) for n in sorted(names)
                      if n.endswith((".c", ".h"))]
    return files


def resolve(header, including_file, idirs):
    for d in [os.path.dirname(including_file)] + idirs:
        p = os.path.normpath(os.path.join(d, header))
        if os.path.isfile(p):
            return p
    return None


def include_graph(files, idirs, why):
    """{module: set of modules} and {module: [its files]}, following includes
    into headers outside the roots (which become modules too). why[(A, B)]
    gets the include lines behind each edge."""
    graph, members = {}, {}
    todo = list(files)
    seen = set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        m = module_name(f, idirs)
        members.setdefault(m, []).append(f)
        deps = graph.setdefault(m, set())
        with open(f, encoding="utf-8", errors="replace") as fh:
            # Comments out, newlines kept: line numbers stay right.
            text = COMMENT_RE.sub(lambda c: "\n" * c.group(0).count("\n"), fh.read())
        for hit in INCLUDE_RE.finditer(text):
            inc = hit.group(1)
            p = resolve(inc, f, idirs)
            if p is None or not any(p.startswith(os.path.normpath(d) + os.sep) for d in idirs):
                continue  # a system or generated header
            dep = module_name(p, idirs)
            if dep != m:
                deps.add(dep)
                line = text.count("\n", 0, hit.start()) + 1
                why.setdefault((m, dep), []).append(f'{f}:{line} #include "{inc}"')
            todo.append(p)
    return graph, members


def nm_symbols(obj):
    """(defined, undefined) global symbol sets of an object file."""
    out = subprocess.run(["nm", "-P", obj], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper():  # global: T D B R C V W ...
            defined.add(name)
    return defined, undefined


def link_graph(modules, members, build, why):
    """{module: set of modules} over the modules that have an object, and
    the list of missing objects. why[(A, B)] gets the symbols behind each
    edge."""
    objs, missing = {}, []
    for m in modules:
        for f in members[m]:
            if f.endswith(".c"):
                o = os.path.join(build, os.path.splitext(f)[0] + ".o")
                if os.path.isfile(o):
                    objs[m] = o
                else:
                    missing.append(o)
    symbols = {m: nm_symbols(o) for m, o in objs.items()}
    owner = {}
    for m, (defined, _) in symbols.items():
        for s in defined:
            owner.setdefault(s, m)
    graph = {}
    for m, (_, undefined) in symbols.items():
        graph[m] = set()
        for s in sorted(undefined):
            if s in owner and owner[s] != m:
                graph[m].add(owner[s])
                why.setdefault((m, owner[s]), []).append(s)
    return graph, missing


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan),
    each sorted, the list sorted."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative, so that a long chain cannot exceed the recursion limit.
        work = [(v, iter(sorted(graph.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    advanced = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def print_graph(title, graph, names):
    print(title)
    width = max((len(m) for m in names), default=0)
    for m in sorted(names):
        deps = " ".join(sorted(graph.get(m, ())))
        print(f"  {m:<{width}} -> {deps}" if deps else f"  {m}")


def report_cycles(level, graph, why):
    """Prints each cycle: its modules, then each edge among them with what
    makes it (include lines; the first symbols used)."""
    found = cycles(graph)
    for comp in found:
        members = set(comp)
        print(f"CYCLE ({level} level): {' '.join(comp)}")
        for a in comp:
            for b in sorted(graph.get(a, ())):
                if b in members:
                    reasons = why.get((a, b), [])
                    shown = ", ".join(reasons[:4]) + (f", ... ({len(reasons)})"
                                                      if len(reasons) > 4 else "")
                    print(f"  {a} -> {b}: {shown}")
    return len(found)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[2:]))
    ap.add_argument("roots", nargs="*", default=["src"], metavar="ROOT")
    ap.add_argument("--check", action="store_true", help="exit 1 when a graph has a cycle")
    ap.add_argument("--build", default="build", help="where the objects are (default build)")
    ap.add_argument("--level", choices=["include", "link", "both"], default="both")
    ap.add_argument("-I", dest="idirs", action="append", metavar="DIR",
                    help="include folders, in order (default: include, src)")
    a = ap.parse_args()
    idirs = a.idirs or ["include", "src"]
    for r in a.roots:
        if not os.path.exists(r):
            ap.error(f"no {r}")
    files = find_sources(a.roots)
    if not files:
        ap.error(f"no .c or .h file in {' '.join(a.roots)}")
    inc_why, link_why = {}, {}
    inc, members = include_graph(files, idirs, inc_why)
    listed = sorted({module_name(f, idirs) for f in files})
    n_cycles = 0
    if a.level in ("include", "both"):
        print_graph(f"include graph of {' '.join(a.roots)} (A -> B: A.c or A.h includes B.h)",
                    inc, listed)
        n_cycles += report_cycles("include", inc, inc_why)
    if a.level in ("link", "both"):
        link, missing = link_graph(listed, members, a.build, link_why)
        print_graph(f"link graph of {' '.join(a.roots)} (A -> B: A's object uses a symbol "
                    f"B's object defines; objects in {a.build}/)",
                    link, [m for m in listed if m in link])
        if missing:
            print(f"  (no object, so not in the link graph: {' '.join(sorted(missing))}; "
                  "make builds them)")
        n_cycles += report_cycles("link", link, link_why)
        if a.check and missing:
            print(f"depgraph: {len(missing)} object(s) missing", file=sys.stderr)
            return 1
    if a.check:
        if n_cycles:
            print(f"depgraph: {n_cycles} cycle(s) in {' '.join(a.roots)}")
            return 1
        print(f"depgraph: no cycle in {' '.join(a.roots)}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quietly, into head or less
    sys.exit(main())
