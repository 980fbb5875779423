#!/usr/bin/env python3
"""cuDNN, through PyTorch, on the layers of a `convgen bench --json` run: the GPU peer of the
convgen-cuda rows.

    convgen bench --config layers.json --impls convgen-cuda --json convgen.json
    tools/cudnn_bench.py convgen.json [--json cudnn.json] [--markdown table.md]

For every (layer, operator) that convgen timed, the same geometry (read from the record's
shape_key, so the two sides cannot disagree about pads) runs in fp32 on the GPU with TF32 off, in
convgen's layout (NHWC = PyTorch's channels_last), tensors on the device, timed with CUDA events
after a warm-up. Two cuDNN configurations, each letting cuDNN pick its algorithm by timing
(torch.backends.cudnn.benchmark):
  cudnn            the fastest algorithm, deterministic or not (atomics are allowed);
  cudnn-determ     deterministic algorithms only, like convgen's split reductions.
cuDNN takes one pad per dimension; a layer with unequal pads (SAME with an odd total) runs with
the larger pad on both sides: the same amount of work, the window shifted by one (what
TensorFlow does instead is pad the input in a separate copy, which is not timed here).
Prints the table with the ratio cuDNN ms / convgen ms (above 1: convgen is faster).
"""
import argparse
import json
import math
import re
import statistics
import sys

import torch
import torch.nn.functional as F

KEY = re.compile(
    r"n(\d+)h(\d+)w(\d+)c(\d+)_k(\d+)r(\d+)s(\d+)_sh(\d+)sw(\d+)dh(\d+)dw(\d+)"
    r"_pt(\d+)pb(\d+)pl(\d+)pr(\d+)_(nhwc|nchw)$")


def geometry(key):
    match = KEY.match(key)
    if not match:
        sys.exit(f"cudnn_bench: shape_key {key!r} is not a convgen geometry key")
    n, h, w, c, k, r, s, sh, sw, dh, dw, pt, pb, pl, pr = map(int, match.groups()[:15])
    ho = (h + pt + pb - dh * (r - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (s - 1) - 1) // sw + 1
    return dict(n=n, h=h, w=w, c=c, k=k, r=r, s=s, stride=(sh, sw), dilation=(dh, dw),
                padding=(max(pt, pb), max(pl, pr)), ho=ho, wo=wo,
                nchw=match.group(16) == "nchw")


def operator(op, g):
    """A closure running `op` on device tensors, as autograd would call cuDNN."""
    memory = torch.contiguous_format if g["nchw"] else torch.channels_last
    dev = torch.device("cuda")

    def tensor(*shape):
        return torch.rand(*shape, device=dev).mul_(2).sub_(1).contiguous(memory_format=memory)

    x = tensor(g["n"], g["c"], g["h"], g["w"])
    weight = tensor(g["k"], g["c"], g["r"], g["s"])
    bias = torch.rand(g["k"], device=dev)
    dy = tensor(g["n"], g["k"], g["ho"], g["wo"])
    conv = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
    backward = dict(bias_sizes=[g["k"]], stride=list(g["stride"]), padding=list(g["padding"]),
                    dilation=list(g["dilation"]), transposed=False, output_padding=[0, 0],
                    groups=1)
    if op == "conv2d":
        return lambda: F.conv2d(x, weight, bias, **conv)
    if op == "conv2d_backprop_input":
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, weight, output_mask=[True, False, False], **backward)
    if op == "conv2d_backprop_filter":
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, weight, output_mask=[False, True, True], **backward)
    sys.exit(f"cudnn_bench: unknown op {op!r}")


def median_ms(run, warmups=10, repeats=50):
    for _ in range(warmups):
        run()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("convgen_json", help="the --json of a convgen bench run with convgen-cuda rows")
    parser.add_argument("--json", help="write cuDNN's records here, in convgen bench's format")
    parser.add_argument("--markdown", help="write the side-by-side table here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("cudnn_bench: no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    with open(args.convgen_json) as f:
        convgen = [r for r in json.load(f) if r["impl"] == "convgen-cuda"]
    if not convgen:
        sys.exit(f"cudnn_bench: {args.convgen_json} has no convgen-cuda records")

    records, lines = [], []
    device = torch.cuda.get_device_name(0)
    lines.append(f"# convgen-cuda vs cuDNN {torch.backends.cudnn.version()} on {device}\n")
    lines.append("| layer | op | convgen ms | GF/s | cudnn ms | cudnn-determ ms | "
                 "cudnn / convgen | cudnn-determ / convgen |")
    lines.append("|---|---|---|---|---|---|---|---|")
    ratios = {}
    for record in convgen:
        g = geometry(record["shape_key"])
        flops = record["gflops"] * record["median_ms"] * 1e6
        timed = {}
        for impl, deterministic in (("cudnn", False), ("cudnn-determ", True)):
            torch.backends.cudnn.deterministic = deterministic
            torch.use_deterministic_algorithms(deterministic)
            med, low = median_ms(operator(record["op"], g))
            timed[impl] = med
            records.append(dict(layer=record["layer"], op=record["op"], impl=impl, threads=0,
                                median_ms=med, min_ms=low, gflops=flops / (med * 1e6),
                                shape_key=record["shape_key"]))
        ms = record["median_ms"]
        for impl in timed:
            ratios.setdefault((record["op"], impl), []).append(timed[impl] / ms)
        lines.append(f"| {record['layer']} | {record['op']} | {ms:.4f} | {record['gflops']:.0f} | "
                     f"{timed['cudnn']:.4f} | {timed['cudnn-determ']:.4f} | "
                     f"{timed['cudnn'] / ms:.2f}x | {timed['cudnn-determ'] / ms:.2f}x |")
    lines.append("")
    lines.append("| op | geomean cudnn / convgen | geomean cudnn-determ / convgen |")
    lines.append("|---|---|---|")
    for op in dict.fromkeys(r["op"] for r in convgen):
        geo = [math.exp(statistics.fmean(map(math.log, ratios[(op, impl)])))
               for impl in ("cudnn", "cudnn-determ")]
        lines.append(f"| {op} | {geo[0]:.2f}x | {geo[1]:.2f}x |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
