#!/usr/bin/env python3
"""Seed inputs for the fuzz targets (fuzz/README.md): editor fixtures, small
files of nixpkgs' lib and shapes the editor must handle, each encoded as the
fuzz case format of `nixedit::invariants::Case::from_bytes`:

    [flags] [pick: u16 LE] [value length] [value bytes] [file text]
    flags: bit 0 option reading, bit 1 a fresh key (insert),
           bits 2-4 the value's kind (null, bool, int, float, string,
           list of strings, negative int, expression)

For `check`: [which file of the example flake] [its new text].

    python3 fuzz/seeds.py OUT_DIR [SHARED_DIR]
"""
import os
import struct
import sys

out = sys.argv[1]
shared = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "..", "shared")
repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

texts = []
editor = os.path.join(repo, "fixtures", "editor")
for name in sorted(os.listdir(editor)):
    if name.endswith(".nix"):
        texts.append(open(os.path.join(editor, name), "rb").read())
lib = os.path.join(shared, "nixpkgs-lib", "lib")
for root, _, files in sorted(os.walk(lib)):
    for name in sorted(files):
        path = os.path.join(root, name)
        if name.endswith(".nix") and os.path.getsize(path) < 1200:
            texts.append(open(path, "rb").read())
texts += [
    b"{ a = 1; } // { b = 2; }",
    b"x // { a.b = 1; }",
    b"{ a = { x = 1; }; } // { a.y = 2; }",
    b"rec { a = 1; b = a; c = { d = a; }; }",
    b"let { a = 1; body = a; }",
    b"{\r  a = 1; # c\r  b = 2;\r}",
    b"{\r\n  a = [\r\n    1\r\n  ];\r\n}\r\n",
    b"{ a = ''\n    line one\n      two\n  ''; b = ''x''; }",
    b"{ a = -22; b = (-1); c = lib.mkForce (-3); d = [ (-1) 2 ]; }",
    b"{ a = [ # first\n    \"x\" # trailing\n    \"y\"\n  ]; }",
    b"{ a.b.c = 1; a.b.d = 2; }",
    b"{ config, lib, ... }: { options.x = lib.mkOption { }; config = lib.mkIf true { x = 1; y.z = \"s\"; }; }",
    b"{ a = lib.mkMerge [ { b = 1; } { c = 2; } ]; }",
    b"{ ${\"a\"} = 1; \"b\" = 2; ${x} = 3; }",
    b"{ a = 1.5; b = 0.25; c = 9223372036854775807; }",
    b"[" * 300 + b"1" + b"]" * 300,
    b"{ a = " + b"{ a = " * 200 + b"1" + b"; }" * 200 + b"; }",
]

values = [
    (0, b""), (1, b"\x01"), (2, struct.pack("<q", 5432)), (3, struct.pack("<d", 0.5)),
    (4, b"accord.tube"), (4, b'q"${x}\\n'), (5, b"10.0.0.1/32,10.0.0.2/32"), (6, b"\x16"),
    (7, b"lib.mkForce true"), (7, b"a + b"), (7, b"{ x = 1; }"), (2, struct.pack("<q", -7)),
]


def case(flags, pick, kind, value, text):
    flags |= kind << 2
    return bytes([flags]) + struct.pack("<H", pick) + bytes([len(value)]) + value + text


for target in ("get", "set", "unset", "check"):
    os.makedirs(os.path.join(out, target), exist_ok=True)
n = 0
for i, text in enumerate(texts):
    for j, (kind, value) in enumerate(values):
        if (i + j) % 3:
            continue
        for flags in (0, 1, 2, 3):
            data = case(flags, (i * 7 + j) % 40, kind, value, text)
            for target in ("get", "set", "unset"):
                open(os.path.join(out, target, "seed-%05d" % n), "wb").write(data)
            n += 1
hosts = os.path.join(repo, "examples", "two-node", "nixos", "system")
k = 0
for root, _, files in sorted(os.walk(hosts)):
    for name in sorted(files):
        if name.endswith(".nix"):
            text = open(os.path.join(root, name), "rb").read()
            for pick in range(8):
                open(os.path.join(out, "check", "seed-%05d" % k), "wb").write(bytes([pick]) + text)
                k += 1
print("wrote", n, "editor seeds and", k, "check seeds to", out)
