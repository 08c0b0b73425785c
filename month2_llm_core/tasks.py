"""Month 2 graded tasks. `pytest month2_llm_core -m m2_t1` grades one of them."""

from shared.grading import Task

TASKS = [
    Task("m2_t1", "a LoRA linear layer", 15, ("LoRALinear",),
         "Freeze the base layer; lora_A (in -> r) Kaiming-uniform with a=sqrt(5), lora_B (r -> out) zeros; "
         "y = base(x) + lora_B(lora_A(dropout(x))) * alpha / r. merge() returns an nn.Linear with "
         "W + scaling * B @ A."),
    Task("m2_t2", "NF4 quantize / dequantize", 15, ("nf4_quantize", "nf4_dequantize"),
         "Flatten, pad to whole blocks, divide each block by its absmax, clamp to [-1, 1], take the index "
         "of the nearest of the 16 NF4_LEVELS. Dequantize: NF4_LEVELS[code] * absmax[index // blocksize]."),
    Task("m2_t3", "a KV-cache greedy decode loop", 15, ("greedy_decode",),
         "One forward over the whole prompt with a DynamicCache (model(input_ids=..., cache=cache, "
         "use_cache=True)); then feed only the newest token each step. argmax of the last position's logits; "
         "stop after eos_token_id (keep it, as generate does)."),
    Task("m2_t4", "top-p (nucleus) filtering", 5, ("top_p_filter",),
         "Sort descending, softmax, cumulative sum; drop a token when the tokens before it already sum "
         "to >= p (so the top token always stays); scatter the mask back to the original order."),
    Task("m2_t5", "SmolLM2's chat template by hand", 10, ("apply_chatml",),
         "Each message is '<|im_start|>' + role + '\\n' + content + '<|im_end|>\\n'. If the first message "
         "is not a system message, SmolLM2's default system message comes first. The generation prompt "
         "is '<|im_start|>assistant\\n'."),
]
