"""The vote among guesses: identical answers pool, then counts, then mean confidence, then first seen."""

import numpy as np

from hrmkit.puzzles.vote import Ballot, answer_key


def grid(*rows):
    return np.array(rows, dtype=np.uint8)


def test_identical_answers_pool_and_the_most_voted_wins():
    ballot = Ballot()
    for answer, q in ((grid([1, 2]), 0.9), (grid([3, 4]), 0.2), (grid([3, 4]), 0.1), (grid([1, 2]).astype(np.int64), 0.3)):
        ballot.add(answer, q)
    ranked = ballot.ranked()
    assert len(ballot) == 2 and [c.votes for c in ranked] == [2, 2]
    # Tied on votes: the higher mean confidence (0.6 against 0.15) ranks first, whatever the dtype.
    assert np.array_equal(ranked[0].answer, grid([1, 2])) and abs(ranked[0].mean_confidence - 0.6) < 1e-12


def test_more_votes_beat_more_confidence_and_a_full_tie_keeps_the_first_seen():
    ballot = Ballot()
    ballot.add(grid([5]), 0.99)
    ballot.add(grid([6]), 0.1)
    ballot.add(grid([6]), 0.1)
    ballot.add(grid([7]), 0.5)
    ballot.add(grid([8]), 0.5)
    assert [int(c.answer[0, 0]) for c in ballot.ranked()] == [6, 5, 7, 8]


def test_answers_of_another_shape_are_other_answers():
    assert answer_key(grid([1, 2], [3, 4])) != answer_key(grid([1, 2, 3, 4]))
    assert answer_key(np.zeros(900, dtype=np.uint8)) == answer_key(np.zeros(900, dtype=np.int32))
    ballot = Ballot()
    ballot.add(grid([1, 2], [3, 4]))
    ballot.add(grid([1, 2, 3, 4]))
    assert len(ballot) == 2
