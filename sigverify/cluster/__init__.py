"""Distributed batch clearing (Ray Data): ``sigverify-cli batch MANIFEST --engine ray``; extra ``cluster``."""
