"""Month 1 graded tasks. `pytest month1_transformer -m m1_t2` grades one of them."""

from shared.grading import Task

TASKS = [
    Task("m1_t1", "softmax", 5, ("softmax",),
         "Subtract the row max before exp(); a row of all -inf must give zeros, not NaN."),
    Task("m1_t2", "scaled dot-product attention + masks", 10, ("scaled_dot_product_attention", "causal_mask"),
         "scores = q @ k^T / sqrt(d); masked positions get -inf before softmax. With t_q < t_k "
         "(a KV cache) the causal mask is aligned bottom-right."),
    Task("m1_t3", "multi-head attention", 15, ("MultiHeadAttention",),
         "Project, split (B, T, C) -> (B, H, T, D), attend per head, merge heads, project out."),
    Task("m1_t4", "positional encodings: sinusoidal and RoPE", 10,
         ("sinusoidal_encoding", "rope_cache", "apply_rope"),
         "Sinusoidal: sin on even channels, cos on odd. RoPE: x * cos + rotate_half(x) * sin."),
    Task("m1_t5", "LayerNorm and RMSNorm", 10, ("LayerNorm", "RMSNorm"),
         "Normalise over the last dimension; LayerNorm uses the biased variance."),
    Task("m1_t6", "pre-norm transformer block", 15, ("Block",),
         "x = x + attn(ln_1(x)) with a causal mask, then x = x + mlp(ln_2(x))."),
    Task("m1_t7", "backward of softmax + cross-entropy", 15, ("softmax_cross_entropy_forward_backward",),
         "d loss / d logits = (softmax(logits) - onehot(targets)) / N for the mean loss."),
    Task("m1_t8", "one training step", 10, ("train_step",),
         "zero the grads, forward, backward, clip the gradient norm, optimizer step; return the loss."),
]
