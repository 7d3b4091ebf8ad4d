import numpy as np
import pytest

import augment_checks as C
import keras
from lung_keras.augment import AugmentedModel, Compose, HorizontalFlip, RandomBrightnessContrast, Rotate


def _unet_like(size=8):
    inp = keras.Input((size, size, 1))
    out = keras.layers.Conv2D(1, 1, kernel_initializer="ones", bias_initializer="zeros")(inp)
    return keras.Model(inp, out)


def _data(n=16, size=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.5, (n, size, size, 1)).astype("float32")
    return x, x.copy()


@pytest.mark.parametrize("jit_compile", [True, False] if C.BACKEND == "tensorflow" else [True])
def test_fit_augments_in_train_step_only(jit_compile):
    # Targets are the raw inputs; the policy adds +0.5 brightness to the images only
    # (photometric steps leave y alone). A 1x1 conv trained on augmented inputs must
    # learn bias ~ -0.5; trained on raw inputs it would stay at the identity (bias 0).
    x, y = _data()
    policy = RandomBrightnessContrast(brightness_limit=(0.5, 0.5), contrast_limit=(0.0, 0.0), p=1.0, seed=0)
    inner = _unet_like()
    model = AugmentedModel(inner, policy)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse", jit_compile=jit_compile)
    history = model.fit(x, y, batch_size=8, epochs=15, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    bias = float(C.to_np(inner.layers[-1].bias)[0])
    assert bias < -0.25
    # predict / evaluate see raw data
    np.testing.assert_allclose(C.to_np(model.predict(x, verbose=0)), C.to_np(inner.predict(x, verbose=0)), atol=1e-6)
    expected = float(np.mean((C.to_np(inner.predict(x, verbose=0)) - y) ** 2))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-4)


def test_fit_with_a_geometric_policy_under_jit_compile():
    # Under jit_compile=True the whole train step is one XLA graph: the layers must trace their
    # transforms inline (no nested XLA function, no ImageProjectiveTransformV3) and training must run.
    x, y = _data()
    model = AugmentedModel(_unet_like(), Compose([HorizontalFlip(), Rotate(limit=20, p=1.0)], seed=0))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=True)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


def test_images_and_masks_get_the_same_draw_and_seed_state_advances():
    size = 12
    x = C.smooth_image(6, h=size, w=size, dtype="float32")
    y = C.blob_masks(6, h=size, w=size, dtype="float32")
    policy = Compose([HorizontalFlip(), Rotate(limit=(90, 90), p=0.5)], seed=3)
    model = AugmentedModel(_unet_like(size), policy)
    xa, ya = model.augment(x, y)
    xa, ya = C.to_np(xa), C.to_np(ya)
    for i in range(6):
        # find the flip/rotation applied to the image, check the mask got the same one
        candidates = [lambda a: a, lambda a: a[:, ::-1]]
        candidates += [lambda a, f=f: np.rot90(f(a), 1, axes=(0, 1)) for f in list(candidates)]
        matches = [f for f in candidates if np.allclose(f(x[i]), xa[i], atol=1e-5)]
        assert len(matches) == 1
        np.testing.assert_array_equal(matches[0](y[i]), ya[i])
    model.compile(optimizer="sgd", loss="mse")
    before = C.to_np(policy.generator.state.value).copy()
    model.fit(x, y, batch_size=3, epochs=1, verbose=0)
    after = C.to_np(policy.generator.state.value)
    assert not np.array_equal(before, after)  # the policy drew in every train step


def test_keras_file_round_trip(tmp_path):
    x, y = _data()
    policy = Compose([HorizontalFlip(), RandomBrightnessContrast(p=0.5)], seed=1)
    model = AugmentedModel(_unet_like(), policy)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "augmented.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, AugmentedModel) and isinstance(loaded.policy, Compose)
    assert loaded.policy.get_config() == policy.get_config()
    # The policy's seed-generator state (its position in the random stream) survives the round trip.
    np.testing.assert_array_equal(C.to_np(loaded.policy.generator.state.value), C.to_np(policy.generator.state.value))
    np.testing.assert_allclose(C.to_np(loaded.predict(x, verbose=0)), C.to_np(model.predict(x, verbose=0)), atol=1e-6)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)


def test_augment_without_targets():
    x, _ = _data(4)
    model = AugmentedModel(_unet_like(), HorizontalFlip(p=1.0))
    xa, ya = model.augment(x)
    assert ya is None
    np.testing.assert_array_equal(C.to_np(xa), x[:, :, ::-1])


def test_invalid_arguments():
    with pytest.raises(ValueError, match="Received: policy="):
        AugmentedModel(_unet_like(), "flip")
    with pytest.raises(ValueError, match="Received: model="):
        AugmentedModel(keras.layers.Dense(1), HorizontalFlip())
