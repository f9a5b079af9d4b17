import pytest

from helpers import profiles


def test_default_profile_is_quick_and_both_exist():
    assert profiles.DEFAULT_PROFILE == "quick"
    assert set(profiles.PROFILES) == {"quick", "full"}
    assert profiles.get_profile("full").name == "full"


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown profile 'fast'.*'quick', 'full'"):
        profiles.get_profile("fast")


def test_both_profiles_define_the_same_parameters():
    quick, full = profiles.PROFILES["quick"], profiles.PROFILES["full"]
    assert set(quick.chapters) == set(full.chapters)
    for chapter in quick.chapters:
        assert set(quick.chapters[chapter]) == set(full.chapters[chapter]), chapter


def test_chapter_config_applies_only_non_none_overrides():
    cfg = profiles.chapter_config("quick", "setup", matmul_size=None, bandwidth_mib=8)
    assert cfg.profile == "quick"
    assert cfg.matmul_size == profiles.PROFILES["quick"].chapters["setup"]["matmul_size"]
    assert cfg.bandwidth_mib == 8
    assert profiles.chapter_config("full", "setup").matmul_size > cfg.matmul_size


def test_chapter_config_errors_name_the_bad_value():
    with pytest.raises(ValueError, match="no chapter 'nope'"):
        profiles.chapter_config("quick", "nope")
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['matmul_sise'\]"):
        profiles.chapter_config("quick", "setup", matmul_sise=3)
    with pytest.raises(ValueError, match="unknown profile"):
        profiles.chapter_config("slow", "setup")


def test_profiles_cannot_be_modified_by_accident():
    with pytest.raises(TypeError):
        profiles.PROFILES["quick"].chapters["setup"]["matmul_size"] = 1  # type: ignore[index]
