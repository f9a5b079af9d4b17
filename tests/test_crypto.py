import pandas as pd
import pytest
import torch

from helpers import crypto


@pytest.fixture
def key(tmp_path):
    return crypto.load_key(crypto.new_key_file(tmp_path / "keys" / "handbook.key"), env="NO_SUCH_VAR")


def test_a_checkpoint_round_trips(tmp_path, key):
    state = {"w": torch.randn(3, 4), "b": torch.arange(3)}
    back = crypto.load_checkpoint(crypto.save_checkpoint(state, tmp_path / "m.enc", key), key)
    assert all(torch.equal(state[k], back[k]) for k in state)


def test_a_tampered_file_and_a_wrong_key_are_refused(tmp_path, key):
    path = crypto.save_checkpoint({"w": torch.zeros(100)}, tmp_path / "m.enc", key)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one bit
    (tmp_path / "bad.enc").write_bytes(bytes(blob))
    with pytest.raises(crypto.DecryptionError, match="modified after encryption"):
        crypto.load_checkpoint(tmp_path / "bad.enc", key)
    other = crypto.load_key(crypto.new_key_file(tmp_path / "other.key"), env="NO_SUCH_VAR")
    with pytest.raises(crypto.DecryptionError, match="not the key"):
        crypto.load_checkpoint(path, other)


def test_a_missing_key_names_both_places_to_put_one(tmp_path, monkeypatch):
    monkeypatch.delenv(crypto.KEY_ENV, raising=False)
    with pytest.raises(crypto.KeyMissingError, match="set the environment variable DL_HANDBOOK_KEY"):
        crypto.load_key(tmp_path / "nope.key")


def test_the_environment_variable_wins(monkeypatch, tmp_path, key):
    monkeypatch.setenv(crypto.KEY_ENV, key.decode())
    assert crypto.load_key(tmp_path / "nope.key") == key


def test_a_key_file_inside_a_git_checkout_or_over_an_old_key_is_refused(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(ValueError, match="inside the git checkout"):
        crypto.new_key_file(tmp_path / "repo" / "secrets" / "key")
    crypto.new_key_file(tmp_path / "k")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        crypto.new_key_file(tmp_path / "k")
    assert oct((tmp_path / "k").stat().st_mode & 0o777) == "0o600"


def test_a_table_round_trips_and_a_bad_key_is_named(tmp_path, key):
    df = pd.DataFrame({"age": [31, 45], "sex": ["f", "m"]})
    pd.testing.assert_frame_equal(crypto.load_frame(crypto.save_frame(df, tmp_path / "t.enc", key), key), df)
    with pytest.raises(ValueError, match="not a Fernet key"):
        crypto.encrypt_bytes(b"x", b"short")
