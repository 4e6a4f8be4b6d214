"""Secrets masking: the userinfo to the URL's last '@', query credentials to the next `&key=`, and
registered secrets verbatim, whatever characters a password holds."""

from __future__ import annotations

import pytest

from bench.core.secrets import forget_registered, mask_secrets, register_url, secrets_of

# generated passwords hold what URL syntax means: '/', '@', '#', '%', '?', ':' and quotes
PASSWORDS = ["PASS/WORD", "p@ss", "a#b", "50%off", "x?y=z", "a:b:c", "/@#%?", "it's", "p@ss/w#rd%41@", "@@@"]


@pytest.fixture(autouse=True)
def no_registered_secrets():
    forget_registered()
    yield
    forget_registered()


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_userinfo_password_is_masked_whatever_it_holds(password):
    for url in (f"postgresql://user:{password}@127.0.0.1:5432/db", f"mysql+pymysql://u:{password}@db.example.org/x",
                f"postgresql://user:{password}@[::1]/db?sslmode=require"):
        line = f"error: cannot open Optuna storage '{url}' (connection refused)"
        masked = mask_secrets(line)
        assert password not in masked, masked
        assert "user:***@" in masked or "u:***@" in masked
        assert masked.endswith("(connection refused)")  # the rest of the line is kept


def test_what_is_not_a_secret_is_left_alone():
    for text in ("sqlite:///results/optuna.db", "https://h/p?email=a@b.com", "see https://host:8080/path and a@b.com",
                 "postgresql://user@host/db", "mysql://h/db?sslmode=require&user=bench"):
        assert mask_secrets(text) == text


def test_query_credentials_are_masked_to_the_next_parameter():
    assert mask_secrets("mysql://h/db?password=ab#cd&x=1") == "mysql://h/db?password=***&x=1"
    assert mask_secrets("mysql://h/db?password=a&b&sslmode=require") == "mysql://h/db?password=***&sslmode=require"
    assert mask_secrets("x https://h/p?api_key=abc&access_token=t y") == "x https://h/p?api_key=***&access_token=*** y"
    assert mask_secrets("postgresql://u:pw@h/db?password=q") == "postgresql://u:***@h/db?password=***"


def test_a_password_with_spaces_is_masked_by_pattern_and_verbatim_once_registered():
    url = "postgresql://user:correct horse battery@h/db"
    assert mask_secrets(url) == "postgresql://user:***@h/db"
    tricky = "postgresql://user:pa ss/w@rd %2F x@h/db?token=tok en"
    register_url(tricky)
    echoed = f"FATAL: password 'pa ss/w@rd %2F x' rejected; encoded pa%20ss%2Fw%40rd%20%252F%20x; {tricky}"
    masked = mask_secrets(echoed)
    assert "pa ss" not in masked and "w@rd" not in masked and "%2Fw%40rd" not in masked, masked
    assert masked.startswith("FATAL: password '***' rejected; encoded ***;")


def test_secrets_of_takes_the_userinfo_to_the_last_at_and_credential_query_values():
    assert secrets_of("postgresql://u:p@ss/w#rd@h/db?sslmode=x&password=q1") == ["p@ss/w#rd", "q1"]
    assert secrets_of("sqlite:///x.db") == [] and secrets_of(None) == []


def test_a_short_registered_secret_does_not_mask_ordinary_words():
    register_url("postgresql://u:ab@h/db")
    assert mask_secrets("tab stab") == "tab stab"
    assert mask_secrets("postgresql://u:ab@h/db") == "postgresql://u:***@h/db"


def test_a_parser_that_splits_a_password_at_its_first_at_leaks_no_piece_of_it():
    from bench.core.secrets import needs_encoding

    url = "postgresql://ftbench:p@ssw0rd@127.0.0.1:1/nodb"
    register_url(url)
    echoed = f"cannot open {url} (failed to resolve host 'ssw0rd@127.0.0.1': Name or service not known)"
    masked = mask_secrets(echoed)
    assert "ssw0rd" not in masked and masked.startswith("cannot open postgresql://ftbench:***@127.0.0.1:1/nodb")
    assert needs_encoding(url) and needs_encoding("postgresql://u:a b@h/db") and needs_encoding("mysql://u:50%@h/d")
    assert not needs_encoding("postgresql://u:p%40ss@h/db") and not needs_encoding("sqlite:///x.db")
