"""Image loading, preprocessing and augmentation (OpenCV + Pillow, no Qt)."""

from sigverify.imaging.load import MAX_PIXELS, SUPPORTED_SUFFIXES, load_image, load_image_bytes
from sigverify.imaging.preprocess import PreprocessConfig, Preprocessed, preprocess, preprocess_file

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "load_image",
    "load_image_bytes",
    "PreprocessConfig",
    "Preprocessed",
    "preprocess",
    "preprocess_file",
]
