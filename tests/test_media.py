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
    import omnibench.data.media.cache as media_mod

    monkeypatch.setattr(media_mod, "_decode_uncached", lambda *a: pytest.fail("decoded again"))
    second = decode_clip(clip, cfg, cache)
    assert cache.stats() == {"hits": 1, "misses": 1, "rebuilt": 0, "evicted": 0, "evicted_bytes": 0, "uncached": 0}
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


# ------------------------------------------------------------------------------------- media errors


def _mp4_with_audio_packets_overwritten(src, dst):
    """A copy of ``src`` whose AAC packets are overwritten with 0xff: the audio stream is there, corrupt."""
    import av

    data = bytearray(src.read_bytes())
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size) for p in c.demux(audio=0) if p.size]
    for pos, size in packets:
        data[pos:pos + size] = b"\xff" * size
    dst.write_bytes(bytes(data))
    return dst


def test_corrupt_audio_track_is_a_media_error_not_missing_audio(tmp_path, mp4_factory):
    bad = _mp4_with_audio_packets_overwritten(mp4_factory("good.mp4"), tmp_path / "corrupt_audio.mp4")
    clip = Clip("c", str(bad), "sad", "t")
    with pytest.raises(MediaError, match="corrupt_audio.mp4") as err:
        decode_clip(clip, DecodeConfig(missing_audio="keep"))  # "keep" would hide a mistaken "no audio"
    assert not isinstance(err.value, MissingAudioError)


def test_empty_audio_stream_is_a_media_error_naming_the_file(tmp_path):
    import av

    path = tmp_path / "empty_audio.mkv"
    with av.open(str(path), "w") as c:  # an audio stream with no samples at all
        vs = c.add_stream("libx264", rate=8)
        vs.width = vs.height = 64
        vs.pix_fmt = "yuv420p"
        c.add_stream("pcm_s16le", rate=16000, layout="mono")
        for i in range(4):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, np.uint8), format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    with av.open(str(path)) as c:
        assert len(c.streams.audio) == 1
    with pytest.raises(MediaError, match="empty_audio.mkv") as err:
        decode_clip(Clip("e", str(path), "sad", "t"), DecodeConfig(missing_audio="keep"))
    assert not isinstance(err.value, MissingAudioError)


def test_no_audio_stream_is_missing_audio_checked_in_the_container(mp4_factory):
    import av

    path = mp4_factory("video_only.mp4", audio_seconds=None)
    with av.open(str(path)) as c:
        assert len(c.streams.audio) == 0
    with pytest.raises(MissingAudioError, match="video_only.mp4 has no audio track"):
        decode_clip(Clip("v", str(path), "sad", "t"))


def test_48px_h264_that_decord_cannot_copy_is_decoded_with_pyav_and_logged(mp4_factory, caplog):
    import decord

    path = str(mp4_factory("w48.mp4", size=48, n_frames=12))
    with pytest.raises(Exception, match="from_size == to_size"):  # the decord 0.6 failure being worked around
        decord.VideoReader(path, num_threads=1).get_batch([0]).asnumpy()
    with caplog.at_level("WARNING", logger="omnibench"):
        m = decode_clip(Clip("w", path, "happy", "t"), DecodeConfig(num_frames=4, size=None))
    assert m.frames.shape == (4, 48, 48, 3) and m.frames.dtype == np.uint8
    # the same uniformly sampled frames: brightness written as (i * 17) for frame i, indices [1, 4, 7, 10]
    assert np.abs(m.frames[:, 40, 40, 0].astype(int) - [17, 68, 119, 170]).max() <= 3
    assert any("w48.mp4" in r.getMessage() and "PyAV" in r.getMessage() for r in caplog.records)


def test_pyav_fallback_gives_decords_frames_on_a_file_both_read(mp4_factory):
    from omnibench.data.media.decode import _frames_with_pyav

    path = str(mp4_factory("w64.mp4", size=64, n_frames=12))
    ours = decode_clip(Clip("a", path, "happy", "t"), DecodeConfig(num_frames=5, size=None)).frames
    np.testing.assert_array_equal(_frames_with_pyav(path, 5), ours)


def test_cache_writes_leave_no_temporary_files(tmp_path, mp4_factory):
    cache = DecodeCache(tmp_path / "cache")
    decode_clip(Clip("a", str(mp4_factory()), "happy", "t"), DecodeConfig(num_frames=2, size=32), cache)
    files = [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].endswith(".npz")


# ------------------------------------------------------------------------------------- media store


def test_store_decodes_once_and_returns_clips_in_order(tmp_path, mp4_factory):
    from omnibench.data.media import MediaStore

    clips = [Clip(f"c{i}", str(mp4_factory(f"c{i}.mp4", seed=i)), "happy", "t") for i in range(3)]
    store = MediaStore(clips[:2], {"num_frames": 2, "size": 32}, tmp_path / "cache")
    out = store.decode(list(reversed(clips)))  # c2 is not yet known: it is added
    assert [m.clip_id for m in out] == ["c2", "c1", "c0"]
    assert store("c1") is out[1] and store.decoded == 3
    assert out[0].frames.shape == (2, 32, 32, 3) and store.stats()["misses"] == 3


def test_store_names_the_clip_it_cannot_decode(tmp_path, mp4_factory):
    from omnibench.data.media import MediaStore

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 300)
    clips = [Clip("ok", str(mp4_factory()), "happy", "t"), Clip("bad", str(bad), "happy", "t")]
    with pytest.raises(MediaError, match=r"clip bad: .*broken.mp4"):
        MediaStore(clips, {"num_frames": 2}).decode(clips)
    silent = Clip("silent", str(mp4_factory("s.mp4", audio_seconds=None)), "sad", "t")
    with pytest.raises(MissingAudioError, match="silent.*decode_clips"):
        MediaStore([], {"missing_audio": "skip"}).decode([silent])


def test_in_memory_store_pairs_media_by_id_and_names_the_missing(mp4_factory):
    from omnibench.data.media import MediaStore, synth_media

    media = [synth_media(np.zeros((2, 8, 8, 3), np.uint8), np.zeros(10, np.float32), clip_id=i) for i in "ab"]
    clips = [Clip(i, f"{i}.mp4", "happy", "t") for i in "ba"]
    store = MediaStore.from_media(media)
    assert [m.clip_id for m in store.decode(clips)] == ["b", "a"]
    with pytest.raises(MediaError, match=r"1 clip\(s\) have no decoded media .*'z'"):
        store.decode([Clip("z", "z.mp4", "happy", "t")])


def test_recipes_mediastore_is_the_one_store():
    from omnibench.data.media import MediaStore
    from omnibench.recipes import MediaStore as FromRecipes

    assert FromRecipes is MediaStore


# ------------------------------------------------------------------------------------- decode settings


def _config_dir(tmp_path, settings=None):
    import json

    d = tmp_path / "ckpt"
    d.mkdir(exist_ok=True)
    cfg = {"model_type": "qwen2_5_omni_thinker"}
    if settings is not None:
        cfg["omnibench_decode"] = settings
    (d / "config.json").write_text(json.dumps(cfg))
    return d


def test_decode_config_for_reads_the_checkpoint_and_warns_on_an_override(tmp_path, caplog):
    from omnibench.data.media import decode_config_for

    ckpt = _config_dir(tmp_path, {"num_frames": 4, "size": 64, "sr": 16000, "max_audio_s": None})
    with caplog.at_level("WARNING", logger="omnibench"):
        cfg = decode_config_for(ckpt)
    assert (cfg.num_frames, cfg.hw) == (4, (64, 64)) and not caplog.records
    with caplog.at_level("WARNING", logger="omnibench"):
        same = decode_config_for(ckpt, {"num_frames": 4, "missing_audio": "keep"})  # policy is no mismatch
    assert same.missing_audio == "keep" and not caplog.records
    with caplog.at_level("WARNING", logger="omnibench"):
        over = decode_config_for(ckpt, {"num_frames": 8})
    assert (over.num_frames, over.hw) == (8, (64, 64))
    assert any("num_frames 4 -> 8" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="omnibench"):
        decode_config_for(ckpt, {"num_frames": 8}, warn=False)
    assert not caplog.records
    with pytest.raises(ValueError, match="frames"):
        decode_config_for(ckpt, {"frames": 8})


def test_checkpoint_without_settings_uses_defaults_and_says_so_once(tmp_path, caplog):
    from omnibench.data.media import decode_config_for

    ckpt = _config_dir(tmp_path)
    with caplog.at_level("WARNING", logger="omnibench"):
        assert decode_config_for(ckpt) == DecodeConfig()
        assert decode_config_for(ckpt, {"size": 56}) == DecodeConfig(size=56)
    said = [r for r in caplog.records if "records no decode settings" in r.getMessage()]
    assert len(said) == 1 and str(ckpt) in said[0].getMessage()
    with pytest.raises(FileNotFoundError, match="config.json"):
        decode_config_for(tmp_path / "nowhere")


def test_settings_round_trip_and_square_size_is_one_int():
    cfg = DecodeConfig(num_frames=4, size=(64, 64), max_audio_s=2.0)
    assert cfg.settings() == {"num_frames": 4, "size": 64, "sr": 16000, "max_audio_s": 2.0}
    rect = DecodeConfig.coerce({"size": [40, 24]})  # as JSON / YAML give it
    assert rect.hw == (40, 24) and rect.settings()["size"] == [40, 24]
    assert DecodeConfig.coerce(rect.to_dict()) == rect
    assert DecodeConfig.coerce(None) == DecodeConfig()


def test_decode_cli_flags_give_only_what_was_given():
    import argparse

    from omnibench.data.media import add_decode_args, decode_overrides

    parser = argparse.ArgumentParser()
    add_decode_args(parser)
    assert decode_overrides(parser.parse_args([])) == {}
    args = parser.parse_args(["--num-frames", "16", "--frame-size", "336", "--missing-audio", "keep"])
    assert decode_overrides(args) == {"num_frames": 16, "size": 336, "missing_audio": "keep"}
    assert decode_overrides(parser.parse_args(["--frame-size", "40x24"])) == {"size": (40, 24)}
    assert decode_overrides(parser.parse_args(["--frame-size", "native", "--max-audio-s", "3"])) == {
        "size": None, "max_audio_s": 3.0}


# ------------------------------------------------------------------------------- decode cache size cap


def _cache_clips(mp4_factory, n):
    return [Clip(f"k{i}", str(mp4_factory(f"k{i}.mp4", seed=i, n_frames=4, size=32, audio_seconds=0.5)), "happy", "t")
            for i in range(n)]


def _entry_bytes(tmp_path, clip, cfg):
    probe = DecodeCache(tmp_path / "probe")
    decode_clip(clip, cfg, probe)
    return probe.disk_bytes()


def test_cache_cap_holds_and_the_least_recently_used_entry_goes_first(tmp_path, mp4_factory):
    import os

    cfg = DecodeConfig(num_frames=2, size=16)
    clips = _cache_clips(mp4_factory, 5)
    size = _entry_bytes(tmp_path, clips[0], cfg)
    cache = DecodeCache(tmp_path / "cache", max_bytes=3.5 * size)  # room for three entries
    for i, c in enumerate(clips[:3]):
        decode_clip(c, cfg, cache)
        os.utime(cache.path(cache.key(c, cfg)), (1000 + i, 1000 + i))  # written in order k0, k1, k2
    decode_clip(clips[0], cfg, cache)  # a hit makes k0 the most recently used: k1 is now the oldest
    assert cache.hits == 1 and cache.evicted == 0
    decode_clip(clips[3], cfg, cache)  # four entries > the cap: the oldest use goes
    on_disk = {c.id for c in clips if cache.path(cache.key(c, cfg)).exists()}
    assert on_disk == {"k0", "k2", "k3"}  # k1 alone went: three entries are under 90% of the cap
    assert cache.disk_bytes() <= cache.max_bytes
    assert cache.stats()["evicted"] == 1 and cache.stats()["evicted_bytes"] == size
    for c in clips:  # every further write keeps the cap
        decode_clip(c, cfg, cache)
        assert cache.disk_bytes() <= cache.max_bytes
    # an entry larger than the whole cap is decoded but not kept
    small = DecodeCache(tmp_path / "small", max_bytes=size / 2)
    assert decode_clip(clips[0], cfg, small).frames.shape == (2, 16, 16, 3)
    assert small.stats()["uncached"] == 1 and small.disk_bytes() == 0


def test_cache_entry_vanished_before_the_read_is_a_miss(tmp_path, mp4_factory, monkeypatch):
    """Another process (sharing the folder) evicts an entry between our lookup and our read: a miss,
    decoded again, never an error; an eviction finding its victim already gone is no error either."""
    cfg = DecodeConfig(num_frames=2, size=16)
    clip, other = _cache_clips(mp4_factory, 2)
    cache = DecodeCache(tmp_path / "cache")
    first = decode_clip(clip, cfg, cache)
    entry = cache.path(cache.key(clip, cfg))
    real_load = np.load

    def load_after_eviction(path, *a, **kw):
        if str(path) == str(entry) and entry.exists():
            entry.unlink()  # the other process's eviction lands just now
        return real_load(path, *a, **kw)

    monkeypatch.setattr(np, "load", load_after_eviction)
    again = decode_clip(clip, cfg, cache)
    monkeypatch.undo()
    np.testing.assert_array_equal(first.frames, again.frames)
    assert cache.stats()["misses"] == 2 and cache.rebuilt == 0 and entry.exists()  # decoded and written again
    # two caches on one folder (two processes): one evicts what the other listed; nothing raises
    a = DecodeCache(tmp_path / "shared", max_bytes=1.5 * _entry_bytes(tmp_path, clip, cfg))
    b = DecodeCache(tmp_path / "shared", max_bytes=a.max_bytes)
    decode_clip(clip, cfg, a)
    entries = a._entries()
    decode_clip(other, cfg, b)  # b evicts clip's entry
    monkeypatch.setattr(a, "_entries", lambda: entries + [e for e in b._entries() if e[2] != entries[0][2]])
    a.evict()  # a's listing still names the removed entry
    monkeypatch.undo()
    assert decode_clip(clip, cfg, a).frames.shape == (2, 16, 16, 3)
    assert a.disk_bytes() <= a.max_bytes


def test_cache_cap_default_comes_from_the_environment(tmp_path, monkeypatch):
    import math

    from omnibench.data.media.cache import DEFAULT_MAX_GB, ENV_MAX_GB

    monkeypatch.delenv(ENV_MAX_GB, raising=False)
    assert DecodeCache(tmp_path / "c").max_bytes == DEFAULT_MAX_GB * 1024**3
    monkeypatch.setenv(ENV_MAX_GB, "0.5")
    assert DecodeCache(tmp_path / "c").max_bytes == 0.5 * 1024**3
    monkeypatch.setenv(ENV_MAX_GB, "inf")
    assert math.isinf(DecodeCache(tmp_path / "c").max_bytes)
    monkeypatch.setenv(ENV_MAX_GB, "lots")
    with pytest.raises(ValueError, match=ENV_MAX_GB):
        DecodeCache(tmp_path / "c")
    with pytest.raises(ValueError):
        DecodeCache(tmp_path / "c", max_bytes=0)
