#!/usr/bin/env python3
"""Makes the test model repository for the script tests:

    tests/tools/test_models.py SHARED OUT

OUT (created; must not exist) gets a folder per folder of tests/models, its
files copied, and in config.json every "../../../../shared/" (the default
layout: ../shared beside the clone) replaced by SHARED's absolute path, so
that the repository works wherever SHARED is. The C tests do the same in
tests/util/testutil.c (tu_test_models)."""
import json
import os
import shutil
import sys

PREFIX = '"../../../../shared/'


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1].strip())
    shared, out = os.path.realpath(sys.argv[1]), sys.argv[2]
    if not os.path.isdir(shared):
        sys.exit(f"test_models.py: SHARED={sys.argv[1]} is not a folder")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")
    os.makedirs(out)
    # json.dumps gives the path as a JSON string: quotes and backslashes escaped.
    replacement = json.dumps(shared)[:-1] + "/"
    for name in sorted(os.listdir(src)):
        folder = os.path.join(src, name)
        if name.startswith(".") or not os.path.isdir(folder):
            continue
        os.makedirs(os.path.join(out, name))
        for f in sorted(os.listdir(folder)):
            path = os.path.join(folder, f)
            if not os.path.isfile(path):
                continue
            if f == "config.json":
                with open(path, encoding="utf-8") as fh:
                    text = fh.read().replace(PREFIX, replacement)
                with open(os.path.join(out, name, f), "w", encoding="utf-8") as fh:
                    fh.write(text)
            else:
                shutil.copyfile(path, os.path.join(out, name, f))


if __name__ == "__main__":
    main()
