"""lung_keras.losses: soft Dice and BCE + Dice losses with explicit smoothing and averaging."""

from lung_keras.losses.dice import BceDiceLoss
from lung_keras.losses.dice import DiceLoss
