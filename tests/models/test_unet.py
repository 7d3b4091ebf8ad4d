import keras
import numpy as np
import pytest

from lung_keras.models import ConvBlock
from lung_keras.models import unet


@pytest.mark.parametrize("shape", [(64, 96, 1), (32, 32, 3), (None, None, 1)])
def test_any_divisible_size(shape):
    model = unet(shape, base_filters=4, depth=3)
    x = np.random.default_rng(0).random((2, 64 if shape[0] is None else shape[0], 48 if shape[1] is None else shape[1], shape[2]))
    y = model.predict(x.astype("float32"), verbose=0)
    assert y.shape == x.shape[:3] + (1,)
    assert y.min() >= 0.0 and y.max() <= 1.0


def test_indivisible_size_has_clear_error():
    with pytest.raises(ValueError, match=r"height 100 is not divisible by 2\*\*depth = 16"):
        unet((100, 128, 1), depth=4)


def test_default_shape_and_size():
    model = unet()
    assert model.output_shape == (None, 128, 128, 1)
    # Calibrated baseline: ~1.9M parameters for base 16, depth 4.
    assert 1.8e6 < model.count_params() < 2.0e6
    blocks = [layer for layer in model.layers if isinstance(layer, ConvBlock)]
    assert len(blocks) == 9 and all(b.momentum == 0.9 for b in blocks)


def test_multiclass_softmax():
    model = unet((32, 32, 1), base_filters=4, depth=2, num_classes=3)
    y = model.predict(np.zeros((1, 32, 32, 1), "float32"), verbose=0)
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5)


def test_keras_round_trip(tmp_path):
    model = unet((32, 32, 1), base_filters=4, depth=2, momentum=0.8)
    x = np.random.default_rng(1).random((2, 32, 32, 1)).astype("float32")
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0), atol=1e-6)
    assert loaded.get_layer("down0").momentum == 0.8


def test_conv_block_config_and_validation():
    block = ConvBlock(8, num_convs=3, momentum=0.95, dropout=0.1)
    clone = ConvBlock.from_config(block.get_config())
    assert (clone.filters, clone.num_convs, clone.momentum, clone.dropout) == (8, 3, 0.95, 0.1)
    assert block.compute_output_shape((None, 16, 16, 3)) == (None, 16, 16, 8)
    with pytest.raises(ValueError, match="momentum"):
        ConvBlock(8, momentum=1.5)
    with pytest.raises(ValueError, match="filters"):
        ConvBlock(0)


def test_seeded_init_is_deterministic():
    keras.utils.set_random_seed(7)
    a = unet((32, 32, 1), base_filters=4, depth=2).get_weights()
    keras.utils.set_random_seed(7)
    b = unet((32, 32, 1), base_filters=4, depth=2).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
