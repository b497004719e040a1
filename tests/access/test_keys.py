from distillguard.access import keys as K


def test_generated_keys_are_prefixed_random_and_long():
    a, b = K.generate_key(), K.generate_key()
    assert a.startswith("dg-") and b.startswith("dg-") and a != b
    # 32 random bytes → 43 base64url characters
    assert len(a) == 3 + 43
    assert K.looks_like_key(a)
    assert not K.looks_like_key("sk-" + a[3:])
    assert not K.looks_like_key("dg-short")


def test_hash_is_keyed_and_stable():
    key = K.generate_key()
    h1 = K.hash_key("secret-1", key)
    assert h1 == K.hash_key("secret-1", key)
    assert h1 != K.hash_key("secret-2", key)
    assert key not in h1 and len(h1) == 64
    assert K.hashes_equal(h1, h1) and not K.hashes_equal(h1, "0" * 64)


def test_hint_and_redaction_never_reveal_the_key():
    key = K.generate_key()
    hint = K.key_hint(key)
    assert hint.startswith("dg-") and key[10:-4] not in hint
    text = f"auth failed for {key} with header Bearer {key}"
    red = K.redact(text)
    assert key not in red
    assert "[redacted]" in red
