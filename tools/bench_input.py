"""Images per second of the training input pipeline, with and without the pre-aligned crop cache.

For each setting of ``DATA.CACHE`` it times building the training set (with the cache: reading and aligning
every face once), then ``--passes`` passes over ``--items`` items through the configured augmentation
(``dataset[i]``: crop, augment, normalise), and, with ``--train-steps N``, N training steps of the config's
model through :class:`lotr_gluon.trainer.Trainer` (data + network, batch ``TRAIN.BATCH_SIZE``).

    python tools/bench_input.py --cfg experiments/datatang/lotr_m.yaml --train-steps 5 --json output/bench_input.json
"""
import argparse
import json
import os
import tempfile
import time
import warnings

from lotr_gluon.build import build_dataset
from lotr_gluon.config import load_config
from lotr_gluon.trainer import Trainer


def time_pipeline(cfg, items, passes):
    t0 = time.perf_counter()
    ds = build_dataset(cfg, "train", train=True)
    build_s = time.perf_counter() - t0
    n = min(items, len(ds)) if items else len(ds)
    t0 = time.perf_counter()
    for _ in range(passes):
        for i in range(n):
            ds[i]
    dt = time.perf_counter() - t0
    return {"faces": len(ds), "build_s": build_s, "items": n * passes, "data_images_per_s": n * passes / dt}


def time_training(cfg_file, opts, steps):
    """Training images/s over ``steps`` steps, after one untimed step (graph building, allocation)."""
    base = list(opts) + ["TRAIN.VAL_EVERY", "0", "TRAIN.EPOCHS", "1"]
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(load_config(cfg_file, base + ["TRAIN.MAX_STEPS", "1"]), out_dir=tmp, progress=False)
        tr.train_epoch(1)
        tr.cfg = load_config(cfg_file, base + ["TRAIN.MAX_STEPS", str(1 + steps)])
        t0 = time.perf_counter()
        tr.train_epoch(steps)
        dt = time.perf_counter() - t0
        done = tr.step - 1
    return {"train_steps": done, "train_images_per_s": done * tr.cfg.TRAIN.BATCH_SIZE / dt}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cfg", required=True)
    ap.add_argument("--items", type=int, default=200, help="items per pass (0 = the whole split)")
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=0, help="also time this many training steps")
    ap.add_argument("--json", default="", help="write the results here")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    rows = []
    for cache in (False, True):
        opts = list(args.opts) + ["DATA.CACHE", str(cache)]
        row = dict({"cache": cache}, **time_pipeline(load_config(args.cfg, opts), args.items, args.passes))
        if args.train_steps:
            row.update(time_training(args.cfg, opts, args.train_steps))
        rows.append(row)
        print("cache %-5s  build %.1f s (%d faces)  data %.1f images/s%s" % (
            cache, row["build_s"], row["faces"], row["data_images_per_s"],
            "  training %.2f images/s" % row["train_images_per_s"] if args.train_steps else ""), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"cfg": args.cfg, "rows": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
