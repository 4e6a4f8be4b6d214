"""ftbench: compare fine-tuning strategies for text classification on one harness."""

__version__ = "0.1.0"
