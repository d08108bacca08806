"""Synthetic US licence plates: the renderer both training scripts share.

Every plate is drawn from scratch (fonts installed by `setup.sh`, colours,
layouts and state formats below); no real plate image is used here.
"""
import math
import random
import string

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Letters of a layout serial are drawn at these weights: many states leave
# I, O and Q out of standard serials, and among the 369 training crops'
# plates they occur at 0.28, 0.53 and 0.36 of an average letter's rate
# (the labels write a round glyph between digits as zero: 152 zeros, 11 O).
SERIAL_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SERIAL_LETTER_WEIGHTS = [0.3 if c in "IOQ" else 1.0 for c in SERIAL_LETTERS]

FONT_DIRS = [
    "/usr/share/fonts/truetype",
    "/usr/share/fonts/opentype",
]

# Serial formats: `#` a digit, `@` a letter. Weights favour California
# (the agencies' state) while keeping the other common US layouts.
FORMATS = [
    ("#@@@###", 6), ("@@@####", 3), ("@@@###", 2), ("###@@@", 2),
    ("#@@####", 1), ("@@#####", 1), ("###@###", 1), ("@@@@###", 1),
    ("##@@##", 1), ("@#####", 1), ("#####@", 1), ("###@@", 1),
    ("@@@@##", 1), ("#@#####", 1), ("######", 1), ("@@@@@##", 1),
    ("####@@", 1), ("@##@@@", 1), ("#@@@##", 1), ("@@###@", 1),
]

STATES = [
    "California", "Nevada", "Arizona", "Oregon", "Washington", "Texas",
    "Florida", "New York", "New Jersey", "Virginia", "Illinois", "Ohio",
    "Georgia", "Alabama", "Alaska", "Hawaii", "Idaho", "Utah", "Colorado",
    "Maryland", "Michigan", "Minnesota", "Wisconsin", "Iowa", "Kansas",
    "Kentucky", "Louisiana", "Maine", "Massachusetts", "Missouri", "Montana",
    "Nebraska", "New Mexico", "North Carolina", "Oklahoma", "Pennsylvania",
    "Rhode Island", "South Carolina", "Tennessee", "Vermont", "Wyoming",
    "Delaware", "Indiana", "Arkansas", "Mississippi", "Connecticut",
    "New Hampshire", "North Dakota", "South Dakota", "West Virginia",
    "District of Columbia",
]

SLOGANS = [
    "dmv.ca.gov", "Sunshine State", "Land of Lincoln", "Great Lakes",
    "Live Free or Die", "Garden State", "Empire State", "The Silver State",
    "Grand Canyon State", "Famous Potatoes", "Taxation without Representation",
    "Aloha State", "Sportsman's Paradise", "America's Dairyland", "10,000 Lakes",
    "First in Flight", "Virginia is for Lovers", "Heart of Dixie", "Lone Star",
    "Peach State", "Keep Florida Green", "The Last Frontier", "Ocean State",
    "Show Me State", "Centennial", "Greatest Snow on Earth", "Wild Wonderful",
    "Vacationland", "Treasure State", "Big Sky", "Land of Enchantment",
    "Bluegrass State", "Mount Rushmore", "Beehive State", "Life Elevated",
]


def _fonts():
    import glob
    bold, regular = [], []
    for d in FONT_DIRS:
        for f in glob.glob(d + "/**/*.[ot]tf", recursive=True):
            name = f.lower()
            if "italic" in name or "oblique" in name:
                continue
            if "bold" in name or "black" in name or "heavy" in name:
                bold.append(f)
            else:
                regular.append(f)
    if not bold:
        raise SystemExit("no bold fonts found: run training/setup.sh first")
    return sorted(bold), sorted(regular + bold)


BOLD_FONTS, ANY_FONTS = _fonts()

# Typefaces near the state dies (issue 27 item 3): DIN-like, geometric and
# condensed grotesques, from Debian packages `setup.sh` installs. A serial
# is drawn in one of them at DIE_SHARE, in any bold font otherwise.
DIE_FONT_NAMES = {
    "OSP-DIN.ttf", "LeagueSpartan-Bold.otf", "LeagueSpartan-SemiBold.otf",
    "Inter-SemiBold.otf", "Inter-Bold.otf", "B612-Bold.otf",
    "NimbusSansNarrow-Bold.otf", "RobotoCondensed-Bold.ttf",
    "DejaVuSansCondensed-Bold.ttf", "LiberationSansNarrow-Bold.ttf",
}
DIE_FONTS = sorted({f for f in ANY_FONTS if f.rsplit("/", 1)[-1] in DIE_FONT_NAMES})
DIE_SHARE = 0.5
# Shares of plates with a frame reaching over the serial's lower edge, and
# of pictures taken by night in infrared.
FRAME_OVER_SERIAL = 0.08
INFRARED = 0.12


def random_serial(rng: random.Random) -> str:
    if rng.random() < 0.12:
        n = rng.randint(2, 8)
        return "".join(rng.choice(ALPHABET) for _ in range(n))
    fmts, weights = zip(*FORMATS)
    fmt = rng.choices(fmts, weights=weights)[0]
    out = []
    for c in fmt:
        if c == "#":
            out.append(rng.choice("0123456789"))
        else:
            out.append(rng.choices(SERIAL_LETTERS, weights=SERIAL_LETTER_WEIGHTS)[0])
    return "".join(out)


def _colour(rng, light: bool):
    if light:
        base = rng.choice([(250, 250, 250), (245, 240, 225), (230, 238, 248),
                           (250, 240, 200), (235, 235, 235), (240, 250, 240),
                           (255, 255, 255), (220, 230, 240)])
    else:
        base = rng.choice([(20, 30, 90), (15, 15, 20), (10, 60, 30),
                           (90, 15, 20), (40, 40, 45), (200, 160, 20),
                           (30, 80, 150)])
    return tuple(max(0, min(255, c + rng.randint(-15, 15))) for c in base)


def _ink(rng, bg_light: bool):
    if bg_light:
        return rng.choice([(20, 30, 110), (150, 20, 25), (15, 15, 15),
                           (10, 70, 30), (90, 20, 60), (30, 30, 90),
                           (0, 60, 140)])
    return rng.choice([(250, 250, 250), (240, 200, 30), (230, 230, 200)])


def _text_layer(text, font_path, height_px, spacing, rng):
    """Text drawn char by char, so spacing and gaps vary like real dies."""
    font = ImageFont.truetype(font_path, 96)
    glyphs = []
    for ch in text:
        if ch == " ":
            glyphs.append(None)
            continue
        box = font.getbbox(ch)
        w, h = box[2] - box[0], box[3] - box[1]
        g = Image.new("L", (w + 4, h + 4), 0)
        ImageDraw.Draw(g).text((2 - box[0], 2 - box[1]), ch, font=font, fill=255)
        glyphs.append(g)
    cap = max(g.size[1] for g in glyphs if g is not None)
    gap = int(cap * spacing)
    total = sum((g.size[0] if g else cap // 2) + gap for g in glyphs) - gap
    layer = Image.new("L", (max(total, 1), cap), 0)
    x = 0
    for g in glyphs:
        if g is None:
            x += cap // 2 + gap
            continue
        layer.paste(g, (x, cap - g.size[1]))
        x += g.size[0] + gap
    return layer


def _scenery(draw, w, h, rng):
    for _ in range(rng.randint(0, 4)):
        col = tuple(rng.randint(80, 255) for _ in range(3))
        kind = rng.random()
        if kind < 0.4:
            pts = [(0, h)] + [(x, rng.randint(int(h * 0.3), h)) for x in range(0, w + 40, 40)] + [(w, h)]
            draw.polygon(pts, fill=col)
        elif kind < 0.7:
            r = rng.randint(10, 60)
            cx, cy = rng.randint(0, w), rng.randint(0, h)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=col)
        else:
            y = rng.randint(0, h)
            draw.rectangle((0, y, w, y + rng.randint(4, 30)), fill=col)


def render_plate(rng: random.Random, text: str | None = None):
    """A flat, front-on plate: (RGB image 2:1, serial, state name)."""
    W, H = 400, 200
    light = rng.random() < 0.82
    bg = _colour(rng, light)
    img = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(img)
    if light and rng.random() < 0.45:
        # Pale scenery behind the characters, as on many graphic plates.
        scen = Image.new("RGB", (W, H), bg)
        _scenery(ImageDraw.Draw(scen), W, H, rng)
        img = Image.blend(img, scen, rng.uniform(0.15, 0.45))
        d = ImageDraw.Draw(img)
    if rng.random() < 0.35:
        band = _ink(rng, True) if light else _colour(rng, True)
        d.rectangle((0, 0, W, rng.randint(25, 50)), fill=band)
    ink = _ink(rng, light)
    state = rng.choice(STATES)
    serial = text if text is not None else random_serial(rng)

    # Header: the state name.
    head_font = ImageFont.truetype(rng.choice(ANY_FONTS), rng.randint(26, 44))
    head = state if rng.random() < 0.5 else state.upper()
    hw = d.textlength(head, font=head_font)
    hx = (W - hw) / 2 + rng.randint(-20, 20)
    hcol = _ink(rng, light) if rng.random() < 0.6 else ink
    d.text((hx, rng.randint(4, 18)), head, font=head_font, fill=hcol)

    # Footer: a slogan or website.
    if rng.random() < 0.75:
        foot_font = ImageFont.truetype(rng.choice(ANY_FONTS), rng.randint(18, 30))
        foot = rng.choice(SLOGANS)
        fw = d.textlength(foot, font=foot_font)
        d.text(((W - fw) / 2 + rng.randint(-15, 15), H - rng.randint(34, 44)),
               foot, font=foot_font, fill=_ink(rng, light))

    # The serial: tall, often condensed, sometimes split into two groups.
    shown = serial
    if len(serial) >= 5 and rng.random() < 0.3:
        cut = rng.randint(2, len(serial) - 2)
        shown = serial[:cut] + " " + serial[cut:]
    serial_font = rng.choice(DIE_FONTS if DIE_FONTS and rng.random() < DIE_SHARE else BOLD_FONTS)
    layer = _text_layer(shown, serial_font, 100, rng.uniform(0.02, 0.25), rng)
    th = int(H * rng.uniform(0.36, 0.52))
    # A plate with a mark beside the serial leaves it room, the serial
    # often pushed to the other side.
    mark = rng.random() < 0.45
    widest = rng.uniform(0.5, 0.8) if mark else rng.uniform(0.62, 0.94)
    tw = int(min(W * widest, layer.size[0] * th / layer.size[1] * rng.uniform(0.7, 1.25)))
    layer = layer.resize((max(tw, 8), max(th, 8)), Image.BILINEAR)
    tx = (W - tw) // 2 + rng.randint(-12, 12)
    if mark:
        tx += int((W - tw) / 2 * rng.uniform(-0.6, 0.6))
    ty = (H - th) // 2 + rng.randint(-6, 12)
    if rng.random() < 0.2:
        # Embossed shadow.
        img.paste((0, 0, 0), (tx + 3, ty + 3), layer.point(lambda v: v // 3))
    img.paste(ink, (tx, ty), layer)
    if mark:
        _side_mark(img, rng, (tx, ty, tx + tw, ty + th), W, ink, light, serial_font)

    # Stickers in the corners; bolt holes; a border.
    for _ in range(rng.randint(0, 2)):
        sw, sh = rng.randint(30, 60), rng.randint(18, 34)
        sx = rng.choice([rng.randint(4, 50), rng.randint(W - 110, W - sw - 4)])
        sy = rng.choice([rng.randint(4, 30), rng.randint(H - 60, H - sh - 4)])
        d.rectangle((sx, sy, sx + sw, sy + sh), fill=tuple(rng.randint(0, 255) for _ in range(3)))
        f = ImageFont.truetype(rng.choice(ANY_FONTS), sh - 8)
        d.text((sx + 3, sy + 2), rng.choice(["JUL", "2027", "MAR", "26", "CA", "DEC"]), font=f, fill=(0, 0, 0))
    if rng.random() < 0.6:
        for bx in (W * 0.22, W * 0.78):
            for by in (H * 0.12, H * 0.88):
                if rng.random() < 0.5:
                    d.ellipse((bx - 6, by - 4, bx + 6, by + 4), fill=(90, 90, 90))
    if rng.random() < 0.5:
        d.rounded_rectangle((3, 3, W - 4, H - 4), radius=14, outline=ink, width=rng.randint(2, 6))
    if rng.random() < 0.3:
        # A dealer frame over the bottom (and sometimes the top) text.
        fc = rng.choice([(10, 10, 10), (180, 180, 185), (120, 20, 20)])
        d.rectangle((0, H - rng.randint(20, 40), W, H), fill=fc)
        if rng.random() < 0.4:
            d.rectangle((0, 0, W, rng.randint(12, 30)), fill=fc)
    if rng.random() < FRAME_OVER_SERIAL:
        # A deep dealer surround hiding the serial's feet (the label keeps
        # every character: they are still legible to a person).
        fc = rng.choice([(10, 10, 10), (180, 180, 185), (40, 40, 90)])
        d.rectangle((0, int(ty + th * rng.uniform(0.84, 0.93)), W, H), fill=fc)
    return img, serial, state


def _side_mark(img, rng, serial_box, W, ink, light, font_path):
    """Something beside the serial that is not part of it: small stacked
    characters (a plate type or county code, sometimes turned on its side),
    a tiny word, or an emblem (a seal, a college or team logo, "DONATE
    LIFE"). Real crops had such marks read as one or two extra first or
    last characters, most often when the mark stood close to the serial,
    in its ink and die, or was a many-coloured picture."""
    d = ImageDraw.Draw(img)
    x0, y0, x1, y1 = serial_box
    left_room, right_room = x0 - 4, W - 4 - x1
    side = "left" if left_room >= right_room or rng.random() < 0.25 else "right"
    room = left_room if side == "left" else right_room
    if room < 12:
        return
    mh = y1 - y0
    kind = rng.random()
    wide = kind >= 0.55
    mw = min(room - 2, int(mh * (rng.uniform(0.6, 1.3) if wide else rng.uniform(0.25, 0.6))))
    if mw < 6:
        return
    # Usually right beside the serial, as on real plates.
    gap = int(mh * rng.uniform(0.03, 0.15)) if rng.random() < 0.7 else rng.randint(0, max(0, room - mw - 2))
    gap = min(gap, max(0, room - mw - 2))
    mx = x0 - gap - mw if side == "left" else x1 + gap
    col = ink if rng.random() < 0.7 else _ink(rng, light)
    if kind < 0.3:
        # Two or three characters stacked in a column, often in the
        # serial's own die.
        n = rng.randint(2, 3)
        size = max(8, int(mh / n * rng.uniform(0.8, 1.0)))
        path = font_path if rng.random() < 0.6 else rng.choice(ANY_FONTS)
        # No wider than the room beside the serial.
        f = _font_fitting(path, size, 8, ["W"], mw)
        letters = rng.choices(string.ascii_uppercase + string.digits, k=n)
        for i, ch in enumerate(letters):
            d.text((mx, y0 + i * mh / n), ch, font=f, fill=col)
    elif kind < 0.42:
        # A short word turned on its side ("DLR", "TRUCK").
        word = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(2, 5)))
        f = ImageFont.truetype(rng.choice(ANY_FONTS), max(8, int(mw * 0.9)))
        tw = int(d.textlength(word, font=f)) + 4
        t = Image.new("L", (tw, int(mw * 1.3) + 4), 0)
        ImageDraw.Draw(t).text((2, 0), word, font=f, fill=255)
        t = t.rotate(90, expand=True)
        if t.size[1] > mh:
            t = t.resize((max(1, t.size[0] * mh // t.size[1]), mh))
        img.paste(col, (mx, y0 + (mh - t.size[1]) // 2), t)
    elif kind < 0.55:
        # One small character, well below the serial's height.
        size = max(8, int(mh * rng.uniform(0.25, 0.5)))
        f = ImageFont.truetype(rng.choice(ANY_FONTS), size)
        d.text((mx, y0 + rng.uniform(0, mh - size)), rng.choice(string.ascii_uppercase + string.digits),
               font=f, fill=col)
    else:
        _emblem(img, rng, (mx, y0 + int(mh * rng.uniform(-0.1, 0.15)), mw, int(mh * rng.uniform(0.7, 1.1))),
                col, light)


def _font_fitting(path, size, smallest, texts, width):
    """The font at `size`, or smaller (down to `smallest`), in which every
    one of `texts` is at most `width` wide."""
    f = ImageFont.truetype(path, size)
    while size > smallest and max(f.getlength(t) for t in texts) > width:
        size -= 1
        f = ImageFont.truetype(path, size)
    return f


def _emblem(img, rng, box, col, light):
    """A small picture: a filled outline (disc, shield, box) holding a few
    shapes in other colours and often a word or two in small type. Drawn
    on its own layer, so nothing spills over the serial beside it (a
    character covered while its label keeps it would teach the model to
    invent characters)."""
    x, y, w, h = box
    layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    shape = rng.random()
    base = col if rng.random() < 0.4 else tuple(rng.randint(0, 255) for _ in range(3))
    outline = rng.random() < 0.4
    fill = None if outline else base
    width = max(1, w // 12)
    if shape < 0.35:
        d.ellipse((0, 0, w - 1, h - 1), fill=fill, outline=base, width=width)
    elif shape < 0.6:
        d.polygon([(0, 0), (w - 1, 0), (w - 1, h * 0.65), (w / 2, h - 1), (0, h * 0.65)],
                  fill=fill, outline=base)
    elif shape < 0.85:
        d.rounded_rectangle((0, 0, w - 1, h - 1), radius=max(1, w // 6), fill=fill, outline=base, width=width)
    # else: no frame, the shapes alone (a bird, a skyline)
    for _ in range(rng.randint(1, 5)):
        c = tuple(rng.randint(0, 255) for _ in range(3))
        ax, ay = rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7)
        bx, by = ax + rng.uniform(w * 0.15, w * 0.6), ay + rng.uniform(h * 0.15, h * 0.6)
        what = rng.random()
        if what < 0.35:
            d.ellipse((ax, ay, bx, by), fill=c)
        elif what < 0.7:
            pts = [(rng.uniform(0, w), rng.uniform(0, h)) for _ in range(rng.randint(3, 6))]
            d.polygon(pts, fill=c)
        else:
            d.line((ax, ay, bx, by), fill=c, width=max(1, w // rng.randint(6, 14)))
    if rng.random() < 0.55:
        words = rng.choice(["DONATE LIFE", "USA", "GO", "UNC", "ARMY", "NAVY", "FOP", "K9", "VET",
                            "SAVE", "PARKS", "UNIV", "OHIO", "FIRE", "4-H"]).split()
        size = max(6, int(h / (len(words) + 1.5)))
        f = _font_fitting(rng.choice(ANY_FONTS), size, 6, words, 0.9 * w)
        tc = tuple(rng.randint(0, 255) for _ in range(3)) + (255,)
        for i, wd in enumerate(words):
            tw = d.textlength(wd, font=f)
            d.text(((w - tw) / 2, h * 0.15 + i * f.size * 1.1), wd, font=f, fill=tc)
    img.paste(layer, (x, y), layer)


def _perspective_coeffs(src, dst):
    m = []
    for (x, y), (u, v) in zip(dst, src):
        m.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        m.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(m, dtype=np.float64)
    b = np.array(src, dtype=np.float64).reshape(8)
    return np.linalg.solve(a, b)


def degrade(img: Image.Image, rng: random.Random) -> Image.Image:
    """Camera effects: resolution loss, blur, noise, light, JPEG."""
    w, h = img.size
    if rng.random() < 0.8:
        s = rng.uniform(0.12, 0.8)
        small = img.resize((max(8, int(w * s)), max(4, int(h * s))), Image.BILINEAR)
        img = small.resize((w, h), Image.BILINEAR)
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 2.2)))
    if rng.random() < 0.15:
        k = rng.choice([3, 5])
        img = img.filter(ImageFilter.BoxBlur(k // 2))
    a = np.asarray(img).astype(np.float32)
    # Light: contrast, brightness, gamma, colour cast.
    a = (a - 128) * rng.uniform(0.45, 1.3) + 128 + rng.uniform(-60, 45)
    a = a * np.array([rng.uniform(0.8, 1.2) for _ in range(3)], dtype=np.float32)
    ir = rng.random()
    if ir < 0.2:
        # Night: dark with an IR-like flat look.
        g = a.mean(axis=2, keepdims=True)
        a = np.repeat(g, 3, axis=2) * rng.uniform(0.25, 0.6)
    elif ir < 0.2 + INFRARED:
        # Night infrared: grey, the retroreflective sheeting near white and
        # the ink dark (high contrast), the brightest parts blooming over
        # the strokes beside them.
        g = a.mean(axis=2)
        g = np.clip((g - g.mean()) * rng.uniform(1.4, 2.4) + rng.uniform(150, 215), 0, 255)
        glow = Image.fromarray(np.clip((g - 190) * 4, 0, 255).astype(np.uint8))
        glow = glow.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 3.5) * max(w, 64) / 256))
        g = g + np.asarray(glow, dtype=np.float32) * rng.uniform(0.2, 0.7)
        a = np.repeat(g[..., None], 3, axis=2)
    if rng.random() < 0.25:
        # Glare: a bright soft ellipse.
        yy, xx = np.mgrid[0:h, 0:w]
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(w * 0.1, w * 0.5), rng.uniform(h * 0.1, h * 0.6)
        m = np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))
        a = a + m[..., None] * rng.uniform(60, 200)
    if rng.random() < 0.25:
        # Shadow: a dark half-plane.
        yy, xx = np.mgrid[0:h, 0:w]
        ang = rng.uniform(0, math.pi)
        side = (xx - w / 2) * math.cos(ang) + (yy - h / 2) * math.sin(ang) > rng.uniform(-w / 3, w / 3)
        a = np.where(side[..., None], a * rng.uniform(0.35, 0.7), a)
    a = a + np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 14), a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        import io
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=rng.randint(15, 90))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    return img


def warp_crop(plate: Image.Image, rng: random.Random, out_w=256, out_h=128) -> Image.Image:
    """The plate as a detector's crop sees it: tilted, skewed, loosely cut."""
    W, H = plate.size
    pad = 0.35
    canvas_w, canvas_h = int(W * (1 + 2 * pad)), int(H * (1 + 2 * pad))
    bgc = tuple(rng.randint(0, 255) for _ in range(3))
    canvas = Image.new("RGB", (canvas_w, canvas_h), bgc)
    if rng.random() < 0.6:
        _scenery(ImageDraw.Draw(canvas), canvas_w, canvas_h, rng)
    ox, oy = int(W * pad), int(H * pad)
    j = lambda s: rng.uniform(-s, s)
    k = rng.uniform(0.0, 0.09)
    rot = math.radians(j(7))
    corners = [(0, 0), (W, 0), (W, H), (0, H)]
    dst = []
    for (x, y) in corners:
        x2, y2 = x - W / 2, y - H / 2
        xr = x2 * math.cos(rot) - y2 * math.sin(rot)
        yr = x2 * math.sin(rot) + y2 * math.cos(rot)
        dst.append((xr + W / 2 + ox + j(k * W), yr + H / 2 + oy + j(k * H)))
    coeffs = _perspective_coeffs(corners, dst)
    warped = plate.transform((canvas_w, canvas_h), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    mask = Image.new("L", (W, H), 255).transform((canvas_w, canvas_h), Image.PERSPECTIVE, coeffs, Image.BILINEAR)
    canvas.paste(warped, (0, 0), mask)
    xs = [p[0] for p in dst]
    ys = [p[1] for p in dst]
    bw, bh = max(xs) - min(xs), max(ys) - min(ys)
    # Crop as a detector's box would: a little tight or loose.
    l = min(xs) + bw * rng.uniform(-0.08, 0.06)
    r = max(xs) + bw * rng.uniform(-0.06, 0.08)
    t = min(ys) + bh * rng.uniform(-0.12, 0.08)
    b = max(ys) + bh * rng.uniform(-0.08, 0.12)
    crop = canvas.crop((int(l), int(t), int(r), int(b)))
    if rng.random() < 0.12:
        # Partial occlusion: a bar (tow hitch, bumper) across an edge.
        dd = ImageDraw.Draw(crop)
        cw, ch = crop.size
        if rng.random() < 0.5:
            x0 = rng.choice([0, int(cw * rng.uniform(0.9, 0.96))])
            dd.rectangle((x0, 0, x0 + int(cw * 0.05), ch), fill=(20, 20, 20))
        else:
            y0 = int(ch * rng.uniform(0.8, 0.9))
            dd.rectangle((0, y0, cw, ch), fill=(30, 30, 30))
    crop = crop.resize((out_w, out_h), Image.BILINEAR)
    return degrade(crop, rng)
