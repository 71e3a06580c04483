"""Generator benchmarks, measured side by side in one process (make bench).

1. Overhead: the instrumented static job against a plain diffusers pipeline call with the
   same settings, on the same pipeline, in rotating order: timer hooks and step callback alone,
   and with the 10 Hz telemetry sampler thread too; the median of per-round ratios.
   Target: <= 2% at batch >= 4.
2. Stream Batch against sequential (and static) at equal steps, interleaved:
   images per second. StreamDiffusion reports ~1.5x on a GPU; target >= 1.3x here.
3. The telemetry sampler's own CPU time at 10 Hz, as a share of one core. Target < 1%.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.results import Results
from generator.pipelines import batching
from generator.pipelines.batching import JobInputs
from generator.pipelines.inputs import prompts_for
from generator.pipelines.models import load_pipeline
from generator.measure.telemetry import Sampler
from generator.measure.timing import PipelineTimer, clock_for


def _job(batch: int, size: int, steps: int) -> JobInputs:
    return JobInputs("txt2img", prompts_for(batch), list(range(batch)), size, size, steps, 1.0)


def _plain_call(pipe, job: JobInputs, device: str = "cpu") -> float:
    generators = [torch.Generator(device).manual_seed(s) for s in job.seeds]
    t0 = time.perf_counter()
    pipe(prompt=job.prompts, height=job.height, width=job.width, num_inference_steps=job.steps,
         guidance_scale=job.guidance, generator=generators, output_type="pil")
    return time.perf_counter() - t0


def _instrumented_call(pipe, job: JobInputs, sampler_hz: float = 10.0, device: str = "cpu") -> float:
    """What a sweep job adds: the timer's hooks and step callback, and (hz > 0) the sampler thread."""
    timer = PipelineTimer(pipe, clock_for(device))
    sampler = Sampler("bench", hz=sampler_hz).start()
    t0 = time.perf_counter()
    batching.execute("static", pipe, timer, job)
    wall = time.perf_counter() - t0
    sampler.stop()
    timer.remove()
    return wall


def overhead(batches, size, steps, rounds, device="cpu", dtype=torch.float32, arch="tiny") -> list[tuple]:
    # One pipeline for every arm: two instances with equal weights differ by ~5% on their own
    # (memory layout), more than the effect measured. The hooks go in and out around each call.
    pipe, _ = load_pipeline("txt2img", seed=0, device=device, dtype=dtype, arch=arch)
    arms = {
        "plain": lambda: _plain_call(pipe, job, device),
        "hooks": lambda: _instrumented_call(pipe, job, sampler_hz=0, device=device),
        "hooks+sampler": lambda: _instrumented_call(pipe, job, sampler_hz=10.0, device=device),
    }
    rows = []
    for batch in batches:
        job = _job(batch, size, steps)
        for fn in arms.values():
            fn()  # warm-up
        times = {name: [] for name in arms}
        for i in range(rounds):  # rotate the order so no arm always goes first
            names = list(arms)[i % 3:] + list(arms)[:i % 3]
            for name in names:
                times[name].append(arms[name]())
        row = [batch, statistics.median(times["plain"])]
        for name in ("hooks", "hooks+sampler"):
            # Each call is compared with the plain call of its own round, so slow spells cancel.
            ratios = sorted(x / y for x, y in zip(times[name], times["plain"]))
            row += [statistics.median(ratios), ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]]
        rows.append(tuple(row))
    return rows


def modes(batches, size, steps, rounds) -> list[tuple]:
    pipe, _ = load_pipeline("txt2img", seed=0)
    timer = PipelineTimer(pipe, clock_for("cpu"))
    rows = []
    for batch in batches:
        job = _job(batch, size, steps)
        times = {m: [] for m in ("sequential", "stream", "static")}
        for m in times:
            batching.execute(m, pipe, timer, job)  # warm-up
        for _ in range(rounds):
            for m in times:
                t0 = time.perf_counter()
                batching.execute(m, pipe, timer, job)
                times[m].append(time.perf_counter() - t0)
        rate = {m: batch / statistics.median(t) for m, t in times.items()}
        rows.append((batch, rate["sequential"], rate["stream"], rate["static"],
                     rate["stream"] / rate["sequential"], rate["static"] / rate["sequential"]))
    return rows


def sampler_cost(seconds: float, hz: float = 10.0) -> tuple[float, int]:
    sampler = Sampler("bench", hz=hz).start()
    time.sleep(seconds)
    sampler.stop()
    return sampler.cpu_seconds / seconds, len(sampler.drain())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="image size in pixels (default 64)")
    parser.add_argument("--steps", type=int, default=10, help="denoising steps (default 10)")
    parser.add_argument("--pairs", type=int, default=30, help="measuring rounds per batch size (default 30)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="weights and activations (default float32)")
    parser.add_argument("--arch", default="tiny", help="the model --arch builds (default tiny, the embedded model)")
    parser.add_argument("--overhead-only", action="store_true", help="measure the overhead (1.) alone")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    results = Results()

    print(f"\n1. Instrumentation overhead: static job vs plain pipeline call on the same pipeline "
          f"({args.arch}, {args.device}, {args.dtype}, {args.size}px, {args.steps} steps, {args.pairs} rounds, "
          "order rotated; median of per-round ratios and its middle half)")
    print(f"{'batch':>6} {'plain s':>9} {'hooks':>7} {'(middle half)':>15} {'hooks+sampler':>14} {'(middle half)':>15}"
          "  target <= 1.02 at batch >= 4")
    for batch, plain, h, h1, h3, hs, hs1, hs3 in overhead((1, 4, 8), args.size, args.steps, args.pairs,
                                                               args.device, dtype, args.arch):
        print(f"{batch:>6} {plain:>9.4f} {h:>7.3f} {h1:>7.3f}..{h3:<6.3f} {hs:>14.3f} {hs1:>7.3f}..{hs3:<6.3f}")
        results.add(f"overhead hooks+sampler batch {batch}", hs, "ratio", "<= 1.02 at batch >= 4",
                    hs <= 1.02 if batch >= 4 else None)
    if args.overhead_only:
        results.save()
        return

    print(f"\n2. Stream Batch vs sequential at equal steps ({args.size}px, {args.steps} steps, "
          f"{args.pairs} interleaved rounds): images per second")
    print(f"{'batch':>6} {'sequential':>11} {'stream':>8} {'static':>8} {'stream/seq':>11} {'static/seq':>11}"
          "  target stream/seq >= 1.3")
    for batch, seq, stream, static, ratio, static_ratio in modes((4, 8, 16), args.size, args.steps, args.pairs):
        print(f"{batch:>6} {seq:>11.2f} {stream:>8.2f} {static:>8.2f} {ratio:>11.2f} {static_ratio:>11.2f}")
        results.add(f"stream over sequential batch {batch}", ratio, "ratio", ">= 1.3", ratio >= 1.3)
        results.add(f"static over sequential batch {batch}", static_ratio, "ratio")

    share, n = sampler_cost(5.0)
    print(f"\n3. Telemetry sampler at 10 Hz: {share * 100:.3f}% of one core ({n} samples in 5 s)  target < 1%")
    results.add("sampler at 10 Hz", share * 100, "% of one core", "< 1", share * 100 < 1)
    results.save()


if __name__ == "__main__":
    main()
