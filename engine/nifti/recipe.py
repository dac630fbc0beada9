"""The preprocessing recipe: how a raw volume becomes a training volume, recorded in ``meta.source``.

Intensity methods (``INTENSITY_METHODS``): ``percentile`` (default: clip to
the 0.5 / 99.5 percentiles, min-max to [0, 1], stored as uint8 0-255, so the
training scaling is divide-255), ``minmax`` (the same without clipping), and
``none`` (raw values as float32, scaling none).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..errors import one_line
from . import NiftiError
from .volume import read_nifti

__all__ = ["SOURCE_FORMAT", "INTENSITY_METHODS", "DEFAULT_PERCENTILES", "VolumeRecipe", "volume_size"]

SOURCE_FORMAT = "nas3d-tui/nifti-import/1"
INTENSITY_METHODS = ("percentile", "minmax", "none")
DEFAULT_PERCENTILES = (0.5, 99.5)


def volume_size(size: object) -> tuple[int, int, int]:
    """``(D, H, W)`` of N (N x N x N) or three positive integers.

    Raises:
        NiftiError: anything else.
    """
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size),) * 3
    if not (isinstance(size, (tuple, list)) and len(size) == 3
            and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size)):
        raise NiftiError(f"size = {size!r}: expected a positive integer N (N x N x N) or three of them (D, H, W)")
    return tuple(int(s) for s in size)  # type: ignore[return-value]


@dataclass(frozen=True)
class VolumeRecipe:
    """How a raw volume becomes a training volume; recorded in ``meta.source``.

    Attributes:
        size: ``(D, H, W)`` after resampling.
        channels: C every volume must have.
        intensity: one of ``INTENSITY_METHODS``.
        percentiles: ``(low, high)`` clipping percentiles of ``percentile``.
    """

    size: tuple[int, int, int]
    channels: int = 1
    intensity: str = "percentile"
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", volume_size(self.size))
        if self.intensity not in INTENSITY_METHODS:
            raise NiftiError(f"intensity = {self.intensity!r}: use one of {', '.join(INTENSITY_METHODS)}")
        low, high = (float(p) for p in self.percentiles)
        if not 0.0 <= low < high <= 100.0:
            raise NiftiError(f"percentiles = {self.percentiles!r}: expected 0 <= low < high <= 100")
        object.__setattr__(self, "percentiles", (low, high))
        if not (isinstance(self.channels, int) and self.channels > 0):
            raise NiftiError(f"channels = {self.channels!r}: expected a positive integer")

    @property
    def scaling(self) -> str:
        """The dataset file's scaling: ``divide-255`` (stored uint8) or ``none`` (stored float32)."""
        return "none" if self.intensity == "none" else "divide-255"

    def to_source(self) -> dict[str, Any]:
        """The JSON-safe ``meta.source`` entries that ``from_source`` reads back (plus descriptions)."""
        intensity: dict[str, Any] = {"method": self.intensity, "per": "volume and channel"}
        if self.intensity == "percentile":
            intensity.update(
                low=self.percentiles[0],
                high=self.percentiles[1],
                output="uint8 round(255 * (clip(x, p_low, p_high) - p_low) / (p_high - p_low))",
            )
        elif self.intensity == "minmax":
            intensity.update(output="uint8 round(255 * (x - min) / (max - min))")
        else:
            intensity.update(output="float32 as resampled")
        return {
            "format": SOURCE_FORMAT,
            "tool": "nas3d-tui data import",
            "size": list(self.size),
            "channels": self.channels,
            "channel_axis": "3-D volumes: 1 channel; 4-D (X, Y, Z, C): the 4th axis",
            "orientation": "closest canonical RAS+ (nibabel.as_closest_canonical)",
            "resample": {
                "method": "scipy.ndimage.zoom",
                "order": 1,
                "mode": "nearest",
                "grid_mode": False,
                "spacing": "ignored: each axis is resized to its target length",
            },
            "intensity": intensity,
        }

    @classmethod
    def from_source(cls, source: Mapping[str, Any], where: str = "source") -> "VolumeRecipe":
        """The recipe recorded by ``to_source`` (e.g. a bundle's ``preprocessing.source``).

        Raises:
            NiftiError: ``source`` was not written by the NIfTI import, or is malformed.
        """
        if not isinstance(source, Mapping) or source.get("format") != SOURCE_FORMAT:
            made = source.get("format") if isinstance(source, Mapping) else None
            raise NiftiError(
                f"{where} holds no NIfTI import recipe (format {made!r}, expected {SOURCE_FORMAT!r}): "
                "the training data were not made by nas3d-tui data import"
            )
        intensity = source.get("intensity")
        if not isinstance(intensity, Mapping):
            raise NiftiError(f"{where}.intensity: expected an object")
        try:
            recorded: dict[str, Any] = dict(  # JSON values: the constructor checks them
                size=tuple(source.get("size", ())),
                channels=source.get("channels", 1),
                intensity=intensity.get("method"),
                percentiles=(intensity.get("low", DEFAULT_PERCENTILES[0]), intensity.get("high", DEFAULT_PERCENTILES[1])),
            )
            return cls(**recorded)
        except NiftiError as exc:
            raise NiftiError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise NiftiError(f"{where}: malformed NIfTI import recipe ({one_line(exc, 120)})") from None

    def resample(self, volume: np.ndarray) -> np.ndarray:
        """``(C, X, Y, Z)`` float32 to ``(C, D, H, W)`` float32, trilinear, corners aligned."""
        from scipy import ndimage  # type: ignore[import-untyped,unused-ignore]

        out = np.empty((volume.shape[0], *self.size), dtype=np.float32)
        factors = [t / s for t, s in zip(self.size, volume.shape[1:])]
        for c in range(volume.shape[0]):
            zoomed = ndimage.zoom(volume[c], factors, output=np.float32, order=1, mode="nearest", grid_mode=False)
            if zoomed.shape != self.size:  # pragma: no cover - zoom rounds shape * factor, which is the target
                raise NiftiError(f"resampling {volume.shape[1:]} gave {zoomed.shape}, expected {self.size}")
            out[c] = zoomed
        return out

    def scale(self, volume: np.ndarray) -> np.ndarray:
        """Intensity scaling of a resampled ``(C, D, H, W)`` float32 volume, per channel.

        Returns uint8 (``percentile``, ``minmax``) or float32 (``none``).
        """
        if self.intensity == "none":
            return volume.astype(np.float32, copy=False)
        out = np.zeros(volume.shape, dtype=np.uint8)
        for c in range(volume.shape[0]):
            v = volume[c]
            if self.intensity == "percentile":
                low, high = np.percentile(v, self.percentiles)
            else:
                low, high = v.min(), v.max()
            low, high = float(low), float(high)
            if high > low:  # a constant channel stays 0
                x = (np.clip(v, low, high).astype(np.float64) - low) / (high - low)
                out[c] = np.rint(x * 255.0).astype(np.uint8)
        return out

    def apply(self, volume: np.ndarray, where: str = "volume") -> np.ndarray:
        """Resample and scale a raw ``(C, X, Y, Z)`` volume; returns ``(C, D, H, W)``.

        Raises:
            NiftiError: the volume does not have ``channels`` channels.
        """
        if volume.ndim != 4:
            raise NiftiError(f"{where}: has shape {volume.shape}; expected (C, X, Y, Z)")
        if volume.shape[0] != self.channels:
            raise NiftiError(f"{where}: has {volume.shape[0]} channel(s), expected {self.channels}")
        return self.scale(self.resample(volume))

    def load(self, path: str | os.PathLike[str]) -> np.ndarray:
        """``read_nifti`` then ``apply``: a raw NIfTI file as a training volume ``(C, D, H, W)``.

        Raises:
            NiftiError: as ``read_nifti`` and ``apply``.
        """
        return self.apply(read_nifti(path), str(path))
