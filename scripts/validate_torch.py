#!/usr/bin/env python3
"""The PyTorch reference side of scripts/device_validate.sh.

Times torch.matmul on the GEMM shapes bench_cuda measures (same names, same X[m,k] @ W[n,k]^T
layout, bf16, random inputs) and a device-to-device copy, with CUDA events, and prints one JSON
object (also written to --out). gpu_summary.py puts these numbers beside bench_cuda's as ratios
measured in the same run on the same GPU.

Exit codes: 0 ok, 3 no torch or no GPU (the JSON then carries "error").
"""
import argparse
import json
import statistics
import sys

# name -> (m, n, k); keep in step with gemm_shapes in bench/bench_cuda.cpp.
GEMM_SHAPES = {
    "square8192": (8192, 8192, 8192),
    "gpt3_qkv": (2048, 9216, 12288),
    "gpt3_proj": (2048, 12288, 3072),
    "gpt3_fc1": (2048, 12288, 12288),
    "gpt3_fc2": (2048, 12288, 12288),
}


def time_ms(torch, fn, warmup, iters):
    """Median of per-call event timings, after warm-up."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    end = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        start[i].record()
        fn()
        end[i].record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in zip(start, end))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--copy-bytes", type=int, default=1 << 30)
    ap.add_argument("--shapes", default=",".join(GEMM_SHAPES), help="comma list of shape names")
    args = ap.parse_args(argv)

    result = {"tool": "torch"}
    try:
        import torch  # noqa: PLC0415 (optional dependency, only on GPU machines)
    except ImportError as e:
        result["error"] = f"PyTorch not importable: {e}"
        return finish(result, args.out, 3)
    if not torch.cuda.is_available():
        result["error"] = "torch.cuda.is_available() is False"
        return finish(result, args.out, 3)

    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    result.update(
        torch_version=torch.__version__,
        cuda=torch.version.cuda,
        device=props.name,
        sm_count=props.multi_processor_count,
    )
    gen = torch.Generator(device=dev).manual_seed(1234)
    gemms = []
    for name in [s for s in args.shapes.split(",") if s]:
        if name not in GEMM_SHAPES:
            print(f"validate_torch: unknown shape {name}", file=sys.stderr)
            return finish({**result, "error": f"unknown shape {name}"}, args.out, 2)
        m, n, k = GEMM_SHAPES[name]
        # Random, never zeros: a product of zeros runs faster than real data.
        x = torch.randn(m, k, device=dev, dtype=torch.bfloat16, generator=gen)
        w = torch.randn(n, k, device=dev, dtype=torch.bfloat16, generator=gen)
        wt = w.t()
        ms = time_ms(torch, lambda: torch.matmul(x, wt), args.warmup, args.iters)
        gemms.append(
            {
                "name": name,
                "m": m,
                "n": n,
                "k": k,
                "dtype": "bf16",
                "median_ms": ms,
                "tflops": 2.0 * m * n * k / (ms * 1e-3) / 1e12,
            }
        )
        del x, w, wt
    result["gemm"] = gemms

    nbytes = args.copy_bytes
    src = torch.empty(nbytes, dtype=torch.uint8, device=dev).random_(0, 255, generator=gen)
    dst = torch.empty_like(src)
    ms = time_ms(torch, lambda: dst.copy_(src), args.warmup, args.iters)
    result["copy"] = {
        "bytes": nbytes,
        "median_ms": ms,
        "GBps": nbytes / (ms * 1e-3) / 1e9,
        "hbm_GBps": 2 * nbytes / (ms * 1e-3) / 1e9,
    }
    return finish(result, args.out, 0)


def finish(result, out, code):
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
