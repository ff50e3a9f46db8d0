"""The Avro contracts of firebus, shipped as package data: ``AVRO_DIR`` holds the ``.avsc`` files."""

from pathlib import Path

AVRO_DIR = Path(__file__).resolve().parent / "avro"

__all__ = ["AVRO_DIR"]
