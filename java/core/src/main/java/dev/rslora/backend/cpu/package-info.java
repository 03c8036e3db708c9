/**
 * The {@code cpu} backend: the rsLoRA layer of SPEC.md §2–4 and §6 on the JVM's Vector API,
 * multi-threaded, bit-for-bit deterministic for a given worker count.
 *
 * <pre>
 *   X [N, d_in], W [d_out, d_in], b [d_out], A [r, d_in], B [d_out, r], U [N, r], Y/dY [N, d_out]
 *   forward : U = D(X)·Aᵀ;  Y = X·Wᵀ + b + γ·U·Bᵀ
 *   backward: V = dY·B;  dB (=|+=) γ·dYᵀ·U;  dA (=|+=) γ·Vᵀ·D(X);  dX = dY·W + γ·D'(V·A)
 * </pre>
 *
 * Where things are:
 * <ul>
 *   <li>{@link dev.rslora.backend.cpu.CpuBackend}: the public entry point (validation, locking, merge);</li>
 *   <li>{@link dev.rslora.backend.cpu.ForwardPass}, {@link dev.rslora.backend.cpu.BackwardPass}: the
 *       per-call work split over the workers, chunk by chunk of rows;</li>
 *   <li>{@link dev.rslora.backend.cpu.MicroKernel}: the 8×32 fp32 register tile every GEMM uses;</li>
 *   <li>{@link dev.rslora.backend.cpu.Panels}: packing into the kernel's B-operand panels;
 *       {@link dev.rslora.backend.cpu.CpuFrozenWeight}: W packed once, off-heap;</li>
 *   <li>{@link dev.rslora.backend.cpu.MaskBits}: the dropout mask as keep bits (vectorised Philox,
 *       identical to {@link dev.rslora.dropout.DropoutMask});</li>
 *   <li>{@link dev.rslora.backend.cpu.Convert}: F32/BF16/F16 rows to and from fp32 (RNE stores);</li>
 *   <li>{@link dev.rslora.backend.cpu.WorkerPool}, {@link dev.rslora.backend.cpu.Split},
 *       {@link dev.rslora.backend.cpu.Scratch}, {@link dev.rslora.backend.cpu.NativeBuffer}:
 *       threads, static partitions and per-worker buffers.</li>
 * </ul>
 * Precision: every product is accumulated in fp32 (fma) and each output is rounded once to its
 * dtype; γ is folded into the packed Bᵀ (forward) and γA (backward dX) panels and applied to
 * the fp32 sums of dA and dB. Performance notes and measurements: the commit history and
 * {@code dev.rslora.bench.CpuLayerBenchmark}.
 */
package dev.rslora.backend.cpu;
