"""Kaggle competition pipeline: Lightning models, honest K-fold CV, Optuna tuning, submissions."""

__version__ = "0.1.0"
