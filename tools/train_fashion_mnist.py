#!/usr/bin/python3
"""Train imgclassd's embedded default model: a small CNN on Fashion-MNIST.

Reads Debian's dataset-fashion-mnist from /usr/share/datasets/fashion-mnist
(IDX files, parsed here; nothing is downloaded), trains a seeded CNN on the
60,000 training images on the CPU and writes into OUT (default
models/fashion-mnist):

  model.onnx   opset 13, input "input" float32 [N,1,28,28] (N symbolic),
               output "logits" float32 [N,10] (raw logits, no Softmax)
  labels.txt   the 10 class names, one per line, in index order
  config.json  the daemon's model config (GRAY, stretch to 28x28,
               x = (pixel/255 - mean) / std)
  eval.json    accuracy of the exported weights on the 10,000 test images

The graph uses only Conv, BatchNormalization (folded by the exporter), Relu,
MaxPool, Flatten and Gemm.

Run with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14, onnx 1.12):
  /usr/bin/python3 tools/train_fashion_mnist.py [--out DIR] [--epochs E]
"""

import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# Train-set pixel statistics (of pixel/255), rounded; the script checks them
# against the data it reads. Training, evaluation and config.json all use
# exactly these two numbers.
MEAN = 0.2860
STD = 0.3530
SEED = 20240611
BATCH = 256
EVAL_BATCH = 1000


def read_idx(path, ndim):
    """Returns the uint8 array stored in a gzipped IDX file of ndim dims."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated header")
    zero, dtype, nd = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype != 0x08 or nd != ndim:
        raise ValueError(f"{path}: not a uint8 IDX file with {ndim} dims")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
                  for i in range(ndim))
    off = 4 + 4 * ndim
    if len(data) - off != int(np.prod(shape)):
        raise ValueError(f"{path}: {len(data) - off} bytes of data for "
                         f"shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=off).reshape(shape)


def load_split(name):
    """Returns (images uint8 [n,28,28], labels uint8 [n]) of 'train'/'t10k'."""
    x = read_idx(os.path.join(DATA_DIR, f"{name}-images-idx3-ubyte.gz"), 3)
    y = read_idx(os.path.join(DATA_DIR, f"{name}-labels-idx1-ubyte.gz"), 1)
    if x.shape[0] != y.shape[0] or x.shape[1:] != (28, 28) or y.max() > 9:
        raise ValueError(f"{name}: inconsistent images/labels")
    return x, y


def normalize(pixels):
    """uint8 [n,28,28] -> float32 tensor [n,1,28,28], (p/255 - MEAN)/STD."""
    x = torch.from_numpy(pixels.astype(np.float32) / np.float32(255.0))
    return ((x - MEAN) / STD).unsqueeze(1)


def make_model():
    """Conv-BN-ReLU-MaxPool stages 28->14->7, two convs at 7x7, pool to 3x3,
    one Gemm: 66k weights, 3.7 M multiply-adds per image."""
    def conv(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    pool = nn.MaxPool2d
    return nn.Sequential(*conv(1, 16), pool(2),     # 16 x 14 x 14
                         *conv(16, 32), pool(2),    # 32 x 7 x 7
                         *conv(32, 64),
                         *conv(64, 64), pool(2),    # 64 x 3 x 3
                         nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(64 * 3 * 3, 10))


def evaluate(model, x, y):
    """Top-1 accuracy of model (already in eval mode) on x [n,1,28,28]."""
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_BATCH):
            pred = model(x[i:i + EVAL_BATCH]).argmax(1)
            correct += int((pred == y[i:i + EVAL_BATCH]).sum())
    return correct / x.shape[0]


def onnx_logits(proto, x):
    """Runs the exported graph itself with torch.nn.functional, on x.

    Covers the operators this script's exports contain (plus the few a
    variant could add); anything else is an error, so a surprise in the
    export is caught here and not in the daemon."""
    env = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy())
           for t in proto.graph.initializer}
    env[proto.graph.input[0].name] = x
    for node in proto.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at)
             for at in node.attribute}
        i = [env[n] for n in node.input if n]
        op = node.op_type
        if op in ("Conv", "MaxPool", "AveragePool"):
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if pads[:2] != pads[2:]:
                raise ValueError(f"{node.name}: asymmetric pads {pads}")
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ValueError(f"{node.name}: auto_pad")
        if op == "Conv":
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None,
                         stride=a.get("strides", 1), padding=pads[:2],
                         dilation=a.get("dilations", 1),
                         groups=a.get("group", 1))
        elif op == "MaxPool":
            y = F.max_pool2d(i[0], a["kernel_shape"],
                             a.get("strides", a["kernel_shape"]), pads[:2],
                             a.get("dilations", 1), bool(a.get("ceil_mode")))
        elif op == "AveragePool":
            y = F.avg_pool2d(i[0], a["kernel_shape"],
                             a.get("strides", a["kernel_shape"]), pads[:2],
                             bool(a.get("ceil_mode")),
                             bool(a.get("count_include_pad")))
        elif op == "GlobalAveragePool":
            y = i[0].mean((2, 3), keepdim=True)
        elif op == "BatchNormalization":
            y = F.batch_norm(i[0], i[3], i[4], i[1], i[2], False, 0.0,
                             a.get("epsilon", 1e-5))
        elif op == "Relu":
            y = F.relu(i[0])
        elif op == "Add":
            y = i[0] + i[1]
        elif op in ("Identity", "Dropout"):
            y = i[0]
        elif op == "Flatten":
            y = i[0].flatten(a.get("axis", 1))
        elif op == "Gemm":
            m_a = i[0].t() if a.get("transA") else i[0]
            m_b = i[1].t() if a.get("transB") else i[1]
            y = a.get("alpha", 1.0) * (m_a @ m_b)
            if len(i) > 2:
                y = y + a.get("beta", 1.0) * i[2]
        elif op == "MatMul":
            y = i[0] @ i[1]
        else:
            raise ValueError(f"{node.name}: operator {op} not expected")
        env[node.output[0]] = y
    return env[proto.graph.output[0].name]


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--lr", type=float, default=4e-3, help="peak learning rate")
    args = ap.parse_args()

    t0 = time.time()
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)

    train_px, train_y = load_split("train")
    test_px, test_y = load_split("t10k")
    mean = float(train_px.mean()) / 255.0
    std = float((train_px.astype(np.float64) / 255.0).std())
    print(f"train {train_px.shape[0]} test {test_px.shape[0]}; "
          f"train mean {mean:.4f} std {std:.4f}", flush=True)
    if abs(mean - MEAN) > 1e-3 or abs(std - STD) > 1e-3:
        sys.exit(f"train-set statistics {mean:.4f}/{std:.4f} differ from "
                 f"MEAN/STD {MEAN}/{STD}")

    x_train = normalize(train_px).contiguous(memory_format=torch.channels_last)
    y_train = torch.from_numpy(train_y.astype(np.int64))
    x_test = normalize(test_px)
    y_test = torch.from_numpy(test_y.astype(np.int64))

    model = make_model().to(memory_format=torch.channels_last)
    steps_per_epoch = (x_train.shape[0] + BATCH - 1) // BATCH
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.epochs,
        steps_per_epoch=steps_per_epoch, pct_start=0.25)
    order_gen = torch.Generator().manual_seed(SEED)  # data order and flips

    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(x_train.shape[0], generator=order_gen)
        flip = torch.rand(x_train.shape[0], generator=order_gen) < 0.5
        total_loss = 0.0
        for i in range(steps_per_epoch):
            idx = perm[i * BATCH:(i + 1) * BATCH]
            xb = x_train[idx]
            fb = flip[idx]
            xb[fb] = xb[fb].flip(3)  # random horizontal flip
            loss = F.cross_entropy(model(xb), y_train[idx],
                                   label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss) * idx.shape[0]
        model.eval()
        acc = evaluate(model, x_test, y_test)
        print(f"epoch {epoch + 1}/{args.epochs}: loss "
              f"{total_loss / x_train.shape[0]:.4f} test acc {acc:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)

    # Export the eval-mode model in the default memory format.
    model = model.to(memory_format=torch.contiguous_format).eval()
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "model.onnx")
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), onnx_path,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=13, do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL)
    proto = onnx.load(onnx_path)
    onnx.checker.check_model(proto)
    ops = sorted({n.op_type for n in proto.graph.node})
    n_weights = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    print(f"exported {onnx_path}: {os.path.getsize(onnx_path)} bytes, "
          f"{n_weights} weights, ops {' '.join(ops)}", flush=True)

    # Accuracy of the exported weights: the same eval-mode model, the same
    # uint8 test pixels normalized as the daemon does.
    acc = evaluate(model, x_test, y_test)
    # The exported graph, run op by op, must give the model's logits.
    with torch.no_grad():
        diff = max(float((onnx_logits(proto, x_test[i:i + EVAL_BATCH]) -
                          model(x_test[i:i + EVAL_BATCH])).abs().max())
                   for i in range(0, x_test.shape[0], EVAL_BATCH))
    print(f"exported graph vs model: max |logit difference| {diff:.2e}")
    if diff > 1e-3:
        sys.exit("the exported graph does not reproduce the model")
    print(f"test accuracy {acc:.4f} on {x_test.shape[0]} images "
          f"({time.time() - t0:.0f} s total)", flush=True)

    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("\n".join(LABELS) + "\n")
    write_json(os.path.join(args.out, "config.json"), {
        "model": "model.onnx",
        "labels": "labels.txt",
        "version": "1",
        "preprocess": {"resize": "stretch", "antialias": False,
                       "crop": "none", "scale": 1.0 / 255.0,
                       "mean": MEAN, "std": STD, "channel_order": "GRAY"},
        "max_batch_size": 32,
        "max_queue_delay_us": 2000,
        "instances": 1,
        "threads": 1,
        "queue_capacity": 256,
        "top_k": 3,
        "timeout_ms": 5000,
    })
    write_json(os.path.join(args.out, "eval.json"), {
        "test_images": int(x_test.shape[0]),
        "test_accuracy": round(acc, 4),
        "pytorch": torch.__version__,
        "seed": SEED,
        "epochs": args.epochs,
    })


if __name__ == "__main__":
    main()
