from srlm.core.stats import mean


def test_mean_skips_missing_values_and_counts_booleans():
    assert mean([1, None, 2]) == 1.5
    assert mean([True, False, False, True]) == 0.5
    assert mean([None, None]) is None and mean([]) is None
