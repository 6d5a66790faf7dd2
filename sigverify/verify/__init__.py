"""Distances, calibration and reference-set decisions (numpy only)."""

from sigverify.verify.calibration import Verdict, verdict_for
from sigverify.verify.distances import distance, pairwise_distances
from sigverify.verify.reference import ReferenceDecision, verify_against_references

__all__ = ["distance", "pairwise_distances", "Verdict", "verdict_for", "ReferenceDecision", "verify_against_references"]
