"""`asset_writers` and `allowed_image_registries` in cordon.yaml: validated with file:line, bounded, matched."""

from __future__ import annotations

from pathlib import Path

import pytest

from correlators.config import Config, image_origin, load_config
from correlators.errors import ConfigError

ASSETS = "assets:\n  training_data: ['s3://train/datasets/*']\n"


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "cordon.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_declared_writers_match_role_globs_per_asset_class(tmp_path: Path) -> None:
    config = _load(tmp_path, ASSETS + "asset_writers:\n  training_data: ['arn:aws:iam::*:role/etl-*']\n")
    assert config.declared_writer("training_data", "arn:aws:iam::111122223333:role/etl-nightly") is True
    assert config.declared_writer("training_data", "arn:aws:iam::111122223333:user/ml-contractor") is False
    # A class that declares no writers is not judged
    assert config.declared_writer("model_artifacts", "arn:aws:iam::111122223333:user/ml-contractor") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            ASSETS + "asset_writers:\n  training_data: ['role/etl-*']\n",
            r"cordon\.yaml:3: asset_writers: 'role/etl-\*' is not an IAM principal ARN glob",
        ),
        (
            ASSETS + "asset_writers:\n  model_artifacts: ['arn:aws:iam::*:role/x']\n",
            r"cordon\.yaml:3: asset_writers: asset class 'model_artifacts' is not in assets \(training_data\)",
        ),
        (
            "asset_writers:\n  training_data: ['arn:aws:iam::*:role/x']\n",
            r"cordon\.yaml:1: asset_writers: asset class 'training_data' is not in assets \(none: define assets",
        ),
        (
            "allowed_image_registries: ['https://123456789012.dkr.ecr.us-east-1.amazonaws.com']\n",
            r"cordon\.yaml:1: allowed_image_registries: 'https://.*' is not a registry",
        ),
        (
            "allowed_image_registries: ['123456789012.dkr.ecr.us-east-1.amazonaws.com/scorer:v7']\n",
            r"cordon\.yaml:1: allowed_image_registries: .* no scheme, tag or digest",
        ),
    ],
)
def test_bad_values_are_errors_with_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        _load(tmp_path, text)


def test_writer_globs_are_bounded(tmp_path: Path) -> None:
    globs = "\n".join(f"    - arn:aws:iam::1:role/r{i}" for i in range(1_001))
    with pytest.raises(ConfigError, match=r"cordon\.yaml:3: asset_writers: 1,001 writer globs: at most 1,000"):
        _load(tmp_path, ASSETS + f"asset_writers:\n  training_data:\n{globs}\n")


def test_registries_are_bounded(tmp_path: Path) -> None:
    hosts = "\n".join(f"  - {i}.dkr.ecr.us-east-1.amazonaws.com" for i in range(1_001))
    with pytest.raises(ConfigError, match=r"allowed_image_registries: 1,001 registries: at most 1,000"):
        _load(tmp_path, f"allowed_image_registries:\n{hosts}\n")


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("111122223333.dkr.ecr.us-east-1.amazonaws.com/fraud-scorer:v7", True),
        ("111122223333.dkr.ecr.eu-west-1.amazonaws.com/fraud-scorer@sha256:" + "a" * 64, True),
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu", True),  # one repository allowed
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-tgi:latest", False),
        ("999988887777.dkr.ecr.us-east-1.amazonaws.com/fraud-scorer:v7", False),
        ("ghcr.io/attacker/scorer:latest", False),
        ("python:3.11", False),  # Docker Hub
    ],
)
def test_images_are_judged_by_registry_host_or_repository(image: str, allowed: bool) -> None:
    config = Config(
        allowed_image_registries=[
            "111122223333.dkr.ecr.*.amazonaws.com",
            "763104351884.dkr.ecr.*.amazonaws.com/pytorch-*",
        ]
    )
    assert config.image_allowed(image) is allowed


def test_without_registries_images_are_not_judged() -> None:
    assert Config().image_allowed("ghcr.io/attacker/scorer:latest") is None


def test_image_origin_follows_docker_reference_rules() -> None:
    assert image_origin("localhost:5000/scorer:v1") == ("localhost:5000", "scorer")
    assert image_origin("library/python") == ("docker.io", "library/python")
    assert image_origin("Example.COM/team/scorer") == ("example.com", "team/scorer")
