#!/usr/bin/python3
"""Make the images that bench/serve_bench.sh posts, at run time.

  /usr/bin/python3 bench/make_photo.py OUTDIR [--photo PATH] [--width 640]
      [--height 480] [--quality 90] [--mnist-dir DIR] [--mnist-index 0]

Writes into OUTDIR (never into the repository):

  photo.jpg   a real photo (default ../shared/imagenet/images/cat.jpg),
              centre-cropped to the width:height aspect and resized with
              PIL's bicubic filter to WIDTHxHEIGHT (default 640x480), RGB,
              baseline JPEG at --quality (default 90, 4:2:0), no EXIF;
  digit.png   a 28x28 8-bit grayscale PNG: test image --mnist-index of
              Debian's dataset-fashion-mnist (t10k-images-idx3-ubyte.gz
              in --mnist-dir, default /usr/share/datasets/fashion-mnist),
              or, when that file is missing, the photo in grayscale
              stretched to 28x28.

Prints one "name: path WxH bytes" line per file. Needs Pillow (Debian's
python3-pil); numpy is not needed.
"""

import argparse
import gzip
import os
import sys

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PHOTO = os.path.join(HERE, "..", "..", "shared", "imagenet", "images",
                             "cat.jpg")
DEFAULT_MNIST = "/usr/share/datasets/fashion-mnist"


def crop_to_aspect(im, width, height):
    """Largest centred crop of im with the aspect width:height."""
    w, h = im.size
    if w * height > h * width:          # too wide
        cw, ch = h * width // height, h
    else:                               # too tall
        cw, ch = w, w * height // width
    left, top = (w - cw) // 2, (h - ch) // 2
    return im.crop((left, top, left + cw, top + ch))


def mnist_image(path, index):
    """The index-th 28x28 image of a gzipped IDX3 file, as a PIL image."""
    with gzip.open(path, "rb") as f:
        head = f.read(16)
        if len(head) != 16 or head[:4] != b"\x00\x00\x08\x03":
            raise ValueError(f"{path}: not a uint8 IDX3 file")
        n, rows, cols = (int.from_bytes(head[4 * i:4 * i + 4], "big")
                         for i in (1, 2, 3))
        if not 0 <= index < n:
            raise ValueError(f"{path}: index {index} outside 0..{n - 1}")
        f.seek(16 + index * rows * cols)
        data = f.read(rows * cols)
    if len(data) != rows * cols:
        raise ValueError(f"{path}: truncated")
    return Image.frombytes("L", (cols, rows), data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--photo", default=DEFAULT_PHOTO)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--mnist-dir", default=DEFAULT_MNIST)
    ap.add_argument("--mnist-index", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.outdir, exist_ok=True)

    with Image.open(args.photo) as src:
        rgb = src.convert("RGB")
    photo = crop_to_aspect(rgb, args.width, args.height).resize(
        (args.width, args.height), Image.BICUBIC)
    jpg = os.path.join(args.outdir, "photo.jpg")
    photo.save(jpg, "JPEG", quality=args.quality, subsampling="4:2:0",
               optimize=False, progressive=False)

    idx = os.path.join(args.mnist_dir, "t10k-images-idx3-ubyte.gz")
    if os.path.exists(idx):
        digit, origin = mnist_image(idx, args.mnist_index), \
            f"fashion-mnist test image {args.mnist_index}"
    else:
        digit, origin = rgb.convert("L").resize((28, 28), Image.BILINEAR), \
            f"{os.path.basename(args.photo)} in grayscale ({idx} missing)"
    png = os.path.join(args.outdir, "digit.png")
    digit.save(png, "PNG")

    for name, path, im in (("photo", jpg, photo), ("digit", png, digit)):
        print(f"{name}: {path} {im.size[0]}x{im.size[1]} "
              f"{os.path.getsize(path)} bytes")
    print(f"photo_source: {os.path.realpath(args.photo)}")
    print(f"digit_source: {origin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
