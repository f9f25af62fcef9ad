"""``sparse-depth process BAG... OUT_DIR``: a fleet's recordings, each bag an independent Ray task.

Every bag (a rosbag2 folder, or each bag in a folder of bags) becomes OUT_DIR/<bag name>, written
by ``process.process_bag`` (the single-bag path, unchanged) in a Ray actor that holds one
completer for all the bags it is given, on one torch thread; there are as many actors as the
cluster has CPUs (``workers`` to say otherwise). Ray runs locally by default, or joins the
cluster at ``address`` (Ray's own convention: ``auto``, ``ray://host:10001``, ...); the package
must be installed on every node.

Resumable: a finished bag gets OUT_DIR/<bag name>.done.json (its report) beside its output, and
a rerun skips it. Anything else under that name (an output a Ctrl-C closed early, a killed run's
``.partial``, a damaged bag's frames before the damage) is removed and the bag redone. A bag that
fails (damaged, unreadable, a missing topic) is one line in the summary; the others go on.

Ray is an optional extra (``pip install 'sparse_depth_node[fleet]'``, or ``pip install
ray==2.60.0``); ``RAY_INSTALL`` is the line that says so.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RAY_INSTALL = "pip install 'ray[default]==2.60.0'"
DONE_SUFFIX = ".done.json"


@dataclass
class BagResult:
    """One bag of the job: ``status`` done (processed now), skipped (done by an earlier run) or
    failed (``error``: one line)."""

    bag: str
    out: str
    status: str
    frames_in: int = 0
    frames_out: int = 0
    seconds: float = 0.0
    error: str = ""


def ray_missing() -> "str | None":
    """The one line that says how to install Ray, or None when it imports."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return f"processing several bags runs on Ray, which is not installed: {RAY_INSTALL}"
    return None


def is_bag(path: Path) -> bool:
    return (path / "metadata.yaml").is_file()


def expand_bags(paths: "Sequence[str | Path]") -> list[Path]:
    """The bags of ``paths``: each a rosbag2 folder, or a folder whose sub-folders are bags (in
    name order). ValueError for a path that is neither, or two bags of the same name (their
    outputs would collide)."""
    bags: list[Path] = []
    for p in map(Path, paths):
        if is_bag(p):
            bags.append(p)
        elif p.is_dir() and any(is_bag(c) for c in p.iterdir()):
            bags += sorted(c for c in p.iterdir() if is_bag(c))
        else:
            raise ValueError(f"{p} is neither a rosbag2 folder nor a folder of them")
    names = [b.name for b in bags]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"two bags are named {', '.join(twice)}: their outputs would collide")
    return bags


def done_marker(out: Path) -> Path:
    return out.with_name(out.name + DONE_SUFFIX)


def image_count(bag: Path, params: Mapping[str, Any], remaps: dict[str, str]) -> int:
    """The bag's camera images (its frames) from its metadata, 0 when that cannot be read."""
    from ..core.settings import resolve
    from .io import open_bag, resolve_inputs

    try:
        with open_bag(bag) as reader:
            image = resolve_inputs(reader.connections, remaps, resolve(params)["image_transport"])
            topic = image["camera/image"]
            return sum(c.msgcount for c in reader.connections if c.topic == topic)
    except ValueError:
        return 0


def clear_leftovers(out: Path) -> None:
    """Remove what an unfinished run left at ``out`` (its output, its ``.partial``)."""
    for p in (out, out.with_name(out.name + ".partial")):
        if p.exists():
            shutil.rmtree(p)


class Worker:
    """What a Ray actor runs: the completer built once, then bag after bag."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        from ..core.completion import DepthCompleter
        from ..core.runtime import configure_process
        from ..core.settings import resolve

        configure_process(1)
        self.params = dict(params)
        self.completer = DepthCompleter.from_settings(resolve(params))

    def run(
        self, bag: str, out: str, remaps: dict[str, str], storage: str, counter: Any
    ) -> BagResult:
        """``process_bag`` of one bag into ``out``, telling ``counter`` (a Ray actor) of each
        frame out; a finished bag gets its done marker."""
        from .process import process_bag

        t0 = time.perf_counter()
        out_path = Path(out)
        try:
            report = process_bag(
                bag,
                out_path,
                self.params,
                remaps,
                storage,
                progress=lambda _report: counter.add.remote(1),
                completer=self.completer,
            )
        except (ValueError, OSError) as exc:  # damaged, unreadable, a topic missing
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return BagResult(bag, out, "failed", seconds=time.perf_counter() - t0, error=line)
        result = BagResult(
            bag, out, "done", report.frames_in, report.frames_out, time.perf_counter() - t0
        )
        done_marker(out_path).write_text(json.dumps(asdict(result), indent=1))
        return result


def run_fleet(
    bags: list[Path],
    out_dir: "str | Path",
    params: "Mapping[str, Any] | None" = None,
    remaps: "dict[str, str] | None" = None,
    storage: str = "mcap",
    workers: int = 0,
    address: "str | None" = None,
    progress: "Callable[[int, int], None] | None" = None,
) -> list[BagResult]:
    """Process ``bags`` into ``out_dir`` on Ray (see the module text): one result per bag, in
    the order given. ``workers`` 0: one per CPU of the cluster; ``progress(done, total)`` is
    called with the frames written so far and the frames of the bags to do, about twice a
    second. Ray is started here (and stopped) unless it already runs in this process."""
    import ray

    params, remaps = dict(params or {}), dict(remaps or {})
    bags = [Path(b).absolute() for b in bags]  # the workers' own working folder is Ray's
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    results, todo = done_already(bags, out_dir)
    if not todo:
        return [results[i] for i in range(len(bags))]
    total = sum(image_count(bags[i], params, remaps) for i in todo)
    started = not ray.is_initialized()
    if started:
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        ray.init(
            address=address,
            num_cpus=(workers or None) if address is None else None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        # Ray's driver takes SIGTERM for its crash handler (a stack dump, status 1): give it back
        if threading.current_thread() is threading.main_thread():
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
    pending: dict[Any, tuple[int, Any]] = {}  # task -> (bag index, its actor)
    try:
        n = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor: Any = ray.remote(num_cpus=1)(Worker)
        counter: Any = ray.remote(num_cpus=0)(FrameCounter).remote()
        idle = [actor.remote(params) for _ in range(min(n, len(todo)))]
        queue = list(todo)
        while queue or pending:
            while queue and idle:
                i, worker = queue.pop(0), idle.pop()
                out = str(out_dir / bags[i].name)
                pending[worker.run.remote(str(bags[i]), out, remaps, storage, counter)] = (
                    i,
                    worker,
                )
            idle += collect(pending, results, bags, out_dir, lambda: actor.remote(params))
            if progress is not None:
                progress(ray.get(counter.value.remote()), total)
    finally:
        if started:
            ray.shutdown()
        # interrupted (Ctrl-C): the bags in flight leave nothing behind, the next run redoes them
        for i, _ in pending.values():
            clear_leftovers(out_dir / bags[i].name)
    return [results[i] for i in range(len(bags))]


def done_already(bags: list[Path], out_dir: Path) -> tuple[dict[int, BagResult], list[int]]:
    """The results of the bags a former run finished (skipped now), and the indices of the rest,
    whose leftovers are cleared."""
    results: dict[int, BagResult] = {}
    todo = []
    for i, bag in enumerate(bags):
        out = out_dir / bag.name
        marker = done_marker(out)
        if marker.is_file() and out.is_dir():
            results[i] = BagResult(**{**json.loads(marker.read_text()), "status": "skipped"})
            continue
        marker.unlink(missing_ok=True)
        clear_leftovers(out)
        todo.append(i)
    return results, todo


def collect(
    pending: dict[Any, tuple[int, Any]],
    results: dict[int, BagResult],
    bags: list[Path],
    out_dir: Path,
    new_worker: Callable[[], Any],
) -> list[Any]:
    """The tasks that finished within half a second: their results kept, their workers
    returned (a dead worker's replaced by ``new_worker()``)."""
    import ray

    ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
    idle = []
    for ref in ready:
        i, worker = pending.pop(ref)
        try:
            results[i] = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker died, or a bug in it
            line = str(exc).strip().splitlines()[-1][:200]
            results[i] = BagResult(str(bags[i]), str(out_dir / bags[i].name), "failed", error=line)
            if isinstance(exc, ray.exceptions.RayActorError):
                worker = new_worker()  # a new worker in its place
        idle.append(worker)
    return idle


class FrameCounter:
    """A Ray actor the workers tell of every frame they write."""

    def __init__(self) -> None:
        self.frames = 0

    def add(self, n: int) -> None:
        self.frames += n

    def value(self) -> int:
        return self.frames


def summary(results: list[BagResult], seconds: float) -> str:
    """The job's table: one line per bag, then the totals and the throughput."""
    lines = [f"{'bag':<32} {'status':<8} {'frames in':>9} {'out':>6} {'s':>7}  error"]
    for r in results:
        lines.append(
            f"{Path(r.bag).name:<32} {r.status:<8} {r.frames_in:9d} {r.frames_out:6d} "
            f"{r.seconds:7.1f}  {r.error}"
        )
    done = [r for r in results if r.status == "done"]
    frames = sum(r.frames_out for r in done)
    failed = sum(r.status == "failed" for r in results)
    lines.append(
        f"{len(done)} processed, {sum(r.status == 'skipped' for r in results)} already done, "
        f"{failed} failed; {frames} frames in {seconds:.1f} s ({frames / max(seconds, 1e-9):.1f} "
        "frames/s)"
    )
    return "\n".join(lines)
