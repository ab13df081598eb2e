"""The enum-like values of HU phantoms and results: ROI role, check kind, how located.

Each is a :class:`~enum.StrEnum`: results keep the member, which compares equal to
its text (``RoiRole.INSERT == "insert"``), and ``to_dict`` / JSON give the text, as
before.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CheckKind", "LocalisationMethod", "RoiRole"]


class RoiRole(StrEnum):
    """What a ROI measures: an insert, the module background or a uniformity spot."""

    INSERT = "insert"
    BACKGROUND = "background"
    UNIFORMITY_CENTRE = "uniformity_centre"
    UNIFORMITY_EDGE = "uniformity_edge"


class CheckKind(StrEnum):
    """What a check judges: the criterion kinds of a profile, and the localisation."""

    HU = "hu"
    UNIFORMITY = "uniformity"
    NOISE = "noise"
    LINEARITY = "linearity"
    CONSTANCY_HU = "constancy_hu"
    CONSTANCY_NOISE = "constancy_noise"
    LOCALISATION = "localisation"


class LocalisationMethod(StrEnum):
    """How the phantom was placed: found, given by the caller, or partly both."""

    AUTO = "auto"
    MANUAL = "manual"
    MIXED = "mixed"
