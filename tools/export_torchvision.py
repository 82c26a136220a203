#!/usr/bin/python3
"""Export torchvision architectures to ONNX with PyTorch's own outputs.

Every model is built with weights=None (nothing is ever downloaded), seeded,
and its BatchNorm/LayerNorm parameters perturbed so that folding them into
convolutions is really exercised. The classifier is rescaled so the logits
are well spread, which keeps top-5 comparisons meaningful.

Per model NAME, writes into OUT/NAME/:
  model.onnx     opset 13, input "input" [N,3,224,224], output "logits" [N,1000]
  input.npy      float32 [4,3,224,224] (seeded normal)
  expected.npy   float32 [4,1000], torch's output on input.npy
  input1.npy     float32 [1,3,224,224] = input.npy[0:1]
  expected1.npy  float32 [1,1000], torch's output at batch 1
  ops.txt        the ONNX op types used, one per line

By default every BatchNormalization node is kept (TrainingMode.PRESERVE, the
model still in eval mode) so that the engine's own folding is what the tests
exercise; --fold-bn lets the exporter fold Conv+BatchNormalization pairs
itself (its eval-mode peephole pass), as a plain export does; use a separate
--out for that variant.

Run with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14, onnx 1.12).
"""

import argparse
import os
import sys
import time

import numpy as np
import onnx
import torch
import torchvision.models as tvm

# name -> (seed, builder). Seeds are fixed so every run exports the same model.
MODELS = {
    "resnet18": (101, lambda: tvm.resnet18(weights=None)),
    "resnet50": (102, lambda: tvm.resnet50(weights=None)),
    "mobilenet_v2": (103, lambda: tvm.mobilenet_v2(weights=None)),
    "mobilenet_v3_small": (104, lambda: tvm.mobilenet_v3_small(weights=None)),
    "efficientnet_b0": (105, lambda: tvm.efficientnet_b0(weights=None)),
    "squeezenet1_1": (106, lambda: tvm.squeezenet1_1(weights=None)),
    "shufflenet_v2_x1_0": (107, lambda: tvm.shufflenet_v2_x1_0(weights=None)),
    "densenet121": (108, lambda: tvm.densenet121(weights=None)),
    "googlenet": (109, lambda: tvm.googlenet(
        weights=None, aux_logits=False, init_weights=True,
        transform_input=False)),
    "regnet_y_400mf": (110, lambda: tvm.regnet_y_400mf(weights=None)),
    "convnext_tiny": (111, lambda: tvm.convnext_tiny(weights=None)),
    "efficientnet_v2_s": (112, lambda: tvm.efficientnet_v2_s(weights=None)),
    "resnext50_32x4d": (113, lambda: tvm.resnext50_32x4d(weights=None)),
    "mobilenet_v3_large": (114, lambda: tvm.mobilenet_v3_large(weights=None)),
}

BATCH = 4
INPUT_SEED = 20240611
LOGIT_STD = 4.0        # target spread of the logits after rescaling
MIN_REL_GAP = 1e-3     # top-5 neighbours must differ by this * logit std
MAX_RESEEDS = 20


def perturb_norms(model, gen):
    """Give every norm layer non-trivial statistics and affine parameters."""
    def u(t, lo, hi):
        return torch.rand(t.shape, generator=gen, dtype=t.dtype) * (hi - lo) + lo

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(u(m.running_mean, -0.2, 0.2))
                m.running_var.copy_(u(m.running_var, 0.5, 2.0))
                if m.affine:
                    m.weight.copy_(u(m.weight, 0.5, 1.5))
                    m.bias.copy_(u(m.bias, -0.2, 0.2))
            elif isinstance(m, torch.nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(u(m.weight, 0.5, 1.5))
                m.bias.copy_(u(m.bias, -0.2, 0.2))


def last_classifier(model):
    """The layer producing the logits: the last Linear, or squeezenet's conv."""
    last = None
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            last = m
    if last is None:  # squeezenet: Dropout, Conv2d(512,1000,1), ReLU, AvgPool
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                last = m
    return last


def top5_ok(logits):
    """True when each row's top-6 values are pairwise separated (relative)."""
    scale = float(np.std(logits))
    if not np.isfinite(logits).all() or scale == 0.0:
        return False, 0.0
    worst = np.inf
    for row in logits:
        top = np.sort(row)[::-1][:6]
        worst = min(worst, float(np.min(top[:-1] - top[1:])) / scale)
    return worst > MIN_REL_GAP, worst


def run(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy().astype(np.float32)


def prepare(name, seed, build, x):
    torch.manual_seed(seed)
    model = build()
    gen = torch.Generator().manual_seed(seed + 1000)
    perturb_norms(model, gen)
    model.eval()
    head = last_classifier(model)
    for attempt in range(MAX_RESEEDS):
        if attempt:  # reseed only the classifier head
            hgen = torch.Generator().manual_seed(seed * 100 + attempt)
            with torch.no_grad():
                w = head.weight
                w.copy_(torch.randn(w.shape, generator=hgen) * 0.01)
                if head.bias is not None:
                    head.bias.zero_()
        y = run(model, x)
        std = float(np.std(y))
        if np.isfinite(std) and std > 0:
            # Positively homogeneous in (W, b) even through squeezenet's ReLU.
            with torch.no_grad():
                k = LOGIT_STD / std
                head.weight.mul_(k)
                if head.bias is not None:
                    head.bias.mul_(k)
            y = run(model, x)
        ok, gap = top5_ok(y)
        if ok:
            return model, y, gap, attempt, LOGIT_STD / std
    raise RuntimeError("%s: no well-spread logits after %d reseeds"
                       % (name, MAX_RESEEDS))


def export_one(name, out_dir, force, keep_bn):
    seed, build = MODELS[name]
    d = os.path.join(out_dir, name)
    onnx_path = os.path.join(d, "model.onnx")
    needed = ["model.onnx", "input.npy", "expected.npy", "input1.npy",
              "expected1.npy", "ops.txt"]
    if not force and all(os.path.exists(os.path.join(d, f)) for f in needed):
        print("%-20s exists, skipped" % name, flush=True)
        return
    os.makedirs(d, exist_ok=True)
    t0 = time.time()
    rng = np.random.default_rng(INPUT_SEED)
    x = rng.standard_normal((BATCH, 3, 224, 224), dtype=np.float32)
    model, y, gap, reseeds, k = prepare(name, seed, build, x)
    x1 = np.ascontiguousarray(x[0:1])
    y1 = run(model, x1)

    tmp = onnx_path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            model, torch.from_numpy(x), tmp, opset_version=13,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
            do_constant_folding=True,
            training=(torch.onnx.TrainingMode.PRESERVE if keep_bn
                      else torch.onnx.TrainingMode.EVAL))
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    os.replace(tmp, onnx_path)

    np.save(os.path.join(d, "input.npy"), x)
    np.save(os.path.join(d, "expected.npy"), y)
    np.save(os.path.join(d, "input1.npy"), x1)
    np.save(os.path.join(d, "expected1.npy"), y1)
    with open(os.path.join(d, "ops.txt"), "w") as f:
        f.write("\n".join(ops) + "\n")
    diff1 = float(np.max(np.abs(y1[0] - y[0])))
    print("%-20s %5.1fs nodes=%d params=%.1fM head_scale=%.3g min_top5_gap=%.3g"
          " reseeds=%d |b1-b4|=%.2g ops=%s"
          % (name, time.time() - t0, len(m.graph.node),
             sum(p.numel() for p in model.parameters()) / 1e6,
             k, gap, reseeds, diff1, ",".join(ops)),
          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="build-models")
    ap.add_argument("--only", default="",
                    help="comma-separated subset of: " + ",".join(MODELS))
    ap.add_argument("--force", action="store_true",
                    help="re-export models that already exist")
    ap.add_argument("--fold-bn", action="store_true",
                    help="let the exporter fold BatchNormalization into Conv")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n] or list(MODELS)
    bad = [n for n in names if n not in MODELS]
    if bad:
        print("unknown model(s): %s" % ",".join(bad), file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.time()
    for n in names:
        export_one(n, args.out, args.force, not args.fold_bn)
    print("total %.1fs" % (time.time() - t0), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
