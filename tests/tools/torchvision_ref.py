#!/usr/bin/python3
"""Reference tensors for tests/classify/test_image.c: torchvision's own preprocessing.

usage: torchvision_ref.py OUT_DIR IMAGE_DIR CASE...

CASE is NAME:RESIZE:CROP_H:CROP_W:MODE:MEAN:STD, e.g.
    std:256:224:224:RGB:0.485,0.456,0.406:0.229,0.224,0.225
MODE is RGB or L (PIL's convert("L"), one channel). For every *.jpg and
*.png in IMAGE_DIR and every case, writes OUT_DIR/NAME-FILE.npy (float32
CHW) holding

    Compose([Resize(RESIZE), CenterCrop((CROP_H, CROP_W)), ToTensor(),
             Normalize(MEAN, STD)])(Image.open(FILE).convert(MODE))

The C test defines the cases, so the two cannot drift apart.
"""
import glob
import os
import sys

import numpy as np
from PIL import Image
from torchvision import transforms


def floats(text):
    return [float(x) for x in text.split(",")]


def pipeline(case):
    name, resize, crop_h, crop_w, mode, mean, std = case.split(":")
    t = transforms.Compose([
        transforms.Resize(int(resize)),
        transforms.CenterCrop((int(crop_h), int(crop_w))),
        transforms.ToTensor(),
        transforms.Normalize(mean=floats(mean), std=floats(std)),
    ])
    return name, mode, t


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    out_dir, image_dir = argv[1], argv[2]
    cases = [pipeline(c) for c in argv[3:]]
    files = sorted(glob.glob(os.path.join(image_dir, "*.jpg")) +
                   glob.glob(os.path.join(image_dir, "*.png")))
    if not files:
        sys.exit(f"no images in {image_dir}")
    for path in files:
        with Image.open(path) as im:
            for name, mode, t in cases:
                x = t(im.convert(mode)).numpy().astype(np.float32)
                base = os.path.basename(path)
                np.save(os.path.join(out_dir, f"{name}-{base}.npy"), x)


if __name__ == "__main__":
    main(sys.argv)
