"""Month 4 graded tasks. `pytest month4_moe -m m4_t2` grades one of them."""

from shared.grading import Task

TASKS = [
    Task("m4_t1", "top-k gating", 10, ("top_k_gating",),
         "probs = softmax(logits); pick the k largest of probs + bias (bias only selects); weights = the chosen "
         "probs, renormalised to sum to 1 when k > 1 and renormalize is set."),
    Task("m4_t2", "the Switch load-balancing loss", 10, ("switch_load_balancing_loss",),
         "N * sum_i f_i * P_i over the unmasked tokens: f_i = share of the (token, choice) routes sent to i, "
         "P_i = mean router probability of i. Uniform router: exactly 1; collapsed: N."),
    Task("m4_t3", "the router z-loss", 5, ("router_z_loss",),
         "mean over the unmasked tokens of logsumexp(logits)^2 (torch.logsumexp keeps it stable)."),
    Task("m4_t4", "expert capacity, dispatch and combine", 15, ("expert_capacity", "dispatch_and_combine"),
         "C = max(min_capacity, ceil(k T factor / E)). Walk the routes first choices first, tokens in order; "
         "a route takes the next free slot of its expert or is dropped when the expert is full."),
    Task("m4_t5", "an MoE forward equal to the dense loop", 15, ("moe_forward",),
         "Route with top-k gating; for each expert, gather its tokens, run gelu(x W1 + b1) W2 + b2 on them, "
         "scale by the gate weights, index_add back into the output."),
    Task("m4_t6", "auxiliary-loss-free bias update", 5, ("aux_free_bias_update",),
         "b_i + rate * sign(mean load - load_i): overloaded experts' biases fall, underloaded ones rise."),
]
