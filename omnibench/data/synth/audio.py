"""SynthEmo's audio renderer: a synthetic voice whose prosody and timbre carry the audio cues.

A harmonic voice (sum of harmonics with a spectral tilt and vowel formants) spoken in syllables,
with the pitch level, slope, arch and vibrato, loudness, syllable rate and roughness of the plan's
cues; the audio nuisances (coloured noise, or mains hum + reverberation when shifted) are added
after.  No nuisance is periodic amplitude modulation, so none can imitate the roughness cue.
Pure numpy; the clip's own seeded streams make the waveform a function of its plan.
"""

from __future__ import annotations

import numpy as np

from omnibench.data.synth.plan import SynthConfig, _rng, _smooth

_VOWELS = np.array(
    [[730, 1090], [530, 1840], [270, 2290], [570, 840], [300, 870], [660, 1720], [490, 1350]], float
)


def render_audio(plan: dict, cfg: SynthConfig) -> np.ndarray:
    """The clip's mono waveform at ``cfg.sr`` (float32, within [-1, 1])."""
    sr, n = cfg.sr, round(cfg.duration * cfg.sr)
    t = np.arange(n) / sr
    c, v, nz, tm = plan["cues"], plan["voice"], plan["nuisance"], plan["timing"]
    r = _rng(plan["clip_seed"], "syllables")
    t0, t1 = tm["speech_start"], tm["speech_end"]

    # syllable schedule and amplitude envelope
    env = np.zeros(n)
    bounds = []
    s = t0
    while s < t1 - 0.08:
        dur = min(r.uniform(0.8, 1.2) / c["syllable_rate"], t1 - s)
        bounds.append((s, s + dur))
        voiced = 0.78 * dur
        a = np.clip((t - s) / 0.015, 0, 1) * np.clip((s + voiced - t) / 0.04, 0, 1)
        env = np.maximum(env, a * r.uniform(0.8, 1.0))
        s += dur
    env = _smooth(env)

    # pitch contour (semitones relative to the actor's base), vibrato, micro-prosody
    u = np.clip((t - t0) / (t1 - t0), 0, 1)
    st = (c["pitch_st"] + nz["pitch_jitter_st"] + c["pitch_slope"] * (u - 0.5)
          + c["pitch_arch"] * (1 - (2 * u - 1) ** 2 - 2 / 3) + c["vibrato"] * np.sin(2 * np.pi * 6.5 * t))  # fmt: skip
    micro = np.zeros(n)
    for a, b in bounds:
        micro[(t >= a) & (t < b)] = r.normal(0, 0.35)
    st = st + np.convolve(micro, np.ones(160) / 160, mode="same")
    f0 = v["f0"] * 2 ** (st / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr

    # harmonic amplitudes at a 5 ms control rate: spectral tilt * formant resonances of the vowel
    hop = 80
    tc = np.arange(0, n, hop)
    f0c = f0[tc]
    vow = np.zeros((len(tc), 2))
    for j, (a, b) in enumerate(bounds):
        vow[(tc / sr >= a)] = _VOWELS[r.integers(len(_VOWELS))] * v["formant"]
    vow[tc / sr < t0] = _VOWELS[0] * v["formant"]
    K = int(7000 // f0.max())
    kk = np.arange(1, K + 1)[:, None]
    fk = kk * f0c[None]
    F3 = 2600 * v["formant"]
    gain = (kk ** (v["tilt_db"] / 6.02)) * (
        0.25 + 1.6 * np.exp(-0.5 * ((fk - vow[None, :, 0]) / 110) ** 2)
        + 1.2 * np.exp(-0.5 * ((fk - vow[None, :, 1]) / 150) ** 2) + 0.5 * np.exp(-0.5 * ((fk - F3) / 220) ** 2)
    )  # fmt: skip
    gain[fk > 7200] = 0.0
    # sum of harmonics: sin(k*phase) by the Chebyshev recurrence, gains interpolated linearly
    pos = np.arange(n) / hop
    i0 = np.minimum(pos.astype(int), len(tc) - 1)
    i1 = np.minimum(i0 + 1, len(tc) - 1)
    w = pos - i0
    two_cos = 2 * np.cos(phase)
    s_prev, s_cur = np.zeros(n), np.sin(phase)
    voice = np.zeros(n)
    for k in range(K):
        voice += (gain[k, i0] * (1 - w) + gain[k, i1] * w) * s_cur
        s_prev, s_cur = s_cur, two_cos * s_cur - s_prev
    voice /= np.sqrt(np.mean(voice[env > 0.5] ** 2) + 1e-9) if np.any(env > 0.5) else 1.0

    # roughness: periodic amplitude modulation (no broadband noise can imitate it)
    if c["rough_depth"] > 0 and c["rough_rate"] > 0:
        voice *= 1 - c["rough_depth"] * 0.5 * (1 + np.sin(2 * np.pi * c["rough_rate"] * t))
    level = 0.07 * 10 ** ((c["loudness_db"] + v["level_db"]) / 20)
    y = level * env * voice

    # nuisances
    an = nz["audio_noise"]
    rn = _rng(plan["clip_seed"], "audio_noise_samples")
    ref = 0.07  # the neutral voice level, so SNR does not depend on the emotion's loudness
    if an["kind"] == "coloured":
        if an["snr_db"] < 90:
            y = y + ref * 10 ** (-an["snr_db"] / 20) * _coloured_noise(rn, n, an["colour"])
    else:
        y = _reverb(y, rn, sr, an["rt60"], an["wet"])
        hum = sum(np.sin(2 * np.pi * an["hum_hz"] * h * t + rn.uniform(0, 6.3)) / h for h in range(1, 7))
        y = y + ref * 10 ** (-an["hum_snr_db"] / 20) * hum / np.sqrt(np.mean(hum**2))
    return np.clip(y, -0.99, 0.99).astype(np.float32)


def _coloured_noise(r: np.random.Generator, n: int, colour: float) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f**colour (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(r.normal(0, 1, n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spec / f ** (colour / 2), n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _reverb(y: np.ndarray, r: np.random.Generator, sr: int, rt60: float, wet: float) -> np.ndarray:
    m = int(rt60 * sr)
    ir = r.normal(0, 1, m) * np.exp(-6.9 * np.arange(m) / m)
    ir /= np.sqrt(np.sum(ir**2))
    n = len(y) + m
    nfft = 1 << (n - 1).bit_length()
    wet_sig = np.fft.irfft(np.fft.rfft(y, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(y)]
    return (1 - wet) * y + wet * wet_sig
