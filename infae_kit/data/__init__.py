"""Datasets for ∞-AE / DISTILL-CF: the paper's preprocessed files, raw readers, the paper's split, a registry
of named datasets with checksummed downloads, fractal expansions (``netflix-shape``), synthetic data, AUC
negatives and statistics.

Quick start::

    from infae_kit.data import load_dataset
    ds = load_dataset("ml-1m")          # RecDataset: binary CSR train / val / test
    ds.summary()
    ds = load_dataset("magazine", validation="holdout")   # a validation item for users without one
"""

from infae_kit.data.dataset import Interactions, RecDataset, build_rec_dataset, dataset_statistics, rec_dataset_from_csr
from infae_kit.data.download import DownloadError, fetch_file, file_checksum
from infae_kit.data.negatives import sample_auc_negatives
from infae_kit.data.preprocessed import load_preprocessed, read_preprocessed_interactions
from infae_kit.data.fractal import fractal_dataset, fractal_expand
from infae_kit.data.holdout import (
    VALIDATION_PROTOCOLS,
    apply_validation_protocol,
    dataset_label,
    users_without_validation,
    with_validation_holdout,
)
from infae_kit.data.readers import read_delimited, read_movielens, read_netflix_csr, read_netflix_training_set
from infae_kit.data.registry import DatasetSpec, FileSource, dataset_info, list_datasets, load_dataset
from infae_kit.data.split import split_counts_per_user, split_labels_csr, split_per_user
from infae_kit.data.stats import degree_comparison, degree_statistics, statistics_table
from infae_kit.data.synthetic import make_synthetic

__all__ = [
    "VALIDATION_PROTOCOLS",
    "DatasetSpec",
    "DownloadError",
    "FileSource",
    "Interactions",
    "RecDataset",
    "apply_validation_protocol",
    "build_rec_dataset",
    "dataset_info",
    "dataset_label",
    "dataset_statistics",
    "degree_comparison",
    "degree_statistics",
    "fetch_file",
    "file_checksum",
    "fractal_dataset",
    "fractal_expand",
    "list_datasets",
    "load_dataset",
    "load_preprocessed",
    "make_synthetic",
    "read_delimited",
    "read_movielens",
    "read_netflix_csr",
    "read_netflix_training_set",
    "read_preprocessed_interactions",
    "rec_dataset_from_csr",
    "sample_auc_negatives",
    "split_counts_per_user",
    "split_labels_csr",
    "split_per_user",
    "statistics_table",
    "users_without_validation",
    "with_validation_holdout",
]
