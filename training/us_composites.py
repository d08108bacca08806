"""Composite US road photos for an end-to-end check: held real US plate
crops pasted over the plate of held real road photos, at 1920x1080.

    python us_composites.py --crops $D/seg_and_ocr --photos $D/endtoend --out /tmp/us-composites
    platekeeper eval --dataset /tmp/us-composites

No US road photos are available here, and the issue's end-to-end targets
are set on them. These pictures are the nearest stand-in that is honest
about what it is: the plate pixels and the scenes are real, and neither
model trained on either (crops: CRC-32 odd; photos: CRC-32 mod 4 = 3);
the paste is not. The original plate is painted over the way the
detector's training scenes do it (`train_detector.cover_plate`), which
flatters the detector; figures from this set are reported as composites,
never as road photos.

A US plate is 305 mm wide; the photo's own plate (520 mm in Europe,
400 mm in Brazil) sets the scale, so the pasted plate is as large as a US
plate on that car would be. Every held crop is used once, the photos in
turn. Output: `NAME.jpg` and `NAME.txt` (`file x y w h plate`), the road-
photo layout `platekeeper eval` reads.

With `--small` (issue 27 item 4, the kind of photo the detector missed
most): frames 1280, 1600 and 1920 wide in turn (16:9), each pasted plate
40 to 90 pixels wide (drawn evenly from the crop's index), wherever the
photo's own plate was.
"""
import argparse
import os

from PIL import Image

import train_detector
import train_ocr

WIDTH, HEIGHT = 1920, 1080
PLATE_MM = {"eu": 520.0, "br": 400.0}
US_PLATE_MM = 305.0


def photos_of(root, part):
    """(path, region, box) of the labelled photos of `part` in a region with a known plate width."""
    return [
        (path, os.path.basename(os.path.dirname(path)), box)
        for path, box in train_detector.load_photos(root, part)
        if os.path.basename(os.path.dirname(path)) in PLATE_MM
    ]


def composite(photo, region, box, crop, frame=(WIDTH, HEIGHT), plate_w=None):
    WIDTH, HEIGHT = frame
    img = Image.open(photo).convert("RGB")
    # Fill the frame, then cut the 16:9 window that holds the plate.
    s = max(WIDTH / img.size[0], HEIGHT / img.size[1])
    img = img.resize((round(img.size[0] * s), round(img.size[1] * s)), Image.BICUBIC)
    bx, by, bw, bh = (v * s for v in box)
    ox = min(max(0, round(bx + bw / 2 - WIDTH / 2)), img.size[0] - WIDTH)
    oy = min(max(0, round(by + bh / 2 - HEIGHT / 2)), img.size[1] - HEIGHT)
    img = img.crop((ox, oy, ox + WIDTH, oy + HEIGHT))
    bx, by = bx - ox, by - oy
    train_detector.cover_plate(img, (bx, by, bw, bh))
    w = plate_w if plate_w else bw * US_PLATE_MM / PLATE_MM[region]
    h = w * crop.size[1] / crop.size[0]
    x, y = round(bx + bw / 2 - w / 2), round(by + bh / 2 - h / 2)
    w, h = max(1, round(w)), max(1, round(h))
    img.paste(crop.resize((w, h), Image.LANCZOS), (x, y))
    return img, (x, y, w, h)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crops", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true",
                    help="plates 40-90 px wide in frames 1280-1920 wide (the stand-in for small plates)")
    ap.add_argument("--part", choices=["held", "train"], default="held",
                    help="held: the reported set; train: crops and photos the models trained on, for tuning constants")
    a = ap.parse_args()
    photos = photos_of(a.photos, a.part)
    crops = train_ocr.load_real(a.crops)[a.part]
    if not photos or not crops:
        raise SystemExit(f"no {a.part} photos or crops found")
    os.makedirs(a.out, exist_ok=True)
    for i, (crop_path, plate) in enumerate(crops):
        photo, region, box = photos[i % len(photos)]
        crop = Image.open(crop_path).convert("RGB")
        if a.small:
            fw = (1280, 1600, 1920)[i % 3]
            img, (x, y, w, h) = composite(photo, region, box, crop, (fw, fw * 9 // 16), 40 + (i * 37) % 51)
        else:
            img, (x, y, w, h) = composite(photo, region, box, crop)
        name = f"us{i:03d}_{os.path.splitext(os.path.basename(crop_path))[0]}.jpg"
        img.save(os.path.join(a.out, name), quality=92)
        with open(os.path.join(a.out, name[:-4] + ".txt"), "w") as f:
            f.write(f"{name}\t{x}\t{y}\t{w}\t{h}\t{plate}\n")
    print(f"{len(crops)} composites from {len(photos)} {a.part} photos in {a.out}")


if __name__ == "__main__":
    main()
