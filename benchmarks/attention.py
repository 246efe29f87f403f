"""The attention core against PyTorch on the CPU, and its memory on long inputs (issue 5).

Part 1, speed: ``attnviz_cli.core.self_attention`` against ``torch.nn.MultiheadAttention`` (no bias,
``need_weights=True, average_attn_weights=False``: per-head weights materialised, as ours are), both
with 2 threads, float32, d_model 512, 8 heads, for T in 128, 512, 2048 and 4096. Each implementation
runs in its own process (a runtime's idle threads spin for a while after each call and would slow the
other down), after one warm-up call. Prints the median time, the ratio to PyTorch, the peak memory the
call added, and the largest difference between the two results. Target: at most 1.2x PyTorch's time at
T = 2048 and 4096, agreement within 1e-4.

Part 2, memory: ``attention_summary`` (outputs and top-k weights, computed in row blocks) for T up to
16,384, beside the full ``self_attention`` where that fits. Its peak splits into the arrays it returns
(queries, keys, values and outputs: O(T x d), the answer itself) and its working memory, which should
stay flat while the full matrices grow as h x T x T.

    python benchmarks/attention.py [--runs 5] [--threads 2] [--quick]

PyTorch is optional: without it part 1 times NumPy alone and says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time

D_MODEL, HEADS = 512, 8
SPEED_LENGTHS = (128, 512, 2048, 4096)
MEMORY_LENGTHS = (1024, 2048, 4096, 8192, 16384)
FULL_MEMORY_LIMIT = 8192  # full matrices beyond this would need 16 GiB: not run


def _rss_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak so far) of this process, in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _inputs(T: int):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, D_MODEL)).astype(np.float32)
    wq, wk, wv, wo = ((rng.standard_normal((D_MODEL, D_MODEL)) / np.sqrt(D_MODEL)).astype(np.float32) for _ in range(4))
    return x, wq, wk, wv, wo


def _numpy_call(T: int, mode: str, threads: int):
    from attnviz_cli.analysis import attention_summary
    from attnviz_cli.core import self_attention

    x, wq, wk, wv, wo = _inputs(T)
    how = {"heads": HEADS, "wq": wq, "wk": wk, "wv": wv, "wo": wo, "threads": threads}
    if mode == "summary":
        return lambda: attention_summary(x, top_k=3, **how)
    return lambda: self_attention(x, **how)


def _torch_module(wq, wk, wv, wo):
    import numpy as np
    import torch

    mha = torch.nn.MultiheadAttention(D_MODEL, HEADS, bias=False, batch_first=True)
    with torch.no_grad():  # PyTorch computes x @ W.T: ours are stored the other way round
        mha.in_proj_weight.copy_(torch.from_numpy(np.concatenate([wq.T, wk.T, wv.T])))
        mha.out_proj.weight.copy_(torch.from_numpy(np.ascontiguousarray(wo.T)))
    return mha


def _torch_call(T: int, threads: int):
    import torch

    torch.set_num_threads(threads)
    x, *weights = _inputs(T)
    mha, xt = _torch_module(*weights), torch.from_numpy(x)[None]

    def call():
        with torch.inference_mode():
            return mha(xt, xt, xt, need_weights=True, average_attn_weights=False)

    return call


def child(impl: str, T: int, mode: str, runs: int, threads: int) -> None:
    """Time one implementation in this process; print {"seconds": [...], "added_mib": ...} as JSON."""
    call = _torch_call(T, threads) if impl == "torch" else _numpy_call(T, mode, threads)
    baseline = _rss_kib("VmRSS")
    result = call()  # warm-up, and the peak memory of one call
    added_mib = (_rss_kib("VmHWM") - baseline) / 1024
    result_mib = _result_bytes(result) / 2**20
    del result
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
        del result
    print(json.dumps({"seconds": seconds, "added_mib": added_mib, "result_mib": result_mib}))


def _result_bytes(result) -> int:
    """Bytes of the arrays a call returns (the answer itself, which grows with T whatever we do)."""
    from dataclasses import fields, is_dataclass

    import numpy as np

    parts = result if isinstance(result, tuple) else (result,)
    arrays = []
    for part in parts:
        if is_dataclass(part):
            arrays += [getattr(part, f.name) for f in fields(part)]
        else:  # PyTorch's (output, weights)
            arrays.append(part.numpy() if hasattr(part, "numpy") else part)
    arrays = [a for a in arrays if isinstance(a, np.ndarray)]
    return sum(a.nbytes for i, a in enumerate(arrays) if not any(np.shares_memory(a, b) for b in arrays[:i]))


def agreement(T: int) -> tuple[float, float]:
    """Largest |difference| between our weights and outputs and PyTorch's, in float32."""
    import numpy as np
    import torch

    from attnviz_cli.core import self_attention

    x, wq, wk, wv, wo = _inputs(T)
    ours = self_attention(x, heads=HEADS, wq=wq, wk=wk, wv=wv, wo=wo)
    mha, xt = _torch_module(wq, wk, wv, wo), torch.from_numpy(x)[None]
    with torch.inference_mode():
        output, weights = mha(xt, xt, xt, need_weights=True, average_attn_weights=False)
    return (float(np.abs(ours.weights - weights[0].numpy()).max()), float(np.abs(ours.output - output[0].numpy()).max()))


def measure(impl: str, T: int, mode: str, runs: int, threads: int) -> dict:
    argv = [sys.executable, __file__, "--child", impl, str(T), mode, str(runs), str(threads)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def speed(runs: int, threads: int, lengths: tuple[int, ...]) -> None:
    have_torch = importlib.util.find_spec("torch") is not None
    print(f"Part 1: self_attention vs torch.nn.MultiheadAttention, d_model {D_MODEL}, {HEADS} heads, float32, {threads} threads")
    if not have_torch:
        print("  PyTorch is not installed: timing NumPy alone (pip install torch to compare)")
    print(f"  {'T':>5}  {'numpy ms':>9}  {'torch ms':>9}  {'ratio':>6}  {'numpy MiB':>9}  {'torch MiB':>9}  {'max |dw|':>9}  {'max |dout|':>10}")
    for T in lengths:
        ours = measure("numpy", T, "full", runs, threads)
        line = f"  {T:>5}  {statistics.median(ours['seconds']) * 1000:>9.1f}"
        if have_torch:
            theirs = measure("torch", T, "full", runs, threads)
            ratio = statistics.median(ours["seconds"]) / statistics.median(theirs["seconds"])
            dw, dout = agreement(T)
            line += f"  {statistics.median(theirs['seconds']) * 1000:>9.1f}  {ratio:>5.2f}x  {ours['added_mib']:>9.0f}  {theirs['added_mib']:>9.0f}  {dw:>9.1e}  {dout:>10.1e}"
        else:
            line += f"  {'-':>9}  {'-':>6}  {ours['added_mib']:>9.0f}"
        print(line, flush=True)


def memory(threads: int, lengths: tuple[int, ...]) -> None:
    print(f"\nPart 2: peak memory added by one call, {HEADS} heads, d_model {D_MODEL}, float32")
    print("  summary: attention_summary (row blocks); 'working' is the peak beyond the arrays it returns")
    print(f"  {'T':>6}  {'summary MiB':>11}  {'= result':>8}  {'+ working':>9}  {'summary s':>9}  {'full MiB':>9}  {'full s':>7}")
    for T in lengths:
        blocked = measure("numpy", T, "summary", 1, threads)
        working = blocked["added_mib"] - blocked["result_mib"]
        line = f"  {T:>6}  {blocked['added_mib']:>11.0f}  {blocked['result_mib']:>8.0f}  {working:>9.0f}  {blocked['seconds'][0]:>9.2f}"
        if T <= FULL_MEMORY_LIMIT:
            full = measure("numpy", T, "full", 1, threads)
            line += f"  {full['added_mib']:>9.0f}  {full['seconds'][0]:>7.2f}"
        else:
            line += f"  {'(not run: ' + str(2 * HEADS * T * T * 4 >> 30) + ' GiB)':>18}"
        print(line, flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        impl, T, mode, runs, threads = sys.argv[2:]
        child(impl, int(T), mode, int(runs), int(threads))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed calls per implementation and length")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small lengths only, for a smoke test")
    args = parser.parse_args()
    speed(args.runs, args.threads, SPEED_LENGTHS[:2] if args.quick else SPEED_LENGTHS)
    memory(args.threads, MEMORY_LENGTHS[:2] if args.quick else MEMORY_LENGTHS)


if __name__ == "__main__":
    main()
