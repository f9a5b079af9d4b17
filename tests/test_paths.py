from pathlib import Path

from helpers import paths


def test_root_follows_the_environment_variable(course_home):
    assert paths.root() == course_home
    assert course_home.is_dir()  # created on demand


def test_subfolders_are_created_on_demand(course_home):
    d = paths.data_dir("fashion-mnist", "raw")
    assert d == course_home / "data" / "fashion-mnist" / "raw" and d.is_dir()
    assert paths.cache_dir() == course_home / "cache"
    assert paths.checkpoint_dir("cnn").is_dir()


def test_default_root_is_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.HOME_ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.root() == Path(tmp_path) / ".cache" / "dl-handbook"


def test_blank_variable_means_default(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.HOME_ENV_VAR, "  ")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.root() == Path(tmp_path) / ".cache" / "dl-handbook"


def test_a_scratch_folder_is_under_the_course_root_and_starts_empty(course_home):
    first = paths.scratch_dir("13_serving")
    assert first == course_home / "scratch" / "13_serving" and first.is_dir()
    (first / "bundle.onnx").write_bytes(b"x" * 10)
    again = paths.scratch_dir("13_serving")  # a rerun replaces the last run's files
    assert again == first and list(again.iterdir()) == []
