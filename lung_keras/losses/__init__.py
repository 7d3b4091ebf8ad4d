"""lung_keras.losses: soft Dice and BCE + Dice losses with explicit smoothing and averaging."""

from lung_keras.losses.dice import BceDiceLoss
from lung_keras.losses.dice import DiceLoss

from lung_keras import saving as _saving  # noqa: E402

_saving.register_pending()  # see lung_keras.saving: registration that waited for this import to finish
