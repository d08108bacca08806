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

With `--two-cars` (the photos the detector missed often held a second
car): frames 1280-1920 wide, the photo's own plate replaced by a held
crop as large as a US plate on that car would be, and the back of a
second held photo's car pasted beside it, scaled so that its plate,
another held crop, is 40 to 90 pixels wide (car and plate scaled
together, so no painted-over plate shows around it, unlike `--small`);
two label lines per photo.
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
    w = plate_w if plate_w else bw * US_PLATE_MM / PLATE_MM[region]
    return img, put_plate(img, (bx, by, bw, bh), crop, w)


def put_plate(img, box, crop, w):
    """Paints over the plate at `box` and pastes `crop` `w` pixels wide,
    centred where it was: the pasted plate's box."""
    bx, by, bw, bh = box
    train_detector.cover_plate(img, box)
    h = w * crop.size[1] / crop.size[0]
    x, y = round(bx + bw / 2 - w / 2), round(by + bh / 2 - h / 2)
    w, h = max(1, round(w)), max(1, round(h))
    img.paste(crop.resize((w, h), Image.LANCZOS), (x, y))
    return (x, y, w, h)


def add_car(img, photo, region, box, crop, plate_w, away_from):
    """Pastes the back of the car of `photo` (the region around its
    plate, its plate replaced by `crop` `plate_w` pixels wide) into `img`,
    beside the car whose plate is at `away_from` and at about its height:
    the second plate's box."""
    car = Image.open(photo).convert("RGB")
    bx, by, bw, bh = box
    us_w = bw * US_PLATE_MM / PLATE_MM[region]
    # A car is about 3.5 European plates wide; its plate sits low on it.
    left, top = max(0, bx - 1.3 * bw), max(0, by - 1.6 * bw)
    right, bottom = min(car.size[0], bx + 2.3 * bw), min(car.size[1], by + bh + 0.6 * bw)
    car = car.crop((round(left), round(top), round(right), round(bottom)))
    plate = put_plate(car, (bx - round(left), by - round(top), bw, bh), crop, us_w)
    s = plate_w / us_w
    car = car.resize((max(1, round(car.size[0] * s)), max(1, round(car.size[1] * s))), Image.LANCZOS)
    px, py, pw, ph = (v * s for v in plate)
    ax, ay, aw, ah = away_from
    # The other half of the frame from the first plate, plate rows level
    # within a tenth of the frame's height.
    if ax + aw / 2 > img.size[0] / 2:
        cx = ax - img.size[0] * 0.3
    else:
        cx = ax + aw + img.size[0] * 0.3
    cy = ay + ah / 2 - img.size[1] * 0.1
    x = round(min(max(0, cx - px - pw / 2), img.size[0] - pw - px - 1))
    y = round(min(max(0, cy - py - ph / 2), img.size[1] - ph - py - 1))
    # The pasted car must not hide the first plate.
    if train_detector._overlaps((x, y, car.size[0], car.size[1]), away_from):
        x = round(ax + aw + 8) if ax + aw / 2 < img.size[0] / 2 else round(ax - car.size[0] - 8)
    img.paste(car, (x, y))
    return (round(px + x), round(py + y), round(pw), round(ph))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crops", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true",
                    help="plates 40-90 px wide in frames 1280-1920 wide (the stand-in for small plates)")
    ap.add_argument("--two-cars", action="store_true",
                    help="frames 1280-1920 wide with a near plate and a second, farther car's (40-90 px)")
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
        labels = []
        if a.small:
            fw = (1280, 1600, 1920)[i % 3]
            img, near = composite(photo, region, box, crop, (fw, fw * 9 // 16), 40 + (i * 37) % 51)
        elif a.two_cars:
            fw = (1280, 1600, 1920)[i % 3]
            img, near = composite(photo, region, box, crop, (fw, fw * 9 // 16))
            # The second car: another held photo, another held crop.
            photo2, region2, box2 = photos[(i * 7 + 3) % len(photos)]
            crop2_path, plate2 = crops[(i + len(crops) // 2) % len(crops)]
            far = add_car(img, photo2, region2, box2, Image.open(crop2_path).convert("RGB"),
                          40 + (i * 37) % 51, near)
            labels.append((far, plate2))
        else:
            img, near = composite(photo, region, box, crop)
        labels.insert(0, (near, plate))
        name = f"us{i:03d}_{os.path.splitext(os.path.basename(crop_path))[0]}.jpg"
        img.save(os.path.join(a.out, name), quality=92)
        with open(os.path.join(a.out, name[:-4] + ".txt"), "w") as f:
            for (x, y, w, h), text in labels:
                f.write(f"{name}\t{x}\t{y}\t{w}\t{h}\t{text}\n")
    print(f"{len(crops)} composites from {len(photos)} {a.part} photos in {a.out}")


if __name__ == "__main__":
    main()
