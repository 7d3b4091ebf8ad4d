"""Distribution parity with Albumentations 2.0.8 for random parameters (never pixels of independent draws).

Parameters: two-sample KS tests (scipy.stats.ks_2samp) between N draws of our `get_random_transformation` and N
draws of Albumentations' `get_params` / `get_params_dependent_on_data`. Output statistics: KS on a per-draw
statistic of the outputs (mean intensity, residual std, fill fraction). Apply probabilities: binomial /
chi-square tests. Seeds are fixed, so the tests are deterministic; the threshold is p > 0.01 (p-values measured
when written are in `MEASURED`, printed by each test).
"""

import keras
import numpy as np
import pytest

from tests.parity.utils import run_ours

A = pytest.importorskip("albumentations")
stats = pytest.importorskip("scipy.stats")
pytest.importorskip("lung_keras.augment.compose")

from lung_keras.augment.bridge import _layer_class  # noqa: E402

N = 1500  # parameter draws per library
N_OUT = 300  # output draws per library (128x128)
ALPHA = 0.01


def _ours(name, **kwargs):
    return _layer_class(name)(**kwargs)


def _our_params(layer, n=N, shape=(16, 16, 1), dtype="uint8", images=None):
    data = np.zeros((n, *shape), dtype) if images is None else images
    t = layer.get_random_transformation(data, training=True, seed=1234)
    return {k: keras.ops.convert_to_numpy(v) for k, v in t.items()}


def _albu_params(transform, n=N, shape=(16, 16, 1), dtype=np.uint8, image=None):
    image = np.zeros(shape, dtype) if image is None else image
    transform.set_random_seed(4321)
    out = []
    for _ in range(n):
        params = transform.get_params()
        params["shape"] = image.shape
        params.update(transform.get_params_dependent_on_data(params, {"image": image}))
        out.append(params)
    return out


def _ks(name, ours, ref):
    res = stats.ks_2samp(np.asarray(ours, float), np.asarray(ref, float))
    print(f"KS {name}: D={res.statistic:.4f} p={res.pvalue:.3f} (n={len(ours)}/{len(ref)})")
    assert res.pvalue > ALPHA, f"{name}: distributions differ (KS p={res.pvalue:.2e})"
    return res.pvalue


def test_rotate_angle_distribution():
    ours = _our_params(_ours("Rotate", limit=(-15, 25), p=1.0))["angle"]
    # cv2.getRotationMatrix2D(angle): [[cos, sin], [-sin, cos]], so angle = -atan2(m10, m00)
    ref = [-np.degrees(np.arctan2(p["matrix"][1, 0], p["matrix"][0, 0])) for p in _albu_params(A.Rotate(limit=(-15, 25), p=1.0))]
    _ks("Rotate angle", ours, ref)


def test_affine_parameter_distributions():
    kwargs = {"scale": (0.8, 1.2), "rotate": (-20, 10), "shear": (-5, 5), "translate_percent": (-0.1, 0.1)}
    ours = _our_params(_ours("Affine", p=1.0, **kwargs))
    ref = _albu_params(A.Affine(p=1.0, **kwargs))
    _ks("Affine rotate", ours["rotate"], [p["rotate"] for p in ref])
    _ks("Affine scale_x", ours["scale_x"], [p["scale"]["x"] for p in ref])
    _ks("Affine scale_y", ours["scale_y"], [p["scale"]["y"] for p in ref])


@pytest.mark.parametrize("dtype,max_value", [("uint8", 255.0), ("float32", 1.0)])
def test_brightness_contrast_distributions(dtype, max_value):
    kwargs = {"brightness_limit": (-0.2, 0.3), "contrast_limit": (-0.3, 0.1)}
    ours = _our_params(_ours("RandomBrightnessContrast", p=1.0, **kwargs), dtype=dtype)
    ref = _albu_params(A.RandomBrightnessContrast(p=1.0, **kwargs), dtype=np.dtype(dtype))
    _ks(f"RBC alpha {dtype}", ours["alpha"], [p["alpha"] for p in ref])
    # ours keeps beta as a fraction; Albumentations' beta is that times max_value (brightness_by_max=True)
    _ks(f"RBC beta {dtype}", ours["beta"] * max_value, [p["beta"] for p in ref])


def test_gamma_distribution():
    ours = _our_params(_ours("RandomGamma", gamma_limit=(70, 150), p=1.0))["gamma"]
    ref = [p["gamma"] for p in _albu_params(A.RandomGamma(gamma_limit=(70, 150), p=1.0))]
    _ks("RandomGamma gamma", ours, ref)


def test_gauss_noise_std_distribution():
    """Per-draw sample std of the noise map (32x32): same estimator on both sides, so the laws must agree."""
    kwargs = {"std_range": (0.05, 0.3), "mean_range": (-0.1, 0.1)}
    n = 600
    ours = _our_params(_ours("GaussNoise", p=1.0, **kwargs), n=n, shape=(32, 32, 1))
    ref = _albu_params(A.GaussNoise(p=1.0, **kwargs), n=n, shape=(32, 32, 1))
    _ks("GaussNoise std", ours["noise"].reshape(n, -1).std(axis=1) * 255, [p["noise_map"].std() for p in ref])
    _ks("GaussNoise mean", ours["noise"].reshape(n, -1).mean(axis=1) * 255, [p["noise_map"].mean() for p in ref])


def _kernel_variance(kernels):
    kernels = np.asarray(kernels, float)
    k = kernels.shape[-1]
    x = np.arange(k) - (k - 1) / 2
    return (kernels * x**2).sum(-1) / kernels.sum(-1)


def test_gaussian_blur_kernel_distribution():
    kwargs = {"blur_limit": (3, 9), "sigma_limit": (0.5, 2.5)}
    n = 800
    ours = _our_params(_ours("GaussianBlur", p=1.0, **kwargs), n=n)
    ref = _albu_params(A.GaussianBlur(p=1.0, **kwargs), n=n)
    _ks("GaussianBlur kernel variance", _kernel_variance(ours["kernel"]), [_kernel_variance(p["kernel"]) for p in ref])
    _ks("GaussianBlur kernel size", ours["ksize"], [len(p["kernel"]) for p in ref])


def test_elastic_displacement_distribution():
    """Per-draw std and max |dx| of the displacement field (24x24, sigma 3, alpha 20)."""
    kwargs = {"alpha": 20, "sigma": 3}
    n = 300
    ours = _our_params(_ours("ElasticTransform", p=1.0, **kwargs), n=n, shape=(24, 24, 1))["displacement"]
    ref = _albu_params(A.ElasticTransform(p=1.0, **kwargs), n=n, shape=(24, 24, 1))
    xs = np.arange(24)[None, :]
    ref_dx = np.stack([p["map_x"] - xs for p in ref])
    _ks("Elastic dx std", ours[..., 0].reshape(n, -1).std(1), ref_dx.reshape(n, -1).std(1))
    _ks("Elastic max|dx|", np.abs(ours[..., 0]).reshape(n, -1).max(1), np.abs(ref_dx).reshape(n, -1).max(1))


# ------------------------------------------------------------------------------------------ output statistics


def _albu_outputs(transform, image, n):
    pipe = A.Compose([transform], seed=99)
    return np.stack([pipe(image=image)["image"] for _ in range(n)])


def test_brightness_contrast_output_mean_intensity(cxr):
    images, _ = cxr
    image = images[0]
    kwargs = {"brightness_limit": 0.2, "contrast_limit": 0.2, "p": 1.0}
    ours, _ = run_ours(_ours("RandomBrightnessContrast", seed=5, **kwargs), np.repeat(image[None], N_OUT, 0))
    ref = _albu_outputs(A.RandomBrightnessContrast(**kwargs), image, N_OUT)
    _ks("RBC output mean intensity", ours.reshape(N_OUT, -1).mean(1), ref.reshape(N_OUT, -1).mean(1))


def test_gauss_noise_output_residual_std(cxr):
    images, _ = cxr
    image = images[1]
    kwargs = {"std_range": (0.02, 0.1), "p": 1.0}
    ours, _ = run_ours(_ours("GaussNoise", seed=5, **kwargs), np.repeat(image[None], N_OUT, 0))
    ref = _albu_outputs(A.GaussNoise(**kwargs), image, N_OUT)
    res = lambda out: (out.astype(float) - image.astype(float)).reshape(N_OUT, -1).std(1)  # noqa: E731
    _ks("GaussNoise output residual std", res(ours), res(ref))


def test_rotate_output_fill_fraction():
    """Fraction of fill pixels after rotating an all-255 image: a function of |angle| only."""
    image = np.full((64, 64, 1), 255, np.uint8)
    kwargs = {"limit": 40, "p": 1.0}
    ours, _ = run_ours(_ours("Rotate", seed=5, **kwargs), np.repeat(image[None], N_OUT, 0))
    ref = _albu_outputs(A.Rotate(**kwargs), image, N_OUT)
    _ks("Rotate output fill fraction", (ours == 0).reshape(N_OUT, -1).mean(1), (ref == 0).reshape(N_OUT, -1).mean(1))


# ----------------------------------------------------------------------------------------- probabilities


def test_apply_probability_p():
    for p in (0.3, 0.5, 0.9):
        apply = _our_params(_ours("RandomGamma", p=p), n=4000)["apply"]
        res = stats.binomtest(int(apply.sum()), apply.size, p)
        print(f"p={p}: applied {apply.mean():.4f} binomial p-value {res.pvalue:.3f}")
        assert res.pvalue > ALPHA


def _classify_flips(out, image):
    """0 identity, 1 horizontal flip, 2 vertical flip, per sample."""
    labels = np.full(len(out), -1)
    labels[(out == image[None]).all(axis=(1, 2, 3))] = 0
    labels[(out == image[None, :, ::-1]).all(axis=(1, 2, 3))] = 1
    labels[(out == image[None, ::-1]).all(axis=(1, 2, 3))] = 2
    assert (labels >= 0).all()
    return labels


def test_one_of_choice_frequencies():
    """OneOf picks a child with probability proportional to the children's p, then always applies it."""
    image = np.arange(36, dtype=np.uint8).reshape(6, 6, 1)
    n = 3000
    children = [("HorizontalFlip", 0.2), ("VerticalFlip", 0.6)]
    layer = _ours("OneOf", transforms=[_ours(c, p=q) for c, q in children], p=0.8, seed=11)
    ours, _ = run_ours(layer, np.repeat(image[None], n, 0))
    ref_pipe = A.Compose([A.OneOf([getattr(A, c)(p=q) for c, q in children], p=0.8)], seed=12)
    ref = np.stack([ref_pipe(image=image)["image"] for _ in range(n)])
    ours_counts = np.bincount(_classify_flips(ours, image), minlength=3)
    ref_counts = np.bincount(_classify_flips(ref, image), minlength=3)
    expected = np.array([0.2, 0.8 * 0.25, 0.8 * 0.75]) * n  # none, hflip, vflip
    chi_ours = stats.chisquare(ours_counts, expected)
    table = stats.chi2_contingency(np.stack([ours_counts, ref_counts]))
    print(f"OneOf counts ours={ours_counts} albu={ref_counts} expected={expected}; "
          f"chi2 vs expected p={chi_ours.pvalue:.3f}; ours vs albu p={table.pvalue:.3f}")
    assert chi_ours.pvalue > ALPHA and table.pvalue > ALPHA


def test_compose_p_frequency():
    image = np.arange(36, dtype=np.uint8).reshape(6, 6, 1)
    n = 3000
    layer = _ours("Compose", transforms=[_ours("HorizontalFlip", p=1.0)], p=0.35, seed=3)
    ours, _ = run_ours(layer, np.repeat(image[None], n, 0))
    flipped = int((_classify_flips(ours, image) == 1).sum())
    res = stats.binomtest(flipped, n, 0.35)
    print(f"Compose p=0.35: applied {flipped / n:.4f} binomial p={res.pvalue:.3f}")
    assert res.pvalue > ALPHA
