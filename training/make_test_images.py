"""The pictures the vision crate's tests read: synthetic, made here.

    python make_test_images.py ../crates/vision/tests/data

Three plate crops and two scenes (a plate on a drawn background, no
photograph), each named after the serial it shows.
"""
import os
import random
import sys

from PIL import Image, ImageDraw

import plates


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20261122)
    for serial in ("7ABC123", "8KXM402", "DRV5521"):
        # Clean enough that a working model must read them; degraded a little.
        plate, _, _ = plates.render_plate(rng, serial)
        crop = plate.resize((240, 120), Image.BILINEAR)
        crop.save(os.path.join(out, f"crop_{serial}.png"))
    for serial in ("6TRW918", "4PLN730"):
        scene = Image.new("RGB", (1280, 720), (90, 95, 100))
        d = ImageDraw.Draw(scene)
        for y in range(720):
            d.line((0, y, 1280, y), fill=(70 + y // 12, 80 + y // 14, 90 + y // 16))
        d.rounded_rectangle((300, 200, 980, 620), radius=60, fill=(150, 20, 25))  # a car's rear
        d.rectangle((380, 260, 900, 380), fill=(30, 30, 40))  # rear window
        plate, _, _ = plates.render_plate(rng, serial)
        plate = plate.resize((200, 100), Image.BILINEAR)
        scene.paste(plate, (540, 450))
        scene.save(os.path.join(out, f"scene_{serial}.jpg"), quality=90)
        with open(os.path.join(out, f"scene_{serial}.txt"), "w") as f:
            f.write(f"scene_{serial}.jpg\t540\t450\t200\t100\t{serial}\n")


if __name__ == "__main__":
    main(sys.argv[1])
