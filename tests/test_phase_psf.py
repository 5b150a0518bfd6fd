"""Phase-coded aperture PSFs (blurtools.ops.phase_psf) and user PSF stacks (blurtools.ops.psf_stack)."""


import numpy as np
import pytest
import scipy.io
import scipy.special
import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.ops.phase_psf import (DEFAULT_SWEEP, MASKS, Optics, monochromatic_psfs, phase_psf_stack,
                                     psf_radius, psi_from_distance, render_psf_strip, sweep_psis)
from blurtools.ops.psf_stack import (load_psf_stack, resample_stack_in_time, stack_to_array,
                                     time_resampling_matrix)


@pytest.fixture(scope="module")
def default_stack():
    return phase_psf_stack(dtype=torch.float64)            # default mask and sweep, (7, 3, 27, 27)


def _peaks(stack):
    return stack.amax(dim=(-2, -1))                          # (K, 3)


def test_sweep_formula():
    psi = sweep_psis(-4.0, 10.0, 7)
    k = torch.arange(7, dtype=torch.float64)
    assert torch.allclose(psi, -4.0 + 14.0 * (k + 0.5) / 7)
    assert torch.allclose(sweep_psis(2.0, 2.0, 3), torch.full((3,), 2.0, dtype=torch.float64))
    with pytest.raises(UsageError):
        sweep_psis(0, 1, 0)


def test_every_psf_sums_to_one(default_stack):
    assert default_stack.shape == (7, 3, 27, 27)
    assert torch.allclose(default_stack.sum(dim=(-2, -1)), torch.ones(7, 3, dtype=torch.float64), atol=1e-9)
    assert bool((default_stack >= 0).all())
    clear = phase_psf_stack([-3.0, 0.0, 5.0], mask="none", size=15)
    assert clear.dtype == torch.float32
    assert torch.allclose(clear.sum(dim=(-2, -1)), torch.ones(3, 3), atol=1e-5)


def _airy_pixels(size, airy_scale_px, sub=9):
    """Analytic Airy pattern (2 J1(x)/x)^2, x = pi r / (lambda N) in pixel units, integrated over pixels."""
    c = (size - 1) / 2
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    acc = np.zeros((size, size))
    for oy in offs:
        for ox in offs:
            r = np.hypot(yy + oy - c, xx + ox - c)
            x = np.pi * r / airy_scale_px
            with np.errstate(invalid="ignore", divide="ignore"):
                v = np.where(x > 1e-9, (2 * scipy.special.j1(x) / x) ** 2, 1.0)
            acc += v
    return acc / acc.sum()


@pytest.mark.parametrize("lam", [455.0, 620.0])
def test_clear_pupil_in_focus_is_airy(lam):
    """psi = 0 through a clear pupil: the diffraction-limited Airy pattern at the right scale for lambda."""
    optics = Optics(pixel_pitch_um=0.6)                    # fine pixels so the rings are resolved
    size = 31
    psf = monochromatic_psfs(torch.tensor([0.0]), [lam], mask="none", size=size, optics=optics)[0, 0].numpy()
    f_number = optics.focal_length_mm / (2 * optics.aperture_radius_mm)
    scale = lam * 1e-3 * f_number / optics.pixel_pitch_um    # lambda N in pixels
    ref = _airy_pixels(size, scale)
    ref = ref / ref.sum()
    assert np.abs(psf - ref).max() < 0.03 * ref.max()
    assert np.unravel_index(psf.argmax(), psf.shape) == (size // 2, size // 2)
    assert np.allclose(psf, psf.T, atol=1e-6) and np.allclose(psf, psf[::-1], atol=1e-6)


def test_red_wider_than_blue_for_clear_in_focus_lens():
    """Wavelength-correct sampling: the PSF pitch is lambda f/(M dx), not one grid for every colour."""
    stack = phase_psf_stack([0.0], mask="none", dtype=torch.float64)[0]
    r = psf_radius(stack)
    peak = stack.amax(dim=(-2, -1))
    assert r[0] > r[1] > r[2]                                # R wider than G wider than B
    assert peak[2] > peak[1] > peak[0]
    mono = monochromatic_psfs(torch.tensor([0.0]), [450.0, 650.0], mask="none", size=41,
                              optics=Optics(pixel_pitch_um=0.6))[0]
    # Radius of the first dark ring scales with lambda.
    prof = mono[:, 20, 20:]
    first_min = [next(i for i in range(1, 19) if p[i] < p[i + 1]) for p in prof]
    expect = [1.22 * lam * 1e-3 * (12.0 / 2.28) / 0.6 for lam in (450.0, 650.0)]   # 1.22 lambda N / p
    assert abs(first_min[0] - expect[0]) <= 1 and abs(first_min[1] - expect[1]) <= 1
    assert first_min[1] > first_min[0]


def test_size_grows_with_abs_psi():
    psis = torch.tensor([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    r = psf_radius(phase_psf_stack(psis, mask="none", dtype=torch.float64))
    assert bool((r[1:] > r[:-1]).all()), r
    # A clear symmetric pupil: -psi is the complex conjugate pupil, the same intensity.
    pos = phase_psf_stack([3.0], mask="none", dtype=torch.float64)
    neg = phase_psf_stack([-3.0], mask="none", dtype=torch.float64)
    assert torch.allclose(pos, neg, atol=1e-7)
    coded = psf_radius(phase_psf_stack(torch.tensor([-4.0, 0.0, 4.0, 8.0]), dtype=torch.float64))
    assert bool((coded[-1] > coded[1]).all())


def test_mask_makes_channel_sizes_differ():
    clear = psf_radius(phase_psf_stack([0.0], mask="none", dtype=torch.float64))[0]
    coded = psf_radius(phase_psf_stack([0.0], mask="ring", dtype=torch.float64))[0]
    assert (coded.max() - coded.min()) > 3 * (clear.max() - clear.min())
    # The default ring is 10 pi at 455 nm: a whole number of waves, invisible at the reference wavelength.
    a = monochromatic_psfs(torch.tensor([0.0, 5.0]), [455.0], mask="ring")
    b = monochromatic_psfs(torch.tensor([0.0, 5.0]), [455.0], mask="none")
    assert torch.allclose(a, b, atol=1e-6)
    c = monochromatic_psfs(torch.tensor([0.0]), [540.0], mask="ring")
    d = monochromatic_psfs(torch.tensor([0.0]), [540.0], mask="none")
    assert (c - d).abs().max() > 0.01


def test_whole_pupil_piston_changes_nothing():
    """A constant phase over the whole pupil (a 'ring' from 0 to 1) is a piston: no change to the PSF."""
    a = phase_psf_stack([0.0, 4.0], mask=[(0.0, 1.0, 2.3)], size=15, dtype=torch.float64)
    b = phase_psf_stack([0.0, 4.0], mask="none", size=15, dtype=torch.float64)
    assert torch.allclose(a, b, atol=1e-6)


def test_ring6pi_shifts_green_focus_not_blue():
    """A ~6 pi ring at 455 nm moves green's best focus to psi ~ +10, blue stays at 0."""
    psis = torch.arange(-4.0, 14.5, 1.0)
    peaks = _peaks(phase_psf_stack(psis, mask="ring6pi", size=21, dtype=torch.float64))
    best = psis[peaks.argmax(dim=0)]
    assert abs(float(best[2])) <= 1.0
    assert 8.0 <= float(best[1]) <= 12.0


def test_default_sweep_colour_order(default_stack):
    """Like a measured phase-coded stack: sharpest colour runs blue -> green -> red, last instant widest."""
    peaks = _peaks(default_stack)
    sharpest = peaks.argmax(dim=1).tolist()                 # 0 = R, 1 = G, 2 = B
    assert sharpest[0] == 2 and sharpest[-1] == 0
    assert all(a >= b for a, b in zip(sharpest, sharpest[1:])), sharpest   # B ... G ... R, never back
    assert 1 in sharpest
    hue = (peaks[:, 0] - peaks[:, 2]) / peaks.sum(dim=1)    # < 0 blue-ish, > 0 red-ish
    assert hue[0] < -0.3 and hue[-1] > 0.3
    assert bool((hue[1:] > hue[:-1]).all()), hue
    r = psf_radius(default_stack)
    assert float(r[-1].mean()) > float(r[0].mean())
    assert DEFAULT_SWEEP[0] >= -4 and DEFAULT_SWEEP[1] <= 10


def test_render_strip(default_stack):
    img = render_psf_strip(default_stack, scale=2, gap=1)
    assert img.dtype == np.uint8 and img.shape == (2 * 29, 2 * 7 * 29, 3)
    first = img[:, : 2 * 29].reshape(-1, 3)
    last = img[:, -2 * 29:].reshape(-1, 3)
    assert first[first.sum(1).argmax()].argmax() == 2      # brightest pixel blue-dominant
    assert last[last.sum(1).argmax()].argmax() == 0        # red-dominant
    np_img = render_psf_strip(stack_to_array(default_stack), scale=2, gap=1)
    assert np.array_equal(np_img, img)
    with pytest.raises(UsageError):
        render_psf_strip(torch.zeros(2, 4, 5, 5))


def test_bad_arguments():
    with pytest.raises(UsageError):
        phase_psf_stack([0.0], size=20)
    with pytest.raises(UsageError):
        phase_psf_stack([0.0], mask="nope")
    with pytest.raises(UsageError):
        phase_psf_stack([0.0], mask=[(0.8, 0.2, 1.0)])
    with pytest.raises(UsageError):
        phase_psf_stack([0.0], spectra=(((600, 1),), ((540, 1),)))


def test_psi_from_distance_sign():
    assert psi_from_distance(0.9) == pytest.approx(0.0, abs=1e-12)
    assert psi_from_distance(0.5) > 0 > psi_from_distance(3.0)
    assert set(MASKS) >= {"none", "ring", "ring6pi"}


def test_custom_spectra_and_rings():
    stack = phase_psf_stack([1.0], mask=[(0.3, 0.6, 3.0)], size=11,
                            spectra=(((620, 1),), ((540, 2), (560, 1)), ((450, 1),)))
    assert stack.shape == (1, 3, 11, 11)
    assert torch.allclose(stack.sum(dim=(-2, -1)), torch.ones(1, 3), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    cpu = phase_psf_stack(sweep_psis(1, 10, 3))
    gpu = phase_psf_stack(sweep_psis(1, 10, 3), device=torch.device("cuda"))
    assert gpu.is_cuda
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-5)


# ---- user stacks -------------------------------------------------------------------------------------

def _stack_khwc(k=5, h=9, w=9, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.random((k, h, w, 3)).astype(np.float32)
    return arr / arr.sum(axis=(1, 2), keepdims=True) * np.float32(0.9)


def test_load_npy_keeps_sums(tmp_path):
    arr = _stack_khwc()
    p = tmp_path / "s.npy"
    np.save(p, arr)
    st = load_psf_stack(p)
    assert st.shape == (5, 3, 9, 9) and st.dtype == torch.float32
    assert np.allclose(st.permute(0, 2, 3, 1).numpy(), arr)
    assert torch.allclose(st.sum(dim=(-2, -1)), torch.full((5, 3), 0.9), atol=1e-5)
    assert torch.allclose(load_psf_stack(p, normalize=True).sum(dim=(-2, -1)), torch.ones(5, 3), atol=1e-5)
    assert np.allclose(stack_to_array(st), arr)


def test_load_mat(tmp_path):
    arr = _stack_khwc(k=3)
    p = tmp_path / "one.mat"
    scipy.io.savemat(p, {"psfs": arr})
    assert np.allclose(load_psf_stack(p).permute(0, 2, 3, 1).numpy(), arr)
    two = tmp_path / "two.mat"
    scipy.io.savemat(two, {"psfs": arr, "other": np.ones((2, 2))})
    with pytest.raises(BlurtoolsError, match="two.mat"):
        load_psf_stack(two)
    assert load_psf_stack(two, key="psfs").shape == (3, 3, 9, 9)
    with pytest.raises(BlurtoolsError, match="nokey"):
        load_psf_stack(two, key="nokey")
    hwck = tmp_path / "hwck.mat"
    scipy.io.savemat(hwck, {"p": arr.transpose(1, 2, 3, 0)})
    assert torch.allclose(load_psf_stack(hwck, layout="HWCK"), load_psf_stack(p))


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad_shape.npy"
    np.save(bad, np.ones((4, 9, 9, 2), np.float32))
    with pytest.raises(BlurtoolsError, match="bad_shape.npy.*shape"):
        load_psf_stack(bad)
    neg = tmp_path / "neg.npy"
    arr = _stack_khwc()
    arr[0, 0, 0, 0] = -1.0
    np.save(neg, arr)
    with pytest.raises(BlurtoolsError, match="neg.npy"):
        load_psf_stack(neg)
    with pytest.raises(BlurtoolsError, match="missing.npy"):
        load_psf_stack(tmp_path / "missing.npy")
    txt = tmp_path / "s.txt"
    txt.write_text("1 2 3")
    with pytest.raises(BlurtoolsError, match="s.txt"):
        load_psf_stack(txt)


def test_resample_in_time():
    st = torch.from_numpy(_stack_khwc(k=7)).permute(0, 3, 1, 2).double()
    assert resample_stack_in_time(st, 7) is st
    for k_new in (3, 13, 1, 20):
        out = resample_stack_in_time(st, k_new)
        assert out.shape == (k_new, 3, 9, 9)
        # "average": the mean PSF over the exposure (the total blur) is unchanged; light not rescaled.
        assert torch.allclose(out.mean(0), st.mean(0), atol=1e-10)
        assert torch.allclose(out.sum(dim=(-2, -1)), torch.full((k_new, 3), 0.9, dtype=torch.float64))
    w = time_resampling_matrix(7, 13)
    assert np.allclose(w.sum(1), 1.0) and (w >= 0).all()
    # "sample" reproduces a stack that is linear in time exactly at the new mid-instants.
    a, b = st[0], st[1]
    lin = torch.stack([a + (b - a) * (i + 0.5) / 4 for i in range(4)])
    up = resample_stack_in_time(lin, 8, method="sample")
    assert torch.allclose(up[3], a + (b - a) * (3.5 / 8), atol=1e-12)
    with pytest.raises(UsageError):
        resample_stack_in_time(st[:, :2], 3)
