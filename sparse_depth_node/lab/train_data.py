"""Training's data: the sources (a KITTI raw drive and other data set folders, or the robot's
recordings through the frame cache), their training and validation frames (a recording split
by time with a gap), and the samples projected once onto the training device, with the
scan-line input variants and the neighbouring views the photometric loss warps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.completion import image_tensor
from ..core.geometry import project_points
from ..data.datasets import open_dataset, parse_frame_range, resolve_frame_id
from .evaluate import MAX_DEPTH, MIN_DEPTH, frame_rings
from .photometric import grey
from .views import TemporalViews


def project_frame(frame, min_depth: float, max_depth: float) -> torch.Tensor:
    """(1, 5, H, W): the frame's sparse depth (metres), its mask and its image (RGB in [0, 1])."""
    depth, mask = project_points(
        torch.from_numpy(frame.points), frame.camera, frame.t_cam_from_lidar, min_depth, max_depth
    )
    return torch.cat([depth, mask, image_tensor(frame.rgb)], dim=1)


def read_frames(reader, ids: list) -> list:
    return [reader.read(i) for i in ids]


RING_STEPS = (2, 4)  # scan-line hold-outs: every 2nd or every 4th ring as input, each phase


def ring_inputs(frame, min_depth: float, max_depth: float) -> torch.Tensor:
    """(1, 2 V, H, W): depth and mask of every scan-line input variant of ``frame`` (for each k in
    RING_STEPS and each phase p, the rings r with r % k == p), rings from the scan order."""
    rings = frame_rings(frame)
    channels: list[torch.Tensor] = []
    for k in RING_STEPS:
        for phase in range(k):
            pts = np.ascontiguousarray(frame.points[rings % k == phase])
            channels += project_points(
                torch.from_numpy(pts), frame.camera, frame.t_cam_from_lidar, min_depth, max_depth
            )
    return torch.cat(channels, dim=1)


def first_row(sample: torch.Tensor) -> int:
    """The first row of ``sample`` (1, C, H, W) holding a LiDAR return (channel 1 is the mask);
    0 when there is none."""
    rows = torch.nonzero(sample[0, 1].sum(dim=1) > 0).flatten()
    return int(rows[0]) if len(rows) else 0


@dataclass
class Neighbours:
    """What the photometric loss needs of a training frame: its intrinsics K (3, 3) and its
    other views: grey images (V, 1, H, W) in [0, 1] and T_view<-frame (V, 4, 4)."""

    k: torch.Tensor
    greys: torch.Tensor
    motions: torch.Tensor

    def to(self, device: torch.device) -> "Neighbours":
        return Neighbours(self.k.to(device), self.greys.to(device), self.motions.to(device))


def training_neighbours(reader, ids: list, baseline: float) -> dict[Any, Neighbours]:
    """{frame id: Neighbours} of the frames ``ids`` of ``reader`` (a contiguous run of its
    frames) that have a view on either side within ``ids`` (views.TemporalViews)."""
    order = reader.frame_ids()
    first, last = order.index(ids[0]), order.index(ids[-1])
    views = TemporalViews(reader, min_baseline=baseline, within=(first, last + 1))
    out = {}
    for fid in ids:
        i = order.index(fid)
        found = views.views(i)
        if found:
            out[fid] = Neighbours(
                torch.from_numpy(views.frame(i).camera.K),
                torch.cat([grey(image_tensor(v.rgb)) for v in found]),
                torch.stack([torch.from_numpy(v.t_view_target) for v in found]),
            )
    return out


@dataclass
class TrainingData:
    """What training draws from, on the training device: ``samples`` (1, 5, H, W) (sparse depth
    metres, mask, RGB in [0, 1]) and ``ring_samples`` (1, 5 + 2 V, H, W) (the same with the
    scan-line input variants: ring_inputs) of the frames that have rings, ``ring_of`` the sample
    each is; the first row holding a return of each (``tops``, ``ring_tops``); ``neighbours``
    {sample index: Neighbours} for the photometric loss; ``validation`` {set: Frame list}
    (host); ``split`` the text that says what is what."""

    samples: list[torch.Tensor]
    ring_samples: list[torch.Tensor]
    ring_of: list[int]
    tops: list[int]
    ring_tops: list[int]
    neighbours: dict[int, Neighbours]
    validation: dict[str, list]
    split: str

    @property
    def variants(self) -> int:
        """Scan-line input variants per ring sample."""
        return (self.ring_samples[0].shape[1] - 5) // 2 if self.ring_samples else 0


@dataclass
class Source:
    """One recording or data set folder: its ``reader`` (a data set reader or bag.BagFrames),
    the frame ids to ``train`` and to validate (``val``, the validation set ``name``) on,
    whether its training frames are a sequence whose neighbours the photometric loss may warp
    (``sequence``), and the text that says so."""

    name: str
    reader: Any
    train: list
    val: list
    sequence: bool
    text: str


def folder_sources(args) -> list[Source]:
    """The data set folders of ``args``: a KITTI raw drive (--train-frames, --val-frames), a
    DDAD scene (training), KITTI object frames of other drives (--extra-val validate, the rest
    train), another rig (validation)."""
    kitti = open_dataset(args.data, "kitti-raw", option="--data")
    ids = kitti.frame_ids()
    train, val = (
        ids[slice(*parse_frame_range(spec, option, len(ids)))]
        for spec, option in (
            (args.train_frames, "--train-frames"),
            (args.val_frames, "--val-frames"),
        )
    )
    text = f"KITTI raw {args.data} frames {args.train_frames} (train), {args.val_frames} (val)"
    out = [Source("kitti", kitti, train, val, True, text)]
    if args.ddad:
        ddad = open_dataset(args.ddad, "ddad", option="--ddad")
        out.append(Source("ddad", ddad, ddad.frame_ids(), [], False, f"DDAD {args.ddad} (train)"))
    if args.extra:
        extra = open_dataset(args.extra, "kitti-object", option="--extra")
        held = [resolve_frame_id(extra.frame_ids(), i) for i in args.extra_val.split(",") if i]
        rest = [i for i in extra.frame_ids() if i not in held]
        text = f"KITTI object {args.extra}: {', '.join(held)} (val), the rest (train)"
        out.append(Source("extra", extra, rest, held, False, text))
    if args.rig:
        rig = open_dataset(args.rig, "kitti-object", option="--rig")
        out.append(Source("rig", rig, [], rig.frame_ids(), False, f"other rig {args.rig} (val)"))
    return out


def time_split(stamps: list[float], val_fraction: float, gap: float) -> tuple[range, range]:
    """Indices of a recording's frames (``stamps`` in time order, s) to train and to validate
    on: the last ``val_fraction`` validates (none when 0), the frames up to ``gap`` s before it
    train, so that no two neighbouring frames fall on both sides. ValueError when nothing is
    left to train on."""
    n_val = max(1, round(val_fraction * len(stamps))) if val_fraction > 0 else 0
    first_val = len(stamps) - n_val
    last_train = first_val
    while n_val and last_train > 0 and stamps[last_train - 1] > stamps[first_val] - gap:
        last_train -= 1
    if last_train == 0:
        raise ValueError(
            f"{len(stamps)} frames leave none to train on before the last {n_val} "
            f"(--val-fraction {val_fraction}) less --gap {gap} s: record longer or lower them"
        )
    return range(last_train), range(first_val, len(stamps))


def bag_sources(args, tick=None) -> list[Source]:
    """The recordings of ``args.bags`` (bags, or folders of bags), each decoded once into the
    frame cache (bag.frames) under the node parameters ``args.params`` and ``args.remap``, split
    by time (``time_split``: validation set "bags"); and those of ``args.val_bags``, held out
    for validation only (set "held_out")."""
    from ..bag.fleet import expand_bags
    from ..bag.frames import BagFrames, cache_frames
    from ..bag.io import load_parameters, parse_remaps

    params = load_parameters(args.params) if args.params else {}
    remaps = parse_remaps(args.remap)
    out = []
    for bag in expand_bags(args.bags):
        frames = BagFrames(cache_frames(bag, params, remaps, tick=tick))
        train, val = time_split(frames.stamps, args.val_fraction, args.gap)
        ids = frames.frame_ids()
        text = f"bag {bag}: frames 0:{len(train)} (train)" + (
            f", {val.start}:{val.stop} (val), {args.gap} s apart" if len(val) else ""
        )
        out.append(
            Source("bags", frames, [ids[i] for i in train], [ids[i] for i in val], True, text)
        )
    for bag in expand_bags(args.val_bags or []):
        frames = BagFrames(cache_frames(bag, params, remaps, tick=tick))
        text = f"bag {bag}: {len(frames.frame_ids())} frames (held out: val)"
        out.append(Source("held_out", frames, [], frames.frame_ids(), False, text))
    return out


def load_training_data(args, device: torch.device) -> TrainingData:
    """The frames of the sources ``args`` name (bags with --bags, else data set folders),
    projected once and moved to ``device`` once; training frames in source order."""
    sources = bag_sources(args) if args.bags else folder_sources(args)
    split = [s.text for s in sources]
    samples: list[torch.Tensor] = []
    ring_samples: list[torch.Tensor] = []
    ring_of: list[int] = []
    neighbours: dict[int, Neighbours] = {}
    validation: dict[str, list] = {}
    for source in sources:
        if source.val:
            validation.setdefault(source.name, []).extend(read_frames(source.reader, source.val))
        first = len(samples)
        for fid in source.train:
            frame = source.reader.read(fid)
            sample = project_frame(frame, MIN_DEPTH, MAX_DEPTH)
            if args.ring_holdout > 0:
                try:
                    rings = ring_inputs(frame, MIN_DEPTH, MAX_DEPTH)
                    ring_samples.append(torch.cat([sample, rings], 1).to(device))
                    ring_of.append(len(samples))
                except ValueError:  # no rings (DDAD's LiDAR does not scan ring by ring)
                    pass
            samples.append(sample.to(device))
        if args.photometric > 0 and source.sequence:
            by_frame = training_neighbours(source.reader, source.train, args.baseline)
            for k, fid in enumerate(source.train):
                if fid in by_frame:
                    neighbours[first + k] = by_frame[fid].to(device)
    if args.photometric > 0:
        split.append(
            f"photometric: {len(neighbours)} of the training frames have neighbours "
            f"(camera moved >= {args.baseline} m)"
        )
    return TrainingData(
        samples=samples,
        ring_samples=ring_samples,
        ring_of=ring_of,
        tops=[first_row(t) for t in samples],
        ring_tops=[first_row(t) for t in ring_samples],
        neighbours=neighbours,
        validation=validation,
        split="; ".join(split),
    )
