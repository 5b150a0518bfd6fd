"""The score pipeline: decoding ahead in threads (bounded), PNG data in one piece, a start without torch."""

import io
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from blurtools.io.arrays import one_image_data_chunk, read_array
from blurtools.io.prefetch import prefetch


def _png(array, **save):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", **save)
    return buf.getvalue()


def _idat_count(data):
    pos, count = 8, 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        count += data[pos + 4:pos + 8] == b"IDAT"
        pos += 12 + length
    return count


def test_prefetch_keeps_order_and_raises_in_turn():
    def work(x):
        time.sleep(0.002 * (x % 3))
        if x == 6:
            raise ValueError("six")
        return 10 * x

    assert list(prefetch(work, range(5), 3, 4)) == [0, 10, 20, 30, 40]
    got = []
    with pytest.raises(ValueError, match="six"):
        for v in prefetch(work, range(20), 3, 4):
            got.append(v)
    assert got == [0, 10, 20, 30, 40, 50]
    assert list(prefetch(work, range(4), 1, 4)) == [0, 10, 20, 30]


def test_prefetch_starts_at_once_and_stays_within_its_bound():
    started = []
    lock = threading.Lock()

    def work(x):
        with lock:
            started.append(x)
        return np.zeros(1000)  # 8,000 bytes

    stream = prefetch(work, range(100), 2, 64, max_bytes=40_000, nbytes=lambda a: a.nbytes)
    deadline = time.time() + 5
    while len(started) < 5 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    assert len(started) == 5  # nothing taken yet: 40,000 // 8,000 results wait, no more
    assert sum(1 for _ in stream) == 100


def test_prefetch_passes_on_the_sources_error():
    def source():
        yield 1
        raise KeyError("listing failed")

    stream = prefetch(lambda x: x, source(), 2, 4)
    assert next(stream) == 1
    with pytest.raises(KeyError):
        next(stream)


@pytest.mark.parametrize("mode,shape", [("RGB", (70, 90, 3)), ("L", (64, 33)), ("RGBA", (40, 50, 4))])
def test_png_data_in_one_piece_decodes_the_same(tmp_path, mode, shape):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, shape).astype(np.uint8)
    data = _png(array)
    split = _split_idat(data, 97)
    assert _idat_count(split) > 3
    joined = one_image_data_chunk(split)
    assert _idat_count(joined) == 1
    assert np.array_equal(np.array(Image.open(io.BytesIO(joined))), array)
    path = tmp_path / "x.png"
    path.write_bytes(split)
    assert np.array_equal(read_array(path), array)
    assert read_array(path).flags.writeable


def test_a_png_cut_short_is_left_as_it_is(tmp_path):
    data = _split_idat(_png(np.zeros((30, 30, 3), np.uint8)), 50)
    cut = data[: len(data) - 40]
    assert one_image_data_chunk(cut) == cut
    path = tmp_path / "cut.png"
    path.write_bytes(cut)
    from blurtools.errors import BlurtoolsError

    with pytest.raises(BlurtoolsError, match="cut.png"):
        read_array(path)


def _split_idat(data, size):
    """The PNG ``data`` with its image data re-cut into IDAT chunks of ``size`` bytes."""
    pos, before, body, after = 8, [], b"", []
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            body += data[pos + 8:pos + 8 + length]
        else:
            (after if body else before).append(data[pos:pos + 12 + length])
        pos += 12 + length
    chunks = []
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        chunks.append(len(piece).to_bytes(4, "big") + b"IDAT" + piece + zlib.crc32(b"IDAT" + piece).to_bytes(4, "big"))
    return data[:8] + b"".join(before) + b"".join(chunks) + b"".join(after)


def test_score_matches_and_starts_decoding_before_torch_loads():
    code = ("import sys; import blurtools.cli.main, blurtools.cli.score, blurtools.io.pairs, blurtools.io.pair_decoding, "
            "blurtools.metrics.score_options, blurtools.metrics.shards, blurtools.metrics.score_notes; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_batched_path_gives_the_threaded_paths_rows(tmp_path):
    """The path a GPU takes (batches of one size and depth) scores as the CPU's threads do, gray
    conversion, sizes and depths mixed; checked here on the CPU."""
    import torch

    from blurtools.io.pair_decoding import decode_pairs
    from blurtools.io.pairs import match
    from blurtools.io.png16 import encode_png16
    from blurtools.metrics.folder_scoring import score_image_pairs, score_pairs_in_batches
    from blurtools.metrics.score_options import ScoreOptions

    rng = np.random.default_rng(4)
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    for i, (shape, kind) in enumerate([((30, 40, 3), "rgb"), ((30, 40, 3), "rgb"), ((30, 40, 3), "gray-gt"),
                                       ((25, 33, 3), "rgb"), ((30, 40, 3), "16"), ((30, 40, 3), "rgb")]):
        gt = rng.integers(0, 256, shape).astype(np.uint8)
        pred = np.clip(gt.astype(int) + rng.integers(-9, 10, shape), 0, 255).astype(np.uint8)
        if kind == "16":
            (tmp_path / "p" / f"{i}.png").write_bytes(encode_png16(pred.astype(np.uint16) * 257))
            (tmp_path / "g" / f"{i}.png").write_bytes(encode_png16(gt.astype(np.uint16) * 257))
            continue
        Image.fromarray(pred).save(tmp_path / "p" / f"{i}.png")
        Image.fromarray(gt).convert("L" if kind == "gray-gt" else "RGB").save(tmp_path / "g" / f"{i}.png")
    pairs = match(tmp_path / "p", tmp_path / "g").pairs
    for opts in (ScoreOptions(batch=4), ScoreOptions(batch=3, y=True, crop_border=2), ScoreOptions(ssim_mode="matlab3d")):
        threaded = score_image_pairs(pairs, opts, torch.device("cpu"))
        batched = score_pairs_in_batches(decode_pairs(pairs, 2), opts, torch.device("cpu"))
        assert [r["name"] for r in batched] == [r["name"] for r in threaded]
        for a, b in zip(batched, threaded):
            assert a.keys() == b.keys()
            assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-9) and a["ssim"] == pytest.approx(b["ssim"], abs=1e-7)
        assert sum(1 for r in batched if r.get("_converted_to_gray")) == 1
