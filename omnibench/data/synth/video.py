"""SynthEmo's video renderer: a drawn face whose expression and head motion carry the video cues.

Pure numpy, so it runs in any worker process: anti-aliased signed-distance shapes (head, hair, eyes,
brows, nose, mouth) painted on small bounding boxes of each frame, then lighting, colour cast and
pixel noise from the plan's nuisances.  Everything random about a clip comes from its plan
(:func:`~omnibench.data.synth.plan.plan_clip`) or from the clip's own seeded streams, so the same plan
always gives the same frames.
"""

from __future__ import annotations

import math

import numpy as np

from omnibench.data.synth.cues import VIDEO_CUES, VIDEO_NEUTRAL
from omnibench.data.synth.plan import SynthConfig, _rng, _smooth

_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) of a size x size image, cached."""
    if size not in _GRIDS:
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
        _GRIDS[size] = (y, x)
    return _GRIDS[size]


class _Canvas:
    """One RGB frame; shapes are given in face-local pixel coordinates (rotated, translated)."""

    def __init__(self, bg: np.ndarray, centre: tuple[float, float], angle_deg: float):
        self.img = bg.copy()
        self.size = bg.shape[0]
        self.cx, self.cy = centre
        a = math.radians(angle_deg)
        self.cos, self.sin = math.cos(a), math.sin(a)
        y, x = _grid(self.size)
        dx, dy = x - np.float32(self.cx), y - np.float32(self.cy)
        self.xl = np.float32(self.cos) * dx + np.float32(self.sin) * dy
        self.yl = np.float32(self.cos) * dy - np.float32(self.sin) * dx

    def _local(self, x0: float, y0: float, radius: float):
        """Slice of the image around local point (x0, y0) with local coordinates of its pixels."""
        gx = self.cx + self.cos * x0 - self.sin * y0
        gy = self.cy + self.sin * x0 + self.cos * y0
        r = radius + 2
        i0, i1 = max(0, int(gy - r)), min(self.size, int(gy + r) + 2)
        j0, j1 = max(0, int(gx - r)), min(self.size, int(gx + r) + 2)
        if i0 >= i1 or j0 >= j1:
            return None
        sl = (slice(i0, i1), slice(j0, j1))
        return sl, self.xl[sl], self.yl[sl]

    def paint(self, sl, cov, colour):
        if sl is None:
            return
        region = self.img[sl]
        region += cov[..., None] * (np.asarray(colour, np.float32) - region)

    @staticmethod
    def _ellipse_cov(xl, yl, x0, y0, rx, ry, power=2.0):
        u, v = (xl - x0) * (1 / rx), (yl - y0) * (1 / ry)
        if power == 2.0:
            rr = np.sqrt(u * u + v * v)
        else:
            rr = (np.abs(u) ** power + np.abs(v) ** power) ** (1 / power)
        return np.clip(0.5 - (rr - 1) * min(rx, ry), 0, 1)

    def ellipse(self, x0, y0, rx, ry, colour, power=2.0):
        """A filled (super)ellipse; ``power`` > 2 gives a squarer outline."""
        loc = self._local(x0, y0, max(rx, ry))
        if loc is not None:
            sl, xl, yl = loc
            self.paint(sl, self._ellipse_cov(xl, yl, x0, y0, rx, ry, power), colour)

    def head(self, rx, ry, power, hairline, hair_slope, skin, hair):
        """The face (super)ellipse in skin colour with a hair cap above ``hairline`` (may slant)."""
        loc = self._local(0, 0, max(rx, ry))
        if loc is not None:
            sl, xl, yl = loc
            cov = self._ellipse_cov(xl, yl, 0, 0, rx, ry, power)
            self.paint(sl, cov, skin)
            self.paint(sl, np.minimum(cov, np.clip(hairline + hair_slope * xl - yl + 0.5, 0, 1)), hair)

    def eye(self, x0, y0, ew, eh, ir, white, iris):
        """Eye white (an ellipse of height ``eh``) with a round iris clipped to it."""
        loc = self._local(x0, y0, max(ew, eh))
        if loc is not None:
            sl, xl, yl = loc
            cov = self._ellipse_cov(xl, yl, x0, y0, ew, eh)
            self.paint(sl, cov, white)
            self.paint(sl, np.minimum(cov, self._ellipse_cov(xl, yl, x0, y0, ir, ir)), iris)

    def segment(self, p0, p1, half_width, colour):
        (x0, y0), (x1, y1) = p0, p1
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        loc = self._local(mx, my, math.hypot(x1 - x0, y1 - y0) / 2 + half_width)
        if loc is None:
            return
        sl, xl, yl = loc
        vx, vy = x1 - x0, y1 - y0
        px, py = xl - x0, yl - y0
        t = np.clip((px * vx + py * vy) * (1 / (vx * vx + vy * vy + 1e-9)), 0, 1)
        ddx, ddy = px - t * vx, py - t * vy
        d = np.sqrt(ddx * ddx + ddy * ddy)
        self.paint(sl, np.clip(half_width + 0.5 - d, 0, 1), colour)

    def mouth(self, x0, y0, half_w, curve, open_h, asym, lip, lip_colour, inner_colour):
        loc = self._local(x0, y0, half_w + abs(curve) + abs(asym) + open_h + lip + 2)
        if loc is None:
            return
        sl, xl, yl = loc
        s = (xl - x0) / half_w
        inside = np.clip((1 - np.abs(s)) * half_w + 0.5, 0, 1)
        s2 = np.minimum(s * s, 1.0)
        centre = y0 - curve * s2 + asym * s
        h = open_h * np.sqrt(1 - s2)
        d = np.abs(yl - centre)
        self.paint(sl, np.clip(h + lip + 0.5 - d, 0, 1) * inside, lip_colour)
        if open_h > 0.4:
            self.paint(sl, np.clip(h + 0.5 - d, 0, 1) * inside, inner_colour)


def _ramp(t: np.ndarray, onset: float, length: float = 0.25) -> np.ndarray:
    return _smooth((t - onset) / length)


def render_frames(plan: dict, cfg: SynthConfig) -> np.ndarray:
    """The clip's frames, (T, H, W, 3) uint8."""
    S, n = cfg.size, max(1, round(cfg.duration * cfg.fps))
    t = np.arange(n) / cfg.fps
    f, cues, nz, tm = plan["face"], plan["cues"], plan["nuisance"], plan["timing"]
    k = _ramp(t, tm["onset"])
    late = _smooth((t - tm["onset"]) / max(cfg.duration - tm["onset"], 1e-3))
    ph = tm["phase"]
    r = _rng(plan["clip_seed"], "motion")
    jit = r.normal(0, 1, (n, 2))
    scale = S / 112.0
    dx = k * (cues["shake"] * np.sin(2 * np.pi * 2.2 * t + ph[0]) + cues["tremor"] * jit[:, 0]) * scale
    dy = (k * (cues["nod"] * np.sin(2 * np.pi * 1.6 * t + ph[1]) + cues["tremor"] * jit[:, 1])
          + late * cues["drift"]) * scale  # fmt: skip
    angle = late * cues["tilt"]

    rx = f["rx"] * S
    ry = rx * f["aspect"]
    cx0 = S / 2 + f["offset"][0] * S
    cy0 = S / 2 + 0.02 * S + f["offset"][1] * S

    # background (+ stripes when the lighting factor is shifted)
    yy, xx = _grid(S)
    bg = np.empty((S, S, 3), np.float32)
    bg[:] = np.asarray(nz["bg"], np.float32)
    bg *= (1 + 0.08 * (yy / S - 0.5))[..., None]
    if nz["stripes"]:
        bg += (nz["stripes"] * np.sign(np.sin(2 * np.pi * (xx + 0.6 * yy) / (S / 7))))[..., None]
    # lighting field: gain * cast * (1 + gradient along a direction)
    dirv = (np.cos(nz["angle"]) * (xx / S - 0.5) + np.sin(nz["angle"]) * (yy / S - 0.5)) * 2
    light = (nz["gain"] * (1 + nz["gradient"] * dirv))[..., None] * np.asarray(nz["cast"], np.float32)

    rv = _rng(plan["clip_seed"], "video_noise_pixels")
    frames = np.empty((n, S, S, 3), np.uint8)
    for i in range(n):
        e = {c: VIDEO_NEUTRAL[c] + k[i] * (cues[c] - VIDEO_NEUTRAL[c]) for c in VIDEO_CUES}
        cv = _Canvas(bg, (cx0 + dx[i], cy0 + dy[i]), angle[i])
        # hair behind the head top, face, hair cap
        cv.ellipse(0, -0.18 * ry, rx * 1.06, ry * 0.9, f["hair"], power=f["jaw"])
        cv.head(rx, ry, f["jaw"], -f["hairline"] * ry, f["hair_slope"], f["skin"], f["hair"])
        # eyes, irises, brows
        ew = 0.2 * rx * f["eye_size"]
        eh = max(0.11 * ry * f["eye_size"] * e["eye_open"], 0.6)
        ey = -0.14 * ry
        ir = min(0.55 * ew, 0.09 * ry)
        for side in (-1, 1):
            ex = side * f["eye_sep"] * rx
            cv.eye(ex, ey, ew, eh, ir, (245, 245, 240), f["iris"])
            by = ey - (0.2 + 0.09 * e["brow_raise"]) * ry
            inner = (ex - side * 0.95 * ew, by + 0.075 * ry * e["brow_tilt"])
            outer = (ex + side * 1.05 * ew, by - 0.02 * ry * e["brow_tilt"])
            cv.segment(inner, outer, f["brow_w"] * scale, f["brow"])
        # nose
        cv.segment((0, -0.02 * ry), (0.03 * rx, 0.18 * ry), 0.9 * scale, f["skin"] * 0.75)
        # mouth
        cv.mouth(0, f["mouth_y"] * ry, 0.3 * rx * f["mouth_scale"] * e["mouth_width"], 0.13 * ry * e["mouth_curve"],
                 0.17 * ry * e["mouth_open"], 0.09 * ry * e["mouth_asym"], 1.1 * scale, f["lip"], (60, 20, 25))  # fmt: skip
        img = cv.img * light
        vn = nz["video_noise"]
        if vn["kind"] == "gaussian":
            img += rv.standard_normal(img.shape, dtype=np.float32) * np.float32(vn["sigma"])
        else:
            img = _box_blur(img, vn["sigma"])
            phase = rv.uniform(0, 4)
            img += (vn["scan"] * np.sign(np.sin(np.pi * (yy + phase) / 2)))[..., None]
        frames[i] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return frames


def _box_blur(img: np.ndarray, amount: float) -> np.ndarray:
    """A 3x3 blur mixed in by ``amount`` (0..1)."""
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    acc = sum(p[i : i + img.shape[0], j : j + img.shape[1]] for i in range(3) for j in range(3)) / 9.0
    return img + amount * (acc - img)
