"""Time kg against a floor measured in the same run, on the same generated files.

    python benchmarks/run.py [--sizes 1000,20000] [--work DIR]

Rows: the floor (read every page, split articles, one regular expression of term shapes
over each; the median of three); the installed `kg build` command end to end, as a user
runs it (start-up, GraphML and HTML included) with no cache, with `--jobs 1` and `--jobs
2`; a rebuild after adding 1% new articles, with the cache of the first build; and linking
50,000 distinct names. Each row gives articles/s, MB/s, its time as a multiple of the
floor's, and the peak RSS of the largest process that ran it. The runs go in ``--repeat``
rounds (``--jobs 1``, ``--jobs 2``, the rebuild, in turn, the floor taken before and after
each) and show medians; every ratio is taken within each round (a build's multiple of the
floor against the mean of the floors just before and just after it; the speed-up and the
rebuild's share between builds of the round), then its median shown. Absolute speeds
drift on a shared machine, by a third within minutes here; the ratios are what to
compare.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import write_feed  # noqa: E402

_TERM = re.compile(r"[A-Za-z][A-Za-z0-9.\-]*[A-Za-z0-9]|[\u4e00-\u9fff]{2,}")


def floor(folder: Path) -> dict:
    """Read every page, decode, split articles, one findall per article."""
    start = time.perf_counter()
    n = found = 0
    for page in sorted(folder.glob("*.txt")):
        for line in page.read_bytes().decode("utf-8").split("\n"):
            if len(line) >= 30:
                n += 1
                found += len(_TERM.findall(line))
    return {"seconds": time.perf_counter() - start, "articles": n}


def _child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last."""
    wrapped = code + "\nimport resource, json, sys\n" \
        "print(json.dumps({**RESULT, 'rss_mb': resource.getrusage(resource.RUSAGE_SELF)" \
        ".ru_maxrss / 1024}))"
    out = subprocess.run([sys.executable, "-c", wrapped, *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _command(*args: str) -> dict:
    """Run the installed `kg` command as a user would; its wall time and peak RSS."""
    wrapper = ("import json, resource, subprocess, sys, time\n"
               "start = time.perf_counter()\n"
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "seconds = time.perf_counter() - start\n"
               "assert done.returncode == 0, done.stdout + done.stderr\n"
               "print(json.dumps({'seconds': seconds, 'rss_mb': resource.getrusage("
               "resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))")
    kg = str(Path(sys.executable).with_name("kg"))
    out = subprocess.run([sys.executable, "-c", wrapper, kg, *args], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


LINK = """
import os, random, string, sys, time
from kg.lexicon import load_lexicon
from kg.link import link_concepts
from kg.model import Mention
rng = random.Random(0)
lexicon = load_lexicon()
known = sorted({t for e in lexicon for t in e.terms if t.isascii()})
names = set()
while len(names) < int(sys.argv[1]):
    base, r = rng.choice(known), rng.random()
    if r < 0.3:
        name = base + rng.choice(["Net", "-%dB" % rng.randint(1, 99), "v%d" % rng.randint(1, 9)])
    elif r < 0.6:
        name = "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(4, 12)))
    elif r < 0.8:
        i = rng.randrange(len(base)); name = base[:i] + base[i + 1:]
    else:
        name = base.replace("-", "").replace(" ", "") + rng.choice(["", "s"])
    names.add(name)
mentions = [Mention(str(i), n, "", 0, len(n), "discovered") for i, n in enumerate(sorted(names))]
start = time.perf_counter()
link_concepts(mentions, lexicon, jobs=os.cpu_count() or 1)      # as `kg build` links
RESULT = {"seconds": time.perf_counter() - start, "names": len(names)}
"""


def _median(results: list[dict]) -> dict:
    """The run of median time (its own peak RSS with it)."""
    return sorted(results, key=lambda r: r["seconds"])[len(results) // 2]


def _middle(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def row(name: str, seconds: float, articles: int, mb: float, times_floor: float,
        rss: float) -> str:
    rate = f"{articles / seconds:,.0f}" if articles else "-"
    speed = f"{mb / seconds:.2f}" if mb else "-"
    return f"| {name} | {seconds:.2f} | {rate} | {speed} | {times_floor:.1f} | {rss:,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,20000")
    parser.add_argument("--names", type=int, default=50000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kg-bench"))
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the builds (--jobs 1, --jobs 2, rebuild) of each "
                        "size; medians are shown")
    args = parser.parse_args()
    print("| what | seconds | articles/s | MB/s | x floor | peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in (int(s) for s in args.sizes.split(",")):
        feed = args.work / f"feed-{size}"
        if not feed.exists():
            write_feed(feed, size)
        mb = sum(p.stat().st_size for p in feed.glob("*.txt")) / 2**20
        floor(feed)                                          # warm the page cache
        # the reader's case: the same feed folder, built once with a cache, then a new
        # page arrives; this first build's outputs and cache are kept to start each
        # rebuild from
        grown = args.work / f"feed-{size}-grown"
        if grown.exists():
            shutil.rmtree(grown)
        shutil.copytree(feed, grown)
        cache = args.work / f"cache-{size}.sqlite"
        grown_out = args.work / f"out-{size}-grown"
        shutil.rmtree(grown_out, ignore_errors=True)
        for stale in args.work.glob(f"cache-{size}.sqlite*"):
            stale.unlink()
        _command("build", str(grown), "-o", str(grown_out), "-q", "--cache", str(cache))
        kept = args.work / f"kept-{size}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(grown_out, kept / "out")
        shutil.copy(cache, kept / "cache.sqlite")
        write_feed(args.work / f"new-{size}", max(1, size // 100), seed=size + 1)
        # The runs to compare alternate (--jobs 1, --jobs 2, rebuild; again), and each
        # ratio is taken within one round: this machine's speed drifts by a third over
        # minutes, which made ratios of runs taken minutes apart differ by as much.
        out = args.work / f"out-{size}"
        rounds: list[dict] = []
        for _ in range(args.repeat):
            # the floor is taken before and after each build, and each build is set
            # against the mean of the two: the machine's speed at the time of the build
            floors = [_median([floor(feed) for _ in range(3)])]
            taken: dict = {}
            for jobs in (1, 2):
                taken[jobs] = _command("build", str(feed), "-o", str(out), "-q",
                                       "--no-cache", "--jobs", str(jobs))
                floors.append(_median([floor(feed) for _ in range(3)]))
            shutil.rmtree(grown_out)
            shutil.copytree(kept / "out", grown_out)
            for stale in args.work.glob(f"cache-{size}.sqlite*"):
                stale.unlink()
            shutil.copy(kept / "cache.sqlite", cache)
            shutil.rmtree(grown / "new", ignore_errors=True)
            shutil.copytree(args.work / f"new-{size}", grown / "new")
            taken["rebuild"] = _command("build", str(grown), "-o", str(grown_out), "-q",
                                        "--cache", str(cache))
            shutil.rmtree(grown / "new")
            floors.append(_median([floor(feed) for _ in range(3)]))
            taken["floor"] = _median(floors)
            taken["floors"] = {what: (floors[i]["seconds"] + floors[i + 1]["seconds"]) / 2
                               for i, what in enumerate((1, 2, "rebuild"))}
            rounds.append(taken)

        def times_floor(what) -> float:
            return _middle([r[what]["seconds"] / r["floors"][what] for r in rounds])

        base = _median([r["floor"] for r in rounds])
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(row(f"floor, {size:,} articles", base["seconds"], base["articles"], mb, 1.0,
                  rss))
        for jobs in (1, 2):
            run = _median([r[jobs] for r in rounds])
            print(row(f"kg build, {size:,} articles, no cache, --jobs {jobs}",
                      run["seconds"], size, mb, times_floor(jobs), run["rss_mb"]))
        speedups = [r[1]["seconds"] / r[2]["seconds"] for r in rounds]
        print(f"| --jobs 2 speed-up, {size:,} articles | {_middle(speedups):.2f}x | - | - "
              f"| - | - |")
        rebuilt = _median([r["rebuild"] for r in rounds])
        print(row(f"rebuild after +1% articles ({size // 100:,}), cache", rebuilt["seconds"],
                  size + size // 100, mb, times_floor("rebuild"), rebuilt["rss_mb"]))
        ratios = [r["rebuild"]["seconds"] / r[2]["seconds"] for r in rounds]
        print(f"| rebuild / full build (--jobs 2), {size:,} articles | {_middle(ratios):.2f} "
              f"| - | - | - | - |")
        if args.repeat > 1:
            multiples = [r[2]["seconds"] / r["floors"][2] for r in rounds]
            print(f"| (each ratio: the median of {args.repeat} rounds; per round: x floor "
                  f"of --jobs 2 {', '.join(f'{x:.1f}' for x in multiples)}; speed-up "
                  f"{', '.join(f'{x:.2f}' for x in speedups)}; rebuild "
                  f"{', '.join(f'{x:.2f}' for x in ratios)}) | | | | | |")
    linked = _child(LINK, str(args.names))
    print(f"| linking {linked['names']:,} distinct names, --jobs {os.cpu_count() or 1} | "
          f"{linked['seconds']:.2f} | - | - | - "
          f"| {linked['rss_mb']:,.0f} |")


if __name__ == "__main__":
    main()
