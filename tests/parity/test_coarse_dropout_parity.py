"""CoarseDropout against Albumentations 2.0.8: pixel-identical holes for injected parameters, and the same
distribution of hole counts, sizes, positions and random fills (KS / chi-square on many draws)."""

import keras
import numpy as np
import pytest

A = pytest.importorskip("albumentations")
stats = pytest.importorskip("scipy.stats")

from lung_keras.augment import CoarseDropout  # noqa: E402

N = 1500
ALPHA = 0.01


def _image(dtype, h=24, w=30, c=1, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "uint8":
        return rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    return rng.random((h, w, c), dtype=np.float32)


@pytest.mark.parametrize("dtype, fill", [("uint8", 200), ("uint8", 0), ("float32", 0.75)])
def test_injected_holes_are_pixel_identical(dtype, fill):
    image = _image(dtype)
    # [x_min, y_min, x_max, y_max]; the second overlaps the first, the third touches the corner
    holes = np.array([[2, 3, 12, 9], [8, 5, 20, 14], [25, 20, 30, 24]], np.int32)
    ref = A.CoarseDropout(num_holes_range=(3, 3), fill=fill, p=1.0).apply(image.copy(), holes=holes, seed=0)
    layer = CoarseDropout(num_holes_range=(3, 3), fill=fill, p=1.0)
    t = {"apply": np.array([True]), "holes": holes[None], "active": np.ones((1, 3), bool),
         "fill": np.full((1, 3, 1), fill, np.float32)}
    ours = keras.ops.convert_to_numpy(layer.transform_images(image[None], t))[0]
    assert ours.dtype == image.dtype
    np.testing.assert_array_equal(ours, ref)


def _albu(transform, shape):
    transform.set_random_seed(4321)
    image = np.zeros(shape, np.uint8)
    out = []
    for _ in range(N):
        params = transform.get_params()
        params["shape"] = image.shape
        out.append(transform.get_params_dependent_on_data(params, {"image": image})["holes"])
    return out


def _ks(name, ours, ref):
    res = stats.ks_2samp(np.asarray(ours, float), np.asarray(ref, float))
    print(f"KS {name}: D={res.statistic:.4f} p={res.pvalue:.3f}")
    assert res.pvalue > ALPHA, f"{name}: distributions differ (KS p={res.pvalue:.2e})"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_holes_range": (1, 3), "hole_height_range": (0.1, 0.3), "hole_width_range": (0.05, 0.2)},
        {"num_holes_range": (2, 2), "hole_height_range": (4, 10), "hole_width_range": (3, 40)},  # pixels, capped
    ],
    ids=["fractions", "pixels"],
)
def test_hole_distribution_matches(kwargs):
    shape = (40, 32, 1)
    ref = _albu(A.CoarseDropout(**kwargs, p=1.0), shape)
    t = CoarseDropout(**kwargs, p=1.0).get_random_transformation(np.zeros((N, *shape), np.uint8), seed=1234)
    holes, active = (keras.ops.convert_to_numpy(t[k]) for k in ("holes", "active"))
    ours = [h[a] for h, a in zip(holes, active)]
    counts_ours, counts_ref = [len(h) for h in ours], [len(h) for h in ref]
    low, high = kwargs["num_holes_range"]
    if low != high:
        table = [[counts_ours.count(k) for k in range(low, high + 1)], [counts_ref.count(k) for k in range(low, high + 1)]]
        p = stats.chi2_contingency(table).pvalue
        print(f"chi2 hole count p={p:.3f}")
        assert p > ALPHA
    else:
        assert set(counts_ours) == set(counts_ref) == {low}
    ours, ref = np.concatenate(ours), np.concatenate(ref)
    _ks("height", ours[:, 3] - ours[:, 1], ref[:, 3] - ref[:, 1])
    _ks("width", ours[:, 2] - ours[:, 0], ref[:, 2] - ref[:, 0])
    _ks("y_min", ours[:, 1], ref[:, 1])
    _ks("x_min", ours[:, 0], ref[:, 0])
    assert ours[:, 2].max() <= shape[1] and ref[:, 2].max() <= shape[1]


def test_random_uniform_fill_distribution_matches():
    image = np.full((16, 16, 1), 7, np.uint8)
    transform = A.CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16), hole_width_range=(16, 16),
                                fill="random_uniform", p=1.0)
    transform.set_random_seed(99)
    ref = [int(transform(image=image)["image"][0, 0, 0]) for _ in range(N)]
    layer = CoarseDropout(num_holes_range=(1, 1), hole_height_range=(16, 16), hole_width_range=(16, 16),
                          fill="random_uniform", p=1.0, seed=5)
    ours = keras.ops.convert_to_numpy(layer(np.repeat(image[None], N, 0), training=True))[:, 0, 0, 0]
    _ks("random_uniform fill", ours, ref)
