import pytest

from tests.tensorboard_plugins import seg_logs


@pytest.fixture(scope="session")
def segmentation_logs(montgomery_dir, tmp_path_factory):
    """(logdir, result) of two tiny real training runs, 'baseline' and 'augmented', 2 epochs each."""
    return seg_logs.cached_demo_logs(tmp_path_factory, montgomery_dir)
