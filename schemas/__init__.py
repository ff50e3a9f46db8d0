"""The Avro contracts of firebus, shipped as package data: ``AVRO_DIR`` holds the ``.avsc`` files."""

import pathlib

AVRO_DIR = pathlib.Path(__file__).resolve().parent / "avro"

__all__ = ["AVRO_DIR"]
