import numpy as np
import pytest

from omnibench.data.manifest import Clip
from omnibench.data.media import (
    DecodeCache,
    DecodeConfig,
    MediaError,
    MissingAudioError,
    decode_clip,
    decode_clips,
    sample_indices,
)


def test_uniform_sampling_covers_the_video():
    idx = sample_indices(100, 4)
    assert idx.tolist() == [12, 37, 62, 87]
    assert sample_indices(3, 8).max() == 2


def test_decode_frames_and_audio(mp4_factory):
    clip = Clip("a", str(mp4_factory(n_frames=16, size=64)), "happy", "t")
    m = decode_clip(clip, DecodeConfig(num_frames=4, size=32))
    assert m.frames.shape == (4, 32, 32, 3) and m.frames.dtype == np.uint8
    # frames were written with increasing brightness: uniform sampling keeps the order
    assert np.all(np.diff(m.frames[:, 16, 16, 0].astype(int)) > 0)
    assert m.audio.dtype == np.float32 and m.audio.ndim == 1
    assert 1.4 * 16000 < len(m.audio) < 1.8 * 16000
    # a 220 Hz sine: the spectrum peaks there
    spec = np.abs(np.fft.rfft(m.audio))
    assert abs(np.argmax(spec) * 16000 / len(m.audio) - 220) < 10


def test_separate_audio_file(tmp_path, mp4_factory):
    import soundfile as sf

    video = mp4_factory("v.mp4", audio_seconds=None)
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(8000, np.float32) + 0.1, 16000)
    m = decode_clip(Clip("a", str(video), "sad", "t", audio=str(wav)))
    assert len(m.audio) == 8000 and np.allclose(m.audio, 0.1, atol=1e-3)


def test_missing_audio_policy_is_explicit(mp4_factory):
    clip = Clip("silent", str(mp4_factory("s.mp4", audio_seconds=None)), "sad", "t")
    with pytest.raises(MissingAudioError, match="s.mp4"):
        decode_clip(clip)
    assert decode_clip(clip, DecodeConfig(missing_audio="keep")).audio is None
    ok = Clip("ok", str(mp4_factory("ok.mp4")), "sad", "t")
    media, report = decode_clips([clip, ok], DecodeConfig(missing_audio="skip"), progress=False)
    assert [m.clip_id for m in media] == ["ok"] and report.skipped_no_audio == ["silent"]
    with pytest.raises(ValueError):
        DecodeConfig(missing_audio="zeros")


def test_corrupt_file_is_named(tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00" * 500)
    with pytest.raises(MediaError, match="corrupt.mp4"):
        decode_clip(Clip("c", str(bad), "sad", "t"))
    with pytest.raises(MediaError, match="missing.mp4"):
        decode_clip(Clip("m", str(tmp_path / "missing.mp4"), "sad", "t"))


def test_cache_hits_and_rebuilds_corrupt_entries(tmp_path, mp4_factory, monkeypatch):
    clip = Clip("a", str(mp4_factory()), "happy", "t")
    cache = DecodeCache(tmp_path / "cache")
    cfg = DecodeConfig(num_frames=4, size=32)
    first = decode_clip(clip, cfg, cache)
    # a second epoch decodes nothing
    import omnibench.data.media as media_mod

    monkeypatch.setattr(media_mod, "_decode_uncached", lambda *a: pytest.fail("decoded again"))
    second = decode_clip(clip, cfg, cache)
    assert cache.stats() == {"hits": 1, "misses": 1, "rebuilt": 0}
    np.testing.assert_array_equal(first.frames, second.frames)
    np.testing.assert_array_equal(first.audio, second.audio)
    monkeypatch.undo()
    # other decode parameters are another entry
    assert decode_clip(clip, DecodeConfig(num_frames=2, size=32), cache).frames.shape[0] == 2
    # a corrupt entry is detected and rebuilt
    entry = cache.path(cache.key(clip, cfg))
    entry.write_bytes(b"truncated")
    third = decode_clip(clip, cfg, cache)
    assert cache.rebuilt == 1
    np.testing.assert_array_equal(first.frames, third.frames)


def test_cache_key_follows_file_identity(tmp_path, mp4_factory):
    path = mp4_factory("a.mp4", seed=1)
    clip = Clip("a", str(path), "happy", "t")
    cache = DecodeCache(tmp_path / "cache")
    k1 = cache.key(clip, DecodeConfig())
    mp4_factory("a.mp4", seed=2, n_frames=13)  # rewritten file: new size/mtime
    assert cache.key(clip, DecodeConfig()) != k1


@pytest.mark.parametrize("size", [16, 24, 48, (40, 24)])
def test_any_output_size(mp4_factory, size):
    # decord 0.6's own resize fails for some widths: decoding must not depend on it
    m = decode_clip(Clip("a", str(mp4_factory(size=64)), "happy", "t"), DecodeConfig(num_frames=3, size=size))
    hw = (size, size) if isinstance(size, int) else size
    assert m.frames.shape == (3, *hw, 3)
