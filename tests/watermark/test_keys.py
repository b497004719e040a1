from distillguard.watermark.keys import keys_for, org_key


def test_org_keys_are_deterministic_and_distinct():
    assert org_key("s", "org_a") == org_key("s", "org_a")
    assert len({org_key("s", "org_a"), org_key("s", "org_b"), org_key("t", "org_a"), org_key("s", "org_a", 2)}) == 4


def test_keys_for_lists_every_version_and_old_secret_newest_first():
    ks = keys_for("new", "org_a", versions=3, old_secrets=("old",))
    assert [(k.version, k.key) for k in ks[:3]] == [(v, org_key("new", "org_a", v)) for v in (3, 2, 1)]
    assert ks[3].key == org_key("old", "org_a", 3) and len(ks) == 6


def test_choice_is_in_range_and_roughly_balanced():
    k = keys_for("s", "org_a")[0]
    picks = [k.choice(f"ctx{i}", 3, 2) for i in range(2000)]
    assert set(picks) == {0, 1} and 850 < sum(picks) < 1150
    assert {k.choice(f"c{i}", 1, 4) for i in range(200)} == {0, 1, 2, 3}
