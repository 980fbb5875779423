#!/usr/bin/env python3
"""Instruction mix of the inner loops of generated AArch64 kernels.

    isa_report.py <kernel library folder>/kernels [--objdump aarch64-linux-gnu-objdump]

For every kernel object it disassembles the code, finds the innermost loops (a backward branch and
the instructions it jumps over, containing no other loop) and reports the hottest one -- the
innermost loop with the most floating-point arithmetic, which is the reduction -- as counts of
vector fused multiply-adds (fmla), loads, stores and scalar floating-point operations. Timing under
emulation means nothing; the instruction mix does.

Exits 1 when a kernel has a scalar inner loop: an innermost loop doing floating-point arithmetic
with no vector instruction at all.
"""
import argparse
import pathlib
import re
import subprocess
import sys

BRANCHES = re.compile(r"^(b|b\.\w+|cbz|cbnz|tbz|tbnz)$")
TARGET = re.compile(r"\b([0-9a-f]+) <")
SCALAR_FP = re.compile(r"\b[sd]\d+\b")
VECTOR = re.compile(r"\bv\d+\.\d*[bhsd]\b|\bv\d+\.[bhsd]\[")
FP_ARITH = {"fmla", "fmls", "fmadd", "fmsub", "fnmadd", "fnmsub", "fmul", "fadd", "fsub", "fdiv",
            "fmax", "fmin", "fabs", "fneg", "faddp"}  # faddp: a vector's lanes added pairwise
LOADS = re.compile(r"^(ldr|ldur|ldp|ld1|ld1r|ld2|ld3|ld4|ldnp)\b")
STORES = re.compile(r"^(str|stur|stp|st1|st2|st3|st4|stnp)\b")


def functions(objdump, obj):
    """Yields (name, [(address, mnemonic, operands)]) for each function of an object file."""
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(obj)], check=True,
                          capture_output=True, text=True).stdout
    name, code = None, []
    for line in text.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if header:
            if name:
                yield name, code
            name, code = header.group(1), []
            continue
        insn = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if name and insn:
            code.append((int(insn.group(1), 16), insn.group(2), insn.group(3)))
    if name:
        yield name, code


def innermost_loops(code):
    loops = []
    for address, mnemonic, operands in code:
        target = TARGET.search(operands)
        if BRANCHES.match(mnemonic) and target and int(target.group(1), 16) <= address:
            loops.append((int(target.group(1), 16), address))
    return [(a, b) for a, b in loops
            if not any((c, d) != (a, b) and a <= c and d <= b for c, d in loops)]


def mix(code, loop):
    counts = {"fmla": 0, "vector_fp": 0, "scalar_fp": 0, "loads": 0, "stores": 0, "instructions": 0}
    for address, mnemonic, operands in code:
        if not loop[0] <= address <= loop[1]:
            continue
        counts["instructions"] += 1
        vector = bool(VECTOR.search(operands))
        if mnemonic in FP_ARITH:
            if vector:
                counts["vector_fp"] += 1
                counts["fmla"] += mnemonic == "fmla"
            elif SCALAR_FP.search(operands):
                counts["scalar_fp"] += 1
        counts["loads"] += bool(LOADS.match(mnemonic))
        counts["stores"] += bool(STORES.match(mnemonic))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", type=pathlib.Path, help="a kernel library's kernels/ folder")
    parser.add_argument("--objdump", default="aarch64-linux-gnu-objdump")
    args = parser.parse_args()

    rows, scalar_kernels = [], []
    for obj in sorted(args.kernels.glob("*/*.o")):
        kernel = obj.parent.name
        if kernel.endswith("_halide_runtime"):
            continue  # Halide's own runtime, not a kernel
        loops = []
        for _, code in functions(args.objdump, obj):
            loops += [(mix(code, loop), loop) for loop in innermost_loops(code)]
        arithmetic = [(m, l) for m, l in loops if m["vector_fp"] + m["scalar_fp"] > 0]
        if not arithmetic:
            continue
        scalar = [m for m, _ in arithmetic if m["vector_fp"] == 0]
        if scalar:
            scalar_kernels.append(kernel)
        hot, _ = max(arithmetic, key=lambda item: (item[0]["vector_fp"] + item[0]["scalar_fp"],
                                                   item[0]["fmla"]))
        rows.append((kernel, hot, len(arithmetic), len(scalar)))

    print(f"{'kernel':<78} {'fmla':>5} {'loads':>5} {'stores':>6} {'scalar fp':>9} "
          f"{'insns':>5} {'fp loops':>8} {'scalar loops':>12}")
    for kernel, hot, fp_loops, scalar_loops in rows:
        print(f"{kernel:<78} {hot['fmla']:>5} {hot['loads']:>5} {hot['stores']:>6} "
              f"{hot['scalar_fp']:>9} {hot['instructions']:>5} {fp_loops:>8} {scalar_loops:>12}")
    print(f"{len(rows)} kernels; hottest inner loop of each: vector fmla vs loads, stores and scalar "
          f"floating-point operations; {len(scalar_kernels)} with a scalar inner loop")
    for kernel in scalar_kernels:
        print(f"scalar inner loop in {kernel}")
    return 1 if scalar_kernels or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
