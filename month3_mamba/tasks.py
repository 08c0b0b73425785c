"""Month 3 graded tasks. `pytest month3_mamba -m m3_t2` grades one of them."""

from shared.grading import Task

TASKS = [
    Task("m3_t1", "ZOH discretisation", 10, ("zoh_discretize",),
         "Abar = exp(delta A); Bbar = A^-1 (Abar - I) B. Avoid A^-1 (A may be singular): the matrix "
         "exponential of [[A, B], [0, 0]] * delta is [[Abar, Bbar], [0, I]]."),
    Task("m3_t2", "selective scan: discretise + sequential loop", 10, ("discretize", "scan_sequential"),
         "dA = exp(delta A), dBu = delta B u (time-major (l, b, d, n)); then h = dA_t * h + dBu_t and "
         "y_t = sum over n of C_t * h, one step at a time."),
    Task("m3_t3", "parallel scan: Hillis-Steele in chunks", 15, ("associative_scan", "scan_chunked"),
         "Combine (a1, b1) then (a2, b2) into (a1 a2, a2 b1 + b2). Sweep k pairs every element with the one "
         "2^k earlier. Chunks: scan inside each, then carry the boundary state: h = A_cum * h_in + x. "
         "No in-place ops."),
    Task("m3_t4", "causal depthwise conv1d with a streaming state", 10, ("causal_depthwise_conv1d",),
         "Left-pad with the state (zeros at the start), conv1d with groups = channels, return the last k - 1 inputs."),
    Task("m3_t5", "the Mamba mixer forward", 15, ("MambaMixer",),
         "in_proj -> (x, z); x: causal conv, SiLU, x_proj -> (dt, B, C); delta = softplus(dt_proj(dt)); "
         "selective scan with A = -exp(A_log) and D; gate with SiLU(z); out_proj. Carry the state if given."),
    Task("m3_t6", "the recurrent step equals the parallel forward", 15, ("mamba_step",),
         "Roll the conv window by one, then one step of h = exp(delta A) h + delta B x; y = C h + D x, gated."),
    Task("m3_t7", "the RWKV WKV recurrence, overflow-safe", 10, ("wkv_recurrent",),
         "Keep (num, den) scaled by e^-p with p the largest exponent so far: at each step take q = max(p, u + k_t) "
         "for the output and q = max(p - w, k_t) for the update, and rescale both terms by e^(. - q)."),
]
