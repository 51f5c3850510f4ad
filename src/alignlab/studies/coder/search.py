"""Choosing a program under a fixed budget of generated programs, and pass@k.

- `best_by_tests`: sample n, keep the one passing most generated tests.
- `codet_choice`: CodeT's dual agreement: programs that pass the same set of generated tests form
  a consensus set, scored (number of programs) x (number of tests passed); pick from the best.
- `mcts`: O1-CODER's search over reasoning steps. A node is a partial trace of steps; its
  children come from one of three actions, "structure" (outline), "pseudocode" (refine) and "code"
  (write the program: a terminal node). Selection by UCT, expansion with `samples` proposals per
  allowed action, a rollout (write code directly) from each new non-terminal node, and the mean
  reward backed up the path. A node whose children are all terminal is widened with fresh
  samples, so the search keeps spending its budget. Every program (terminal or rollout) counts
  toward `budget`; the answer is the program with the highest reward (earliest on ties).

The policy, the program builder and the reward are plain callables, so the search is tested with a
scripted policy on a toy problem; hidden tests never enter it (an `oracle` reward is passed in
explicitly by the caller, and labelled as an upper bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass (Chen et al., 2021):
    1 - C(n-c, k) / C(n, k), computed as a product to stay stable for large n."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def best_by_tests(results: list[list[bool]]) -> int:
    """Index of the program passing the most generated tests (the first on ties)."""
    scores = [sum(r) for r in results]
    return scores.index(max(scores))


def codet_choice(results: list[list[bool]]) -> int:
    """Index of a program in the best consensus set: programs grouped by the exact set of tests
    they pass, each set scored (programs in it) x (tests passed); the first program of the best set.
    With no test passed by anyone every set scores 0 and the first program is chosen."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(results):
        groups.setdefault(tuple(r), []).append(i)
    best = max(groups.items(), key=lambda kv: (len(kv[1]) * sum(kv[0]), -kv[1][0]))
    return best[1][0]


# --------------------------------------------------------------------------------------------
# MCTS over reasoning steps


@dataclass
class Node:
    trace: tuple  # ((action, text), ...)
    parent: Node | None = None
    children: list = field(default_factory=list)
    visits: int = 0
    value: float = 0.0  # sum of backed-up rewards
    program: str | None = None  # set on terminal (code) nodes
    reward: float | None = None
    expanded: int = 0  # how many times proposals were drawn here

    @property
    def terminal(self) -> bool:
        return self.program is not None

    @property
    def mean(self) -> float:
        return self.value / self.visits if self.visits else 0.0


@dataclass
class SearchResult:
    program: str | None
    reward: float
    programs: list  # (program, reward, trace) in the order generated
    iterations: int
    nodes: int


def allowed_actions(depth: int, max_depth: int) -> tuple[str, ...]:
    """Actions after `depth` steps: first the structure, then pseudocode or code, and code at the
    last step (`max_depth` 1: code at once)."""
    if depth >= max_depth - 1:
        return ("code",)
    if depth == 0:
        return ("structure",)
    return ("pseudocode", "code")


def uct(child: Node, parent_visits: int, c: float) -> float:
    if child.visits == 0:
        return math.inf
    return child.mean + c * math.sqrt(math.log(max(parent_visits, 1)) / child.visits)


def mcts(propose, to_program, reward, budget: int, samples: int = 2, max_depth: int = 3, c: float = 1.0,
         seed: int = 0) -> SearchResult:
    """Search for a program. `propose(trace, action, n, seed) -> [text]` draws n next steps;
    `to_program(text) -> str` turns a code step into a program; `reward(program) -> float` in [0, 1]."""
    if budget < 1 or samples < 1 or max_depth < 1:
        raise ValueError(f"budget, samples and max_depth must be >= 1; got {budget}, {samples}, {max_depth}")
    root = Node(trace=())
    programs: list = []
    draws = 0

    def new_seed():
        nonlocal draws
        draws += 1
        return seed * 100_003 + draws

    def evaluate(text: str, trace) -> float:
        program = to_program(text)
        value = float(reward(program))
        programs.append((program, value, trace))
        return value

    def backup(node: Node, value: float):
        while node is not None:
            node.visits += 1
            node.value += value
            node = node.parent

    iterations = 0
    while len(programs) < budget and iterations < 50 * budget:
        iterations += 1
        node = root
        # selection: descend through expanded nodes that still have open (non-terminal) children
        while node.expanded:
            open_children = [ch for ch in node.children if not ch.terminal]
            if not open_children:
                break  # all children terminal: widen this node
            node = max(open_children, key=lambda ch: uct(ch, node.visits, c))
        # expansion
        node.expanded += 1
        depth = len(node.trace)
        for action in allowed_actions(depth, max_depth):
            if len(programs) >= budget:
                break
            for text in propose(node.trace, action, samples, new_seed()):
                if len(programs) >= budget:
                    break
                trace = node.trace + ((action, text),)
                child = Node(trace=trace, parent=node)
                node.children.append(child)
                if action == "code":
                    child.program = to_program(text)
                    child.reward = evaluate(text, trace)
                    backup(child, child.reward)
                else:  # rollout: write the code right after this step
                    code = propose(trace, "code", 1, new_seed())[0]
                    backup(child, evaluate(code, trace + (("code", code),)))
    nodes, stack = 0, [root]
    while stack:
        n = stack.pop()
        nodes += 1
        stack.extend(n.children)
    if not programs:
        return SearchResult(None, 0.0, [], iterations, nodes)
    best = max(range(len(programs)), key=lambda i: (programs[i][1], -i))
    return SearchResult(programs[best][0], programs[best][1], programs, iterations, nodes)
