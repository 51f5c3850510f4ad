"""The policy: a causal LM that writes code (vanilla or pseudocode-first prompting), reasoning
steps for the tree search, and tests for the test-case generator; with the generated-token count.

Code is written as a continuation: the assistant's reply is opened for the model with
"```python" and the problem's prompt, so the model writes only the function body (small models
otherwise spend most of their tokens copying the docstring), and stops at the closing fence.
Pseudocode-first prompting writes the pseudocode, then the body after the same opening, in one
reply. Greedy replies go through `alignlab.lm.generation.generate` (cached per prompt); samples
are drawn here with `generate_with` in one seeded batch per call, because `generate` keys its
cache by prompt and would give one text for n identical prompts; each call is one
`alignlab.cache` entry, so a re-run samples nothing. Token counts are the replies re-tokenized.
"""

from __future__ import annotations

from collections import Counter

from alignlab.cache import Cache
from alignlab.lm.generation import apply_chat, generate, generate_with
from alignlab.models.load import load_causal_lm, load_tokenizer
from alignlab.studies.coder.problems import Problem

SAMPLES_VERSION = "2"
FENCE = "```"
# Where a function body ends: the closing fence, or a top-level comment, print, assert or main guard
# after the function (example usage). `program_from_reply` drops those statements anyway, so
# stopping there saves decoding (small models otherwise write usage up to max_new_tokens); only a
# helper defined after such a statement is lost.
CODE_STOPS = [FENCE, "\n#", "\nprint(", "\nassert ", "\nif __name__"]

CODE_REQUESTS = {
    "vanilla": "Complete the following Python function.\n\n```python\n{prompt}```",
    "pseudocode": ("Complete the following Python function. First write pseudocode for it as a short numbered list "
                   "of steps, then the complete function.\n\n```python\n{prompt}```"),
}
PSEUDOCODE_OPENING = "Pseudocode:\n1."

# The three step actions of O1-CODER's search: outline the structure, refine pseudocode, write code.
ACTIONS = ("structure", "pseudocode", "code")
STEP_TITLES = {"structure": "Structure", "pseudocode": "Pseudocode", "code": "Code"}
STEP_INSTRUCTIONS = {
    "structure": "Define the structure of a solution: the inputs, the output and the main steps, in at most five "
                 "short lines. Do not write any code yet.",
    "pseudocode": "Refine the steps above into precise pseudocode. Do not write Python code yet.",
    "code": "Write the complete Python function following the steps above.",
}


def code_opening(problem: Problem) -> str:
    """How a reply with code begins: the fence and the prompt; the model continues with the body."""
    return f"{FENCE}python\n{problem.prompt}"


def step_request(problem: Problem, trace, action: str) -> str:
    """The user message asking for the next step `action` after `trace` ((action, text), ...)."""
    parts = [f"Problem:\n```python\n{problem.prompt}```"]
    parts += [f"{STEP_TITLES[a]}:\n{text.strip()}" for a, text in trace]
    parts.append(STEP_INSTRUCTIONS[action])
    return "\n\n".join(parts)


class LMPolicy:
    """A causal LM from the zoo as the policy. `tokens[label]` sums the tokens it generated."""

    def __init__(self, model: str, temperature: float, max_new_tokens: int, step_tokens: int):
        self.model, self.temperature = model, float(temperature)
        self.max_new_tokens, self.step_tokens = int(max_new_tokens), int(step_tokens)
        self.tokens: Counter = Counter()
        self.tokenizer = load_tokenizer(model)

    def n_tokens(self, texts) -> int:
        """Tokens in `texts` (the policy's tokenizer)."""
        return sum(len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)

    def text(self, request: str, opening: str = "") -> str:
        """The raw model input: `request` as the user's turn, the reply opened with `opening`."""
        return apply_chat(self.tokenizer, request) + opening

    def greedy(self, texts: list[str], max_new_tokens: int, stop=None, label: str = "greedy") -> list[str]:
        out = generate(self.model, texts, max_new_tokens=max_new_tokens, stop=stop, chat=False, batch_size=4)
        self.tokens[label] += self.n_tokens(out)
        return out

    def sample(self, texts: list[str], seed: int, max_new_tokens: int, stop=None, label: str = "sample") -> list[str]:
        """One sampled reply per raw input in `texts` (one seeded batch), cached."""

        def compute():
            model, tokenizer = load_causal_lm(self.model)
            return generate_with(model, tokenizer, texts, max_new_tokens=max_new_tokens, temperature=self.temperature,
                                 seed=seed, stop=stop, chat=False, batch_size=len(texts))

        out = Cache().memo("coder-samples", SAMPLES_VERSION, compute, model=self.model, texts=list(texts),
                           seed=int(seed), temperature=self.temperature, max_new_tokens=int(max_new_tokens),
                           stop=list(stop or []))
        self.tokens[label] += self.n_tokens(out)
        return out

    # code, by prompting style ----------------------------------------------------------------

    def code_text(self, problem: Problem, style: str) -> str:
        """The raw model input that asks for `problem`'s code in `style`, the reply opened."""
        opening = code_opening(problem) if style == "vanilla" else PSEUDOCODE_OPENING
        return self.text(CODE_REQUESTS[style].format(prompt=problem.prompt), opening)

    def code_greedy(self, problems: list[Problem], style: str) -> list[str]:
        """One greedy reply per problem: the function body (vanilla) or pseudocode + body."""
        if style == "vanilla":
            return self.greedy([self.code_text(p, style) for p in problems], self.max_new_tokens, CODE_STOPS,
                               "greedy/vanilla")
        pseudo = self.greedy([self.code_text(p, style) for p in problems], self.step_tokens, [FENCE],
                             "greedy/pseudocode")
        texts = [self.code_text(p, style) + " " + s + "\n\n" + code_opening(p) for p, s in zip(problems, pseudo)]
        bodies = self.greedy(texts, self.max_new_tokens, CODE_STOPS, "greedy/pseudocode")
        return [f"{PSEUDOCODE_OPENING} {s}\n\n{code_opening(p)}{b}" for p, s, b in zip(problems, pseudo, bodies)]

    def code_samples(self, problems: list[Problem], style: str, n: int, seed: int) -> list[list[str]]:
        """`n` sampled replies per problem, as in `code_greedy`: every problem's samples in one
        batch (one decoding loop for all of them rather than one per problem)."""
        firsts = [self.code_text(p, style) for p in problems for _ in range(n)]
        if style == "vanilla":
            flat = self.sample(firsts, seed, self.max_new_tokens, CODE_STOPS, "sample/vanilla")
        else:
            owners = [p for p in problems for _ in range(n)]
            pseudo = self.sample(firsts, seed, self.step_tokens, [FENCE], "sample/pseudocode")
            texts = [f + " " + s + "\n\n" + code_opening(p) for f, s, p in zip(firsts, pseudo, owners)]
            bodies = self.sample(texts, seed, self.max_new_tokens, CODE_STOPS, "sample/pseudocode")
            flat = [f"{PSEUDOCODE_OPENING} {s}\n\n{code_opening(p)}{b}" for s, b, p in zip(pseudo, bodies, owners)]
        return [flat[i * n:(i + 1) * n] for i in range(len(problems))]

    def step(self, problem: Problem, trace, action: str, n: int, seed: int) -> list[str]:
        """`n` sampled texts for the next step `action` (the tree search's proposal); a code step
        is a function body, written after the opened code block."""
        if action == "code":
            text = self.text(step_request(problem, trace, action), code_opening(problem))
            return self.sample([text] * n, seed, self.max_new_tokens, CODE_STOPS, "mcts")
        return self.sample([self.text(step_request(problem, trace, action))] * n, seed, self.step_tokens, None, "mcts")
