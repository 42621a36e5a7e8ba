"""Sum tree, prioritized replay and n-step returns (numpy; real Chain-v0 envs)."""

import numpy as np
import pytest
from scipy import stats

from agents.replay import NStepQueue, PrioritizedReplayBuffer
from agents.sumtree import SumTree
from envs import final_observations, make_vec_env


@pytest.mark.parametrize("capacity, fanout", [(1000, 4), (5000, 32), (7, 2), (100, 8), (33, 32)])
def test_sum_tree_finds_the_brute_force_leaf_and_samples_in_proportion(capacity, fanout):
    rng = np.random.default_rng(0)
    p = rng.random(capacity) ** 3
    p[rng.random(capacity) < 0.2] = 0.0  # leaves that must never be drawn
    tree = SumTree(capacity, fanout)
    tree.update(np.arange(capacity), p)
    assert tree.total == pytest.approx(p.sum(), rel=1e-12)
    # the leaf of a prefix mass, against np.searchsorted on the cumulative sums
    mass = rng.random(5000) * p.sum()
    want = np.searchsorted(np.cumsum(p), mass, "right")
    np.testing.assert_array_equal(tree.find(mass), want)
    assert p[tree.find(np.full(8, np.nextafter(p.sum(), 0)))].min() > 0  # the very end
    # frequencies of stratified minibatches: chi-square against p / sum(p)
    draws = tree.sample(64, rng, n_batches=4000).reshape(-1)
    counts = np.bincount(draws, minlength=capacity)
    assert counts[p == 0].sum() == 0
    keep = p > 0
    expected = p[keep] / p.sum() * len(draws)
    assert stats.chisquare(counts[keep], expected).pvalue > 1e-3


def test_sum_tree_draws_past_a_sum_by_rounding_land_on_the_last_non_zero_leaf():
    tree = SumTree(8, fanout=4)  # leaves of 8, 2 inner nodes, a root
    tree.update(np.arange(8), np.array([1.0, 1, 0, 0, 1, 0, 0, 0]))
    total = tree.total
    np.testing.assert_array_equal(
        tree.find([np.nextafter(total, 0), total, total * (1 + 1e-10), total * 2]), [4] * 4)
    np.testing.assert_array_equal(tree.find([0.0, 1.0, np.nextafter(2.0, 0), 2.0]), [0, 1, 1, 4])
    tree = SumTree(8, fanout=2)  # 3 levels above the leaves: past a sum at every one
    tree.update(np.arange(8), np.array([0.0, 1, 1, 0, 0, 0, 0, 0]))
    np.testing.assert_array_equal(tree.find([2.0, 3.0, np.nextafter(2.0, 0)]), [2, 2, 2])


def test_sum_tree_batch_updates_recompute_every_ancestor():
    rng = np.random.default_rng(1)
    tree = SumTree(100, fanout=3)
    tree.update(np.arange(100), np.ones(100))
    tree.update(np.array([5, 7, 5, 99]), np.array([2.0, 3.0, 4.0, 0.5]))  # repeated 5: last wins
    want = np.ones(100)
    want[[5, 7, 99]] = [4.0, 3.0, 0.5]
    np.testing.assert_array_equal(tree[:100], want)
    for d in range(1, len(tree.levels)):  # every inner node is the sum of its children
        np.testing.assert_allclose(tree.levels[d][: len(tree.levels[d - 1]) // 3],
                                   tree.levels[d - 1].reshape(-1, 3).sum(1))
    assert tree.total == pytest.approx(want.sum())
    for _ in range(50):  # many random updates: no drift
        idx = rng.integers(0, 100, 16)
        values = rng.random(16)
        tree.update(idx, values)
        want[idx] = values
    assert tree.total == pytest.approx(want.sum(), rel=1e-12)
    rebuilt = SumTree(100, fanout=3)  # as a resumed run loads its priorities
    rebuilt.levels[0][:] = tree.levels[0]
    rebuilt.rebuild()
    for d in range(len(tree.levels)):  # bit for bit, so a resume samples the same leaves
        np.testing.assert_array_equal(rebuilt.levels[d], tree.levels[d])
    with pytest.raises(IndexError, match="outside"):
        tree.update(np.array([3, 100]), np.ones(2))
    with pytest.raises(IndexError, match="outside"):
        tree.update(np.array([-1]), np.ones(1))
    np.testing.assert_array_equal(tree[:100], want)  # a refused update writes nothing


def add(buf, t, n=1):
    rows = np.arange(t, t + n)
    return buf.add(np.repeat(rows[:, None], 2, 1).astype(np.float32), rows, rows.astype(float),
                   np.zeros((n, 2)), np.zeros(n))


def test_prioritized_buffer_wraps_new_rows_at_max_priority_and_weights_by_batch_max():
    buf = PrioritizedReplayBuffer(5, (2,), alpha=0.5, eps=0.0)
    for t in range(3):
        add(buf, t)
    np.testing.assert_array_equal(buf.tree[:5], [1, 1, 1, 0, 0])  # new rows at max priority (1)
    buf.update_priorities(np.array([0, 1]), np.array([9.0, 0.25]))  # p^alpha = 3, 0.5
    assert buf.max_priority == 3.0
    add(buf, 3, n=4)  # rows 3, 4, then wraps over rows 0, 1
    np.testing.assert_array_equal(buf.actions, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buf.tree[:5], [3, 3, 1, 3, 3])
    rng = np.random.default_rng(0)
    beta = np.array([0.4, 1.0])
    index, (obs, actions, *_), weights = buf.sample_prioritized(4, rng, beta)
    assert index.shape == actions.shape == weights.shape == (2, 4)
    np.testing.assert_array_equal(actions, buf.actions[index])
    probs = buf.tree[index] / buf.tree.total
    w = (5 * probs) ** -beta[:, None]
    np.testing.assert_allclose(weights, w / w.max(axis=1, keepdims=True), rtol=1e-6)
    assert weights.max(axis=1).tolist() == [1.0, 1.0]


def test_prioritized_buffer_checkpoint_round_trip_samples_the_same():
    rng = np.random.default_rng(3)
    buf = PrioritizedReplayBuffer(50, (2,))
    add(buf, 0, n=70)  # wrapped
    buf.update_priorities(np.arange(0, 50, 3), rng.random(17) * 5)
    copy = PrioritizedReplayBuffer(50, (2,))
    copy.load_state_dict({k: np.array(v) for k, v in buf.state_dict().items()})
    assert copy.max_priority == buf.max_priority and copy.pos == buf.pos
    np.testing.assert_array_equal(copy.tree.levels[-1], buf.tree.levels[-1])
    a = buf.sample_prioritized(16, np.random.default_rng(9), np.array([0.5, 0.7]))
    b = copy.sample_prioritized(16, np.random.default_rng(9), np.array([0.5, 0.7]))
    for x, y in zip([a[0], *a[1], a[2]], [b[0], *b[1], b[2]]):
        np.testing.assert_array_equal(x, y)


# -- n-step returns -----------------------------------------------------------------------
def run_chain(queue, env, actions_per_step, start_state):
    """Step a Chain-v0 vector env with scripted actions, as the Trainer does; returns the
    n-step transitions each step emitted, states as indices."""
    obs, _ = env.reset(seed=0, options={"state": start_state})
    emitted = []
    for actions in actions_per_step:
        actions = np.array(actions)
        next_obs, rewards, terminated, truncated, infos = env.step(actions)
        real_next = final_observations(next_obs, infos, terminated | truncated)
        out = queue.push(obs, actions, rewards, real_next, terminated, truncated)
        step = []
        if out is not None:
            o, a, r, nxt, done, k = out
            step = [(int(np.argmax(o[i])), int(a[i]), float(r[i]), int(np.argmax(nxt[i])),
                     float(done[i]), int(k[i])) for i in range(len(a))]
        emitted.append(step)
        obs = next_obs
    return emitted


def test_n_step_returns_with_a_termination_inside_the_window():
    env = make_vec_env("Chain-v0", 1)  # 5 states; reaching state 4 pays 1 and terminates
    got = run_chain(NStepQueue(3, gamma=0.5), env, [[1], [1], [1]], start_state=1)
    assert got[:2] == [[], []]
    assert got[2] == [  # (s, a, Σ γ^i r, s', terminated, k): no bootstrap past the end
        (1, 1, 0.25, 4, 1.0, 3), (2, 1, 0.5, 4, 1.0, 2), (3, 1, 1.0, 4, 1.0, 1)]


def test_n_step_returns_with_a_truncation_inside_the_window():
    env = make_vec_env("Chain-v0", 1, max_episode_steps=3)
    got = run_chain(NStepQueue(2, gamma=0.5), env, [[0], [1], [1]], start_state=1)
    # steps: 1 -> 0 -> 1 -> 2, truncated at the 3rd: bootstrap from the true final state 2
    assert got == [[], [(1, 0, 0.0, 1, 0.0, 2)],
                   [(0, 1, 0.0, 2, 0.0, 2), (1, 1, 0.0, 2, 0.0, 1)]]


def test_n_step_returns_per_sub_env_of_a_vector_env():
    env = make_vec_env("Chain-v0", 2)
    queue = NStepQueue(3, gamma=0.5)
    got = run_chain(queue, env, [[1, 0], [1, 0], [1, 0], [1, 0]], start_state=1)
    assert got[0] == got[1] == []
    # sub-env 0 terminates at step 3 (flushes); sub-env 1 fills its window at step 3
    assert got[2] == [(1, 1, 0.25, 4, 1.0, 3), (2, 1, 0.5, 4, 1.0, 2), (3, 1, 1.0, 4, 1.0, 1),
                      (1, 0, 0.0, 0, 0.0, 3)]
    # sub-env 0's new episode (reset to state 3) ends in one step, on its own
    assert got[3] == [(3, 1, 1.0, 4, 1.0, 1), (0, 0, 0.0, 0, 0.0, 3)]
    assert [len(q) for q in queue.queues] == [0, 2]


def test_n_step_discounted_sums_and_state_round_trip():
    queue = NStepQueue(3, gamma=0.9)
    obs = np.arange(6, dtype=np.float32).reshape(6, 1)
    rewards = [1.0, 2.0, 3.0, 4.0]
    out = None
    for t, r in enumerate(rewards[:3]):
        out = queue.push(obs[t:t + 1], [t], [r], obs[t + 1:t + 2], [False], [False])
    np.testing.assert_allclose(out[2], [1 + 0.9 * 2 + 0.81 * 3])
    copy = NStepQueue(3, gamma=0.9)
    copy.load_state_dict(queue.state_dict())
    a = queue.push(obs[3:4], [3], [4.0], obs[4:5], [True], [False])
    b = copy.push(obs[3:4], [3], [4.0], obs[4:5], [True], [False])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(a[2], [2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4, 4])
    # an obs that does not continue the queue (fresh episode): flushed as truncated first
    queue.push(obs[0:1], [0], [1.0], obs[1:2], [False], [False])
    out = queue.push(obs[3:4], [1], [0.0], obs[4:5], [False], [False])
    assert out[0][:, 0].tolist() == [0.0] and out[4].tolist() == [0.0]
    np.testing.assert_array_equal(out[3], obs[1:2])


@pytest.mark.parametrize("capacity, fanout", [(5000, 32), (1_000_000, 32), (3000, 2)])
def test_sum_tree_draws_at_every_prefix_boundary_land_on_non_zero_leaves(capacity, fanout):
    """Masses at (and one ulp around) the prefix sums, where rounding decides, in minibatches
    and all at once: never a zero-priority leaf, never a padding node past the last leaf, even
    at exactly the total."""
    rng = np.random.default_rng(2)
    p = rng.random(capacity)
    p[rng.random(capacity) < 0.5] = 0.0
    p[-100:] = 0.0  # an unfilled tail, like a buffer not yet full
    tree = SumTree(capacity, fanout)
    tree.update(np.arange(capacity), p)
    edges = np.cumsum(p)[rng.choice(capacity - 100, 3000)]
    mass = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf),
                           [tree.total, np.nextafter(tree.total, 0)]])
    mass = np.clip(mass, 0, tree.total)
    for batch in (mass, *np.array_split(mass, len(mass) // 64)):
        leaves = tree.find(batch)
        assert leaves.max() < capacity and p[leaves].min() > 0
