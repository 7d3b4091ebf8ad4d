"""lung_keras.data: find, check, split and load chest X-ray image/mask pairs, and CT volumes with lung masks.

Supports the NLM layout (`CXR_png/`, `ManualMask/leftMask/`, `ManualMask/rightMask/`) and a plain
`images/` + `masks/` layout, at any source size. Every reader goes through `read_image` (the image
intensity rule, `intensity_scale`) and `read_mask` (the mask rule), so `data check`, the numpy and tf.data
loaders and offline augmentation read a file the same way. `build_store` decodes a set once, in parallel,
checked on the way, and keeps it at the training size in memory or in a disk cache (the loader of `train`).

CT: `read_volume` and friends (`ct`: DICOM series, NRRD, NIfTI, label maps, RTSTRUCT), several patients from a
`manifest.csv` (`ct_cases`: `find_ct_cases`, `load_ct_case`, `check_ct`), 2-D slice datasets split by patient and
predictions put back on the source grid (`ct_slices`: `slice_volume`, `make_slices`, `split_patients`,
`slices_to_volume`; `write_nifti`). `window_hu` is the `Windowing` layer's arithmetic on numpy arrays.
"""

from lung_keras.data.checks import DataReport
from lung_keras.data.checks import DatasetError
from lung_keras.data.checks import Problem
from lung_keras.data.checks import check_dataset
from lung_keras.data.ct import CT_PROBLEMS
from lung_keras.data.ct import LEFT_LUNG
from lung_keras.data.ct import RIGHT_LUNG
from lung_keras.data.ct import CTError
from lung_keras.data.ct import Volume
from lung_keras.data.ct import check_same_grid
from lung_keras.data.ct import even_odd_fill
from lung_keras.data.ct import read_dicom_series
from lung_keras.data.ct import read_label_mask
from lung_keras.data.ct import read_nifti
from lung_keras.data.ct import read_nrrd
from lung_keras.data.ct import read_rtstruct_mask
from lung_keras.data.ct import read_volume
from lung_keras.data.ct import rtstruct_roi_names
from lung_keras.data.ct import write_nifti
from lung_keras.data.ct_cases import CTCase
from lung_keras.data.ct_cases import CTProblem
from lung_keras.data.ct_cases import check_ct
from lung_keras.data.ct_cases import ct_layout
from lung_keras.data.ct_cases import find_ct_cases
from lung_keras.data.ct_cases import is_ct_folder
from lung_keras.data.ct_cases import load_ct_case
from lung_keras.data.ct_slices import AIR_HU
from lung_keras.data.ct_slices import SliceGrid
from lung_keras.data.ct_slices import SliceSet
from lung_keras.data.ct_slices import concatenate_slices
from lung_keras.data.ct_slices import export_slices
from lung_keras.data.ct_slices import in_plane_grid
from lung_keras.data.ct_slices import make_slices
from lung_keras.data.ct_slices import resample_in_plane
from lung_keras.data.ct_slices import slice_volume
from lung_keras.data.ct_slices import slices_to_volume
from lung_keras.data.ct_slices import split_patients
from lung_keras.data.dataset import Dataset
from lung_keras.data.dataset import filter_diagnosis
from lung_keras.data.dataset import load_arrays
from lung_keras.data.dataset import load_dataset
from lung_keras.data.dataset import make_tf_dataset
from lung_keras.data.dataset import min_split_size
from lung_keras.data.dataset import split_dataset
from lung_keras._windowing import window_hu
from lung_keras.data.download import MONTGOMERY_URL
from lung_keras.data.download import convert_nlm
from lung_keras.data.download import download_montgomery
from lung_keras.data.download import resolve_data_dir
from lung_keras.data.download import verify_nlm_layout
from lung_keras.data.preprocess import IntensityWarning
from lung_keras.data.preprocess import MaskError
from lung_keras.data.preprocess import check_binarize_threshold
from lung_keras.data.preprocess import intensity_scale
from lung_keras.data.preprocess import load_sample
from lung_keras.data.preprocess import read_image
from lung_keras.data.preprocess import read_mask
from lung_keras.data.preprocess import read_masks
from lung_keras.data.preprocess import scale_image
from lung_keras.data.sources import DIAGNOSES
from lung_keras.data.sources import PairListing
from lung_keras.data.sources import Sample
from lung_keras.data.sources import detect_layout
from lung_keras.data.sources import find_pairs
from lung_keras.data.sources import normalize_diagnosis
from lung_keras.data.store import ArrayStore
from lung_keras.data.store import build_store
from lung_keras.data.store import default_cache_dir
